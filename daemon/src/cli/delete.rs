//! `pm delete NAME…`, `pm delete --all`, `pm delete --state STATE`: the last two ask first on
//! a terminal (and need `--force` without one).

use super::{connect, output};
use crate::home::Home;
use anyhow::{Context, bail};
use pm_protocol::{PmApiClient, State};
use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Definitions (with their instances) or instances to stop and forget.
    #[arg(value_name = "NAME", required_unless_present_any = ["all", "state"])]
    names: Vec<String>,
    /// Every definition.
    #[arg(long, conflicts_with_all = ["names", "state"])]
    all: bool,
    /// Every instance in this state (e.g. `failed`, `stopped`, `exited`).
    #[arg(long, value_name = "STATE", conflicts_with = "names")]
    state: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    force: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = connect::daemon(&Home::from_env()).await?;
    let names = if args.all {
        // Dependents first: a definition others depend on cannot be deleted before them.
        let defs = client.daemon().ls().await?;
        let mut left: Vec<_> = defs.into_iter().map(|d| (d.name, d.definition.depends_on)).collect();
        let mut order = Vec::new();
        while !left.is_empty() {
            let needed: BTreeSet<String> = left.iter().flat_map(|(_, deps)| deps.iter().cloned()).collect();
            let (free, rest): (Vec<_>, Vec<_>) = left.into_iter().partition(|(name, _)| !needed.contains(name));
            if free.is_empty() {
                // A cycle (refused at start, but definable): what is left goes in any order.
                order.extend(rest.into_iter().map(|(name, _)| name));
                break;
            }
            order.extend(free.into_iter().map(|(name, _)| name));
            left = rest;
        }
        order
    } else if let Some(state) = &args.state {
        let want: State = serde_json::from_value(state.clone().into())
            .map_err(|_| anyhow::anyhow!("--state `{state}`: not a state (e.g. failed, stopped, exited)"))?;
        client.daemon().status(None).await?.into_iter().filter(|s| s.state == want).map(|s| s.name).collect()
    } else {
        args.names
    };
    if names.is_empty() {
        say!("nothing to delete");
        return Ok(ExitCode::SUCCESS);
    }
    if (args.all || args.state.is_some()) && !args.force {
        confirm(&names)?;
    }
    let mut deleted = Vec::new();
    for name in names {
        deleted.extend(client.daemon().delete(name).await?);
    }
    if args.json {
        output::json(&deleted)?;
    } else {
        say!("deleted {}", deleted.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks on the terminal; without one, refuses (the caller passes `--force`).
fn confirm(names: &[String]) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "this deletes {} ({}): pass --force to do it without a terminal to confirm on",
            names.len(),
            names.join(", ")
        );
    }
    eprint!("delete {} ({})? [y/N] ", names.len(), names.join(", "));
    std::io::stderr().flush().context("cannot ask")?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).context("cannot read the answer")?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        bail!("nothing deleted");
    }
    Ok(())
}
