//! Measure 3: the `pm status` CLI round trip with the 100 sidecars, as a user runs it: a fresh
//! process that connects, asks, prints the table and exits. Reference: `pm --version` from the
//! same binary, the cost of starting that process at all.

use crate::pm::Pm;
use crate::{Row, Size, fmt_duration, median, progress, quantile, ratio};
use anyhow::bail;
use std::time::Duration;

const WARMUP: Size<usize> = Size::new(5, 1);
const RUNS: Size<usize> = Size::new(50, 3);

pub async fn measure(pm: &Pm) -> anyhow::Result<Vec<Row>> {
    let runs = RUNS.get();
    for _ in 0..WARMUP.get() {
        pm.run(&["status"], Duration::from_secs(10)).await?;
        pm.run(&["--version"], Duration::from_secs(10)).await?;
    }
    // Interleaved, so that both see the same machine.
    let (mut status, mut version) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        status.push(pm.run_timed(&["status"], Duration::from_secs(10)).await?.1);
        version.push(pm.run_timed(&["--version"], Duration::from_secs(10)).await?.1);
    }
    let (out, _) = pm.run_timed(&["status"], Duration::from_secs(10)).await?;
    let lines = String::from_utf8_lossy(&out.stdout).lines().count();
    if lines < 101 {
        bail!("`pm status` printed {lines} lines, expected a header and 100 sidecars");
    }
    progress(&format!(
        "pm status: median {}, p95 {}, max {}",
        fmt_duration(median(&status)),
        fmt_duration(quantile(&status, 0.95)),
        fmt_duration(quantile(&status, 1.0))
    ));
    let row = |what: &str, q: f64, note: String| {
        let (p, r) = (quantile(&status, q), quantile(&version, q));
        Row {
            measure: format!("`pm status` round trip, 100 sidecars, {what}"),
            pm: fmt_duration(p),
            reference: fmt_duration(r),
            ratio: ratio(p, r),
            note,
        }
    };
    Ok(vec![
        row(
            "median",
            0.5,
            format!(
                "real CLI process, {runs} runs; ref: `pm --version` (process start floor); \
                 PM2 `pm2 ls` ~0.3-0.4 s quoted, not measured here"
            ),
        ),
        row("p95", 0.95, format!("same {runs} runs; ref: p95 of `pm --version`")),
    ])
}
