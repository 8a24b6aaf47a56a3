//! `pm run [-f FILE] [NAMES…] [--exit-with NAME]`: the daemon in the foreground with a project,
//! as a container's entrypoint or a developer's terminal would want it. Every sidecar's output is
//! printed with its name in front; SIGTERM, SIGINT or SIGQUIT stop everything in reverse order
//! and end pm with 0 when everything stopped cleanly, or with the code of the first failure.
//! Other signals pm can catch (HUP, USR1, USR2, WINCH) are forwarded to every running sidecar.
//! Other `pm` commands reach it through PM_HOME's socket as usual.

use super::{connect, daemon};
use crate::config;
use crate::daemon::run as run_daemon;
use crate::home::Home;
use crate::logs::Echo;
use anyhow::{Context, bail};
use nix::sys::signal::Signal;
use pm_client::Client;
use pm_protocol::params::{StartParams, StopParams};
use pm_protocol::status::{EventItem, ExitInfo, now_ms};
use pm_protocol::{InstanceStatus, PmApiClient, State};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};

#[derive(clap::Args)]
#[group(skip)]
pub struct Args {
    /// Sidecars to start, with their dependencies (default: the project's autostart ones).
    names: Vec<String>,
    /// Project file (default: pm.toml, pm.yaml, pm.yml or pm.json here).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Exit when this sidecar ends (exits, fails or is stopped), with its exit code, after
    /// stopping the others.
    #[arg(long, value_name = "NAME")]
    exit_with: Option<String>,
    #[command(flatten, next_help_heading = "Daemon options")]
    daemon: daemon::Args,
}

/// Why pm run is ending.
enum End {
    /// SIGTERM, SIGINT or SIGQUIT.
    Signal(Signal),
    /// The `--exit-with` sidecar ended, with this code.
    ExitWith(String, u8),
    /// Nothing runs any more and nothing will come back.
    AllEnded,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir = std::env::current_dir().context("cannot read the current directory")?;
    let path = match &args.file {
        Some(file) => file.clone(),
        None => config::find(&dir)?,
    };
    // A bad project file is an error before anything starts.
    let project = config::load(&path, &|k| std::env::var(k).ok())?;
    for name in args.names.iter().chain(&args.exit_with) {
        if !project.sidecars.contains_key(name) {
            bail!("{}: no sidecar named `{name}`", path.display());
        }
    }
    daemon::init_tracing("warn", None);
    let home = Home::from_env();
    let mut config = daemon::config(args.daemon, home.clone());
    for url in &project.daemon.listen {
        config.listen.push(url.parse()?);
    }
    let width = project.sidecars.keys().map(String::len).max().unwrap_or(0).max(2);
    let (echo, printed) = Echo::start(width);
    config.echo = Some(echo);
    let (forward, forwarded) = mpsc::channel(16);
    config.forward = Some(forwarded);
    let (stop_daemon, stopped) = oneshot::channel::<()>();
    let daemon = tokio::spawn(run_daemon(config, async move {
        let _ = stopped.await;
    }));

    let client = match until_answering(&home, &daemon).await {
        Ok(client) => client,
        Err(e) => {
            let _ = stop_daemon.send(());
            return match daemon.await {
                Ok(Err(daemon_error)) => Err(daemon_error.into()),
                _ => Err(e),
            };
        }
    };
    let end = supervise(&client, &project.sidecars, &args.names, args.exit_with.as_deref(), forward).await?;
    let code = finish(&client, end).await;
    let _ = stop_daemon.send(());
    daemon.await.context("the daemon task failed")??;
    printed.drained(Duration::from_secs(5)).await;
    Ok(ExitCode::from(code))
}

