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
    let identity = if equal(&token, &shared.daemon_token) {
        Identity::Owner
    } else if let Some(instance) = shared.mesh.instance_of_token(&token) {
        Identity::Sidecar(instance)
    } else {
        return Err((ErrorCode::Unauthorized, "invalid token".into()));
    };
    peer.set_identity(identity.clone());
    Ok(match identity {
        Identity::Sidecar(name) => AuthInfo::Sidecar { name },
        _ => AuthInfo::Owner,
    })
}

/// Compares secrets in time independent of where they differ.
fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
