//! `pm.flush`: empties instances' log files. The current file is cut to nothing rather than
//! deleted: its writer holds it open for appending and goes on at its new end, so no line
//! written after the flush is lost. Rotated files are deleted.

use super::{Api, rpc_err};
use jsonrpsee::core::RpcResult;
use jsonrpsee::types::ErrorObject;
use pm_protocol::{ErrorCode, LogStream};

pub async fn flush(api: &Api, name: &str) -> RpcResult<Vec<String>> {
    let instances = api.sup.resolve(name).map_err(rpc_err)?;
    let paths: Vec<_> = instances
        .iter()
        .flat_map(|instance| {
            [LogStream::Out, LogStream::Err].map(|stream| api.sup.logs().home().log_file(instance, stream))
        })
        .collect();
    let flushed = tokio::task::spawn_blocking(move || {
        let mut flushed = Vec::new();
        for path in paths {
            flushed.extend(crate::logs::flush(&path)?);
        }
        Ok::<_, String>(flushed)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|done| done)
    .map_err(|why| ErrorObject::owned(ErrorCode::InternalError as i32, why, None::<()>))?;
    Ok(flushed.iter().map(|p| p.display().to_string()).collect())
}
