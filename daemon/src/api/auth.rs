//! `pm.auth`: who is calling. The daemon's token makes the owner; a sidecar's PM_TOKEN makes
//! that sidecar (which it needs for `pm.register`). Handled per connection by the dispatcher.

use crate::server::Shared;
use crate::server::peer::{Identity, Peer};
use pm_protocol::ErrorCode;
use pm_protocol::params::AuthParams;
use pm_protocol::status::AuthInfo;
use serde_json::value::RawValue;

pub fn auth(peer: &Peer, shared: &Shared, params: Option<&RawValue>) -> Result<AuthInfo, (ErrorCode, String)> {
    let AuthParams { token } = super::params(params)?;
    let identity = identify(&token, shared).ok_or((ErrorCode::Unauthorized, "invalid token".to_string()))?;
    peer.set_identity(identity.clone());
    Ok(match identity {
        Identity::Sidecar(name) => AuthInfo::Sidecar { name },
        _ => AuthInfo::Owner,
    })
}

/// Who a token belongs to: the daemon's token is the owner, a sidecar's PM_TOKEN that sidecar.
/// (Also used by the WebSocket handshake, which carries the token as a Bearer header.)
pub fn identify(token: &str, shared: &Shared) -> Option<Identity> {
    if equal(token, &shared.daemon_token) {
        Some(Identity::Owner)
    } else {
        shared.mesh.instance_of_token(token).map(Identity::Sidecar)
    }
}

/// Compares secrets in time independent of where they differ.
fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_compare_whole() {
        assert!(super::equal("abc", "abc"));
        assert!(!super::equal("abc", "abd"));
        assert!(!super::equal("abc", "abcd"));
    }
}
