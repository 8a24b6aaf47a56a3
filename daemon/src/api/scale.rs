//! `pm.scale`: a definition's number of instances, changed without touching the others.

use super::{Api, rpc_err};
use jsonrpsee::core::RpcResult;
use pm_protocol::InstanceStatus;

pub async fn scale(api: &Api, name: &str, instances: u32) -> RpcResult<Vec<InstanceStatus>> {
    api.sup.scale(name, instances).await.map_err(rpc_err)
}