/// Waits until this process's daemon answers on the socket (not another daemon of PM_HOME: that
/// one holds the lock, and ours ends with the error that says so).
async fn until_answering(
    home: &Home,
    daemon: &tokio::task::JoinHandle<Result<(), crate::daemon::DaemonError>>,
) -> anyhow::Result<Client> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !daemon.is_finished() && tokio::time::Instant::now() < deadline {
        if let Some((client, info)) = connect::existing(home).await
            && info.pid == std::process::id()
        {
            return Ok(client);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bail!("the daemon did not start")
}

/// Starts the project and waits for a reason to end, forwarding signals meanwhile.
async fn supervise(
    client: &Client,
    sidecars: &std::collections::BTreeMap<String, pm_protocol::Definition>,
    names: &[String],
    exit_with: Option<&str>,
    forward: mpsc::Sender<Signal>,
) -> anyhow::Result<End> {
    let mut events = client.daemon().events(None).await?;
    let mut signals = Signals::new()?;
    let start = async {
        if names.is_empty() {
            client.daemon().apply(sidecars.clone(), true).await
        } else {
            client.daemon().apply(sidecars.clone(), false).await?;
            let mut all = Vec::new();
            for name in names {
                all.extend(
                    client.daemon().start(StartParams { name: Some(name.clone()), ..Default::default() }).await?,
                );
            }
            Ok(all)
        }
    };
    tokio::pin!(start);
    let mut started = false;
    loop {
        tokio::select! {
            signal = signals.next() => match signal {
                Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT => return Ok(End::Signal(signal)),
                other => {
                    let _ = forward.try_send(other);
                    continue;
                }
            },
            result = &mut start, if !started => {
                started = true;
                if let Err(e) = result {
                    // Said, and then judged like any other failure: by the states.
                    eprintln!("pm: {e}");
                }
            }
            item = events.next() => match item {
                Some(Ok(EventItem::Change(event))) => say(&event.instance, event.state, event.reason.as_deref()),
                Some(Ok(EventItem::Skipped(_))) => {}
                Some(Ok(EventItem::End(_))) | Some(Err(_)) | None => return Ok(End::AllEnded),
            },
        }
        if !started {
            continue;
        }
        let statuses = client.daemon().status(None).await?;
        if let Some(name) = exit_with {
            let theirs: Vec<&InstanceStatus> = statuses.iter().filter(|s| s.definition == name).collect();
            if !theirs.is_empty() && theirs.iter().all(|s| ended(s.state)) {
                let code = theirs.iter().map(|s| code_of(s.last_exit.as_ref(), s.state)).find(|&c| c != 0);
                return Ok(End::ExitWith(name.to_string(), code.unwrap_or(0)));
            }
        } else if statuses.iter().all(|s| ended(s.state)) {
            return Ok(End::AllEnded);
        }
    }
}

/// Stops everything in reverse order and says with which code pm ends.
async fn finish(client: &Client, end: End) -> u8 {
    let before = client.daemon().status(None).await.unwrap_or_default();
    // The first failure, in the order the instances failed.
    let mut failed: Vec<&InstanceStatus> = before.iter().filter(|s| s.state == State::Failed).collect();
    failed.sort_by_key(|s| s.last_exit.as_ref().map_or(u64::MAX, |e| e.at_ms));
    let first_failure = failed.first().map(|s| code_of(s.last_exit.as_ref(), s.state));
    let stop_at = now_ms();
    let stopped = client.daemon().stop(StopParams { name: None, all: true }).await;
    let unclean = match &stopped {
        // Runs this stop ended that were killed at the stop timeout or exited with an error.
        Ok(after) => after
            .iter()
            .filter(|s| s.last_exit.as_ref().is_some_and(|e| e.at_ms >= stop_at))
            .map(|s| code_of(s.last_exit.as_ref(), s.state))
            .find(|&code| code != 0 && code != 128 + Signal::SIGTERM as u8 && code != 128 + Signal::SIGINT as u8),
        Err(e) => {
            eprintln!("pm: cannot stop the sidecars: {e}");
            Some(1)
        }
    };
    match end {
        End::ExitWith(name, code) => {
            eprintln!("pm: {name} ended (code {code}); stopped everything");
            code
        }
        End::Signal(signal) => {
            eprintln!("pm: {signal}: stopped everything");
            first_failure.or(unclean).unwrap_or(0)
        }
        End::AllEnded => first_failure.or(unclean).unwrap_or(0),
    }
}

/// No run, and none coming back by itself.
fn ended(state: State) -> bool {
    matches!(state, State::Stopped | State::Failed | State::Exited)
}

/// The exit code a run's end stands for: its own code, 128 + a signal's number, or 1 for a
/// failure with no exit (it could not be spawned, or was not ready in time).
fn code_of(exit: Option<&ExitInfo>, state: State) -> u8 {
    let code = match exit {
        Some(ExitInfo { code: Some(code), .. }) => *code,
        Some(ExitInfo { signal: Some(name), .. }) => 128 + name.parse::<Signal>().map_or(0, |s| s as i32),
        _ => 0,
    };
    match (code, state) {
        (0, State::Failed) => 1,
        (code, _) => u8::try_from(code & 0xff).unwrap_or(1),
    }
}

fn say(instance: &str, state: State, reason: Option<&str>) {
    match reason {
        Some(reason) => eprintln!("pm: {instance} {state} ({reason})"),
        None => eprintln!("pm: {instance} {state}"),
    }
}

/// The signals pm run handles: the ones that stop it, and the ones it forwards.
struct Signals(Vec<(Signal, tokio::signal::unix::Signal)>);

impl Signals {
    fn new() -> std::io::Result<Signals> {
        let kinds = [
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGQUIT,
            Signal::SIGHUP,
            Signal::SIGUSR1,
            Signal::SIGUSR2,
            Signal::SIGWINCH,
        ];
        let mut all = Vec::new();
        for kind in kinds {
            all.push((kind, signal(SignalKind::from_raw(kind as i32))?));
        }
        Ok(Signals(all))
    }

    async fn next(&mut self) -> Signal {
        let waits = self.0.iter_mut().map(|(kind, s)| {
            let kind = *kind;
            Box::pin(async move {
                s.recv().await;
                kind
            })
        });
        futures::future::select_all(waits).await.0
    }
}
