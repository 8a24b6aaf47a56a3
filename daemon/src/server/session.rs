//! A connection's session with the daemon: `pm.auth` says who is calling, `pm.register` makes
//! the calling sidecar commandable. Both depend on the connection, which jsonrpsee's server
//! cannot see, so the dispatcher serves them here.

use super::Shared;
use super::peer::{Identity, Peer};
use crate::mesh::Registration;
use crate::supervisor::Supervisor;
use pm_protocol::params::{AuthParams, RegisterParams};
use pm_protocol::status::{AuthInfo, RegisterInfo};
use pm_protocol::{Endpoint, ErrorCode, State};
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub type Failure = (ErrorCode, String);

/// Longest the daemon waits to connect to a sidecar's direct endpoint.
const DIRECT_CONNECT: Duration = Duration::from_secs(5);

/// Parses a method's params (an object by name, or an array by position).
fn params<T: serde::de::DeserializeOwned>(raw: Option<&RawValue>) -> Result<T, Failure> {
    serde_json::from_str(raw.map_or("{}", |r| r.get()))
        .map_err(|e| (ErrorCode::InvalidParams, format!("invalid params: {e}")))
}

/// `pm.auth`: the daemon's token makes the owner, a sidecar's PM_TOKEN that run of it. An
/// authenticated connection may send frames up to the daemon's full limit.
pub fn auth(peer: &Peer, shared: &Shared, raw: Option<&RawValue>) -> Result<AuthInfo, Failure> {
    let AuthParams { token } = params(raw)?;
    let identity = identify(&token, shared).ok_or((ErrorCode::Unauthorized, "invalid token".to_string()))?;
    let info = match &identity {
        Identity::Sidecar(run) => AuthInfo::Sidecar { name: run.instance.clone() },
        _ => AuthInfo::Owner,
    };
    peer.set_identity(identity);
    if let Some(limit) = &peer.frame_limit {
        limit.set(shared.limits.max_frame);
    }
    Ok(info)
}

/// Who a token belongs to: the daemon's token is the owner, a live run's PM_TOKEN that run.
/// (Also used by the WebSocket handshake, which carries the token as a Bearer header.)
pub fn identify(token: &str, shared: &Shared) -> Option<Identity> {
    if equal(token, &shared.daemon_token) {
        Some(Identity::Owner)
    } else {
        shared.mesh.run_of_token(token).map(Identity::Sidecar)
    }
}

/// Compares secrets in time independent of where they differ.
fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `pm.register`. Reverse mode (default): the daemon sends requests over the sidecar's own
/// connection. Direct mode: the daemon connects to the endpoint the sidecar serves on, which
/// must be local (a Unix socket of the daemon's user, or a loopback address).
pub async fn register(peer: &Peer, shared: &Arc<Shared>, raw: Option<&RawValue>) -> Result<RegisterInfo, Failure> {
    let Identity::Sidecar(run) = peer.identity() else {
        return Err((
            ErrorCode::Unauthorized,
            "pm.register is for sidecars: call pm.auth with the sidecar's PM_TOKEN first".into(),
        ));
    };
    let instance = run.instance.clone();
    let RegisterParams { methods, endpoint, direct } = params(raw)?;
    let (definition, stateless) = shared
        .sup
        .definition_of(&instance)
        .ok_or_else(|| (ErrorCode::UnknownName, format!("instance `{instance}` no longer exists")))?;
    let parsed = endpoint
        .as_deref()
        .map(|e| e.parse::<Endpoint>().map_err(|err| (ErrorCode::InvalidParams, err.to_string())))
        .transpose()?;
    let out = match (&parsed, direct) {
        (Some(endpoint), true) => {
            local(endpoint)
                .map_err(|why| (ErrorCode::Unauthorized, format!("direct endpoint {endpoint} refused: {why}")))?;
            let opts =
                pm_protocol::transport::ConnectOptions { max_frame: shared.limits.max_frame, ..Default::default() };
            let conn =
                match tokio::time::timeout(DIRECT_CONNECT, pm_protocol::transport::connect(endpoint, &opts)).await {
                    Ok(Ok(conn)) => conn,
                    Ok(Err(e)) => {
                        return Err((
                            ErrorCode::InvalidParams,
                            format!("cannot connect to {endpoint} for direct calls: {e}"),
                        ));
                    }
                    Err(_) => {
                        let why = format!("cannot connect to {endpoint} for direct calls within {DIRECT_CONNECT:?}");
                        return Err((ErrorCode::InvalidParams, why));
                    }
                };
            super::adopt(conn, Identity::Sidecar(run.clone()), shared.clone(), CancellationToken::new())
        }
        (None, true) => return Err((ErrorCode::InvalidParams, "direct mode needs an endpoint".into())),
        (_, false) => peer.out.clone(),
    };
    let mode = if direct { "direct" } else { "reverse" };
    tracing::info!("{instance}: registered {} method(s), {mode} mode", methods.len());
    let registration = Registration {
        instance: instance.as_str().into(),
        definition,
        stateless,
        methods: Arc::new(methods),
        endpoint,
        out,
    };
    shared.mesh.register(registration);
    Ok(RegisterInfo { name: instance, mode: mode.to_string() })
}

