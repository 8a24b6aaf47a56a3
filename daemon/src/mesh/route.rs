//! Forwarding calls to sidecars and their replies back; failing what cannot complete. Nothing
//! here waits for a peer: requests and replies are offered to its outbox, never awaited.

use super::{InFlight, Mesh, Pending, Registration};
use crate::outbox::{BUDGET, Outbox, QUEUE, Refused, STALL};
use pm_protocol::{ErrorCode, wire};
use serde_json::value::RawValue;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Where a routed call's answer goes: a connection, or one slot of a batch.
pub enum Reply {
    Conn(Arc<Outbox>),
    Once(oneshot::Sender<String>),
}

impl Reply {
    fn send(self, msg: String) {
        match self {
            // A caller that does not read its answers is dropped; one that has gone is not
            // waited for.
            Reply::Conn(out) => out.answer(msg),
            Reply::Once(tx) => {
                let _ = tx.send(msg);
            }
        }
    }
}

/// Why a call could not be sent.
pub enum RouteError {
    /// Nobody registered under that name.
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
    /// The caller's connection.
    pub caller: u64,
}

impl Mesh {
    /// Sends a call to the sidecar `call.target` stands for. A request's answer goes to `reply`
    /// once the sidecar answers (or fails, or the deadline passes); a notification has none.
    /// A sidecar whose queue is full is not taking requests: the call is refused at once.
    pub fn forward(&self, call: Call<'_>, reply: Option<(Reply, InFlight)>) -> Result<(), RouteError> {
        // Held until the call is pending, where a drain looks for it.
        let routing = self.inner.routing.read().unwrap_or_else(PoisonError::into_inner);
        let reg = self.pick(call.target)?;
        let instance = &reg.instance;
        if !reg.methods.is_empty() && !reg.methods.iter().any(|m| m == call.method) {
            return Err(RouteError::Refused(
                ErrorCode::MethodNotFound,
                format!("sidecar `{instance}` has no method `{}` (it serves: {})", call.method, reg.methods.join(", ")),
            ));
        }
        let (Some(caller_id), Some((reply, flight))) = (call.id, reply) else {
            return offer(&reg, wire::request(None, call.method, call.params, None));
        };
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let deadline = Instant::now() + call.deadline;
        let pending = Pending {
            reply,
            caller_id: caller_id.to_owned(),
            target: instance.clone(),
            conn: reg.out.conn,
            caller: call.caller,
            deadline,
            _flight: Some(flight),
        };
        self.inner.pending.insert(id, pending);
        self.inner.deadlines.insert(deadline, id);
        drop(routing);
        if let Err(e) = offer(&reg, wire::request(Some(&id.to_string()), call.method, call.params, None)) {
            self.take(id);
            return Err(e);
        }
        Ok(())
    }

    /// The registered instance a target names: itself, or one of a definition's instances
    /// (balanced round-robin when the definition is stateless, over those not draining if any).
    fn pick(&self, target: &str) -> Result<Arc<Registration>, RouteError> {
        if let Some(reg) = self.inner.registrations.get(target) {
            return Ok(reg.clone());
        }
        let mut candidates: Vec<Arc<Registration>> =
            self.inner.registrations.iter().filter(|r| r.definition == target).map(|r| r.value().clone()).collect();
        match candidates.len() {
            0 => Err(RouteError::NotRegistered),
            1 => Ok(candidates.remove(0)),
            _ if candidates.iter().all(|r| r.stateless) => {
                if candidates.iter().any(|r| !self.is_draining(&r.instance)) {
                    candidates.retain(|r| !self.is_draining(&r.instance));
                }
                candidates.sort_by(|a, b| a.instance.cmp(&b.instance));
                let turn = self.inner.turns.entry(target.to_string()).or_insert_with(|| AtomicUsize::new(0));
                let i = turn.fetch_add(1, Ordering::Relaxed) % candidates.len();
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

    /// Removes a pending call and its deadline.
    fn take(&self, id: u64) -> Option<Pending> {
        let (_, pending) = self.inner.pending.remove(&id)?;
        self.inner.deadlines.remove(pending.deadline, id);
        Some(pending)
    }

    /// A sidecar answered a call the daemon sent on connection `conn`.
    pub fn complete(&self, conn: u64, id: &RawValue, result: Option<&RawValue>, error: Option<&RawValue>) {
        let Ok(id) = id.get().parse::<u64>() else {
            tracing::debug!("a reply with a foreign id {} on connection {conn}", id.get());
            return;
        };
        let Some((_, pending)) = self.inner.pending.remove_if(&id, |_, p| p.conn == conn) else {
            tracing::debug!("a late or unknown reply {id} on connection {conn}");
            return;
        };
        self.inner.deadlines.remove(pending.deadline, id);
        let caller = pending.caller_id.get();
        let msg = match (result, error) {
            (Some(result), _) => wire::result(caller, result.get()),
            (None, Some(error)) => wire::error_object(caller, error.get()),
            (None, None) => wire::error(
                Some(caller),
                ErrorCode::InvalidRequest,
                "the sidecar sent a reply with neither result nor error",
            ),
        };
        pending.reply.send(msg);
    }

    /// Answers every pending call matching `which` with "sidecar gone".
    pub(super) fn fail_where(&self, which: impl Fn(&Pending) -> bool, why: &str) {
        for p in self.take_where(which) {
            let msg = format!("sidecar `{}` went away during the call: {why}", p.target);
            p.reply.send(wire::error(Some(p.caller_id.get()), ErrorCode::SidecarGone, &msg));
        }
    }

    /// Removes every pending call matching `which`, with its deadline.
    pub(super) fn take_where(&self, which: impl Fn(&Pending) -> bool) -> Vec<Pending> {
        let ids: Vec<u64> = self.inner.pending.iter().filter(|p| which(p.value())).map(|p| *p.key()).collect();
        ids.into_iter().filter_map(|id| self.take(id)).collect()
    }

    /// Answers calls as their deadlines pass; runs until the daemon stops, asleep while no
    /// call is pending.
    pub async fn expire_deadlines(&self) {
        loop {
            for id in self.inner.deadlines.next_due().await {
                if let Some((_, p)) = self.inner.pending.remove(&id) {
                    let msg = format!("call to sidecar `{}` exceeded its deadline", p.target);
                    p.reply.send(wire::error(Some(p.caller_id.get()), ErrorCode::DeadlineExceeded, &msg));
                }
            }
        }
    }
}

/// Queues a message for a sidecar, refusing the call when it is not taking requests: its
/// queue is full, or it has read nothing for a while although requests wait.
fn offer(reg: &Registration, msg: String) -> Result<(), RouteError> {
    let queued = match reg.out.is_stalled() {
        true => Err(Refused::Full),
        false => reg.out.offer(msg),
    };
    match queued {
        Ok(()) => Ok(()),
        Err(Refused::Full) => Err(RouteError::Refused(
            ErrorCode::Busy,
            format!(
                "sidecar `{}` is not taking requests (it has read nothing for {STALL:?} or has {QUEUE} \
                 messages or {BUDGET} bytes unread); try again later",
                reg.instance
            ),
        )),
        Err(Refused::Closed) => {
            Err(RouteError::Refused(ErrorCode::SidecarGone, format!("sidecar `{}` went away", reg.instance)))
        }
    }
}
