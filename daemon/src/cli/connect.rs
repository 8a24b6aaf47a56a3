//! Reaching the daemon: connect to PM_HOME's socket. Commands that change things start the
//! daemon first when needed; commands that only look never do, or `pm status` after `pm stop pm`
//! would bring every sidecar back.

use super::exit::Unreachable;
use crate::home::Home;
use anyhow::Context;
use pm_client::{Client, ClientOptions, PmApiClient};
use pm_protocol::{DaemonInfo, Endpoint};
use std::os::unix::fs::OpenOptionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How long a freshly spawned daemon may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to the running daemon, if there is one that answers.
pub async fn existing(home: &Home) -> Option<(Client, DaemonInfo)> {
    existing_with(home, ClientOptions::default()).await
}

async fn existing_with(home: &Home, opts: ClientOptions) -> Option<(Client, DaemonInfo)> {
    let client = Client::connect_endpoint(&Endpoint::Unix(home.socket()), opts).await.ok()?;
    let info = client.daemon().ping().await.ok()?;
    Some((client, info))
}

/// Connects to the running daemon, or fails saying how to start it.
pub async fn running(home: &Home) -> anyhow::Result<(Client, DaemonInfo)> {
    running_with(home, ClientOptions::default()).await
}

/// The same, with these client options.
pub async fn running_with(home: &Home, opts: ClientOptions) -> anyhow::Result<(Client, DaemonInfo)> {
    existing_with(home, opts).await.ok_or_else(not_running)
}

/// The error of a command that needs a running daemon and finds none.
pub fn not_running() -> anyhow::Error {
    Unreachable("the daemon is not running; `pm start pm` starts it".into()).into()
}

/// Connects to the daemon, starting it in the background if it is not running.
pub async fn daemon(home: &Home) -> anyhow::Result<Client> {
    Ok(daemon_listening(home, &[]).await?.0)
}

/// The same, starting the daemon with extra listeners; says which of them a daemon that was
/// already running lacks.
pub async fn daemon_listening(home: &Home, listen: &[Endpoint]) -> anyhow::Result<(Client, DaemonInfo)> {
    let Some((client, info)) = existing(home).await else {
        return spawn_daemon(home, listen).await;
    };
    for endpoint in listen {
        if !info.endpoints.contains(&endpoint.to_string()) {
            eprintln!("pm: the running daemon does not listen on {endpoint}; `pm stop pm` and start again to add it");
        }
    }
    Ok((client, info))
}

/// Starts `pm daemon` detached (own process group, output to daemon.log) and waits until its
/// socket answers.
pub async fn spawn_daemon(home: &Home, listen: &[Endpoint]) -> anyhow::Result<(Client, DaemonInfo)> {
    home.create().with_context(|| format!("cannot create PM_HOME {}", home.root().display()))?;
    let log_path = home.daemon_log();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let exe = std::env::current_exe().context("cannot find the pm executable")?;
    let mut child = tokio::process::Command::new(exe)
        .arg("daemon")
        .args(listen.iter().flat_map(|e| ["--listen".to_string(), e.to_string()]))
        .env("PM_HOME", home.root())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("cannot start the pm daemon")?;
    let deadline = Instant::now() + START_TIMEOUT;
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(connected) = existing(home).await {
            return Ok(connected);
        }
        if let Some(status) = child.try_wait()? {
            // Another daemon may have won a race to start: use it.
            if let Some(connected) = existing(home).await {
                return Ok(connected);
            }
            let why = format!("the pm daemon exited at start ({status}):\n{}", tail(&log_path, 5));
            return Err(Unreachable(why).into());
        }
        if Instant::now() > deadline {
            let why = format!(
                "the pm daemon did not answer on {} within {START_TIMEOUT:?}; see {}",
                home.socket().display(),
                log_path.display()
            );
            return Err(Unreachable(why).into());
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

fn tail(path: &std::path::Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
