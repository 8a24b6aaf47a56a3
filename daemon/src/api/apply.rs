//! `pm.apply`: install a project's definitions together, optionally starting the autostart ones.

use super::{Api, rpc_err};
use jsonrpsee::core::RpcResult;
use pm_protocol::{Definition, InstanceStatus};
use std::collections::BTreeMap;

pub async fn apply(
    api: &Api,
    definitions: BTreeMap<String, Definition>,
    start: bool,
) -> RpcResult<Vec<InstanceStatus>> {
    api.sup.apply(definitions, start).await.map_err(rpc_err)
}
