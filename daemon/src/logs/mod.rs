//! Sidecar logs: every output line goes to `logs/<instance>.{out,err}.log` with a timestamp, and to
//! live followers (`pm log -f`). Lines are never dropped on the way to the file: the pump awaits the
//! runtime's channel and the runtime waits when the pump is behind.

use crate::home::Home;
use pm_protocol::{LogLine, LogStream};
use pm_runtimes::{OutputLine, Stream};
use regex::Regex;
use std::sync::Arc;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::{broadcast, mpsc, oneshot};

mod history;

/// Live lines of every instance, for followers; a follower filters the instances it wants.
#[derive(Clone)]
pub struct LogHub {
    home: Home,
    live: broadcast::Sender<Arc<LogLine>>,
}

/// Fires once when a line matches the readiness pattern.
pub struct ReadyOnLine {
    pub pattern: Regex,
    pub fire: oneshot::Sender<()>,
}

impl LogHub {
    pub fn new(home: Home) -> Self {
        LogHub { home, live: broadcast::channel(4096).0 }
    }

    pub fn follow(&self) -> broadcast::Receiver<Arc<LogLine>> {
        self.live.subscribe()
    }

    /// Writes one run's output to its files until the output closes; flushes whenever it has
    /// caught up, so a burst is written in large blocks and a quiet line is on disk at once.
    pub async fn pump(&self, instance: String, mut output: mpsc::Receiver<OutputLine>, mut ready: Option<ReadyOnLine>) {
        let (mut out, mut err) =
            match (self.open(&instance, LogStream::Out).await, self.open(&instance, LogStream::Err).await) {
                (Ok(o), Ok(e)) => (o, e),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::error!("{instance}: cannot open log files in {}: {e}", self.home.logs().display());
                    // Keep draining so the sidecar never blocks on a full pipe.
                    while output.recv().await.is_some() {}
                    return;
                }
            };
        let mut buf = String::new();
        while let Some(line) = output.recv().await {
            if let Some(r) = ready.take_if(|r| r.pattern.is_match(&line.line)) {
                let _ = r.fire.send(());
            }
            let at = humantime::format_rfc3339_millis(line.at).to_string();
            buf.clear();
            buf.push_str(&at);
            buf.push(' ');
            buf.push_str(&line.line);
            buf.push('\n');
            let (file, stream) = match line.stream {
                Stream::Stdout => (&mut out, LogStream::Out),
                Stream::Stderr => (&mut err, LogStream::Err),
            };
            if let Err(e) = file.write_all(buf.as_bytes()).await {
                tracing::error!("{instance}: cannot write log line: {e}");
            }
            if self.live.receiver_count() > 0 {
                let _ = self.live.send(Arc::new(LogLine { instance: instance.clone(), stream, at, line: line.line }));
            }
            if output.is_empty() {
                flush(&instance, &mut out, &mut err).await;
            }
        }
        flush(&instance, &mut out, &mut err).await;
    }

    async fn open(&self, instance: &str, stream: LogStream) -> std::io::Result<BufWriter<tokio::fs::File>> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(self.home.log_file(instance, stream))
            .await?;
        // Small: the pump flushes whenever it catches up, and 100 instances x 2 streams of large
        // buffers, freed and re-made on every restart, left the allocator holding tens of MB.
        Ok(BufWriter::with_capacity(16 * 1024, file))
    }
}

async fn flush(instance: &str, out: &mut BufWriter<tokio::fs::File>, err: &mut BufWriter<tokio::fs::File>) {
    for f in [out, err] {
        if let Err(e) = f.flush().await {
            tracing::error!("{instance}: cannot flush log: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[tokio::test]
    async fn pump_writes_timestamped_lines_and_fires_readiness() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        home.create().unwrap();
        let hub = LogHub::new(home.clone());
        let (tx, rx) = mpsc::channel(8);
        let (fire, fired) = oneshot::channel();
        let ready = ReadyOnLine { pattern: Regex::new("listening on \\d+").unwrap(), fire };
        let pump = tokio::spawn({
            let hub = hub.clone();
            async move { hub.pump("web".into(), rx, Some(ready)).await }
        });
        let lines = [(Stream::Stdout, "booting"), (Stream::Stderr, "warn"), (Stream::Stdout, "listening on 80")];
        for (ms, (stream, line)) in (1_000..).zip(lines) {
            let at = SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
            tx.send(OutputLine { stream, line: line.into(), at }).await.unwrap();
        }
        tokio::time::timeout(Duration::from_secs(5), fired).await.unwrap().unwrap();
        drop(tx);
        tokio::time::timeout(Duration::from_secs(5), pump).await.unwrap().unwrap();
        let out = std::fs::read_to_string(home.log_file("web", LogStream::Out)).unwrap();
        assert_eq!(out, "1970-01-01T00:00:01.000Z booting\n1970-01-01T00:00:01.002Z listening on 80\n");
        let history = hub.history(&["web".into()], 2);
        assert_eq!(history.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(), vec!["warn", "listening on 80"]);
    }
}
