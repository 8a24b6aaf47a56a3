//! Measure 1: start-up of 100 sidecars in a 5-level dependency graph, until all are ready.
//!
//! pm: one `pm start -f pm.toml` (the CLI answers once every autostart sidecar is ready), over a
//! project of 5 levels × 20 `sleep 1000` sidecars with `ready = "started"`, each depending on all
//! 20 of the level below. Reference: the harness spawns the same 100 processes itself, level by
//! level, each spawn complete (exec done, pid known) before the next level: the physical floor.

use crate::pm::{Children, Pm, spawn_sleep, within};
use crate::{Row, fmt_duration, median, progress, ratio};
use anyhow::{Context, bail};
use pm_client::{Client, PmApiClient};
use pm_protocol::State;
use std::time::{Duration, Instant};

const LEVELS: usize = 5;
const WIDTH: usize = 20;
const ROUNDS: usize = 5;
/// The sidecars it leaves running.
pub const SIDECARS: usize = LEVELS * WIDTH;

fn name(level: usize, i: usize) -> String {
    format!("l{level}-s{i:02}")
}

/// The project file: level 0 has no dependencies, each sidecar of level L depends on all of L-1.
fn project() -> String {
    let mut toml = String::new();
    for level in 0..LEVELS {
        let deps: Vec<String> =
            if level == 0 { Vec::new() } else { (0..WIDTH).map(|i| format!("\"{}\"", name(level - 1, i))).collect() };
        for i in 0..WIDTH {
            toml.push_str(&format!(
                "[sidecars.{}]\ncommand = [\"sleep\", \"1000\"]\nready = \"started\"\ndepends_on = [{}]\n\n",
                name(level, i),
                deps.join(", ")
            ));
        }
    }
    toml
}

/// Runs the rounds; leaves the 100 sidecars running for the measures that follow. Also returns
/// the daemon's RSS right after the first start (later rounds change it: see `rss`).
pub async fn measure(pm: &Pm, client: &Client) -> anyhow::Result<(Vec<Row>, u64)> {
    let file = pm.project_dir().join("pm.toml");
    std::fs::write(&file, project()).with_context(|| format!("cannot write {}", file.display()))?;
    let file = file.to_string_lossy().into_owned();

    let mut pm_times = Vec::new();
    let mut rss_first = 0;
    for round in 0..ROUNDS {
        if round > 0 {
            pm.run(&["stop", "--all"], Duration::from_secs(60)).await?;
        }
        let (_, took) = pm.run_timed(&["start", "-f", &file], Duration::from_secs(60)).await?;
        check_all_ready(client).await?;
        progress(&format!("start-up round {}: pm start -f pm.toml took {}", round + 1, fmt_duration(took)));
        pm_times.push(took);
        if round == 0 {
            rss_first = crate::rss::sample(pm).await?;
        }
    }

    let mut ref_times = Vec::new();
    for _ in 0..ROUNDS {
        ref_times.push(spawn_levels()?);
    }

    let (pm_med, ref_med) = (median(&pm_times), median(&ref_times));
    let rows = vec![Row {
        measure: format!("start-up, {SIDECARS} sidecars in {LEVELS} levels"),
        pm: fmt_duration(pm_med),
        reference: fmt_duration(ref_med),
        ratio: ratio(pm_med, ref_med),
        note: format!(
            "`pm start -f pm.toml` until all ready, median of {ROUNDS} (1st, defs new: {}); `sleep 1000`, \
             ready=started, each dep on all 20 below; ref: harness spawns them level by level",
            fmt_duration(pm_times[0])
        ),
    }];
    Ok((rows, rss_first))
}

/// The physical floor: spawn the 100 processes directly, in level order.
fn spawn_levels() -> anyhow::Result<Duration> {
    let mut children = Children::default();
    let started = Instant::now();
    for _level in 0..LEVELS {
        // Each spawn returns once exec has happened, so a level is complete when the loop ends.
        for _ in 0..WIDTH {
            children.push(spawn_sleep()?);
        }
    }
    Ok(started.elapsed())
}

/// Checks that all 100 are ready and that each level was started no earlier than the one below.
async fn check_all_ready(client: &Client) -> anyhow::Result<()> {
    let statuses = within(Duration::from_secs(10), "pm.status", client.daemon().status(None)).await??;
    let not_ready: Vec<String> = statuses
        .iter()
        .filter(|s| s.state != State::Ready || s.pid.is_none())
        .map(|s| format!("{} is {}", s.name, s.state))
        .collect();
    if statuses.len() != SIDECARS || !not_ready.is_empty() {
        bail!(
            "after pm start: {} instances, not ready: {}",
            statuses.len(),
            not_ready.into_iter().take(5).collect::<Vec<_>>().join(", ")
        );
    }
    let started = |level: usize| {
        let prefix = format!("l{level}-");
        statuses.iter().filter(move |s| s.name.starts_with(&prefix)).filter_map(|s| s.started_at_ms)
    };
    for level in 1..LEVELS {
        let (first, last_below) = (started(level).min(), started(level - 1).max());
        if first < last_below {
            progress(&format!(
                "warning: level {level} started at {first:?} ms, before level {} ended at {last_below:?}",
                level - 1
            ));
        }
    }
    Ok(())
}
