//! `pm delete NAME`.

use super::{connect, output};
use crate::home::Home;
use pm_protocol::PmApiClient;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Definition (with all its instances) or instance to stop and forget.
    name: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = connect::daemon(&Home::from_env()).await?;
    let deleted = client.daemon().delete(args.name).await?;
    if args.json {
        output::json(&deleted)?;
    } else {
        println!("deleted {}", deleted.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
