//! `pm.sync`: definitions applied as a difference, remembering their sources.

use super::{Api, rpc_err};
use jsonrpsee::core::RpcResult;
use pm_protocol::sync::{SyncParams, SyncReport};

pub async fn sync(api: &Api, params: SyncParams) -> RpcResult<SyncReport> {
    api.sup.sync(params).await.map_err(rpc_err)
}
