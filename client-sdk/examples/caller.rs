//! A pm sidecar in Rust that calls another: every second it calls `adder.add` through the daemon
//! and logs the result, and it serves `last`, which answers the last result it got.
//!
//! It uses the two halves of the SDK side by side: a [`Client`] for its own calls and
//! [`pm_client::serve`] for its methods (each on a connection of its own).
//!
//! ```sh
//! cargo build -p pm-client --examples
//! pm start -f examples/rust-mesh/pm.toml
//! pm call caller.last
//! ```

mod common;

use pm_client::jsonrpsee::RpcModule;
use pm_client::{Client, Error};
use serde::Serialize;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What `last` answers.
#[derive(Debug, Clone, Serialize)]
struct Last {
    /// How many calls this sidecar has made.
    calls: u64,
    /// The params of the last successful call, and its result.
    params: (i64, i64),
    sum: i64,
}

type Shared = Arc<Mutex<Option<Last>>>;

fn methods(last: Shared) -> Result<RpcModule<Shared>, pm_client::jsonrpsee::core::RegisterMethodError> {
    let mut module = RpcModule::new(last);
    module.register_method("last", |_, last: &Shared, _| last.lock().unwrap_or_else(|p| p.into_inner()).clone())?;
    Ok(module)
}

/// Calls `adder.add` every second, forever; connects (again) whenever it has to.
async fn call_every_second(last: Shared) {
    let mut client: Option<Client> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut calls: u64 = 0;
    loop {
        tick.tick().await;
        let c = match &client {
            Some(c) if c.is_connected() => c,
            _ => match Client::from_env().await {
                Ok(c) => client.insert(c),
                Err(e) => {
                    tracing::warn!("cannot connect to the pm daemon: {e}");
                    continue;
                }
            },
        };
        calls += 1;
        let params = (calls as i64, 1000);
        let answer: Result<i64, Error> =
            c.sidecar("adder").call_with_deadline("add", params, Duration::from_secs(2)).await;
        match answer {
            Ok(sum) => {
                tracing::info!("adder.add({}, {}) = {sum}", params.0, params.1);
                *last.lock().unwrap_or_else(|p| p.into_inner()) = Some(Last { calls, params, sum });
            }
            Err(e) => tracing::warn!("adder.add failed: {e}"),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    common::init_logs();
    let last: Shared = Arc::default();
    let module = match methods(last.clone()) {
        Ok(module) => module,
        Err(e) => {
            eprintln!("caller: {e}");
            return ExitCode::FAILURE;
        }
    };
    tokio::select! {
        served = pm_client::serve(module) => {
            if let Err(e) = served {
                eprintln!("caller: {e}");
                return ExitCode::FAILURE;
            }
        }
        _ = call_every_second(last) => {}
    }
    ExitCode::SUCCESS
}
