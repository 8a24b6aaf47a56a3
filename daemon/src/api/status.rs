//! `pm.status`: read from the instances' published snapshots, never from the actors, so it
//! answers at once even while a sidecar is slow to stop.

use super::{Api, rpc_err};
use jsonrpsee::core::RpcResult;
use pm_protocol::InstanceStatus;

pub fn status(api: &Api, name: Option<&str>) -> RpcResult<Vec<InstanceStatus>> {
    api.sup.status(name).map_err(rpc_err)
}
