//! `pm scale NAME N`: a definition's number of instances.

use super::{connect, output};
use crate::home::Home;
use pm_protocol::PmApiClient;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The definition.
    name: String,
    /// How many instances it should have (1 to 10000); new ones start if the definition runs.
    instances: u32,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = connect::daemon(&Home::from_env()).await?;
    let statuses = client.daemon().scale(args.name, args.instances).await?;
    output::report(&statuses, args.json)?;
    Ok(ExitCode::SUCCESS)
}
