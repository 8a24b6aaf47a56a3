//! `pm restart NAME`.

use super::{connect, output};
use crate::home::Home;
use pm_protocol::PmApiClient;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Definition or instance to restart.
    name: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = connect::daemon(&Home::from_env()).await?;
    let statuses = client.daemon().restart(args.name).await?;
    output::report(&statuses, args.json)?;
    Ok(ExitCode::SUCCESS)
}
