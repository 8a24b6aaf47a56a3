//! `pm.start`: start instances with their dependencies; answers when ready or failed.

use super::{Api, rpc_err};
use jsonrpsee::core::RpcResult;
use pm_protocol::InstanceStatus;
use pm_protocol::params::StartParams;

pub async fn start(api: &Api, params: StartParams) -> RpcResult<Vec<InstanceStatus>> {
    api.sup.start(params).await.map_err(rpc_err)
}
