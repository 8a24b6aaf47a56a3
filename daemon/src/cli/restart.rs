//! `pm restart NAME…`.

use super::{Targets, connect, output};
use crate::home::Home;
use pm_protocol::PmApiClient;
use std::process::ExitCode;

pub async fn run(args: Targets) -> anyhow::Result<ExitCode> {
    let client = connect::daemon(&Home::from_env()).await?;
    let mut statuses = Vec::new();
    for name in args.names {
        statuses.extend(client.daemon().restart(name).await?);
    }
    output::report(&output::merged(statuses), args.json)?;
    Ok(ExitCode::SUCCESS)
}
