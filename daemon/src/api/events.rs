//! `pm.events`: every state change as it happens; ends with the daemon.

use super::Api;
use jsonrpsee::PendingSubscriptionSink;
use jsonrpsee::core::SubscriptionResult;
use tokio::sync::broadcast::error::RecvError;

pub async fn events(api: &Api, pending: PendingSubscriptionSink) -> SubscriptionResult {
    let mut events = api.sup.events();
    let sink = pending.accept().await?;
    loop {
        let event = tokio::select! {
            _ = sink.closed() => return Ok(()),
            _ = api.shutdown.cancelled() => return Ok(()),
            event = events.recv() => event,
        };
        match event {
            Ok(event) => sink.send(serde_json::value::to_raw_value(&event)?).await?,
            Err(RecvError::Lagged(n)) => tracing::warn!("an events subscriber fell behind and missed {n} events"),
            Err(RecvError::Closed) => return Ok(()),
        }
    }
}
