//! `pm stop NAME | --all`, and `pm stop pm` / `pm shutdown` for the daemon itself.

use super::{connect, output};
use crate::home::Home;
use anyhow::bail;
use pm_protocol::params::StopParams;
use pm_protocol::{DAEMON_NAME, PmApiClient};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Definitions, instances or `@group`s to stop, in this order, each with its dependents
    /// first (`pm` stops everything, then the daemon).
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    /// Stop every instance (the daemon keeps running).
    #[arg(long, conflicts_with = "names")]
    all: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.names == [DAEMON_NAME] {
        return daemon().await;
    }
    if args.names.is_empty() && !args.all {
        bail!("name a sidecar to stop, or use --all (`pm stop pm` stops the daemon)");
    }
    // With no daemon nothing runs: starting one would only start what is then stopped.
    let (client, _) = connect::running(&Home::from_env()).await?;
    let mut stopped = Vec::new();
    if args.all {
        stopped = client.daemon().stop(StopParams { name: None, all: true }).await?;
    }
    for name in args.names {
        stopped.extend(client.daemon().stop(StopParams { name: Some(name), all: false }).await?);
    }
    output::report(&output::merged(stopped), args.json)?;
    Ok(ExitCode::SUCCESS)
}

/// Stops every sidecar, then the daemon, and waits until the daemon has exited.
pub async fn daemon() -> anyhow::Result<ExitCode> {
    let home = Home::from_env();
    let Some((client, info)) = connect::existing(&home).await else {
        say!("pm daemon is not running");
        return Ok(ExitCode::SUCCESS);
    };
    client.daemon().shutdown().await?;
    // The daemon holds its pid file lock until its very last moment.
    let deadline = Instant::now() + Duration::from_secs(30);
    while is_locked(&home) {
        if Instant::now() > deadline {
            bail!("the pm daemon (pid {}) stopped its sidecars but has not exited after 30s", info.pid);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    say!("pm daemon stopped (pid {})", info.pid);
    Ok(ExitCode::SUCCESS)
}

fn is_locked(home: &Home) -> bool {
    match std::fs::File::open(home.pid_file()) {
        Ok(file) => matches!(file.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}
