//! `pm.flush`: empties instances' log files. The current file is cut to nothing rather than
//! deleted: its writer holds it open for appending and goes on at its new end, so no line
//! written after the flush is lost. Rotated files are deleted.

use super::{Api, rpc_err};
use jsonrpsee::core::RpcResult;
use jsonrpsee::types::ErrorObject;
use pm_protocol::{ErrorCode, LogStream};
use std::path::PathBuf;

pub async fn flush(api: &Api, name: &str) -> RpcResult<Vec<String>> {
    let instances = api.sup.resolve(name).map_err(rpc_err)?;
    let paths: Vec<_> = instances
        .iter()
        .flat_map(|instance| {
            [LogStream::Out, LogStream::Err].map(|stream| api.sup.logs().home().log_file(instance, stream))
        })
        .collect();
    let flushed: Vec<Vec<PathBuf>> =
        tokio::task::spawn_blocking(move || paths.iter().map(|path| crate::logs::flush(path)).collect())
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
            .map_err(|why| ErrorObject::owned(ErrorCode::InternalError as i32, why, None::<()>))?;
    Ok(flushed.iter().flatten().map(|path| path.display().to_string()).collect())
}
