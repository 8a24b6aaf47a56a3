//! `pm.shutdown`: stop every instance (dependents first), answer, then end the daemon.

use super::Api;
use jsonrpsee::core::RpcResult;

pub async fn shutdown(api: &Api) -> RpcResult<()> {
    api.sup.close().await;
    // The answer still goes out: the connection drains its pending answers before closing.
    api.shutdown.cancel();
    Ok(())
}
