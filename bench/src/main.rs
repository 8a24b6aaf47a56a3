//! `pm-bench`: measures pm against references it builds itself, in one run, and prints two
//! tables, the second one for the mesh (DESIGN §7). Build and run with
//! `cargo build --release -p pm-bench -p pm-daemon && target/release/pm-bench`.
//! `pm-bench mesh`, `pm-bench idle`, `pm-bench noisy`, `pm-bench logs` and `pm-bench health` run one
//! part alone.

mod caller;
mod health;
mod idle;
mod logs;
mod mesh;
mod noisy;
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

/// Which measures to run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    All,
    Mesh,
    Idle,
    Noisy,
    Logs,
    Health,
}

impl Part {
    /// The sidecars left defined when `pm stop pm` runs.
    fn sidecars_left(self) -> usize {
        match self {
            Part::All => 101,
            Part::Idle => idle::SIDECARS,
            // The health measure deletes its sidecars again.
            Part::Mesh | Part::Noisy | Part::Logs | Part::Health => 0,
        }
    }
}

const USAGE: &str = "usage: pm-bench [mesh | idle | noisy | logs | health] [--idle-seconds N] [--log-mb N]
  mesh, idle, noisy, logs, health: only that part; the idle window (also health's CPU window) is N s
  (or PM_BENCH_IDLE_SECONDS), default 30;
  the log that `pm log` reads is N MB (or PM_BENCH_LOG_MB), default 1000";

/// What to run, and how long or large.
#[derive(Clone, Copy)]
struct Options {
    part: Part,
    /// The idle measure's window.
    window: Duration,
    /// The size of the log measure's log, in MB.
    log_mb: u64,
}

fn options() -> anyhow::Result<Options> {
    let mut part = Part::All;
    let mut window = match std::env::var("PM_BENCH_IDLE_SECONDS") {
        Ok(n) => seconds(&n)?,
        Err(_) => idle::DEFAULT_WINDOW,
    };
    let mut log_mb = match std::env::var("PM_BENCH_LOG_MB") {
        Ok(n) => megabytes(&n)?,
        Err(_) => logs::DEFAULT_MB,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "mesh" if part == Part::All => part = Part::Mesh,
            "idle" if part == Part::All => part = Part::Idle,
            "noisy" if part == Part::All => part = Part::Noisy,
            "logs" if part == Part::All => part = Part::Logs,
            "health" if part == Part::All => part = Part::Health,
            "--idle-seconds" => window = seconds(&args.next().unwrap_or_default())?,
            "--log-mb" => log_mb = megabytes(&args.next().unwrap_or_default())?,
            _ => bail!("unexpected argument {arg:?}"),
        }
    }
    Ok(Options { part, window, log_mb })
}

fn megabytes(text: &str) -> anyhow::Result<u64> {
    text.parse::<u64>()
        .ok()
        .filter(|&mb| (1..=1_000_000).contains(&mb))
        .ok_or_else(|| anyhow::anyhow!("the log size must be a whole number of MB from 1 to 1000000, not {text:?}"))
}

fn seconds(text: &str) -> anyhow::Result<Duration> {
    text.parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| anyhow::anyhow!("the idle window must be a positive number of seconds, not {text:?}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let opts = match options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("pm-bench: {e:#}\n{USAGE}");
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
    let outcome = bench(&pm, opts).await;
    if let Err(e) = &outcome {
        eprintln!("pm-bench: {e:#}");
        eprintln!("pm-bench: keeping {} (PM_HOME is its home/ dir) to look into", pm.keep_files().display());
    }
    // Dropping `pm` stops the daemon if `bench` did not, and kills whatever is left of it.
    drop(pm);
    if outcome.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

async fn bench(pm: &pm::Pm, opts: Options) -> anyhow::Result<()> {
    let part = opts.part;
    let (rows, mesh) = tokio::select! {
        measured = measure(pm, opts) => measured?,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    };
    progress("stopping everything (pm stop pm)");
    let stopped = pm.shutdown().await;
    if let Ok(took) = &stopped {
        progress(&format!("pm stop pm took {} with {} sidecars", fmt_duration(*took), part.sidecars_left()));
    }
    if !rows.is_empty() {
        print_table(&rows);
    }
    if let Some(mesh) = mesh {
        if !rows.is_empty() {
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
    }
    stopped.map(|_| ())
}

/// The measures of `part`: the rows of the first table, and the mesh's table.
async fn measure(pm: &pm::Pm, opts: Options) -> anyhow::Result<(Vec<Row>, Option<mesh::Table>)> {
    let Options { part, window, log_mb } = opts;
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
    match part {
        Part::All => {}
        Part::Mesh => return Ok((Vec::new(), Some(mesh::measure(pm, tcp_port).await?))),
        Part::Noisy => return Ok((noisy::measure(pm).await?, None)),
        Part::Logs => return Ok((logs::measure(pm, log_mb).await?, None)),
        Part::Health => return Ok((health::measure(pm, window).await?, None)),
        Part::Idle => {
            let none = idle::measure(pm, 0, "just started", window).await?;
            idle::start_sleepers(pm).await?;
            let sleepers = format!("{} independent `sleep 100000`, ready=started", idle::SIDECARS);
            return Ok((vec![none, idle::measure(pm, idle::SIDECARS, &sleepers, window).await?], None));
        }
    }
    let client = pm.client().await?;
    let idle = rss::sample(pm).await?;
    let idle_none = idle::measure(pm, 0, "just started", window).await?;
    let (mut rows, first) = startup::measure(pm, &client).await?;
    let cycled = rss::sample(pm).await?;
    let what = format!("start-up's {} `sleep 1000` in 5 levels", startup::SIDECARS);
    let idle_sidecars = idle::measure(pm, startup::SIDECARS, &what, window).await?;
    rows.extend(rss::rows(idle, first, cycled));
    rows.extend([idle_none, idle_sidecars]);
    rows.extend(status::measure(pm).await?);
    rows.extend(restart::measure(pm, &client).await?);
    rows.extend(logs::measure(pm, log_mb).await?);
    // Its sidecars are deleted again: the measures after it see the daemon as it was.
    rows.extend(health::measure(pm, window).await?);
    let mesh = mesh::measure(pm, tcp_port).await?;
    // Last: on a daemon where a peer that does not read stalls the others, it may wedge it.
    rows.extend(noisy::measure(pm).await?);
    Ok((rows, Some(mesh)))
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
