//! Measure 4: restart latency after `kill -9` of a sidecar (`--restart always --backoff-initial
//! 0s`): from the kill until `pm.status` shows a new pid in state ready, polled through the SDK
//! about every millisecond. Reference: the harness doing what a supervisor that is the parent
//! must, itself: `kill -9` of a settled child, reaping it, spawning the next one. (Spawning alone,
//! until the pid is known, swings too much with load to be the reference; the note gives it.)

use crate::pm::{Children, Pm, spawn_sleep, within};
use crate::{Row, Size, fmt_duration, median, progress, quantile, ratio, verdict};
use anyhow::{anyhow, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use pm_client::{Client, PmApiClient};
use pm_protocol::State;
use std::time::{Duration, Instant};

const NAME: &str = "bench-restart";
const KILLS: Size<usize> = Size::new(25, 3);
const POLL: Duration = Duration::from_millis(1);
const RESTART_TIMEOUT: Duration = Duration::from_secs(10);
/// The goal for the restart latency.
const GOAL: Duration = Duration::from_millis(1);

pub async fn measure(pm: &Pm, client: &Client) -> anyhow::Result<Vec<Row>> {
    // --max-restarts: the default budget (5 in 60s) would fail the sidecar long before 25 kills.
    #[rustfmt::skip]
    let map = ["map", NAME, "--restart", "always", "--backoff-initial", "0s", "--max-restarts", "1000", "--", "sleep", "1000"];
    pm.run(&map, Duration::from_secs(10)).await?;
    pm.run(&["start", NAME], Duration::from_secs(30)).await?;

    // No pid is 0: this waits for the first run to be ready.
    let (mut pid, _, _) = wait_restart(client, 0, Instant::now()).await?;
    let kills = KILLS.get();
    let mut latencies = Vec::with_capacity(kills);
    let mut polls = Vec::new();
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let killed = Instant::now();
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).map_err(|e| anyhow!("cannot kill {NAME} (pid {pid}): {e}"))?;
        let (new_pid, took, poll) = wait_restart(client, pid, killed).await?;
        latencies.push(took);
        polls.extend(poll);
        pid = new_pid;
    }
    progress(&format!(
        "restart after kill -9: median {}, max {}; one status poll {}",
        fmt_duration(median(&latencies)),
        fmt_duration(quantile(&latencies, 1.0)),
        fmt_duration(median(&polls))
    ));

    let (spawns, respawns) = reference(kills)?;
    let (pm_med, ref_med) = (median(&latencies), median(&respawns));
    Ok(vec![Row {
        measure: "restart latency after kill -9".into(),
        pm: fmt_duration(pm_med),
        reference: fmt_duration(ref_med),
        ratio: ratio(pm_med, ref_med),
        note: format!(
            "goal ≤ {}: {}; median of {kills} kills (p95 {}), until status shows a new pid ready; SDK poll every \
             ~1 ms (one poll {}); ref: the harness's kill -9 of a `sleep` child, reap and respawn until pid known \
             (spawn alone: {})",
            fmt_duration(GOAL),
            verdict(pm_med <= GOAL),
            fmt_duration(quantile(&latencies, 0.95)),
            fmt_duration(median(&polls)),
            fmt_duration(median(&spawns))
        ),
    }])
}

/// The harness's own figures, `kills` of each after 3 warm-ups: spawning `sleep` until its pid is
/// known; and, as a supervisor that is the parent would, `kill -9` of a settled child, reaping it
/// and spawning the next one.
fn reference(kills: usize) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let (mut spawns, mut respawns) = (Vec::with_capacity(kills), Vec::with_capacity(kills));
    // Dropping a `Children` kills (SIGKILL) and reaps its processes.
    let mut current = Children::default();
    current.push(spawn_sleep()?);
    for i in 0..kills + 3 {
        std::thread::sleep(Duration::from_millis(5));
        let killed = Instant::now();
        drop(std::mem::take(&mut current));
        let spawned = Instant::now();
        current.push(spawn_sleep()?);
        let done = Instant::now();
        if i >= 3 {
            spawns.push(done - spawned);
            respawns.push(done - killed);
        }
    }
    Ok((spawns, respawns))
}

/// Waits until the sidecar is ready with a pid other than `old`; returns the pid, the time since
/// `since`, and how long each status call took.
async fn wait_restart(client: &Client, old: u32, since: Instant) -> anyhow::Result<(u32, Duration, Vec<Duration>)> {
    let mut polls = Vec::new();
    loop {
        let asked = Instant::now();
        let statuses = within(Duration::from_secs(5), "pm.status", client.daemon().status(Some(NAME.into()))).await??;
        polls.push(asked.elapsed());
        if let Some(s) = statuses.first()
            && s.state == State::Ready
            && let Some(pid) = s.pid.filter(|&p| p != old)
        {
            return Ok((pid, since.elapsed(), polls));
        }
        if let Some(s) = statuses.first().filter(|s| s.state == State::Failed) {
            bail!("{NAME} failed after kill -9: {}", s.reason.as_deref().unwrap_or("no reason given"));
        }
        if since.elapsed() > RESTART_TIMEOUT {
            bail!("{NAME} was not ready with a new pid {RESTART_TIMEOUT:?} after kill -9 of pid {old}");
        }
        tokio::time::sleep(POLL).await;
    }
}
