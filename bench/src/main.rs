//! `pm-bench`: measures pm against references it builds itself, in one run, and prints three
//! tables: the measures, the mesh (DESIGN §7), and the scaling table. Build and run with
//! `cargo build --release -p pm-bench -p pm-daemon && target/release/pm-bench`.
//! `pm-bench mesh`, `pm-bench idle`, `pm-bench noisy`, `pm-bench logs`, `pm-bench health` and
//! `pm-bench scale` run one part alone; `--quick` runs every part at smoke sizes, in seconds.

mod binary;
mod caller;
mod graph;
mod health;
mod idle;
mod logs;
mod mesh;
mod noisy;
mod pm;
mod restart;
mod rss;
mod scale;
mod startup;
mod status;

use anyhow::bail;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One line of the table.
pub struct Row {
    pub measure: String,
    pub pm: String,
    pub reference: String,
    pub ratio: String,
    pub note: String,
}

/// A table of its own (the mesh's, the scaling one): a title, columns, rows and notes below.
pub struct Table {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// The columns that hold words (left-aligned); the others hold figures.
    pub words: Vec<usize>,
    pub notes: Vec<String>,
}

impl Table {
    fn print(&self) {
        println!("{}", self.title);
        println!();
        let cells: Vec<Vec<&str>> = self.rows.iter().map(|r| r.iter().map(String::as_str).collect()).collect();
        let header: Vec<&str> = self.header.iter().map(String::as_str).collect();
        print_grid(&header, &cells, &self.words);
        for note in &self.notes {
            println!("- {note}");
        }
    }
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
    Scale,
}

impl Part {
    /// The sidecars left defined when `pm stop pm` runs.
    fn sidecars_left(self) -> usize {
        match self {
            Part::All => 101,
            Part::Idle => idle::SIDECARS,
            // The health measure deletes its sidecars again; the scaling part runs in a home of its own.
            Part::Mesh | Part::Noisy | Part::Logs | Part::Health | Part::Scale => 0,
        }
    }
}

const USAGE: &str = "usage: pm-bench [mesh | idle | noisy | logs | health | scale] [--quick] [--max N]
                [--idle-seconds N] [--log-mb N]
  mesh, idle, noisy, logs, health, scale: only that part; the idle window (also health's CPU window) is N s
  (or PM_BENCH_IDLE_SECONDS), default 30; the log that `pm log` reads is N MB (or PM_BENCH_LOG_MB), default 1000;
  the scaling table goes up to N sidecars (--max), default 1000, 10000 with `scale`;
  --quick: every part at smoke sizes (N = 10, 1 round, idle window 1 s, log 1 MB), to see that it runs";

/// A count or length of a measure: `full` in a normal run, `quick` under `--quick`.
#[derive(Clone, Copy)]
pub struct Size<T> {
    full: T,
    quick: T,
}

/// Set once, before any measure, by `--quick`.
static QUICK: AtomicBool = AtomicBool::new(false);

impl<T: Copy> Size<T> {
    pub const fn new(full: T, quick: T) -> Size<T> {
        Size { full, quick }
    }

    pub fn get(self) -> T {
        if QUICK.load(Ordering::Relaxed) { self.quick } else { self.full }
    }
}

/// What to run, and how long or large.
#[derive(Clone, Copy)]
struct Options {
    part: Part,
    /// The idle measure's window.
    window: Duration,
    /// The size of the log measure's log, in MB.
    log_mb: u64,
    /// The scaling table's largest N.
    max: usize,
}

fn options() -> anyhow::Result<Options> {
    let mut part = Part::All;
    let (mut window, mut log_mb, mut max) = (None, None, None);
    if let Ok(n) = std::env::var("PM_BENCH_IDLE_SECONDS") {
        window = Some(seconds(&n)?);
    }
    if let Ok(n) = std::env::var("PM_BENCH_LOG_MB") {
        log_mb = Some(megabytes(&n)?);
    }
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "mesh" if part == Part::All => part = Part::Mesh,
            "idle" if part == Part::All => part = Part::Idle,
            "noisy" if part == Part::All => part = Part::Noisy,
            "logs" if part == Part::All => part = Part::Logs,
            "health" if part == Part::All => part = Part::Health,
            "scale" if part == Part::All => part = Part::Scale,
            "--quick" => QUICK.store(true, Ordering::Relaxed),
            "--idle-seconds" => window = Some(seconds(&args.next().unwrap_or_default())?),
            "--log-mb" => log_mb = Some(megabytes(&args.next().unwrap_or_default())?),
            "--max" => max = Some(sidecars(&args.next().unwrap_or_default())?),
            _ => bail!("unexpected argument {arg:?}"),
        }
    }
    // The defaults depend on --quick, which may come last.
    let largest = if part == Part::Scale { scale::LARGEST } else { scale::DEFAULT_MAX };
    Ok(Options {
        part,
        window: window.unwrap_or(idle::DEFAULT_WINDOW.get()),
        log_mb: log_mb.unwrap_or(logs::DEFAULT_MB.get()),
        max: max.unwrap_or(largest),
    })
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

