//! JSON-RPC dispatch for one connection. jsonrpsee's `raw_json_request` serves the `pm.*`
//! methods but knows neither batches, notifications nor who is calling, so those, the session
//! (`pm.auth`, `pm.register`), authorization, routing of `<sidecar>.<method>` and replies from
//! sidecars are handled here.
//!
//! Before a connection authenticates, only `pm.auth` is served, inline: no batch is expanded and
//! no task is spawned. After, `pm.*` requests and batches run in tasks, at most
//! `max_pm_requests` at once per connection; routed calls are sent on the reader, at most
//! `max_in_flight` per connection. Nothing here waits for another peer.

use super::peer::{Identity, Peer};
use super::{Shared, session};
use crate::grants;
use crate::mesh::{Call, DEFAULT_DEADLINE, InFlight, Reply, RouteError};
use pm_protocol::envelope::Envelope;
use pm_protocol::wire::{self, Frame};
use pm_protocol::{ErrorCode, openrpc};
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// How long a closing connection still forwards a subscription's last notifications.
const FINAL_GRACE: Duration = Duration::from_millis(500);

/// Notifications a subscription may queue before the connection catches up.
const SUBSCRIPTION_BUFFER: usize = 4096;

/// Failed attempts to authenticate before the connection is closed.
pub const MAX_STRIKES: u32 = 3;

const NOT_AUTHENTICATED: &str =
    "not authenticated: call pm.auth with the daemon's token (`pm token`) or your PM_TOKEN first";

/// Daemon methods that open a subscription, and those that cancel one.
const SUBSCRIBE: &[&str] = &["pm.logs", "pm.events"];
const UNSUBSCRIBE: &[&str] = &["pm.unlogs", "pm.unevents"];

/// What handling one message gave.
enum Handled {
    Answer(String),
    /// A `pm.*` subscription: its answer, its id (as JSON), then its notifications.
    Subscribed(String, Option<String>, mpsc::Receiver<Box<RawValue>>),
    /// Answered later through the `Reply` (a routed call), or never (a notification).
    Nothing,
}

/// Handles one frame: a message or a batch. Answers go to the peer.
pub async fn frame(text: String, peer: &Arc<Peer>, shared: &Arc<Shared>, closed: &CancellationToken) {
    // Read once per frame: this is the routing hot path.
    let identity = peer.identity();
    if matches!(identity, Identity::Anonymous) {
        return anonymous(&text, peer, shared);
    }
    if wire::is_batch(&text) {
        let Some(permit) = permit(peer, shared, None) else { return };
        let (peer, shared) = (peer.clone(), shared.clone());
        tokio::spawn(async move {
            batch(&text, &identity, &peer, &shared).await;
            drop(permit);
        });
        return;
    }
    let envelope = match wire::parse(&text) {
        Ok(e) => e,
        Err(answer) => return peer.out.answer(answer),
    };
    // Daemon methods may take long (a start waits for readiness): they get a task. Routed
    // calls, replies and the session are handled in order, on the reader: they never wait.
    let session = ["pm.auth", "pm.register"];
    if envelope.method.as_deref().is_some_and(|m| m.starts_with("pm.") && !session.contains(&m)) {
        let Some(permit) = permit(peer, shared, envelope.id) else { return };
        let (peer, shared, closed) = (peer.clone(), shared.clone(), closed.clone());
        tokio::spawn(async move {
            let Ok(envelope) = wire::parse(&text) else { return };
            let handled = message(&text, envelope, &identity, &peer, &shared, || Reply::Conn(peer.out.clone())).await;
            drop(permit);
            deliver(handled, &peer, &closed).await;
        });
        return;
    }
    let handled = message(&text, envelope, &identity, peer, shared, || Reply::Conn(peer.out.clone())).await;
    deliver(handled, peer, closed).await;
}

/// One of the connection's slots for `pm.*` requests, or (answered) none free.
fn permit(peer: &Peer, shared: &Shared, id: Option<&RawValue>) -> Option<OwnedSemaphorePermit> {
    let permit = peer.pm_requests.clone().try_acquire_owned().ok();
    if permit.is_none() {
        let why = format!(
            "{} pm.* requests or batches of this connection are running already (the limit): wait for their answers",
            shared.limits.max_pm_requests
        );
        peer.out.answer(wire::error(id.map(RawValue::get), ErrorCode::Busy, &why));
    }
    permit
}

