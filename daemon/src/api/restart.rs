//! `pm.restart`: stop then start a definition's instances or one instance.

use super::{Api, rpc_err};
use jsonrpsee::core::RpcResult;
use pm_protocol::InstanceStatus;

pub async fn restart(api: &Api, name: &str) -> RpcResult<Vec<InstanceStatus>> {
    api.sup.restart(name).await.map_err(rpc_err)
}
