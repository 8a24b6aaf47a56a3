//! Notifications: when an instance fails, turns unhealthy or gives up restarting, its
//! definition's `notify` command is run and/or its webhook is POSTed the [`Notification`] as
//! JSON. They go out beside supervision, which never waits for them: each is bounded in time,
//! at most [`IN_FLIGHT`] run at once, and one past that is dropped (and logged), like one that
//! fails.

use super::context::Context;
use super::host_command::HostCommand;
use pm_protocol::{Notification, Notify, NotifyEvent, State};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};

/// How many notifications may be under way at once, daemon-wide.
const IN_FLIGHT: usize = 32;
const EXEC_TIMEOUT: Duration = Duration::from_secs(10);
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// The daemon's notifier (cheap to clone).
#[derive(Clone)]
pub struct Notifier {
    permits: Arc<Semaphore>,
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier { permits: Arc::new(Semaphore::new(IN_FLIGHT)) }
    }
}

/// What an event is, for notifications: `None` when it is not one of theirs.
pub fn event_of(state: State, reason: Option<&str>) -> Option<NotifyEvent> {
    match state {
        State::Failed if reason.is_some_and(|r| r.starts_with(super::restart::GAVE_UP)) => Some(NotifyEvent::GaveUp),
        State::Failed => Some(NotifyEvent::Failed),
        State::Unhealthy => Some(NotifyEvent::Unhealthy),
        _ => None,
    }
}

impl Notifier {
    /// Sends `notification` where `notify` says, if it asks for that event; returns at once.
    pub fn send(&self, ctx: &Context, notify: &Notify, cwd: Option<PathBuf>, notification: Notification) {
        if !notify.on.contains(&notification.event) {
            return;
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            tracing::warn!("{}: notification dropped: {IN_FLIGHT} are under way already", notification.instance);
            return;
        };
        let (ctx2, notify) = (ctx.clone(), notify.clone());
        ctx.tracker.spawn(async move {
            let _permit = permit;
            let json = serde_json::to_vec(&notification).unwrap_or_default();
            let exec = async {
                let Some(argv) = &notify.exec else { return };
                if let Err(e) = run(&ctx2, argv, cwd, &notification, &json).await {
                    tracing::warn!("{}: notification command failed: {e}", notification.instance);
                }
            };
            let webhook = async {
                let Some(url) = &notify.webhook else { return };
                if let Err(e) = post(url, json.clone()).await {
                    tracing::warn!("{}: notification webhook failed: {e}", notification.instance);
                }
            };
            tokio::join!(exec, webhook);
        });
    }
}

/// Runs the command, its output into the instance's log after `[notify] `.
async fn run(
    ctx: &Context,
    argv: &[String],
    cwd: Option<PathBuf>,
    n: &Notification,
    json: &[u8],
) -> Result<(), String> {
    let event = serde_json::to_value(n.event).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    let env = BTreeMap::from([
        ("PM_EVENT".to_string(), event),
        ("PM_NAME".to_string(), n.instance.clone()),
        ("PM_REASON".to_string(), n.reason.clone().unwrap_or_default()),
        ("PM_NOTIFICATION".to_string(), String::from_utf8_lossy(json).into_owned()),
    ]);
    let command = HostCommand { argv, env: &env, cwd: cwd.as_deref(), timeout: EXEC_TIMEOUT };
    let (tx, rx) = mpsc::channel(64);
    let pump = ctx.logs.pump(n.instance.clone(), pm_runtimes::output_of(rx), None);
    let ran = async move { command.run(Some((&tx, "notify"))).await.and_then(|ended| ended.success(argv)) };
    let (result, ()) = tokio::join!(ran, pump);
    result
}

async fn post(url: &str, json: Vec<u8>) -> Result<(), String> {
    let request = super::http_client::request(hyper::Method::POST, url, json, false);
    match tokio::time::timeout(WEBHOOK_TIMEOUT, request).await {
        Ok(Ok(answer)) if (200..300).contains(&answer.status) => Ok(()),
        Ok(Ok(answer)) => Err(format!("{url} answered {}", answer.status)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("{url} did not answer within {}", humantime::format_duration(WEBHOOK_TIMEOUT))),
    }
}
