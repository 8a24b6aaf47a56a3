//! Measure 2: the daemon's resident memory (VmRSS), idle and with 100 sidecars running; and the
//! reading of it that the scaling table shares.
//!
//! There is no reference to run here: PM2's and @akala/pm's figures are quoted for orientation.
//! The figure with sidecars is taken right after the first start of 100 independent ones; the
//! note adds the figure after all of the start-up measure's stop/start rounds, since the daemon's
//! RSS grows with them.

use crate::pm::{Pm, alive};
use crate::{Row, fmt_mb, fmt_ratio, verdict};
use anyhow::Context;
use std::time::Duration;

/// Quoted orientation figures (not measured here), in bytes.
const PM2: u64 = 58_000_000;
const AKALA: u64 = 64_000_000;
/// The goal for the idle daemon's VmRSS, in MiB.
const IDLE_GOAL_MIB: u64 = 6;

/// A process's resident memory, in bytes: all of it (VmRSS), its anonymous pages (heap and
/// stacks: what it allocated) and its file pages (mostly its binary's).
#[derive(Clone, Copy, Default)]
pub struct Memory {
    pub rss: u64,
    pub anon: u64,
    pub file: u64,
}

impl Memory {
    pub fn of(pid: u32) -> anyhow::Result<Memory> {
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        // In kB, as `VmRSS:    1234 kB`.
        let bytes = |key: &str| {
            let kb = status.lines().find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse::<u64>().ok());
            kb.unwrap_or(0) * 1024
        };
        let memory = Memory { rss: bytes("VmRSS:"), anon: bytes("RssAnon:"), file: bytes("RssFile:") };
        anyhow::ensure!(memory.rss > 0, "no VmRSS in {path}");
        Ok(memory)
    }
}

/// The daemon's memory after a short pause to let it settle.
pub async fn sample(pm: &Pm) -> anyhow::Result<Memory> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = pm.daemon_pid();
    if !alive(pid) {
        anyhow::bail!("the pm daemon (pid {pid}) is gone; see daemon.log in PM_HOME");
    }
    Memory::of(pid)
}

pub fn rows(idle: Memory, first: Memory, cycled: Memory) -> Vec<Row> {
    let row = |measure: &str, bytes: u64, when: String| Row {
        measure: measure.into(),
        pm: fmt_mb(bytes),
        reference: format!("{} / {}", fmt_mb(PM2), fmt_mb(AKALA)),
        ratio: format!("{} / {}", fmt_ratio(bytes as f64 / PM2 as f64), fmt_ratio(bytes as f64 / AKALA as f64)),
        note: format!("VmRSS of the daemon {when}; ref: PM2 ~58 MB / @akala/pm ~64 MB, quoted, not measured here"),
    };
    vec![
        row(
            "daemon RSS, idle",
            idle.rss,
            format!(
                "just started, no sidecars (RssAnon {}, RssFile {}); goal ≤ {IDLE_GOAL_MIB} MiB: {}",
                fmt_mb(idle.anon),
                fmt_mb(idle.file),
                verdict(idle.rss <= IDLE_GOAL_MIB << 20)
            ),
        ),
        row(
            "daemon RSS, 100 sidecars",
            first.rss,
            format!(
                "after the 1st start of 100 independent ones (RssAnon {}; {} after all start-up rounds)",
                fmt_mb(first.anon),
                fmt_mb(cycled.rss)
            ),
        ),
    ]
}