/// Whether the daemon may dial `endpoint` for a sidecar: a Unix socket owned by the daemon's
/// user, or a loopback address. Anything else would let a sidecar aim the daemon elsewhere.
fn local(endpoint: &Endpoint) -> Result<(), String> {
    use super::secure::{bind_addr, host_of, is_loopback};
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    match endpoint {
        Endpoint::Unix(path) => {
            let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let uid = nix::unistd::getuid().as_raw();
            return match (meta.file_type().is_socket(), meta.uid() == uid) {
                (true, true) => Ok(()),
                (false, _) => Err(format!("{} is not a Unix socket", path.display())),
                (true, false) => {
                    Err(format!("{} belongs to uid {}, not the daemon's ({uid})", path.display(), meta.uid()))
                }
            };
        }
        Endpoint::Memory(_) => return Err("in-memory endpoints are the daemon's own".into()),
        _ => {}
    }
    let addr = bind_addr(endpoint).ok_or_else(|| format!("{endpoint} has no host:port"))?;
    match host_of(addr) {
        host if is_loopback(host) => Ok(()),
        host => Err(format!("`{host}` is not a loopback address (direct endpoints must be local)")),
    }
}

/// Why a call to `target` cannot be routed, when nobody registered under that name.
pub fn not_registered(sup: &Supervisor, target: &str) -> Failure {
    match sup.status(Some(target)) {
        Err(_) => (ErrorCode::UnknownName, format!("no sidecar named `{target}` (`pm ls` lists them)")),
        Ok(list) if list.iter().any(|s| matches!(s.state, State::Ready | State::Running | State::Starting)) => (
            ErrorCode::NotCommandable,
            format!("sidecar `{target}` is running but has not registered any methods (it must call pm.register)"),
        ),
        Ok(list) => {
            let states: Vec<String> = list.iter().map(|s| format!("{}: {}", s.name, s.state)).collect();
            (ErrorCode::NotReady, format!("sidecar `{target}` is not ready ({})", states.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_compare_whole() {
        assert!(super::equal("abc", "abc"));
        assert!(!super::equal("abc", "abd"));
        assert!(!super::equal("abc", "abcd"));
    }

    #[test]
    fn direct_endpoints_must_be_local() {
        let ok = |url: &str| super::local(&url.parse().unwrap());
        for good in ["tcp://127.0.0.1:1", "tls://localhost:2", "ws://[::1]:3/", "wss://127.1.2.3:4/x"] {
            assert!(ok(good).is_ok(), "{good}");
        }
        for bad in ["tcp://10.0.0.1:1", "tcp://0.0.0.0:1", "ws://example.com:80/", "tcp://[::]:1"] {
            assert!(ok(bad).unwrap_err().contains("not a loopback address"), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, "").unwrap();
        assert!(ok(&format!("unix://{}", file.display())).unwrap_err().contains("not a Unix socket"));
        let sock = dir.path().join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert!(ok(&format!("unix://{}", sock.display())).is_ok());
    }
}
