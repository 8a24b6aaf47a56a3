//! `pm.logs`: the last lines from the files, then (with follow) live lines; always ends with an
//! explicit `End` notification so a client never waits on a finished stream.
//!
//! The history is read from the files off the async workers (`spawn_blocking`), a bounded batch
//! at a time, the next batch being read while the last one is sent: whatever N is, this
//! subscription holds about a MiB of it (besides what its connection's queue holds, 32 MiB at
//! most). It goes at the reader's pace: this task waits for room in its own queue to the
//! connection, never on anything shared. A follower that falls behind live lines is told how
//! many it missed (`Skipped`) and goes on.

use super::{Api, rpc_err};
use crate::logs::{Filter, History};
use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::types::ErrorObject;
use jsonrpsee::types::SubscriptionId;
use jsonrpsee::{PendingSubscriptionSink, SubscriptionMessage, SubscriptionSink};
use pm_protocol::ErrorCode;
use pm_protocol::status::LogEvent;
use pm_protocol::status::LogFilter;
use pm_protocol::{LogLine, LogRun};
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

/// History read at a time: a few `lines` notifications' worth.
const BATCH: usize = 256 * 1024;
/// Text of live lines sent in one `lines` notification, about.
const CHUNK: usize = 64 * 1024;
/// Bytes of notifications a subscription may have queued for its connection before it waits.
const QUEUED: usize = 1024 * 1024;
/// Live lines sent in one `lines` notification, at most.
const LIVE_LINES: usize = 4096;

/// What a `pm.logs` subscription asks for.
pub struct Asked {
    pub name: String,
    pub lines: usize,
    pub follow: bool,
    pub chunks: bool,
    pub filter: LogFilter,
}

pub async fn logs(api: &Api, pending: PendingSubscriptionSink, asked: Asked) -> SubscriptionResult {
    let Asked { name, lines, follow, chunks, filter } = asked;
    let instances = match &filter.names {
        // Every instance, when no name is given.
        Some(names) if names.is_empty() => Ok(api.sup.instance_names()),
        Some(names) => {
            let mut seen = HashSet::new();
            names.iter().try_fold(Vec::new(), |mut all: Vec<String>, name| {
                all.extend(api.sup.resolve(name)?.into_iter().filter(|i| seen.insert(i.clone())));
                Ok(all)
            })
        }
        None => api.sup.resolve(&name),
    };
    let instances = match instances {
        Ok(instances) => instances,
        Err(e) => {
            pending.reject(rpc_err(e)).await;
            return Ok(());
        }
    };
    // With --since and no count, every line since then.
    let lines = if lines == 0 && filter.since.is_some() { usize::MAX } else { lines };
    let filter = match Filter::new(&filter, std::time::SystemTime::now()) {
        Ok(filter) => Arc::new(filter),
        Err(why) => {
            pending.reject(ErrorObject::owned(ErrorCode::InvalidParams as i32, why, None::<()>)).await;
            return Ok(());
        }
    };
    // Subscribe before reading history, so no line falls between the two.
    let mut live = follow.then(|| api.sup.logs().follow());
    let sink = pending.accept().await?;
    let mut out = Paced::new(sink);
    let hub = api.sup.logs().clone();
    let names = instances.clone();
    let history_filter = filter.clone();
    let opened = tokio::task::spawn_blocking(move || hub.open_history(&names, lines, follow, history_filter));
    let history = tokio::select! {
        opened = opened => match opened {
            Ok(history) => history,
            Err(e) => return out.end(&format!("cannot read the log files: {e}")).await,
        },
        _ = api.shutdown.cancelled() => return out.end("daemon stopping").await,
    };
    // The next batch is read, and made into notifications, while the last one is sent.
    let envelope = Envelope { method: out.sink.method_name().to_string(), id: out.sink.subscription_id() };
    let read = move |mut history: History, envelope: Envelope| {
        let batch = envelope.wrap(history.read_batch(chunks, BATCH));
        (batch, history, envelope)
    };
    let mut reading = tokio::task::spawn_blocking(move || read(history, envelope));
    let mut seen = loop {
        let done = tokio::select! {
            done = &mut reading => done,
            _ = api.shutdown.cancelled() => return out.end("daemon stopping").await,
        };
        let (batch, history, envelope) = match done {
            Ok(done) => done,
            Err(e) => return out.end(&format!("cannot read the log files: {e}")).await,
        };
        if batch.is_empty() {
            break history.into_seen();
        }
        reading = tokio::task::spawn_blocking(move || read(history, envelope));
        for (msg, len) in batch {
            out.send(msg, len).await?;
        }
    };
    let Some(live) = &mut live else { return out.end("end of history").await };
    let instances: HashSet<String> = instances.into_iter().collect();
    let mut wanted = |line: &LogLine| {
        instances.contains(&line.instance) && filter.matches(line.line.as_bytes()) && seen.is_new(line)
    };
    loop {
        let line = tokio::select! {
            _ = out.sink.closed() => return Ok(()),
            _ = api.shutdown.cancelled() => return out.end("daemon stopping").await,
            line = live.recv() => line,
        };
        match line {
            Ok(line) if !chunks => {
                if wanted(&line) {
                    out.event(&LogEvent::Line((*line).clone())).await?;
                }
            }
            Ok(line) => {
                // What is already there goes with it, in one notification.
                let mut runs = Runs::default();
                if wanted(&line) {
                    runs.push(&line);
                }
                let mut skipped = None;
                let mut closed = false;
                while runs.bytes < CHUNK && runs.lines < LIVE_LINES {
                    match live.try_recv() {
                        Ok(line) if wanted(&line) => runs.push(&line),
                        Ok(_) => {}
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Lagged(n)) => {
                            skipped = Some(n);
                            break;
                        }
                        Err(TryRecvError::Closed) => {
                            closed = true;
                            break;
                        }
                    }
                }
                if !runs.list.is_empty() {
                    out.event(&LogEvent::Lines(runs.list)).await?;
                }
                if let Some(n) = skipped {
                    out.event(&LogEvent::Skipped(n)).await?;
                }
                if closed {
                    return out.end("daemon stopping").await;
                }
            }
            Err(RecvError::Lagged(n)) => out.event(&LogEvent::Skipped(n)).await?,
            Err(RecvError::Closed) => return out.end("daemon stopping").await,
        }
    }
}

