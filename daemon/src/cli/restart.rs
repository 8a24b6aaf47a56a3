//! `pm restart NAME…`.

use super::{connect, output};
use crate::home::Home;
use pm_protocol::PmApiClient;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Definitions, instances or `@group`s to restart, one after the other.
    #[arg(value_name = "NAME", required = true)]
    names: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = connect::daemon(&Home::from_env()).await?;
    let mut statuses = Vec::new();
    for name in args.names {
        statuses.extend(client.daemon().restart(name).await?);
    }
    output::report(&output::merged(statuses), args.json)?;
    Ok(ExitCode::SUCCESS)
}
