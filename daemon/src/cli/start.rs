//! `pm start [NAME] [-f FILE] [--new] [--name INSTANCE] [-- ARGS]`, and `pm start pm`.

use super::{connect, output};
use crate::config;
use crate::home::Home;
use anyhow::{Context, bail};
use pm_protocol::params::StartParams;
use pm_protocol::sync::{Sourced, SyncParams};
use pm_protocol::{DAEMON_NAME, PmApiClient};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Definitions, instances or `@group`s to start, together (`pm` starts the daemon); none:
    /// the project file's autostart sidecars, or with no project file here, every autostart
    /// sidecar the daemon has (after `pm discover`, say).
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    /// Project file to load (default: pm.toml, pm.yaml, pm.yml or pm.json here).
    #[arg(short = 'f', long = "file", value_name = "FILE", conflicts_with = "names")]
    file: Option<PathBuf>,
    /// Make a new instance of the definition with a generated name.
    #[arg(long, requires = "names")]
    new: bool,
    /// Make (or start) the instance of this name.
    #[arg(long = "name", value_name = "INSTANCE", requires = "names")]
    instance: Option<String>,
    /// When this starts the daemon: also listen here (repeatable), e.g. tcp://127.0.0.1:7700.
    #[arg(long = "listen", value_name = "URL")]
    listen: Vec<pm_protocol::Endpoint>,
    /// Also stop and delete the definitions the project file gave before and no longer gives.
    #[arg(long, conflicts_with = "names")]
    prune: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Arguments appended to the command of a new instance.
    #[arg(last = true)]
    args: Vec<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let home = Home::from_env();
    if args.names == [DAEMON_NAME] {
        return start_daemon(&home, &args.listen, args.json).await;
    }
    if args.names.len() > 1 && (args.new || args.instance.is_some() || !args.args.is_empty()) {
        bail!("--new, --name and arguments after -- go with one definition, not {}", args.names.len());
    }
    let statuses = match args.names.is_empty() {
        true => {
            let dir = std::env::current_dir().context("cannot read the current directory")?;
            let path = match args.file {
                Some(file) => file,
                None => match config::find(&dir) {
                    Ok(path) => path,
                    // Sidecars mapped another way (`pm discover`, `pm map`) start without one.
                    Err(not_found) => return start_mapped(&home, not_found, args.json).await,
                },
            };
            let project = config::load(&path, &|k| std::env::var(k).ok())?;
            let mut listen = args.listen;
            for url in &project.daemon.listen {
                listen.push(url.parse()?);
            }
            let (client, info) = connect::daemon_listening(&home, &listen).await?;
            output::notice(&info);
            // A difference to what the daemon has: changed definitions restart one instance at
            // a time, unchanged ones are not touched.
            let source = super::discover::source(&project.path);
            let definitions = project
                .sidecars
                .into_iter()
                .map(|(name, definition)| (name, Sourced { source: source.clone(), definition }))
                .collect();
            let params =
                SyncParams { definitions, sources: vec![source], prune: args.prune, dry_run: false, start: true };
            let report = client.daemon().sync(params).await?;
            if !report.removed.is_empty() && !report.pruned {
                eprintln!(
                    "pm: no longer in {}: {} (`--prune` deletes them)",
                    project.path.display(),
                    report.removed.join(", ")
                );
            }
            report.started
        }
        false => {
            let (client, info) = connect::daemon_listening(&home, &args.listen).await?;
            output::notice(&info);
            // Together: each start waits for its own readiness, and shared dependencies start once.
            let (new, instance, extra) = (args.new, args.instance, args.args);
            let starts = args.names.into_iter().map(|name| {
                let params = StartParams { name: Some(name), new, instance: instance.clone(), args: extra.clone() };
                let client = client.clone();
                async move { client.daemon().start(params).await }
            });
            let mut statuses = Vec::new();
            for started in futures::future::join_all(starts).await {
                statuses.extend(started?);
            }
            output::merged(statuses)
        }
    };
    output::report(&statuses, args.json)?;
    Ok(ExitCode::SUCCESS)
}

/// `pm start` with no project file here: every autostart sidecar of a running daemon that has
/// some; otherwise the project file's absence is the error.
async fn start_mapped(home: &Home, not_found: config::ConfigError, json: bool) -> anyhow::Result<ExitCode> {
    let Some((client, info)) = connect::existing(home).await else { return Err(not_found.into()) };
    if client.daemon().ls().await?.is_empty() {
        return Err(not_found.into());
    }
    output::notice(&info);
    let params = StartParams { name: None, new: false, instance: None, args: Vec::new() };
    let statuses = client.daemon().start(params).await?;
    output::report(&statuses, json)?;
    Ok(ExitCode::SUCCESS)
}

async fn start_daemon(home: &Home, listen: &[pm_protocol::Endpoint], json: bool) -> anyhow::Result<ExitCode> {
    let fresh = connect::existing(home).await.is_none();
    let (_, info) = connect::daemon_listening(home, listen).await?;
    output::notice(&info);
    if json {
        output::json(&info)?;
    } else if fresh {
        say!("pm daemon started (pid {}, listening on {})", info.pid, info.endpoints.join(", "));
    } else {
        say!("pm daemon already running (pid {}, listening on {})", info.pid, info.endpoints.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
