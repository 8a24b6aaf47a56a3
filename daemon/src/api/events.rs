//! `pm.events`: every state change as it happens (of every instance, or of those a name stands
//! for); ends with an explicit `End` when the daemon stops, so a follower never waits on a
//! finished stream.

use super::{Api, rpc_err};
use jsonrpsee::PendingSubscriptionSink;
use jsonrpsee::core::SubscriptionResult;
use pm_protocol::status::EventItem;
use tokio::sync::broadcast::error::RecvError;

pub async fn events(api: &Api, pending: PendingSubscriptionSink, name: Option<String>) -> SubscriptionResult {
    let mut events = api.sup.events();
    // The instances a name stands for now, and any it gains later (`pm start NAME --new`).
    let wanted = |instance: &str| match &name {
        None => true,
        Some(name) => api.sup.resolve(name).is_ok_and(|list| list.iter().any(|i| i == instance)),
    };
    if let Some(name) = &name
        && let Err(e) = api.sup.resolve(name)
    {
        pending.reject(rpc_err(e)).await;
        return Ok(());
    }
    let sink = pending.accept().await?;
    loop {
        let item = tokio::select! {
            _ = sink.closed() => return Ok(()),
            _ = api.shutdown.cancelled() => EventItem::End("daemon stopping".into()),
            event = events.recv() => match event {
                Ok(event) if !wanted(&event.instance) => continue,
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
