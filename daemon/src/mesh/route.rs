//! Forwarding calls to sidecars and their replies back; failing what cannot complete.

use super::{Mesh, Pending, Registration};
use crate::server::dispatch::error_response;
use pm_protocol::ErrorCode;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Where a routed call's answer goes: a connection, or one slot of a batch.
pub enum Reply {
    Conn(mpsc::Sender<String>),
    Once(oneshot::Sender<String>),
}

impl Reply {
    pub async fn send(self, msg: String) {
        match self {
            // A caller that has gone cannot be answered; nothing else is waiting for it.
            Reply::Conn(tx) => {
                let _ = tx.send(msg).await;
            }
            Reply::Once(tx) => {
                let _ = tx.send(msg);
            }
        }
    }
}

/// Why a call could not be sent; `None` target means nobody registered under that name.
pub enum RouteError {
    NotRegistered,
    Refused(ErrorCode, String),
}

/// One call to route.
pub struct Call<'a> {
    pub target: &'a str,
    pub method: &'a str,
    pub id: Option<&'a RawValue>,
    pub params: Option<&'a RawValue>,
    pub deadline: Duration,
}

impl Mesh {
    /// Sends a call to the sidecar `call.target` stands for. A request's answer goes to `reply`
    /// once the sidecar answers (or fails, or the deadline passes); a notification has none.
    pub async fn forward(&self, call: Call<'_>, reply: Option<Reply>) -> Result<(), RouteError> {
        let reg = self.pick(call.target)?;
        let instance = &reg.instance;
        if !reg.methods.is_empty() && !reg.methods.iter().any(|m| m == call.method) {
            return Err(RouteError::Refused(
                ErrorCode::MethodNotFound,
                format!("sidecar `{instance}` has no method `{}` (it serves: {})", call.method, reg.methods.join(", ")),
            ));
        }
        let method = serde_json::to_string(call.method).unwrap_or_default();
        let params = call.params.map(|p| format!(",\"params\":{}", p.get())).unwrap_or_default();
        let (Some(caller_id), Some(reply)) = (call.id, reply) else {
            let msg = format!(r#"{{"jsonrpc":"2.0","method":{method}{params}}}"#);
            return reg.out.send(msg).await.map_err(|_| gone(instance));
        };
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let pending = Pending {
            reply,
            caller_id: caller_id.to_owned(),
            target: instance.clone(),
            conn: reg.conn,
            deadline: Instant::now() + call.deadline,
        };
        self.inner.pending.insert(id, pending);
        let msg = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":{method}{params}}}"#);
        if reg.out.send(msg).await.is_err() {
            self.inner.pending.remove(&id);
            return Err(gone(instance));
        }
        Ok(())
    }

    /// The registered instance a target names: itself, or one of a definition's instances
    /// (balanced round-robin when the definition is stateless).
    fn pick(&self, target: &str) -> Result<Arc<Registration>, RouteError> {
        if let Some(reg) = self.inner.registrations.get(target) {
            return Ok(reg.clone());
        }
        let mut candidates: Vec<Arc<Registration>> =
            self.inner.registrations.iter().filter(|r| r.definition == target).map(|r| r.value().clone()).collect();
        match candidates.len() {
            0 => Err(RouteError::NotRegistered),
            1 => Ok(candidates.remove(0)),
            n if candidates.iter().all(|r| r.stateless) => {
                candidates.sort_by(|a, b| a.instance.cmp(&b.instance));
                let turn = self.inner.turns.entry(target.to_string()).or_insert_with(|| AtomicUsize::new(0));
                let i = turn.fetch_add(1, Ordering::Relaxed) % n;
                Ok(candidates.swap_remove(i))
            }
            _ => {
                let mut names: Vec<&str> = candidates.iter().map(|r| &*r.instance).collect();
                names.sort_unstable();
                Err(RouteError::Refused(
                    ErrorCode::InvalidRequest,
                    format!(
                        "`{target}` has several instances ({}) and is not stateless: call one of them, e.g. `{}.method`",
                        names.join(", "),
                        names[0]
                    ),
                ))
            }
        }
    }

    /// A sidecar answered a call the daemon sent on connection `conn`.
    pub async fn complete(&self, conn: u64, id: &RawValue, result: Option<&RawValue>, error: Option<&RawValue>) {
        let Ok(id) = id.get().parse::<u64>() else {
            tracing::debug!("a reply with a foreign id {} on connection {conn}", id.get());
            return;
        };
        let Some((_, pending)) = self.inner.pending.remove_if(&id, |_, p| p.conn == conn) else {
            tracing::debug!("a late or unknown reply {id} on connection {conn}");
            return;
        };
        let caller = pending.caller_id.get();
        let msg = match (result, error) {
            (Some(result), _) => format!(r#"{{"jsonrpc":"2.0","id":{caller},"result":{}}}"#, result.get()),
            (None, Some(error)) => format!(r#"{{"jsonrpc":"2.0","id":{caller},"error":{}}}"#, error.get()),
            (None, None) => error_response(
                Some(caller),
                ErrorCode::InvalidRequest,
                "the sidecar sent a reply with neither result nor error",
            ),
        };
        pending.reply.send(msg).await;
    }

    /// Answers every pending call matching `which` with "sidecar gone".
    pub(super) async fn fail_where(&self, which: impl Fn(&Pending) -> bool, why: &str) {
        let ids: Vec<u64> = self.inner.pending.iter().filter(|p| which(p.value())).map(|p| *p.key()).collect();
        for id in ids {
            if let Some((_, p)) = self.inner.pending.remove(&id) {
                let msg = format!("sidecar `{}` went away during the call: {why}", p.target);
                p.reply.send(error_response(Some(p.caller_id.get()), ErrorCode::SidecarGone, &msg)).await;
            }
        }
    }

    /// Answers calls whose deadline passed; runs until the daemon stops.
    pub async fn expire_deadlines(&self) {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = Instant::now();
            let late: Vec<u64> = self.inner.pending.iter().filter(|p| p.deadline <= now).map(|p| *p.key()).collect();
            for id in late {
                if let Some((_, p)) = self.inner.pending.remove(&id) {
                    let msg = format!("call to sidecar `{}` exceeded its deadline", p.target);
                    p.reply.send(error_response(Some(p.caller_id.get()), ErrorCode::DeadlineExceeded, &msg)).await;
                }
            }
        }
    }
}

fn gone(instance: &str) -> RouteError {
    RouteError::Refused(ErrorCode::SidecarGone, format!("sidecar `{instance}` went away"))
}
