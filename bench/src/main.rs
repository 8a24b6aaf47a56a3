//! `pm-bench`: measures pm against references it builds itself, in one run, and prints two
//! tables, the second one for the mesh (DESIGN §7). Build and run with
//! `cargo build --release -p pm-bench -p pm-daemon && target/release/pm-bench`.

mod caller;
mod mesh;
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
    let only_mesh = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("mesh") => true,
        Some(_) => {
            eprintln!("usage: pm-bench [mesh]   (mesh: only the mesh measures)");
            return ExitCode::FAILURE;
        }
    };
    let mut pm = match pm::Pm::new() {
        Ok(pm) => pm,
        Err(e) => {
            eprintln!("pm-bench: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = bench(&pm, only_mesh).await;
    if let Err(e) = &outcome {
        eprintln!("pm-bench: {e:#}");
        eprintln!("pm-bench: keeping {} (PM_HOME is its home/ dir) to look into", pm.keep_files().display());
    }
    // Dropping `pm` stops the daemon if `bench` did not, and kills whatever is left of it.
    drop(pm);
    if outcome.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

async fn bench(pm: &pm::Pm, only_mesh: bool) -> anyhow::Result<()> {
    let (rows, mesh) = tokio::select! {
        measured = measure(pm, only_mesh) => measured?,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    };
    progress("stopping everything (pm stop pm)");
    let stopped = pm.shutdown().await;
    if let Ok(took) = &stopped {
        let sidecars = if only_mesh { 0 } else { 101 };
        progress(&format!("pm stop pm took {} with {sidecars} sidecars", fmt_duration(*took)));
    }
    if !rows.is_empty() {
        print_table(&rows);
        println!();
    }
    println!("{}", mesh.title);
    println!();
    let cells: Vec<Vec<&str>> = mesh.rows.iter().map(|r| r.iter().map(String::as_str).collect()).collect();
    let header: Vec<&str> = mesh.header.iter().map(String::as_str).collect();
    print_grid(&header, &cells, &[0, 1]);
    for note in &mesh.notes {
        println!("- {note}");
    }
    stopped.map(|_| ())
}

/// Every measure (or only the mesh's); the rows of the first table, and the mesh's table.
async fn measure(pm: &pm::Pm, only_mesh: bool) -> anyhow::Result<(Vec<Row>, mesh::Table)> {
    let version = pm.run(&["--version"], Duration::from_secs(10)).await?;
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    progress(&format!(
        "{} ({}), {cpus} CPUs, PM_HOME {}",
        String::from_utf8_lossy(&version.stdout).trim(),
        pm.bin().display(),
        pm.home().display()
    ));
    // The mesh measures call the daemon over tcp too.
    let [tcp_port] = mesh::free_ports()?;
    let daemon = pm.start_daemon(&[&format!("tcp://127.0.0.1:{tcp_port}")]).await?;
    progress(&format!("daemon started (pid {daemon}), also listening on tcp port {tcp_port}"));
    if only_mesh {
        return Ok((Vec::new(), mesh::measure(pm, tcp_port).await?));
    }
    let client = pm.client().await?;
    let idle = rss::sample(pm).await?;
    let (mut rows, first) = startup::measure(pm, &client).await?;
    let cycled = rss::sample(pm).await?;
    rows.extend(rss::rows(idle, first, cycled));
    rows.extend(status::measure(pm).await?);
    rows.extend(restart::measure(pm, &client).await?);
    let mesh = mesh::measure(pm, tcp_port).await?;
    Ok((rows, mesh))
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
    let cells: Vec<Vec<&str>> =
        rows.iter().map(|r| vec![&*r.measure, &*r.pm, &*r.reference, &*r.ratio, &*r.note]).collect();
    print_grid(&["measure", "pm", "reference", "ratio", "note"], &cells, &[0, 4]);
}

/// Prints a table: the columns in `words` are left-aligned, the others (figures) right-aligned.
fn print_grid(header: &[&str], rows: &[Vec<&str>], words: &[usize]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |row: &[&str]| {
        let mut out = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            let pad = " ".repeat(w - cell.chars().count());
            if words.contains(&i) {
                out.push_str(&format!("{cell}{pad}  "));
            } else {
                out.push_str(&format!("{pad}{cell}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header);
    let rules: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    line(&rules.iter().map(String::as_str).collect::<Vec<_>>());
    for row in rows {
        line(row);
    }
}
