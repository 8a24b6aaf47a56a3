//! `pm.logs`: the last lines from the files, then (with follow) live lines; always ends with an
//! explicit `End` notification so a client never waits on a finished stream.

use super::{Api, rpc_err};
use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::{PendingSubscriptionSink, SubscriptionSink};
use pm_protocol::LogLine;
use pm_protocol::status::LogEvent;
use tokio::sync::broadcast::error::RecvError;

pub async fn logs(
    api: &Api,
    pending: PendingSubscriptionSink,
    name: String,
    lines: usize,
    follow: bool,
) -> SubscriptionResult {
    let instances = match api.sup.resolve(&name) {
        Ok(instances) => instances,
        Err(e) => {
            pending.reject(rpc_err(e)).await;
            return Ok(());
        }
    };
    // Subscribe before reading history, so no line falls between the two.
    let mut live = api.sup.logs().follow();
    let sink = pending.accept().await?;
    // File reads, possibly large: off the async workers, so other requests are not held up.
    let (hub, names) = (api.sup.logs().clone(), instances.clone());
    let history = tokio::task::spawn_blocking(move || hub.history(&names, lines)).await.unwrap_or_default();
    let last_seen = history.last().map(|l| l.at.clone()).unwrap_or_default();
    // Lines of the last millisecond of history, to tell them from new lines of the same stamp.
    let seam: Vec<LogLine> = history.iter().filter(|l| l.at == last_seen).cloned().collect();
    for line in history {
        send(&sink, &LogEvent::Line(line)).await?;
    }
    if !follow {
        return send(&sink, &LogEvent::End("end of history".into())).await;
    }
    loop {
        let line = tokio::select! {
            _ = sink.closed() => return Ok(()),
            _ = api.shutdown.cancelled() => return send(&sink, &LogEvent::End("daemon stopping".into())).await,
            line = live.recv() => line,
        };
        match line {
            Ok(line) if instances.contains(&line.instance) => {
                // Lines that were already in the history are not sent twice.
                let in_history = line.at < last_seen || (line.at == last_seen && seam.contains(&line));
                if !in_history {
                    send(&sink, &LogEvent::Line((*line).clone())).await?
                }
            }
            Ok(_) => {}
            Err(RecvError::Lagged(n)) => send(&sink, &LogEvent::Skipped(n)).await?,
            Err(RecvError::Closed) => return send(&sink, &LogEvent::End("daemon stopping".into())).await,
        }
    }
}

async fn send(sink: &SubscriptionSink, event: &LogEvent) -> SubscriptionResult {
    sink.send(serde_json::value::to_raw_value(event)?).await?;
    Ok(())
}
