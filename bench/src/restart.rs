//! Measure 4: restart latency after `kill -9` of a sidecar (`--restart always --backoff-initial
//! 0s`): from the kill until the harness receives the instance's `ready` event (`pm.events`,
//! subscribed before the kill; polling `pm.status` could not see under a millisecond, one call
//! took longer than that). Reference: the harness doing what a supervisor that is the parent
//! must, itself: `kill -9` of a settled child, reaping it, spawning the next one. (Spawning alone,
//! until the pid is known, swings too much with load to be the reference; the note gives it.)

use crate::pm::{Children, Pm, spawn_sleep, within};
use crate::{Row, Size, fmt_duration, median, progress, quantile, ratio, verdict};
use anyhow::{anyhow, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use pm_client::jsonrpsee::core::client::Subscription;
use pm_client::{Client, PmApiClient};
use pm_protocol::State;
use pm_protocol::status::EventItem;
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
    let mut pid = ready_pid(client, 0).await?;
    let mut events = within(Duration::from_secs(5), "pm.events", client.daemon().events(Some(NAME.into()))).await??;
    let kills = KILLS.get();
    let mut latencies = Vec::with_capacity(kills);
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let killed = Instant::now();
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).map_err(|e| anyhow!("cannot kill {NAME} (pid {pid}): {e}"))?;
        latencies
            .push(within(RESTART_TIMEOUT, "the ready event after kill -9", until_ready(&mut events, killed)).await??);
        pid = ready_pid(client, pid).await?;
    }
    progress(&format!(
        "restart after kill -9: median {}, max {}",
        fmt_duration(median(&latencies)),
        fmt_duration(quantile(&latencies, 1.0))
    ));

    let (spawns, respawns) = reference(kills)?;
    let (pm_med, ref_med) = (median(&latencies), median(&respawns));
    Ok(vec![Row {
        measure: "restart latency after kill -9".into(),
        pm: fmt_duration(pm_med),
        reference: fmt_duration(ref_med),
        ratio: ratio(pm_med, ref_med),
        note: format!(
            "goal ≤ {}: {}; median of {kills} kills (p95 {}), until the harness receives the `ready` event \
             (pm.events, subscribed before); ref: the harness's kill -9 of a `sleep` child, reap and respawn \
             until pid known (spawn alone: {})",
            fmt_duration(GOAL),
            verdict(pm_med <= GOAL),
            fmt_duration(quantile(&latencies, 0.95)),
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

/// Reads events until the sidecar's `ready`; returns the time since `since`.
async fn until_ready(events: &mut Subscription<EventItem>, since: Instant) -> anyhow::Result<Duration> {
    loop {
        match events.next().await {
            Some(Ok(EventItem::Change(e))) if e.instance == NAME && e.state == State::Ready => {
                return Ok(since.elapsed());
            }
            Some(Ok(EventItem::Change(e))) if e.instance == NAME && e.state == State::Failed => {
                bail!("{NAME} failed after kill -9: {}", e.reason.as_deref().unwrap_or("no reason given"))
            }
            Some(Ok(EventItem::Change(_))) => {}
            Some(Ok(EventItem::Skipped(n))) => bail!("the event stream skipped {n} events"),
            Some(Ok(EventItem::End(why))) => bail!("the event stream ended: {why}"),
            Some(Err(e)) => bail!("the event stream failed: {e}"),
            None => bail!("the event stream closed"),
        }
    }
}

/// Waits until the sidecar is ready with a pid other than `old`, and returns it.
async fn ready_pid(client: &Client, old: u32) -> anyhow::Result<u32> {
    let since = Instant::now();
    loop {
        let statuses = within(Duration::from_secs(5), "pm.status", client.daemon().status(Some(NAME.into()))).await??;
        if let Some(s) = statuses.first()
            && s.state == State::Ready
            && let Some(pid) = s.pid.filter(|&p| p != old)
        {
            return Ok(pid);
        }
        if let Some(s) = statuses.first().filter(|s| s.state == State::Failed) {
            bail!("{NAME} failed: {}", s.reason.as_deref().unwrap_or("no reason given"));
        }
        if since.elapsed() > RESTART_TIMEOUT {
            bail!("{NAME} was not ready with a new pid {RESTART_TIMEOUT:?} after pid {old}");
        }
        tokio::time::sleep(POLL).await;
    }
}