/// A frame from a connection that has not authenticated: only `pm.auth` is served. Anything
/// else is a strike, and the connection is closed after [`MAX_STRIKES`].
fn anonymous(text: &str, peer: &Peer, shared: &Shared) {
    let refusal = if wire::is_batch(text) {
        wire::error(None, ErrorCode::Unauthorized, "authenticate with pm.auth before sending a batch")
    } else {
        match wire::parse(text) {
            Err(answer) => answer,
            Ok(e) if e.method.as_deref() == Some("pm.auth") => match session::auth(peer, shared, e.params) {
                Ok(info) => {
                    if let Handled::Answer(answer) = success(e.id, &info) {
                        peer.out.answer(answer);
                    }
                    return;
                }
                Err((code, why)) => wire::error(e.id.map(RawValue::get), code, &why),
            },
            Ok(e) => wire::error(e.id.map(RawValue::get), ErrorCode::Unauthorized, NOT_AUTHENTICATED),
        }
    };
    peer.out.answer(refusal);
    if peer.strike() >= MAX_STRIKES {
        let why = format!("{MAX_STRIKES} failed attempts to authenticate; closing the connection");
        let _ = peer.out.offer(wire::error(None, ErrorCode::Unauthorized, &why));
        peer.out.drop_peer(&why);
    }
}

async fn deliver(handled: Handled, peer: &Peer, closed: &CancellationToken) {
    match handled {
        Handled::Answer(msg) => peer.out.answer(msg),
        Handled::Subscribed(answer, id, mut rx) => {
            // Counted before it is answered, so the next request sees it; the answer goes out
            // before any of its notifications.
            if let Some(id) = &id {
                peer.add_subscription(id.clone());
            }
            peer.out.answer(answer);
            loop {
                let n = tokio::select! {
                    n = rx.recv() => n,
                    // Closing (daemon stopping or peer gone): pass on what the subscription still
                    // sends, such as its final `End`, for a moment; then drop it, which ends it.
                    _ = closed.cancelled() => match tokio::time::timeout(FINAL_GRACE, rx.recv()).await {
                        Ok(n) => n,
                        Err(_) => break,
                    },
                };
                match n {
                    Some(n) if peer.out.stream(n.get().to_string()).await => {}
                    _ => break,
                }
            }
            if let Some(id) = &id {
                peer.remove_subscription(id);
            }
        }
        Handled::Nothing => {}
    }
}

async fn batch(text: &str, identity: &Identity, peer: &Arc<Peer>, shared: &Arc<Shared>) {
    let items = match wire::split(text, shared.limits.max_batch) {
        Ok(Frame::Batch(items)) => items,
        Ok(Frame::One(_)) => return,
        Err(answer) => return peer.out.answer(answer),
    };
    let answers = futures::future::join_all(items.iter().map(|item| async move {
        let envelope = match wire::parse(item.get()) {
            Ok(e) => e,
            Err(answer) => return Some(answer),
        };
        let (tx, rx) = oneshot::channel();
        match message(item.get(), envelope, identity, peer, shared, || Reply::Once(tx)).await {
            // A subscription in a batch is answered, and ends with the batch.
            Handled::Answer(a) | Handled::Subscribed(a, ..) => Some(a),
            // A routed request answers through its slot; a notification never does.
            Handled::Nothing => rx.await.ok(),
        }
    }))
    .await;
    if let Some(answers) = wire::batch(answers.into_iter().flatten().collect()) {
        peer.out.answer(answers);
    }
}

/// Handles one message (not a batch) of an authenticated connection, as `identity`.
async fn message(
    text: &str,
    e: Envelope<'_>,
    identity: &Identity,
    peer: &Peer,
    shared: &Arc<Shared>,
    reply: impl FnOnce() -> Reply,
) -> Handled {
    let id = e.id;
    let refuse = |code: ErrorCode, msg: &str| match id {
        Some(id) => Handled::Answer(wire::error(Some(id.get()), code, msg)),
        None => Handled::Nothing,
    };
    let Some(method) = e.method.as_deref() else {
        // A reply to a call the daemon routed to this peer.
        return match (id, e.result.is_some() || e.error.is_some()) {
            (Some(id), true) => {
                shared.mesh.complete(peer.id, id, e.result, e.error);
                Handled::Nothing
            }
            _ => Handled::Answer(wire::error(None, ErrorCode::InvalidRequest, "a message with no method")),
        };
    };
    if method == "pm.auth" {
        return match session::auth(peer, shared, e.params) {
            Ok(result) => success(id, &result),
            Err((code, msg)) => refuse(code, &msg),
        };
    }
    let run = match identity {
        Identity::Anonymous => return refuse(ErrorCode::Unauthorized, NOT_AUTHENTICATED),
        Identity::Owner => None,
        Identity::Sidecar(run) if run.is_revoked() => {
            let why = format!("the token of `{}` was revoked: the run it was issued to has ended", run.instance);
            return refuse(ErrorCode::Unauthorized, &why);
        }
        Identity::Sidecar(run) => Some(run),
    };
    if method == "pm.register" {
        return match session::register(peer, shared, e.params).await {
            Ok(result) => success(id, &result),
            Err((code, msg)) => refuse(code, &msg),
        };
    }
    if method.starts_with("pm.") {
        if let Some(run) = run
            && let Err(why) = grants::pm_method(run, method, e.params)
        {
            return refuse(ErrorCode::Unauthorized, &why);
        }
        return daemon_method(text, method, id, e.params, peer, shared).await;
    }
    // JSON-RPC reserves `rpc.*` for the server: nothing there is routed.
    if method.starts_with("rpc.") {
        return match method {
            openrpc::DISCOVER => match id {
                Some(id) => Handled::Answer(wire::result(id.get(), api_document())),
                None => Handled::Nothing,
            },
            _ => {
                refuse(ErrorCode::MethodNotFound, &format!("unknown method `{method}`: the daemon serves rpc.discover"))
            }
        };
    }
    let Some((target, sidecar_method)) = method.split_once('.') else {
        return refuse(
            ErrorCode::MethodNotFound,
            &format!("unknown method `{method}`: daemon methods are `pm.*`, sidecar methods `<sidecar>.<method>`"),
        );
    };
    if let Some(run) = run {
        let definition = shared.sup.definition_of(target).map_or_else(|| target.to_string(), |(d, _)| d);
        if let Err(why) = grants::call(run, target, &definition, sidecar_method) {
            return refuse(ErrorCode::Unauthorized, &why);
        }
    }
    let limits = &shared.limits;
    let reply = match id {
        None => None,
        Some(_) => match InFlight::take(&peer.in_flight, limits.max_in_flight) {
            Some(flight) => Some((reply(), flight)),
            None => {
                let why = format!(
                    "{} calls of this connection are in flight already (the limit): wait for answers before sending more",
                    limits.max_in_flight
                );
                return refuse(ErrorCode::Busy, &why);
            }
        },
    };
    let deadline = e.deadline_ms.map_or(DEFAULT_DEADLINE, Duration::from_millis).min(limits.max_deadline);
    let call = Call { target, method: sidecar_method, id, params: e.params, deadline, caller: peer.id };
    match shared.mesh.forward(call, reply) {
        Ok(()) => Handled::Nothing,
        Err(RouteError::Refused(code, msg)) => refuse(code, &msg),
        Err(RouteError::NotRegistered) => {
            let (code, msg) = session::not_registered(&shared.sup, target);
            refuse(code, &msg)
        }
    }
}