/// What makes an event a whole notification of this subscription.
struct Envelope {
    method: String,
    id: SubscriptionId<'static>,
}

impl Envelope {
    /// The events as notifications (made here, off the async workers when called there).
    fn wrap(&self, events: Vec<(LogEvent, usize)>) -> Vec<(SubscriptionMessage, usize)> {
        events
            .into_iter()
            .filter_map(|(event, len)| {
                Some((SubscriptionMessage::new(&self.method, self.id.clone(), &event).ok()?, len))
            })
            .collect()
    }
}

/// Live lines gathered into runs, one per file in a row.
#[derive(Default)]
struct Runs {
    list: Vec<LogRun>,
    bytes: usize,
    lines: usize,
}

impl Runs {
    fn push(&mut self, line: &Arc<LogLine>) {
        let run = match self.list.last_mut() {
            Some(run) if run.instance == line.instance && run.stream == line.stream => run,
            _ => {
                self.list.push(LogRun { instance: line.instance.clone(), stream: line.stream, text: String::new() });
                self.list.last_mut().expect("just pushed")
            }
        };
        let before = run.text.len();
        run.text.push_str(&line.at);
        run.text.push(' ');
        run.text.push_str(&line.line);
        run.text.push('\n');
        self.bytes += run.text.len() - before;
        self.lines += 1;
    }
}

/// The subscription's sink, with no more than [`QUEUED`] bytes waiting in its queue to the
/// connection (its own bound counts messages, whatever their size). jsonrpsee says how many
/// messages wait, not when one is taken: while the queue is full this task looks again after a
/// pause that grows to 20 ms, and only then.
struct Paced {
    sink: SubscriptionSink,
    /// Sizes of the messages sent last, newest at the back: the waiting ones are among them.
    sizes: VecDeque<usize>,
    bytes: usize,
}

impl Paced {
    fn new(sink: SubscriptionSink) -> Paced {
        Paced { sink, sizes: VecDeque::new(), bytes: 0 }
    }

    /// Sends a message of about `len` bytes.
    async fn send(&mut self, msg: impl Into<SubscriptionMessage>, len: usize) -> SubscriptionResult {
        let mut pause = Duration::from_millis(1);
        loop {
            let waiting = self.sink.max_capacity().saturating_sub(self.sink.capacity());
            while self.sizes.len() > waiting {
                self.bytes -= self.sizes.pop_front().unwrap_or_default();
            }
            if waiting == 0 || self.bytes + len <= QUEUED {
                break;
            }
            tokio::select! {
                _ = self.sink.closed() => return Err("the subscriber is gone".into()),
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        self.sink.send(msg).await?;
        self.sizes.push_back(len);
        self.bytes += len;
        Ok(())
    }

    async fn event(&mut self, event: &LogEvent) -> SubscriptionResult {
        let msg = serde_json::value::to_raw_value(event)?;
        let len = msg.get().len();
        self.send(msg, len).await
    }

    async fn end(&mut self, why: &str) -> SubscriptionResult {
        self.event(&LogEvent::End(why.into())).await
    }
}
