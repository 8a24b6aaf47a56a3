//! `pm.stop`: stop instances, their dependents first.

use super::{Api, rpc_err};
use jsonrpsee::core::RpcResult;
use pm_protocol::InstanceStatus;
use pm_protocol::params::StopParams;

pub async fn stop(api: &Api, params: StopParams) -> RpcResult<Vec<InstanceStatus>> {
    api.sup.stop(params).await.map_err(rpc_err)
}
