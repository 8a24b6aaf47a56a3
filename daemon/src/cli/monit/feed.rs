//! The daemon side of `pm monit`: the statuses (and the log pane's lines) every interval, and
//! the restarts and stops the keys ask for. A daemon that goes away is reported and looked for
//! again at each interval; none is ever started from here.

use super::app::Message;
use crate::cli::connect;
use crate::home::Home;
use jsonrpsee::core::client::Error as RpcError;
use pm_client::Client;
use pm_protocol::params::StopParams;
use pm_protocol::status::LogEvent;
use pm_protocol::{InstanceStatus, LogStream, PmApiClient};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc, watch};

/// Lines the log pane asks for: more than a terminal shows.
pub const LOG_LINES: usize = 200;
/// How long reading them may take.
const LOG_TIMEOUT: Duration = Duration::from_secs(5);

/// What the feed tells the screen.
pub enum Update {
    Statuses(Vec<InstanceStatus>),
    Logs {
        instance: String,
        lines: Result<Vec<(LogStream, String)>, String>,
    },
    /// The daemon cannot be reached: why.
    Lost(String),
    Done(Message),
}

/// What the screen asks the feed to do to an instance.
pub enum Act {
    Restart(String),
    Stop(String),
}

/// The screen's ends of a running feed.
pub struct Handle {
    pub updates: mpsc::UnboundedReceiver<Update>,
    acts: mpsc::UnboundedSender<Act>,
    logs_of: watch::Sender<Option<String>>,
    wake: Arc<Notify>,
}

impl Handle {
    pub fn act(&self, act: Act) {
        let _ = self.acts.send(act);
    }

    /// Whose log lines to read with each refresh (none: the pane is closed); read at once.
    pub fn logs_of(&self, instance: Option<String>) {
        if self.logs_of.send_if_modified(|current| std::mem::replace(current, instance.clone()) != instance) {
            self.wake.notify_one();
        }
    }
}

struct Feed {
    home: Home,
    client: Option<Client>,
    interval: Duration,
    updates: mpsc::UnboundedSender<Update>,
    logs_of: watch::Receiver<Option<String>>,
    wake: Arc<Notify>,
}

/// Starts the feed on `client`, refreshing every `interval`.
pub fn start(home: Home, client: Client, interval: Duration) -> Handle {
    let (updates_tx, updates) = mpsc::unbounded_channel();
    let (acts, acts_rx) = mpsc::unbounded_channel();
    let (logs_of, logs_of_rx) = watch::channel(None);
    let wake = Arc::new(Notify::new());
    let feed =
        Feed { home, client: Some(client), interval, updates: updates_tx, logs_of: logs_of_rx, wake: wake.clone() };
    tokio::spawn(feed.run(acts_rx));
    Handle { updates, acts, logs_of, wake }
}

impl Feed {
    async fn run(mut self, mut acts: mpsc::UnboundedReceiver<Act>) {
        while !self.updates.is_closed() {
            self.refresh().await;
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = self.wake.notified() => {}
                act = acts.recv() => match act {
                    Some(act) => self.act(act),
                    None => return,
                },
            }
        }
    }

    async fn refresh(&mut self) {
        let Some(client) = self.connected().await else { return };
        let statuses = match client.daemon().status(None).await {
            Ok(statuses) => statuses,
            Err(e) => {
                self.client = None;
                self.send(Update::Lost(format!("the daemon stopped answering ({})", describe(&e))));
                return;
            }
        };
        self.send(Update::Statuses(statuses));
        let instance = self.logs_of.borrow().clone();
        if let Some(instance) = instance {
            let lines = match tokio::time::timeout(LOG_TIMEOUT, read_logs(&client, &instance)).await {
                Ok(lines) => lines,
                Err(_) => Err(format!("the daemon did not send the log lines within {LOG_TIMEOUT:?}")),
            };
            self.send(Update::Logs { instance, lines });
        }
    }

    /// The client, connecting again if the daemon went away.
    async fn connected(&mut self) -> Option<Client> {
        if let Some(client) = self.client.as_ref().filter(|c| c.is_connected()) {
            return Some(client.clone());
        }
        self.client = connect::existing(&self.home).await.map(|(client, _)| client);
        if self.client.is_none() {
            self.send(Update::Lost(format!(
                "the daemon is not running (no answer on {}); `pm start pm` starts it",
                self.home.socket().display()
            )));
        }
        self.client.clone()
    }

    /// Runs `act` beside the refreshes (a restart waits for readiness); its outcome is a message.
    fn act(&self, act: Act) {
        let Some(client) = self.client.clone() else {
            self.send(Update::Done(Message::Error("not connected to the daemon".into())));
            return;
        };
        let (updates, wake) = (self.updates.clone(), self.wake.clone());
        tokio::spawn(async move {
            let message = match act {
                Act::Restart(name) => match client.daemon().restart(name.clone()).await {
                    Ok(_) => Message::Info(format!("{name} restarted")),
                    Err(e) => Message::Error(format!("restart {name}: {}", describe(&e))),
                },
                Act::Stop(name) => {
                    match client.daemon().stop(StopParams { name: Some(name.clone()), all: false }).await {
                        Ok(_) => Message::Info(format!("{name} stopped")),
                        Err(e) => Message::Error(format!("stop {name}: {}", describe(&e))),
                    }
                }
            };
            let _ = updates.send(Update::Done(message));
            wake.notify_one();
        });
    }

    fn send(&self, update: Update) {
        let _ = self.updates.send(update);
    }
}

/// The last [`LOG_LINES`] lines of `instance`, both streams in time order.
async fn read_logs(client: &Client, instance: &str) -> Result<Vec<(LogStream, String)>, String> {
    let mut sub = client
        .daemon()
        .logs(instance.to_string(), LOG_LINES, false, Some(true), None)
        .await
        .map_err(|e| describe(&e))?;
    let mut lines = Vec::new();
    while let Some(event) = sub.next().await {
        match event.map_err(|e| e.to_string())? {
            LogEvent::Line(line) => lines.push((line.stream, line.line)),
            LogEvent::Lines(runs) => {
                for run in runs {
                    lines.extend(run.lines().map(|(_, text)| (run.stream, text.to_string())));
                }
            }
            LogEvent::Skipped(n) => lines.push((LogStream::Err, format!("[{n} lines skipped]"))),
            LogEvent::End(_) => break,
        }
    }
    let extra = lines.len().saturating_sub(LOG_LINES);
    lines.drain(..extra);
    Ok(lines)
}

/// A client error in one line: the daemon's own message when it answered with an error.
fn describe(e: &RpcError) -> String {
    match e {
        RpcError::Call(obj) => obj.message().to_string(),
        other => other.to_string(),
    }
}
