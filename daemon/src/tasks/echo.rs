//! `echo`: a commandable service (echo, add, sleep) for examples and benchmarks. It serves
//! through the mesh exactly like a process sidecar, over the daemon's in-memory endpoint.
//!
//! ```toml
//! [sidecars.echo]
//! runtime = "task"
//! command = ["echo"]
//! ready = "registered"
//! ```

use async_trait::async_trait;
use jsonrpsee::RpcModule;
use jsonrpsee::types::ErrorObjectOwned;
use pm_client::{ClientOptions, Serve};
use pm_runtimes::task::{Task, TaskContext, TaskError};
use std::time::Duration;

pub struct Echo;

/// The methods: `echo` answers its params, `add` sums integers, `sleep` answers after N ms.
fn methods() -> Result<RpcModule<()>, jsonrpsee::core::RegisterMethodError> {
    let mut module = RpcModule::new(());
    module.register_method("echo", |params, _, _| -> Result<serde_json::Value, ErrorObjectOwned> {
        params.as_str().map_or(Ok(serde_json::Value::Null), |_| params.parse())
    })?;
    module.register_method("add", |params, _, _| -> Result<i64, ErrorObjectOwned> {
        let numbers: Vec<i64> = params.parse()?;
        numbers
            .iter()
            .try_fold(0i64, |sum, n| sum.checked_add(*n))
            .ok_or_else(|| pm_protocol::ErrorCode::InvalidParams.err(format!("the sum of {numbers:?} overflows")))
    })?;
    module.register_async_method("sleep", |params, _, _| async move {
        let (ms,): (u64,) = params.parse()?;
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok::<u64, ErrorObjectOwned>(ms)
    })?;
    Ok(module)
}

#[async_trait]
impl Task for Echo {
    async fn run(&self, ctx: TaskContext) -> Result<(), TaskError> {
        ctx.log.out(&format!("{}: serving echo, add, sleep", ctx.name)).await;
        let cancel = ctx.cancel.clone();
        Serve::new(methods()?)
            .endpoint(ctx.daemon.clone())
            .token(ctx.token.clone())
            .options(ClientOptions::default())
            .shutdown(async move { cancel.cancelled().await })
            .run()
            .await?;
        ctx.log.out(&format!("{}: stopped", ctx.name)).await;
        Ok(())
    }
}
