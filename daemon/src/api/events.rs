//! `pm.events`: every state change as it happens; ends with an explicit `End` when the daemon
//! stops, so a follower never waits on a finished stream.

use super::Api;
use jsonrpsee::PendingSubscriptionSink;
use jsonrpsee::core::SubscriptionResult;
use pm_protocol::status::EventItem;
use tokio::sync::broadcast::error::RecvError;

pub async fn events(api: &Api, pending: PendingSubscriptionSink) -> SubscriptionResult {
    let mut events = api.sup.events();
    let sink = pending.accept().await?;
    loop {
        let item = tokio::select! {
            _ = sink.closed() => return Ok(()),
            _ = api.shutdown.cancelled() => EventItem::End("daemon stopping".into()),
            event = events.recv() => match event {
                Ok(event) => EventItem::Change(event),
                Err(RecvError::Lagged(n)) => EventItem::Skipped(n),
                Err(RecvError::Closed) => EventItem::End("daemon stopping".into()),
            },
        };
        let end = matches!(item, EventItem::End(_));
        sink.send(serde_json::value::to_raw_value(&item)?).await?;
        if end {
            return Ok(());
        }
    }
}
