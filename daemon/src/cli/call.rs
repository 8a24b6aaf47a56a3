//! `pm call <sidecar>.<method> [JSON params]`: call a sidecar through the daemon.

use super::{connect, exit};
use crate::home::Home;
use anyhow::Context;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::traits::ToRpcParams;
use serde_json::value::RawValue;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// `<sidecar>.<method>`, or a daemon method `pm.<method>`.
    method: String,
    /// Params as JSON: an array (by position) or an object (by name).
    params: Option<String>,
}

/// Params passed through exactly as given.
struct Raw(Option<Box<RawValue>>);

impl ToRpcParams for Raw {
    fn to_rpc_params(self) -> Result<Option<Box<RawValue>>, serde_json::Error> {
        Ok(self.0)
    }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.method.contains('.') {
        return Err(exit::Usage(format!("`{}`: name a sidecar method as <sidecar>.<method>", args.method)).into());
    }
    let params = args
        .params
        .map(|p| RawValue::from_string(p.clone()).with_context(|| format!("params `{p}` are not JSON")))
        .transpose()?;
    let client = connect::daemon(&Home::from_env()).await?;
    match client.daemon().request::<serde_json::Value, _>(&args.method, Raw(params)).await {
        Ok(result) => {
            say!("{}", serde_json::to_string_pretty(&result)?);
            Ok(ExitCode::SUCCESS)
        }
        // The whole error object: its code and data (where a sidecar's reason often is) too.
        Err(jsonrpsee::core::client::Error::Call(obj)) => Ok(ExitCode::from(exit::answered(&obj, Some(&args.method)))),
        Err(e) => Err(e.into()),
    }
}