fn sidecars(text: &str) -> anyhow::Result<usize> {
    text.parse::<usize>()
        .ok()
        .filter(|&n| n >= scale::SMALLEST)
        .ok_or_else(|| anyhow::anyhow!("--max takes a number of sidecars, at least {}, not {text:?}", scale::SMALLEST))
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
    match raise_open_files() {
        Ok(limit) => progress(&format!("open-file limit {limit} (the daemon and the sidecars inherit it)")),
        Err(e) => progress(&format!("warning: cannot raise the open-file limit: {e}")),
    }
    // The scaling table's Ns, checked before anything runs.
    let ns = match matches!(opts.part, Part::All | Part::Scale).then(|| scale::sizes(opts.max)).transpose() {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!("pm-bench: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if opts.part != Part::Scale && !in_home(async |pm: &pm::Pm| bench(pm, opts).await).await {
        return ExitCode::FAILURE;
    }
    // In a home of its own: a fresh daemon, whose memory the other measures have not grown.
    if let Some(ns) = ns
        && !in_home(async |pm: &pm::Pm| scale_part(pm, opts.part, &ns).await).await
    {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Runs `part` with a fresh PM_HOME (and its daemon), until it ends or Ctrl-C; says whether it
/// succeeded, and keeps the home to look into if not.
async fn in_home(part: impl AsyncFnOnce(&pm::Pm) -> anyhow::Result<()>) -> bool {
    let mut pm = match pm::Pm::new() {
        Ok(pm) => pm,
        Err(e) => {
            eprintln!("pm-bench: {e:#}");
            return false;
        }
    };
    let outcome = tokio::select! {
        outcome = part(&pm) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    if let Err(e) = &outcome {
        eprintln!("pm-bench: {e:#}");
        eprintln!("pm-bench: keeping {} (PM_HOME is its home/ dir) to look into", pm.keep_files().display());
    }
    // Dropping `pm` stops the daemon if the part did not, and kills whatever is left of it.
    drop(pm);
    outcome.is_ok()
}

/// Raises the open-file limit as far as it may go: with privileges the hard limit too, up to
/// fs.nr_open, else the soft limit to the hard one. The mesh's 256 callers per path (and the
/// proxy and echo sidecar, which inherit it) hold more connections than a soft limit of 1,024
/// allows, and the daemon, which raises its soft limit to the hard one, holds several files per
/// sidecar: more at 10,000 sidecars than a common hard limit of 20,000 (the scaling table gives
/// its count). Returns the limit.
fn raise_open_files() -> nix::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|n| n.trim().parse().ok());
    if let Some(max) = nr_open
        && setrlimit(Resource::RLIMIT_NOFILE, max, max).is_ok()
    {
        return Ok(max);
    }
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    Ok(hard)
}

async fn bench(pm: &pm::Pm, opts: Options) -> anyhow::Result<()> {
    let part = opts.part;
    let (rows, mesh) = measure(pm, opts).await?;
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
        mesh.print();
    }
    stopped.map(|_| ())
}

/// The scaling table, with a daemon of its own, then its summary rows.
async fn scale_part(pm: &pm::Pm, part: Part, ns: &[usize]) -> anyhow::Result<()> {
    announce(pm).await?;
    let daemon = pm.start_daemon(&[]).await?;
    progress(&format!("scale: daemon started (pid {daemon})"));
    let (table, rows) = scale::measure(pm, ns).await?;
    pm.shutdown().await?;
    if part == Part::All {
        println!();
    }
    table.print();
    if !rows.is_empty() {
        println!();
        print_table(&rows);
    }
    Ok(())
}

/// Says which pm is measured, on how many CPUs, with which PM_HOME.
async fn announce(pm: &pm::Pm) -> anyhow::Result<()> {
    let version = pm.run(&["--version"], Duration::from_secs(10)).await?;
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    progress(&format!(
        "{} ({}), {cpus} CPUs, PM_HOME {}",
        String::from_utf8_lossy(&version.stdout).trim(),
        pm.bin().display(),
        pm.home().display()
    ));
    Ok(())
}

/// The measures of `part`: the rows of the first table, and the mesh's table.
async fn measure(pm: &pm::Pm, opts: Options) -> anyhow::Result<(Vec<Row>, Option<Table>)> {
    let Options { part, window, log_mb, .. } = opts;
    announce(pm).await?;
    // The mesh measures call the daemon over tcp too.
    let [tcp_port] = mesh::free_ports()?;
    let daemon = pm.start_daemon(&[&format!("tcp://127.0.0.1:{tcp_port}")]).await?;
    progress(&format!("daemon started (pid {daemon}), also listening on tcp port {tcp_port}"));
    match part {
        Part::All => {}
        Part::Scale => bail!("the scaling table runs in a PM_HOME of its own (`scale_part`), not here"),
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
    rows.extend(binary::measure(pm).await?);
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

/// A size in the unit that suits it: `12.3 kB`, `4.5 MB`, `1.0 GB`.
pub fn fmt_bytes(bytes: u64) -> String {
    match bytes {
        ..1_000_000 => format!("{:.1} kB", bytes as f64 / 1e3),
        1_000_000..1_000_000_000 => fmt_mb(bytes),
        _ => format!("{:.1} GB", bytes as f64 / 1e9),
    }
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

/// Whether a goal was reached, in the table's words.
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// `goal ≤ 1.5x: met` for the ratio of `pm` to `reference`.
pub fn ratio_goal(pm: Duration, reference: Duration, goal: f64) -> String {
    format!("goal ≤ {goal}x: {}", verdict(within_goal(pm, reference, goal)))
}

pub fn within_goal(pm: Duration, reference: Duration, goal: f64) -> bool {
    pm.as_secs_f64() <= goal * reference.as_secs_f64()
}

/// A count with thousands separators: `10,000`.
pub fn fmt_count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
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
