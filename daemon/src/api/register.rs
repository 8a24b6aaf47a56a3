//! `pm.register`: a sidecar makes itself commandable. Reverse mode (default): the daemon sends
//! requests over the sidecar's own connection. Direct mode: the daemon connects to the endpoint
//! the sidecar serves on and sends them there. Handled per connection by the dispatcher.

use crate::mesh::Registration;
use crate::server::peer::{Identity, Peer};
use crate::server::{Shared, adopt};
use crate::supervisor::Supervisor;
use pm_protocol::params::RegisterParams;
use pm_protocol::status::RegisterInfo;
use pm_protocol::{Endpoint, ErrorCode, State};
use serde_json::value::RawValue;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

type Failure = (ErrorCode, String);

pub async fn register(peer: &Peer, shared: &Arc<Shared>, params: Option<&RawValue>) -> Result<RegisterInfo, Failure> {
    let Identity::Sidecar(instance) = peer.identity() else {
        return Err((
            ErrorCode::Unauthorized,
            "pm.register is for sidecars: call pm.auth with the sidecar's PM_TOKEN first".into(),
        ));
    };
    let RegisterParams { methods, endpoint, direct } = super::params(params)?;
    let (definition, stateless) = shared
        .sup
        .definition_of(&instance)
        .ok_or_else(|| (ErrorCode::UnknownName, format!("instance `{instance}` no longer exists")))?;
    let parsed = endpoint
        .as_deref()
        .map(|e| e.parse::<Endpoint>().map_err(|err| (ErrorCode::InvalidParams, err.to_string())))
        .transpose()?;
    let (conn, out) = match (&parsed, direct) {
        (Some(endpoint), true) => {
            let opts = pm_protocol::transport::ConnectOptions { max_frame: shared.max_frame, ..Default::default() };
            let conn = pm_protocol::transport::connect(endpoint, &opts).await.map_err(|e| {
                (ErrorCode::InvalidParams, format!("cannot connect to {endpoint} for direct calls: {e}"))
            })?;
            let (id, out) = adopt(conn, Identity::Sidecar(instance.clone()), shared.clone(), CancellationToken::new());
            (id, out)
        }
        (None, true) => return Err((ErrorCode::InvalidParams, "direct mode needs an endpoint".into())),
        (_, false) => (peer.id, peer.out.clone()),
    };
    let mode = if direct { "direct" } else { "reverse" };
    tracing::info!("{instance}: registered {} method(s), {mode} mode", methods.len());
    let registration = Registration {
        instance: instance.as_str().into(),
        definition,
        stateless,
        methods: Arc::new(methods),
        endpoint,
        conn,
        out,
    };
    shared.mesh.register(registration);
    Ok(RegisterInfo { name: instance, mode: mode.to_string() })
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
