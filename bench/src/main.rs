//! `pm-bench`: measures pm against references it builds itself, in one run, and prints one table
//! (DESIGN §7). Build and run with
//! `cargo build --release -p pm-bench -p pm-daemon && target/release/pm-bench`.

mod pm;
mod restart;
mod rss;
mod startup;
mod status;

use anyhow::bail;
use std::process::ExitCode;
use std::time::Duration;

/// One line of the table.
pub struct Row {
    pub measure: String,
    pub pm: String,
    pub reference: String,
    pub ratio: String,
    pub note: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut pm = match pm::Pm::new() {
        Ok(pm) => pm,
        Err(e) => {
            eprintln!("pm-bench: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = bench(&pm).await;
    if let Err(e) = &outcome {
        eprintln!("pm-bench: {e:#}");
        eprintln!("pm-bench: keeping {} (PM_HOME is its home/ dir) to look into", pm.keep_files().display());
    }
    // Dropping `pm` stops the daemon if `bench` did not, and kills whatever is left of it.
    drop(pm);
    if outcome.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

async fn bench(pm: &pm::Pm) -> anyhow::Result<()> {
    let rows = tokio::select! {
        rows = measure(pm) => rows?,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    };
    progress("stopping everything (pm stop pm)");
    let stopped = pm.shutdown().await;
    if let Ok(took) = &stopped {
        progress(&format!("pm stop pm took {} with 101 sidecars", fmt_duration(*took)));
    }
    print_table(&rows);
    stopped.map(|_| ())
}

async fn measure(pm: &pm::Pm) -> anyhow::Result<Vec<Row>> {
    let version = pm.run(&["--version"], Duration::from_secs(10)).await?;
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    progress(&format!(
        "{} ({}), {cpus} CPUs, PM_HOME {}",
        String::from_utf8_lossy(&version.stdout).trim(),
        pm.bin().display(),
        pm.home().display()
    ));
    let daemon = pm.start_daemon().await?;
    progress(&format!("daemon started (pid {daemon})"));
    let client = pm.client().await?;
    let idle = rss::sample(pm).await?;
    let (mut rows, first) = startup::measure(pm, &client).await?;
    let cycled = rss::sample(pm).await?;
    rows.extend(rss::rows(idle, first, cycled));
    rows.extend(status::measure(pm).await?);
    rows.extend(restart::measure(pm, &client).await?);
    Ok(rows)
}

pub fn progress(what: &str) {
    eprintln!("pm-bench: {what}");
}

/// The value at quantile `q` (0..=1, nearest rank) of `samples`.
pub fn quantile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().unwrap_or_default()
}

pub fn median(samples: &[Duration]) -> Duration {
    quantile(samples, 0.5)
}

pub fn fmt_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 1e6 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

pub fn fmt_mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub fn fmt_ratio(ratio: f64) -> String {
    if ratio >= 100.0 {
        format!("{ratio:.0}x")
    } else if ratio >= 10.0 {
        format!("{ratio:.1}x")
    } else {
        format!("{ratio:.2}x")
    }
}

pub fn ratio(pm: Duration, reference: Duration) -> String {
    fmt_ratio(pm.as_secs_f64() / reference.as_secs_f64().max(1e-9))
}

fn print_table(rows: &[Row]) {
    let header = ["measure", "pm", "reference", "ratio", "note"];
    let cells: Vec<[&str; 5]> =
        rows.iter().map(|r| [&*r.measure, &*r.pm, &*r.reference, &*r.ratio, &*r.note]).collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |row: &[&str; 5]| {
        let mut out = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            let pad = " ".repeat(w - cell.chars().count());
            // Figures are right-aligned, words left-aligned; the last column is not padded.
            match i {
                0 => out.push_str(&format!("{cell}{pad}  ")),
                1..=3 => out.push_str(&format!("{pad}{cell}  ")),
                _ => out.push_str(cell),
            }
        }
        println!("{}", out.trim_end());
    };
    line(&header);
    line(&widths.map(|w| "-".repeat(w)).each_ref().map(|s| s.as_str()));
    for row in &cells {
        line(row);
    }
}
