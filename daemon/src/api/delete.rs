//! `pm.delete`: stop and forget a definition (with its instances) or one instance.

use super::{Api, rpc_err};
use jsonrpsee::core::RpcResult;

pub async fn delete(api: &Api, name: &str) -> RpcResult<Vec<String>> {
    api.sup.delete(name).await.map_err(rpc_err)
}
