//! Measure 2: the daemon's resident memory (VmRSS), idle and with the 100 sidecars running.
//!
//! There is no reference to run here: PM2's and @akala/pm's figures are quoted for orientation.
//! The figure with sidecars is taken right after their first start; the note adds the figure
//! after all of the start-up measure's stop/start rounds, since the daemon's RSS grows with them.

use crate::pm::{Pm, alive, rss_bytes};
use crate::{Row, fmt_mb, fmt_ratio};
use std::time::Duration;

/// Quoted orientation figures (not measured here), in bytes.
const PM2: u64 = 58_000_000;
const AKALA: u64 = 64_000_000;

/// VmRSS of the daemon after a short pause to let it settle.
pub async fn sample(pm: &Pm) -> anyhow::Result<u64> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = pm.daemon_pid();
    if !alive(pid) {
        anyhow::bail!("the pm daemon (pid {pid}) is gone; see daemon.log in PM_HOME");
    }
    rss_bytes(pid)
}

pub fn rows(idle: u64, first: u64, cycled: u64) -> Vec<Row> {
    let row = |measure: &str, bytes: u64, when: String| Row {
        measure: measure.into(),
        pm: fmt_mb(bytes),
        reference: format!("{} / {}", fmt_mb(PM2), fmt_mb(AKALA)),
        ratio: format!("{} / {}", fmt_ratio(bytes as f64 / PM2 as f64), fmt_ratio(bytes as f64 / AKALA as f64)),
        note: format!("VmRSS of the daemon {when}; ref: PM2 ~58 MB / @akala/pm ~64 MB, quoted, not measured here"),
    };
    vec![
        row("daemon RSS, idle", idle, "just started, no sidecars".into()),
        row(
            "daemon RSS, 100 sidecars",
            first,
            format!("after their 1st start ({} after the 5 start-up rounds)", fmt_mb(cycled)),
        ),
    ]
}
