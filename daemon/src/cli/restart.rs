//! `pm restart NAME`.

use super::{Target, connect, output};
use crate::home::Home;
use pm_protocol::PmApiClient;
use std::process::ExitCode;

pub async fn run(args: Target) -> anyhow::Result<ExitCode> {
    let client = connect::daemon(&Home::from_env()).await?;
    let statuses = client.daemon().restart(args.name).await?;
    output::report(&statuses, args.json)?;
    Ok(ExitCode::SUCCESS)
}
