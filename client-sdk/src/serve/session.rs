//! One connection to the daemon while serving: connect, `pm.auth` with the sidecar's token,
//! `pm.register` its methods, then answer what the daemon routes here until the connection
//! ends.
//!
//! A request may arrive before the answer to `pm.register` (the daemon routes to a sidecar as
//! soon as it is registered), so from then on every frame is served, and the register answer is
//! picked out of the stream.

use super::responder::Responder;
use super::{Registered, Setup};
use crate::error::{Error, RpcError, connect_error, without_endpoint};
use crate::mux::parse_answer;
use futures::StreamExt;
use pm_protocol::connection::{Connection, FrameError};
use pm_protocol::status::RegisterInfo;
use pm_protocol::{Endpoint, ErrorCode, transport, wire};
use serde_json::value::RawValue;

/// Ids of the sidecar's own requests on a serving connection.
const AUTH_ID: &str = "pms-auth";
const REGISTER_ID: &str = "pms-register";

/// How a session ended when it may be worth connecting again.
pub(crate) struct Lost {
    pub why: String,
    /// Whether the sidecar was registered on this connection (then the backoff starts over).
    pub registered: bool,
}

/// Runs one session. `Err` is fatal (the token or the registration was refused: connecting
/// again would not help); `Ok` says why the connection was lost.
pub(crate) async fn run(setup: &Setup) -> Result<Lost, Error> {
    let lost = |why: String| Ok(Lost { why, registered: false });
    let endpoint = &setup.endpoint;
    let transport_options = setup.options.transport();
    let connecting = transport::connect(endpoint, &transport_options);
    let conn = match tokio::time::timeout(setup.options.connect_timeout, connecting).await {
        Ok(Ok(conn)) => conn,
        // The WebSocket upgrade was answered 401: the token is refused, as by pm.auth.
        Ok(Err(e))
            if e.kind() == std::io::ErrorKind::PermissionDenied
                && matches!(endpoint, Endpoint::Ws(_) | Endpoint::Wss(_)) =>
        {
            return Err(Error::Unauthorized {
                endpoint: endpoint.to_string(),
                what: "this sidecar's token",
                code: ErrorCode::Unauthorized.code(),
                message: without_endpoint(endpoint, &e),
            });
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::Unsupported => return Err(connect_error(endpoint, e)),
        Ok(Err(e)) => return lost(format!("cannot connect: {}", without_endpoint(endpoint, &e))),
        Err(_) => return lost(format!("no connection within {:?}", setup.options.connect_timeout)),
    };
    let Connection { mut frames, sink } = conn;
    let max_frame = setup.options.max_frame;
    let responder = Responder::new(sink, setup.methods.clone(), setup.max_concurrent, max_frame);

    // pm.auth: the connection becomes this sidecar's.
    let params = serde_json::json!({ "token": setup.token });
    if !responder.send(own_request("pm.auth", AUTH_ID, &params)).await {
        return lost("the connection closed at once".into());
    }
    let authed = tokio::time::timeout(setup.options.connect_timeout, async {
        loop {
            match frames.next().await {
                Some(Ok(text)) => match parse_answer(&text) {
                    Some((id, answer)) if id == AUTH_ID => return Some(answer),
                    _ => tracing::debug!("ignoring a frame before authentication: {text}"),
                },
                _ => return None,
            }
        }
    });
    match authed.await {
        Ok(Some(Ok(_))) => {}
        Ok(Some(Err(e))) if e.code == ErrorCode::Unauthorized.code() => {
            return Err(Error::Unauthorized {
                endpoint: endpoint.to_string(),
                what: "this sidecar's token",
                code: e.code,
                message: e.message,
            });
        }
        Ok(Some(Err(e))) => {
            return Err(Error::Rpc(RpcError {
                method: "pm.auth".into(),
                code: e.code,
                message: e.message,
                data: e.data,
            }));
        }
        Ok(None) => return lost("the connection closed during authentication".into()),
        Err(_) => return lost(format!("no answer to pm.auth within {:?}", setup.options.connect_timeout)),
    }

    // pm.register: from now on the daemon may route requests here.
    let mut params = serde_json::json!({ "methods": setup.names, "direct": setup.direct.is_some() });
    if let Some(direct) = &setup.direct {
        params["endpoint"] = direct.clone().into();
    }
    if !responder.send(own_request("pm.register", REGISTER_ID, &params)).await {
        return lost("the connection closed before pm.register".into());
    }
    let mut registered = false;
    let why = loop {
        let text = match frames.next().await {
            Some(Ok(text)) => text,
            Some(Err(FrameError::TooLarge(max))) => break format!("the daemon sent a frame over {max} bytes"),
            Some(Err(e)) => break format!("read error: {e}"),
            None => break "the daemon closed the connection".into(),
        };
        if !registered
            && text.contains(REGISTER_ID)
            && let Some((id, answer)) = parse_answer(&text)
            && id == REGISTER_ID
        {
            match answer {
                Ok(result) => {
                    registered = true;
                    announce(setup, &result);
                }
                Err(e) => {
                    return Err(Error::Register { endpoint: endpoint.to_string(), code: e.code, message: e.message });
                }
            }
            continue;
        }
        if !text.trim().is_empty() {
            responder.handle(text).await;
        }
    };
    Ok(Lost { why, registered })
}

/// A request of the sidecar's own to the daemon.
fn own_request(method: &str, id: &str, params: &serde_json::Value) -> String {
    let params = serde_json::value::to_raw_value(params).ok();
    wire::request(Some(&wire::string(id)), method, params.as_deref(), None)
}

/// Logs the registration and tells whoever asked.
fn announce(setup: &Setup, result: &RawValue) {
    let (name, mode) = match serde_json::from_str::<RegisterInfo>(result.get()) {
        Ok(info) => (info.name, info.mode),
        Err(e) => {
            tracing::warn!("the answer to pm.register is not what this SDK expects ({e}): {}", result.get());
            (String::new(), String::new())
        }
    };
    tracing::info!(
        "registered as `{name}` with the pm daemon at {}: {} method(s) ({}), {mode} mode",
        setup.endpoint,
        setup.names.len(),
        setup.names.join(", "),
    );
    if let Some(callback) = &setup.on_registered {
        callback(&Registered {
            name,
            mode,
            endpoint: setup.endpoint.clone(),
            methods: setup.names.clone(),
            direct: setup.direct.clone(),
        });
    }
}
