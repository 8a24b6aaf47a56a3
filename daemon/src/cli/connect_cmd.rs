//! `pm connect NAME [--json]`: how to reach a sidecar.

use super::{Target, connect, output};
use crate::home::Home;
use pm_protocol::PmApiClient;
use std::process::ExitCode;

pub async fn run(args: Target) -> anyhow::Result<ExitCode> {
    let (client, _) = connect::running(&Home::from_env()).await?;
    let info = client.daemon().connect(args.name).await?;
    if args.json {
        output::json(&info)?;
        return Ok(ExitCode::SUCCESS);
    }
    say!("call {}.<method> through the daemon at:", info.name);
    for endpoint in &info.via_daemon {
        say!("  {endpoint}");
    }
    let dash = || "-".to_string();
    let rows: Vec<Vec<String>> = info
        .instances
        .iter()
        .map(|i| {
            vec![
                i.instance.clone(),
                i.state.to_string(),
                if i.registered { "yes" } else { "no" }.into(),
                i.port.map_or_else(dash, |p| p.to_string()),
                i.direct.clone().unwrap_or_else(dash),
                if i.methods.is_empty() { dash() } else { i.methods.join(",") },
            ]
        })
        .collect();
    output::table(&["INSTANCE", "STATE", "REGISTERED", "PORT", "DIRECT", "METHODS"], &rows);
    Ok(ExitCode::SUCCESS)
}
