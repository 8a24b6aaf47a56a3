//! A pm sidecar in Rust that serves `add`, `echo` and `sleep_ms` through the daemon.
//!
//! Run it as a sidecar (it needs the PM_DAEMON and PM_TOKEN pm gives it), ready once registered:
//!
//! ```sh
//! cargo build -p pm-client --examples
//! pm map adder --ready registered -- target/debug/examples/adder
//! pm start adder
//! pm call adder.add '[1, 2]'        # 3
//! pm call adder.echo '{"a": 1}'     # {"a": 1}
//! pm call adder.sleep_ms '[250]'    # 250, a quarter of a second later
//! ```

mod common;

use pm_client::jsonrpsee::RpcModule;
use pm_client::jsonrpsee::types::ErrorObjectOwned;
use std::process::ExitCode;
use std::time::Duration;

/// The methods: plain functions over the params, registered on a module.
fn methods() -> Result<RpcModule<()>, pm_client::jsonrpsee::core::RegisterMethodError> {
    let mut module = RpcModule::new(());
    // `add` sums its integers: `[1, 2]` or `[1, 2, 3]`.
    module.register_method("add", |params, _, _| -> Result<i64, ErrorObjectOwned> {
        let numbers: Vec<i64> = params.parse()?;
        numbers.iter().try_fold(0i64, |sum, n| sum.checked_add(*n)).ok_or_else(|| {
            pm_client::ErrorCode::InvalidParams.err(format!("the sum of {numbers:?} overflows a 64-bit integer"))
        })
    })?;
    // `echo` answers its params as they came (null when there are none).
    module.register_method("echo", |params, _, _| -> Result<serde_json::Value, ErrorObjectOwned> {
        match params.as_str() {
            Some(_) => params.parse(),
            None => Ok(serde_json::Value::Null),
        }
    })?;
    // `sleep_ms` answers its argument after that many milliseconds (for deadlines and load).
    module.register_async_method("sleep_ms", |params, _, _| async move {
        let (ms,): (u64,) = params.parse()?;
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok::<u64, ErrorObjectOwned>(ms)
    })?;
    Ok(module)
}

#[tokio::main]
async fn main() -> ExitCode {
    common::init_logs();
    let module = match methods() {
        Ok(module) => module,
        Err(e) => {
            eprintln!("adder: {e}");
            return ExitCode::FAILURE;
        }
    };
    match pm_client::serve(module).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("adder: {e}");
            ExitCode::FAILURE
        }
    }
}
