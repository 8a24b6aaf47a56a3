//! `pm ls [--json]`.

use super::{connect, output};
use crate::home::Home;
use pm_protocol::PmApiClient;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (client, info) = connect::running(&Home::from_env()).await?;
    output::notice(&info);
    let defs = client.daemon().ls().await?;
    if args.json {
        output::json(&defs)?;
        return Ok(ExitCode::SUCCESS);
    }
    if defs.is_empty() {
        say!("no sidecars defined (define one with `pm map` or a pm.toml)");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = defs
        .iter()
        .map(|d| {
            vec![
                d.name.clone(),
                d.definition.runtime.to_string(),
                d.definition.depends_on.join(",").chars().take(30).collect(),
                d.instances.join(","),
                if d.definition.autostart { "yes" } else { "no" }.into(),
                d.source.clone().unwrap_or_else(|| "pm map".into()),
                d.definition.command.join(" "),
            ]
        })
        .collect();
    output::table(&["NAME", "RUNTIME", "DEPENDS ON", "INSTANCES", "AUTOSTART", "SOURCE", "COMMAND"], &rows);
    Ok(ExitCode::SUCCESS)
}
