//! `pm.map`: add (or replace) one definition.

use super::{Api, rpc_err};
use jsonrpsee::core::RpcResult;
use pm_protocol::{Definition, DefinitionInfo};

pub async fn map(api: &Api, name: String, definition: Definition, replace: bool) -> RpcResult<DefinitionInfo> {
    api.sup.map(name, definition, replace).await.map_err(rpc_err)
}