/// A `pm.*` method, through jsonrpsee. Subscriptions are the connection's own: only it may
/// cancel them.
async fn daemon_method(
    text: &str,
    method: &str,
    id: Option<&RawValue>,
    params: Option<&RawValue>,
    peer: &Peer,
    shared: &Shared,
) -> Handled {
    let Some(id) = id else {
        // A notification to the daemon: run it with a placeholder id, drop the answer.
        let _ = shared.methods.raw_json_request(&wire::request(Some("0"), method, params, None), 1).await;
        return Handled::Nothing;
    };
    if SUBSCRIBE.contains(&method) && peer.subscription_count() >= shared.limits.max_subscriptions {
        let why = format!(
            "{} subscriptions are open on this connection (the limit): cancel one before opening another",
            shared.limits.max_subscriptions
        );
        return Handled::Answer(wire::error(Some(id.get()), ErrorCode::Busy, &why));
    }
    if UNSUBSCRIBE.contains(&method) {
        let subscription = subscription_param(params);
        if !subscription.as_deref().is_some_and(|s| peer.owns_subscription(s)) {
            let which = subscription.unwrap_or_else(|| "(none given)".into());
            let why =
                format!("no subscription {which} on this connection: only the connection that opened it may cancel it");
            return Handled::Answer(wire::error(Some(id.get()), ErrorCode::InvalidParams, &why));
        }
    }
    match shared.methods.raw_json_request(text, SUBSCRIPTION_BUFFER).await {
        Ok((response, rx)) => {
            let response = response.get().to_string();
            let subscription = SUBSCRIBE.contains(&method).then(|| result_of(&response)).flatten();
            Handled::Subscribed(response, subscription, rx)
        }
        Err(err) => {
            Handled::Answer(wire::error(Some(id.get()), ErrorCode::InvalidRequest, &format!("invalid request: {err}")))
        }
    }
}

/// A response's result, as normalised JSON.
fn result_of(response: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Response {
        result: Option<serde_json::Value>,
    }
    serde_json::from_str::<Response>(response).ok()?.result.map(|r| r.to_string())
}

/// The subscription id an unsubscribe names (`[id]` or `{"subscription": id}`), normalised.
fn subscription_param(params: Option<&RawValue>) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Named {
        subscription: serde_json::Value,
    }
    let raw = params?.get();
    let id = serde_json::from_str::<(serde_json::Value,)>(raw)
        .map(|(id,)| id)
        .or_else(|_| serde_json::from_str::<Named>(raw).map(|n| n.subscription))
        .ok()?;
    Some(id.to_string())
}

/// The OpenRPC document of the daemon's API, made by the build (build.rs).
pub fn api_document() -> &'static str {
    include_str!(concat!(env!("OUT_DIR"), "/openrpc.json"))
}

/// The answer to a request the dispatcher served itself (none for a notification).
fn success(id: Option<&RawValue>, result: &impl serde::Serialize) -> Handled {
    match (id, serde_json::to_string(result)) {
        (Some(id), Ok(result)) => Handled::Answer(wire::result(id.get(), &result)),
        _ => Handled::Nothing,
    }
}
