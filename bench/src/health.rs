//! Measure 8: health checks (issue 9), two rows.
//!
//! - The daemon's CPU under checks: 100 `sleep 100000` sidecars (`ready = "started"`), each with
//!   `health = { tcp = "127.0.0.1:PORT", interval = "1s" }` to a listener the harness runs itself
//!   (it accepts and closes each connection, so the sidecars stay cheap `sleep`s), beside the same
//!   100 without checks. utime+stime of the daemon over the idle window, once every check has
//!   found its sidecar healthy and they have run a little longer. Goal: under 1 % of one core.
//! - How soon a hung process is found: a `python3 -m http.server` sidecar with an http check
//!   (interval 1s, timeout 500ms, failure_threshold 2, on_unhealthy report) is stopped with
//!   SIGSTOP, and the time until `pm.status` shows it `unhealthy` is set against the bound the
//!   configuration promises: interval × failure_threshold + timeout.
//!
//! Both define their sidecars from a project file (`health.toml` in the project dir, beside the
//! start-up's `pm.toml`) and delete them again, also when they fail, so that the measures after
//! this one find the daemon as it was.

use crate::idle::{Sample, Usage, clock_ticks};
use crate::mesh::free_ports;
use crate::pm::{Pm, within};
use crate::{Row, Size, fmt_duration, fmt_ratio, median, progress, quantile, ratio, verdict};
use anyhow::{Context, anyhow, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use pm_client::{Client, PmApiClient};
use pm_protocol::{HealthStatus, InstanceStatus, State};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The CPU row: this many sleepers, named `hc-sleep-000`…, checked every [`INTERVAL`].
const SLEEPERS: usize = 100;
const SLEEPER_PREFIX: &str = "hc-sleep-";
const INTERVAL: Duration = Duration::from_secs(1);
/// After all are ready (and healthy), before the window: two rounds of checks (one if quick).
const SETTLE: Size<Duration> = Size::new(Duration::from_secs(2), Duration::from_secs(1));
/// How long the sidecars may take to be ready and healthy.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// `pm start -f` and `pm delete` of the 100.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);
/// The goal for the daemon with the checks, in percent of one core.
const GOAL_PERCENT: f64 = 1.0;

/// The latency row: one http server, stopped this many times.
const HTTP_NAME: &str = "hc-http";
const ROUNDS: Size<usize> = Size::new(5, 1);
const HTTP_INTERVAL: Duration = Duration::from_secs(1);
const HTTP_TIMEOUT: Duration = Duration::from_millis(500);
const FAILURE_THRESHOLD: u32 = 2;
/// How often `pm.status` is asked while timing.
const POLL: Duration = Duration::from_millis(5);
/// How long a stopped server may stay unnoticed, and a resumed one unhealthy, before giving up.
const DETECT_TIMEOUT: Duration = Duration::from_secs(10);
const RECOVER_TIMEOUT: Duration = Duration::from_secs(15);

/// Both rows. `window` is the idle measure's (`--idle-seconds`).
pub async fn measure(pm: &Pm, window: Duration) -> anyhow::Result<Vec<Row>> {
    Ok(vec![cpu(pm, window).await?, latency(pm).await?])
}

/// Row 1: the daemon's CPU with the 100 sleepers checked every second, beside without checks.
async fn cpu(pm: &Pm, window: Duration) -> anyhow::Result<Row> {
    let listener = Listener::start().await?;
    let client = pm.client().await?;
    let others = within(Duration::from_secs(5), "pm.status", client.daemon().status(None)).await??.len();
    drop(client);
    let plain = arm(pm, None, window).await?;
    let checked = arm(pm, Some(&listener), window).await?;
    let (with, without) = (checked.usage.cpu_percent(), plain.usage.cpu_percent());
    // One check per sleeper per interval; the harness counted the connections it accepted.
    let checks = SLEEPERS as f64 * checked.usage.seconds / INTERVAL.as_secs_f64();
    let extra = (with - without) / 100.0 * checked.usage.seconds;
    let per_check = extra / checks * 1e6;
    progress(&format!(
        "health: daemon CPU {with:.3} % with {SLEEPERS} checks every {}, {without:.3} % without ({} / {} ticks in \
         {:.1} / {:.1} s); {} connections accepted in the window; {per_check:.1} µs per check",
        fmt_duration(INTERVAL),
        checked.usage.ticks,
        plain.usage.ticks,
        checked.usage.seconds,
        plain.usage.seconds,
        checked.accepted
    ));
    let met = verdict(with < GOAL_PERCENT);
    let beside = match others {
        0 => String::new(),
        n => format!(", beside {n} other idle instances"),
    };
    Ok(Row {
        measure: format!("daemon CPU, {SLEEPERS} health checks every {} s", INTERVAL.as_secs()),
        pm: format!("{with:.2} % of one core"),
        reference: format!("{without:.2} % of one core"),
        ratio: if plain.usage.ticks > 0 { fmt_ratio(with / without) } else { "n/a (ref 0)".into() },
        note: format!(
            "{SLEEPERS} `sleep 100000`, ready=started, health = {{ tcp, interval = \"1s\" }} to a listener of the \
             harness ({} connections in the window){beside}; utime+stime ({} ms ticks) over the {} s idle window \
             (--idle-seconds), after all healthy + {} s; ref: the same {SLEEPERS} without checks; \
             {per_check:.1} µs of CPU per check ({:+.3} % of one core over {checks:.0} checks, counted as \
             {SLEEPERS} × window / interval); goal under {GOAL_PERCENT} % of one core: {met}",
            checked.accepted,
            1000.0 / clock_ticks(),
            window.as_secs_f64(),
            SETTLE.get().as_secs(),
            with - without
        ),
    })
}

/// What one arm of the CPU row found.
struct Arm {
    usage: Usage,
    /// Connections the listener accepted in the window (0 without checks).
    accepted: u64,
}

/// Defines and starts the sleepers (checked against `listener`, or not), measures the daemon
/// over `window`, and deletes them again.
async fn arm(pm: &Pm, listener: Option<&Listener>, window: Duration) -> anyhow::Result<Arm> {
    let what = if listener.is_some() { "with checks" } else { "without checks" };
    let health = listener
        .map(|l| format!("health = {{ tcp = \"127.0.0.1:{}\", interval = \"{}s\" }}\n", l.port, INTERVAL.as_secs()))
        .unwrap_or_default();
    let mut toml = String::new();
    for i in 0..SLEEPERS {
        toml.push_str(&format!(
            "[sidecars.{}]\ncommand = [\"sleep\", \"100000\"]\nready = \"started\"\n{health}\n",
            sleeper(i)
        ));
    }
    let outcome = async {
        start_project(pm, &toml).await?;
        settle(pm, listener.is_some()).await?;
        progress(&format!(
            "health: {SLEEPERS} sidecars {what}: measuring the daemon's CPU for {} s",
            window.as_secs_f64()
        ));
        let daemon = pm.daemon_pid();
        let accepted = listener.map(Listener::accepted).unwrap_or_default();
        let before = Sample::take(daemon)?;
        tokio::time::sleep(window).await;
        let usage = Sample::take(daemon)?.since(&before);
        let accepted = listener.map(Listener::accepted).unwrap_or_default() - accepted;
        // The window counts only if every sleeper stayed as it was through it.
        check_steady(pm, listener.is_some()).await?;
        Ok::<_, anyhow::Error>(Arm { usage, accepted })
    }
    .await;
    let names: Vec<String> = (0..SLEEPERS).map(sleeper).collect();
    let mut args = vec!["delete"];
    args.extend(names.iter().map(String::as_str));
    let deleted = pm.run(&args, CLI_TIMEOUT).await;
    // After a failure they may not all exist; the failure is the news then.
    if outcome.is_ok() {
        deleted.context("health: cannot delete the sleepers")?;
    }
    outcome
}

fn sleeper(i: usize) -> String {
    format!("{SLEEPER_PREFIX}{i:03}")
}

/// Writes `toml` as `health.toml` in the project dir and `pm start -f`s it.
async fn start_project(pm: &Pm, toml: &str) -> anyhow::Result<()> {
    let file = pm.project_dir().join("health.toml");
    std::fs::write(&file, toml).with_context(|| format!("cannot write {}", file.display()))?;
    pm.run(&["start", "-f", &file.to_string_lossy()], CLI_TIMEOUT).await?;
    Ok(())
}

/// The sleepers' statuses.
async fn sleepers(client: &Client) -> anyhow::Result<Vec<InstanceStatus>> {
    let all = within(Duration::from_secs(5), "pm.status", client.daemon().status(None)).await??;
    Ok(all.into_iter().filter(|s| s.name.starts_with(SLEEPER_PREFIX)).collect())
}

/// Ready, with a health check that found it healthy if it has one.
fn steady(s: &InstanceStatus, checked: bool) -> bool {
    s.state == State::Ready && (!checked || s.health.as_ref().is_some_and(|h| h.status == HealthStatus::Healthy))
}

/// Waits until all the sleepers are ready (and healthy, when `checked`), then lets the daemon
/// settle for [`SETTLE`].
async fn settle(pm: &Pm, checked: bool) -> anyhow::Result<()> {
    let client = pm.client().await?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let statuses = sleepers(&client).await?;
        let ready = statuses.iter().filter(|s| steady(s, checked)).count();
        if statuses.len() == SLEEPERS && ready == SLEEPERS {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "health: {ready} of {} sidecars ready{} after {READY_TIMEOUT:?}, expected {SLEEPERS}; e.g. {}",
                statuses.len(),
                if checked { " and healthy" } else { "" },
                describe(statuses.iter().filter(|s| !steady(s, checked)))
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Closed before the window: the daemon has nothing of ours to answer then.
    drop(client);
    tokio::time::sleep(SETTLE.get()).await;
    Ok(())
}

/// Checks that all the sleepers are still steady, with no restart and no failed check.
async fn check_steady(pm: &Pm, checked: bool) -> anyhow::Result<()> {
    let statuses = sleepers(&pm.client().await?).await?;
    let unsteady: Vec<&InstanceStatus> = statuses
        .iter()
        .filter(|s| !steady(s, checked) || s.restarts > 0 || s.health.as_ref().is_some_and(|h| h.failures > 0))
        .collect();
    if statuses.len() != SLEEPERS || !unsteady.is_empty() {
        bail!(
            "health: after the window, {} sidecars, {} not ready, restarted or failing checks: {}",
            statuses.len(),
            unsteady.len(),
            describe(unsteady.into_iter())
        );
    }
    Ok(())
}

/// A few instances in words: `hc-sleep-001 backoff (reason; health unhealthy, 3 failures)`.
fn describe<'a>(statuses: impl Iterator<Item = &'a InstanceStatus>) -> String {
    let words: Vec<String> = statuses
        .take(3)
        .map(|s| {
            let mut what = vec![format!("{} restarts", s.restarts)];
            what.extend(s.reason.clone());
            what.extend(s.health.as_ref().map(|h| {
                let status = serde_json::to_value(h.status).ok().and_then(|v| v.as_str().map(String::from));
                format!(
                    "health {} after {} failures{}",
                    status.unwrap_or_default(),
                    h.failures,
                    h.last_failure.as_ref().map(|f| format!(": {f}")).unwrap_or_default()
                )
            }));
            format!("{} {} ({})", s.name, s.state, what.join("; "))
        })
        .collect();
    if words.is_empty() { "none".into() } else { words.join(", ") }
}

/// The tcp endpoint the sleepers' checks connect to: accepts and closes, and counts.
struct Listener {
    port: u16,
    accepted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    async fn start() -> anyhow::Result<Listener> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("health: cannot listen on 127.0.0.1")?;
        let port = listener.local_addr()?.port();
        let accepted = Arc::new(AtomicU64::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    // Dropped at once: the check only needs the connection accepted.
                    Ok(_) => {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    // Out of file descriptors, say: the checks will fail and say so.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        });
        Ok(Listener { port, accepted, task })
    }

    fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Row 2: from SIGSTOP of an http server until `pm.status` shows it unhealthy.
async fn latency(pm: &Pm) -> anyhow::Result<Row> {
    let rounds = ROUNDS.get();
    let python = python().await?;
    let [port] = free_ports()?;
    let url = format!("http://127.0.0.1:{port}/");
    let toml = format!(
        "[sidecars.{HTTP_NAME}]\ncommand = [{python:?}, \"-m\", \"http.server\", \"{port}\", \"--bind\", \
         \"127.0.0.1\"]\nready = {{ tcp = \"127.0.0.1:{port}\" }}\nready_timeout = \"30s\"\nrestart = \"never\"\n\
         health = {{ http = \"{url}\", interval = \"{}ms\", timeout = \"{}ms\", failure_threshold = \
         {FAILURE_THRESHOLD}, on_unhealthy = \"report\" }}\n",
        HTTP_INTERVAL.as_millis(),
        HTTP_TIMEOUT.as_millis()
    );
    let outcome = async {
        start_project(pm, &toml).await?;
        let client = pm.client().await?;
        detect(&client).await
    }
    .await;
    let deleted = pm.run(&["delete", HTTP_NAME], Duration::from_secs(20)).await;
    if outcome.is_ok() {
        deleted.context("health: cannot delete the http sidecar")?;
    }
    let times = outcome?;
    let bound = HTTP_INTERVAL * FAILURE_THRESHOLD + HTTP_TIMEOUT;
    let (med, max) = (median(&times), quantile(&times, 1.0));
    progress(&format!(
        "health: hung process found unhealthy after {} (median), {} (max); bound {}",
        fmt_duration(med),
        fmt_duration(max),
        fmt_duration(bound)
    ));
    let over = times.iter().filter(|&&t| t > bound + POLL).count();
    let over = match over {
        0 => String::new(),
        n => format!("; {n} of {rounds} over the bound (+ one poll)"),
    };
    Ok(Row {
        measure: "hung process found unhealthy (http check)".into(),
        pm: fmt_duration(med),
        reference: fmt_duration(bound),
        ratio: ratio(med, bound),
        note: format!(
            "median of {rounds} SIGSTOPs of a `python3 -m http.server` sidecar (max {}), at 0 to {} ms after a check \
             found it healthy, until pm.status shows it unhealthy (SDK poll every {} ms); health = {{ http, interval \
             = \"1s\", timeout = \"500ms\", failure_threshold = {FAILURE_THRESHOLD}, on_unhealthy = \"report\" }}; \
             ref: the bound interval × failure_threshold + timeout{over}",
            fmt_duration(max),
            (HTTP_INTERVAL * (rounds as u32 - 1) / rounds as u32).as_millis(),
            POLL.as_millis()
        ),
    })
}

/// The python3 interpreter itself (not a wrapper such as a pyenv shim), so that the pid pm
/// reports is the server's.
async fn python() -> anyhow::Result<String> {
    let mut cmd = tokio::process::Command::new("python3");
    cmd.args(["-c", "import sys; print(sys.executable)"]).kill_on_drop(true);
    let output = within(Duration::from_secs(20), "python3", cmd.output())
        .await?
        .context("health: the hung-process measure needs python3 (for its http.server)")?;
    let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() || path.is_empty() {
        bail!(
            "health: python3 did not say where it is ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(path)
}

/// The [`ROUNDS`]: waits until the server is healthy, stops it a little later each round (spread
/// over one interval, so the stops fall at different points between two checks), times until it
/// is unhealthy, resumes it. Returns the times.
async fn detect(client: &Client) -> anyhow::Result<Vec<Duration>> {
    let mut pid = wait_for(client, |s| steady(s, true), "ready and healthy", Instant::now(), READY_TIMEOUT).await?.1;
    let rounds = ROUNDS.get();
    let mut times = Vec::with_capacity(rounds);
    for round in 0..rounds {
        tokio::time::sleep(HTTP_INTERVAL * round as u32 / rounds as u32).await;
        let stopped = Stopped::new(pid)?;
        let (took, _) =
            wait_for(client, |s| s.state == State::Unhealthy, "unhealthy", stopped.at, DETECT_TIMEOUT).await?;
        // SIGCONT.
        drop(stopped);
        times.push(took);
        progress(&format!(
            "health: round {}: {HTTP_NAME} found unhealthy {} after SIGSTOP",
            round + 1,
            fmt_duration(took)
        ));
        let (_, now) =
            wait_for(client, |s| steady(s, true), "ready and healthy again", Instant::now(), RECOVER_TIMEOUT).await?;
        if now != pid {
            bail!("health: {HTTP_NAME} has a new pid {now} (was {pid}): on_unhealthy = \"report\" should keep the run");
        }
        pid = now;
    }
    Ok(times)
}

/// Polls the http sidecar's status every [`POLL`] until `wanted`; returns the time since `since`
/// and its pid. Fails once `limit` has passed since `since`, or if it is no longer running.
async fn wait_for(
    client: &Client,
    wanted: impl Fn(&InstanceStatus) -> bool,
    what: &str,
    since: Instant,
    limit: Duration,
) -> anyhow::Result<(Duration, u32)> {
    loop {
        let statuses =
            within(Duration::from_secs(5), "pm.status", client.daemon().status(Some(HTTP_NAME.into()))).await??;
        let status = statuses.first().ok_or_else(|| anyhow!("health: pm.status does not know {HTTP_NAME}"))?;
        if wanted(status) {
            let pid = status.pid.ok_or_else(|| anyhow!("health: {HTTP_NAME} is {} with no pid", status.state))?;
            return Ok((since.elapsed(), pid));
        }
        if !status.state.is_active() && status.state != State::Waiting {
            bail!(
                "health: {HTTP_NAME} stopped running, waiting for it to be {what}: {}",
                describe([status].into_iter())
            );
        }
        if since.elapsed() > limit {
            bail!("health: {HTTP_NAME} was not {what} after {limit:?}: {}", describe([status].into_iter()));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A process stopped with SIGSTOP; resumed with SIGCONT when dropped, also on an error.
struct Stopped {
    pid: u32,
    at: Instant,
}

impl Stopped {
    fn new(pid: u32) -> anyhow::Result<Stopped> {
        let at = Instant::now();
        kill(Pid::from_raw(pid as i32), Signal::SIGSTOP)
            .map_err(|e| anyhow!("health: cannot stop {HTTP_NAME} (pid {pid}): {e}"))?;
        Ok(Stopped { pid, at })
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGCONT);
    }
}
