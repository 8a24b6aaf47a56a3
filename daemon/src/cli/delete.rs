//! `pm delete NAME`.

use super::{Target, connect, output};
use crate::home::Home;
use pm_protocol::PmApiClient;
use std::process::ExitCode;

pub async fn run(args: Target) -> anyhow::Result<ExitCode> {
    let client = connect::daemon(&Home::from_env()).await?;
    let deleted = client.daemon().delete(args.name).await?;
    if args.json {
        output::json(&deleted)?;
    } else {
        say!("deleted {}", deleted.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
