//! `pm.reload`: replace running instances one at a time, each drained and ready again before the
//! next one stops.

use super::{Api, rpc_err};
use jsonrpsee::core::RpcResult;
use pm_protocol::reload::Reloaded;

pub async fn reload(api: &Api, name: &str) -> RpcResult<Reloaded> {
    api.sup.reload(name).await.map_err(rpc_err)
}
