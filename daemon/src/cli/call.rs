//! `pm call <sidecar>.<method> [JSON params]`: call a sidecar through the daemon.

use super::connect;
use crate::home::Home;
use anyhow::{Context, anyhow};
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
        return Err(anyhow!("`{}`: name a sidecar method as <sidecar>.<method>", args.method));
    }
    let params = args
        .params
        .map(|p| RawValue::from_string(p.clone()).with_context(|| format!("params `{p}` are not JSON")))
        .transpose()?;
    let client = connect::daemon(&Home::from_env()).await?;
    let result: serde_json::Value = client.daemon().request(&args.method, Raw(params)).await?;
    say!("{}", serde_json::to_string_pretty(&result)?);
    Ok(ExitCode::SUCCESS)
}
