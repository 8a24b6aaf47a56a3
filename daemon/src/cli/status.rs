//! `pm status [NAME] [--json]`.

use super::{connect, output};
use crate::home::Home;
use pm_protocol::PmApiClient;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Definition or instance; none: all.
    name: Option<String>,
    /// Print JSON (stable field names).
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (client, info) = connect::running(&Home::from_env()).await?;
    output::notice(&info);
    let statuses = client.daemon().status(args.name).await?;
    output::report_usage(&statuses, args.json)?;
    Ok(ExitCode::SUCCESS)
}
