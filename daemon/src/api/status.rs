//! `pm.status`: read from the instances' published snapshots, never from the actors, so it
//! answers at once even while a sidecar is slow to stop. The CPU and memory figures of running
//! instances are read now: from /proc off the async workers, and from a container engine
//! within a second.

use super::{Api, rpc_err};
use jsonrpsee::core::RpcResult;
use pm_protocol::InstanceStatus;

pub async fn status(api: &Api, name: Option<&str>) -> RpcResult<Vec<InstanceStatus>> {
    api.sup.status_with_usage(name).await.map_err(rpc_err)
}
