//! Measure 1: start-up of 100 sidecars until all are ready, in two shapes: independent, and in 5
//! levels of 20, each depending on all 20 of the level below.
//!
//! pm: one `pm start -f pm.toml` (the CLI answers once every autostart sidecar is ready) of
//! `sleep 1000` sidecars with `ready = "started"`. Reference: the harness spawns the same 100
//! processes itself, in dependency order, each spawn complete (exec done, pid known) before the
//! next: the physical floor (see `graph`).

use crate::graph::{Graph, Shape};
use crate::pm::Pm;
use crate::rss::Memory;
use crate::{Row, Size, fmt_duration, median, progress, ratio, ratio_goal};
use anyhow::Context;
use pm_client::Client;
use std::time::Duration;

const ROUNDS: Size<usize> = Size::new(5, 1);
/// The sidecars it leaves running: the 5 levels.
pub const SIDECARS: usize = 100;
/// The goal for the independent ones, against the floor.
const FLAT_GOAL: f64 = 1.5;

/// Both shapes, the independent ones first (then deleted); leaves the 5 levels running for the
/// measures that follow. Also returns the daemon's memory right after the first start of the
/// independent ones (later rounds change it: see `rss`).
pub async fn measure(pm: &Pm, client: &Client) -> anyhow::Result<(Vec<Row>, Memory)> {
    let (flat, first) = rounds(pm, client, Graph { shape: Shape::Flat, n: SIDECARS }, Some(FLAT_GOAL)).await?;
    pm.run(&["delete", "--all", "--force"], Duration::from_secs(60)).await?;
    let (levels, _) = rounds(pm, client, Graph { shape: Shape::Dense, n: SIDECARS }, None).await?;
    Ok((vec![flat, levels], first))
}

/// The rounds of one graph, pm's then the floor's; leaves its sidecars running.
async fn rounds(pm: &Pm, client: &Client, graph: Graph, goal: Option<f64>) -> anyhow::Result<(Row, Memory)> {
    let (file, _) = graph.write(pm)?;
    let rounds = ROUNDS.get();
    let mut pm_times = Vec::new();
    let mut first = Memory::default();
    for round in 0..rounds {
        if round > 0 {
            pm.run(&["stop", "--all"], Duration::from_secs(60)).await?;
        }
        let (_, took) = pm.run_timed(&["start", "-f", &file], Duration::from_secs(60)).await?;
        graph.check_ready(client).await.context("after pm start -f")?;
        progress(&format!(
            "start-up, {}, round {}: pm start -f pm.toml took {}",
            graph.describe(),
            round + 1,
            fmt_duration(took)
        ));
        pm_times.push(took);
        if round == 0 {
            first = crate::rss::sample(pm).await?;
        }
    }
    let ref_times = (0..rounds).map(|_| graph.spawn_floor()).collect::<anyhow::Result<Vec<_>>>()?;

    let (pm_med, ref_med) = (median(&pm_times), median(&ref_times));
    let goal = goal.map_or(String::new(), |goal| format!("{}; ", ratio_goal(pm_med, ref_med, goal)));
    let row = Row {
        measure: format!("start-up, {}", graph.describe()),
        pm: fmt_duration(pm_med),
        reference: fmt_duration(ref_med),
        ratio: ratio(pm_med, ref_med),
        note: format!(
            "{goal}`pm start -f pm.toml` until all ready, median of {rounds} (1st, defs new: {}); `sleep 1000`, \
             ready=started; ref: harness spawns them in dependency order",
            fmt_duration(pm_times[0])
        ),
    };
    Ok((row, first))
}
