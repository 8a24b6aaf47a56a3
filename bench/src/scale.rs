//! The scaling table: start-up, `pm status`, `pm stop --all`, `pm stop pm` and the daemon's
//! memory at N = 10, 100, 1,000 sidecars (and 10,000 with `pm-bench scale`), in the three shapes
//! of `graph`, each start beside the bare spawner's floor for the same graph. Then the rows the
//! issue sets goals for: memory per sidecar (the slope of the daemon's RSS over N, flat), RSS at
//! 1,000 flat, and `pm stop pm` dense against flat.
//!
//! Per (N, shape), on a freshly started daemon with nothing defined (so that its memory is that
//! of this graph alone, not what earlier ones left in its heap): `pm start -f pm.toml` (it
//! answers once all are ready; checked through pm.status), the daemon's memory, `pm status`,
//! then at the largest N up to 1,000 (flat and dense) `pm stop pm` with all running, after which
//! the daemon is started again and brings them back; `pm stop --all`, `pm delete --all`
//! (checked: nothing left), and last the floor, on a machine without pm's N.

use crate::graph::{Graph, Shape};
use crate::pm::{Pm, open_files, within};
use crate::rss::Memory;
use crate::{
    Row, Size, Table, fmt_bytes, fmt_count, fmt_duration, fmt_mb, median, progress, ratio, ratio_goal, verdict,
    within_goal,
};
use anyhow::{Context, bail};
use nix::sys::resource::{Resource, getrlimit};
use pm_client::PmApiClient;
use pm_protocol::InstanceStatus;
use std::time::{Duration, Instant};

/// The Ns: all of them, and `--quick`'s.
const SIZES: Size<&[usize]> = Size::new(&[10, 100, 1000, 10_000], &[10]);
pub const SMALLEST: usize = 10;
/// The largest N of a full run, and of `pm-bench scale`.
pub const DEFAULT_MAX: usize = 1000;
pub const LARGEST: usize = 10_000;
/// `pm stop pm` is timed at the largest N up to this.
const STOP_PM_MAX: usize = 1000;
const STATUS_RUNS: Size<usize> = Size::new(5, 1);
/// The daemon's longest frame by default (`pm daemon --max-frame`): a project file much larger
/// than this cannot be sent in one `pm.sync`.
const FRAME_LIMIT: u64 = 16 << 20;
/// The goals: start within this of the floor at 1,000 and up, per shape.
const START_GOALS: [(Shape, f64); 3] = [(Shape::Flat, 2.0), (Shape::Sparse, 2.0), (Shape::Dense, 3.0)];
const GOALS_FROM: usize = 1000;
/// `pm stop pm` dense against flat; memory per sidecar (KiB); RSS at 1,000 flat (MB).
const STOP_PM_GOAL: f64 = 1.5;
const PER_SIDECAR_GOAL_KIB: f64 = 16.0;
const RSS_1000_GOAL_MB: u64 = 30;

/// What one (N, shape) gave.
struct Measured {
    graph: Graph,
    /// `Err`: why pm did not start it (the project file was refused).
    figures: Result<Figures, String>,
}

struct Figures {
    start: Duration,
    floor: Duration,
    status: Duration,
    stop_all: Duration,
    stop_pm: Option<Duration>,
    memory: Memory,
    /// The daemon's open files.
    files: usize,
}

/// The Ns up to `max`; fails, naming the limit, if the machine has no room for the largest (so
/// that a run that cannot reach it says so before it starts).
pub fn sizes(max: usize) -> anyhow::Result<Vec<usize>> {
    let ns: Vec<usize> = SIZES.get().iter().copied().filter(|&n| n <= max).collect();
    if let Some(&largest) = ns.last() {
        check_room(largest)?;
    }
    Ok(ns)
}

/// The table and the rows, for each of `ns`, on the running daemon (which must have nothing
/// defined).
pub async fn measure(pm: &Pm, ns: &[usize]) -> anyhow::Result<(Table, Vec<Row>)> {
    let stop_pm_at = ns.iter().copied().filter(|&n| n <= STOP_PM_MAX).max();
    let mut measured: Vec<Measured> = Vec::new();
    for &n in ns {
        for shape in Shape::ALL {
            if !measured.is_empty() {
                restart_daemon(pm).await?;
            }
            let graph = Graph { shape, n };
            let stop_pm = stop_pm_at == Some(n) && shape != Shape::Sparse;
            let figures = one(pm, graph, stop_pm).await.with_context(|| format!("scale: {}", graph.describe()))?;
            measured.push(Measured { graph, figures });
        }
    }
    Ok((table(&measured), rows(&measured)))
}

/// How long any one command may take with `n` sidecars.
fn limit(n: usize) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(30) * n as u32
}

/// One row, `pm stop pm` timed too if `stop_pm`; `Ok(Err(why))` if pm refused the project file.
async fn one(pm: &Pm, graph: Graph, stop_pm: bool) -> anyhow::Result<Result<Figures, String>> {
    let limit = limit(graph.n);
    let (file, size) = graph.write(pm)?;
    progress(&format!("scale: {}: pm start -f ({} project file)", graph.describe(), fmt_bytes(size)));
    let start = match pm.run_timed(&["start", "-f", &file], limit).await {
        Ok((_, took)) => took,
        Err(e) if size > FRAME_LIMIT => {
            let why = format!(
                "not run: the {} project file is over the daemon's {} MiB frame limit (`pm daemon --max-frame`): {e:#}",
                fmt_bytes(size),
                FRAME_LIMIT >> 20
            );
            progress(&format!("scale: {why}"));
            clear(pm, limit).await?;
            return Ok(Err(why));
        }
        Err(e) => return Err(e),
    };
    graph.check_ready(&pm.client().await?).await.context("after pm start -f")?;
    let memory = crate::rss::sample(pm).await?;
    let files = open_files(pm.daemon_pid())?;
    let status = status(pm, graph.n, limit).await?;
    let stop_pm = if stop_pm { Some(time_stop_pm(pm, graph, limit).await?) } else { None };
    let (_, stop_all) = pm.run_timed(&["stop", "--all"], limit).await?;
    let running = statuses(pm, limit).await?.into_iter().filter(|s| s.state.is_active() || s.pid.is_some()).count();
    if running > 0 {
        bail!("after pm stop --all, {running} instances still run");
    }
    clear(pm, limit).await?;
    let floor = graph.spawn_floor()?;
    progress(&format!(
        "scale: {}: start {} (floor {}, {}), pm status {}, stop --all {}{}, RSS {} (RssAnon {}), {files} open files",
        graph.describe(),
        fmt_duration(start),
        fmt_duration(floor),
        ratio(start, floor),
        fmt_duration(status),
        fmt_duration(stop_all),
        stop_pm.map_or(String::new(), |d| format!(", pm stop pm {}", fmt_duration(d))),
        fmt_mb(memory.rss),
        fmt_mb(memory.anon)
    ));
    Ok(Ok(Figures { start, floor, status, stop_all, stop_pm, memory, files }))
}

async fn statuses(pm: &Pm, limit: Duration) -> anyhow::Result<Vec<InstanceStatus>> {
    Ok(within(limit, "pm.status", pm.client().await?.daemon().status(None)).await??)
}

/// The median `pm status` of all `n`, as a user runs it (a real CLI process); checks that it
/// lists them all.
async fn status(pm: &Pm, n: usize, limit: Duration) -> anyhow::Result<Duration> {
    let (out, _) = pm.run_timed(&["status"], limit).await?;
    let lines = String::from_utf8_lossy(&out.stdout).lines().count();
    if lines <= n {
        bail!("`pm status` printed {lines} lines, expected a header and {n} sidecars");
    }
    let mut times = Vec::new();
    for _ in 0..STATUS_RUNS.get() {
        times.push(pm.run_timed(&["status"], limit).await?.1);
    }
    Ok(median(&times))
}

/// `pm stop pm`, checking that nothing of the home is left, then `pm start pm`; returns how
/// long the stop took.
async fn restart_daemon(pm: &Pm) -> anyhow::Result<Duration> {
    let took = pm.shutdown().await?;
    pm.start_daemon(&[]).await?;
    Ok(took)
}

/// [`restart_daemon`] with all of `graph` running, then waits until the daemon has brought them
/// all back. Returns how long the stop took.
async fn time_stop_pm(pm: &Pm, graph: Graph, limit: Duration) -> anyhow::Result<Duration> {
    let took = restart_daemon(pm).await?;
    let client = pm.client().await?;
    let deadline = Instant::now() + limit;
    while let Err(e) = graph.check_ready(&client).await {
        if Instant::now() > deadline {
            return Err(e.context(format!("{limit:?} after the daemon started again")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(took)
}

/// `pm delete --all`, then checks that the daemon has no instance left.
async fn clear(pm: &Pm, limit: Duration) -> anyhow::Result<()> {
    if !statuses(pm, limit).await?.is_empty() {
        pm.run(&["delete", "--all", "--force"], limit).await?;
    }
    let left = statuses(pm, limit).await?.len();
    if left > 0 {
        bail!("after pm delete --all, the daemon still has {left} instances");
    }
    Ok(())
}

/// Fails, naming the limit, unless the machine has room for `n` more processes (pm's sidecars;
/// the floor's run after they are gone), and some to spare for the daemon and the harness.
fn check_room(n: usize) -> anyhow::Result<()> {
    let need = n as u64 + n as u64 / 10 + 100;
    let number = |path: &str| std::fs::read_to_string(path).ok()?.trim().parse::<u64>().ok();
    // Threads count too; /proc/loadavg's fourth field is `running/all` of them.
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let tasks = loadavg.split_whitespace().nth(3).and_then(|f| f.split_once('/')?.1.parse().ok()).unwrap_or(0);
    // What limits, its value, and how many more processes it leaves room for.
    let mut limits: Vec<(String, u64, u64)> = Vec::new();
    for (what, path) in
        [("kernel.pid_max", "/proc/sys/kernel/pid_max"), ("kernel.threads-max", "/proc/sys/kernel/threads-max")]
    {
        if let Some(value) = number(path) {
            limits.push((what.into(), value, value.saturating_sub(tasks)));
        }
    }
    if !nix::unistd::geteuid().is_root() {
        let (soft, _) = getrlimit(Resource::RLIMIT_NPROC)?;
        limits.push(("RLIMIT_NPROC (ulimit -u)".into(), soft, soft.saturating_sub(tasks)));
    }
    // The daemon raises its soft limit to this, and holds two log files per sidecar at least.
    let (_, files) = getrlimit(Resource::RLIMIT_NOFILE)?;
    limits.push(("RLIMIT_NOFILE's hard limit (ulimit -Hn), at two files per sidecar,".into(), files, files / 2));
    for line in std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default().lines() {
        let dir = match line.splitn(3, ':').collect::<Vec<_>>()[..] {
            ["0", "", path] => format!("/sys/fs/cgroup{path}"),
            [_, "pids", path] => format!("/sys/fs/cgroup/pids{path}"),
            _ => continue,
        };
        // `max` (no limit) does not parse.
        if let (Some(max), Some(current)) = (number(&format!("{dir}/pids.max")), number(&format!("{dir}/pids.current")))
        {
            limits.push((format!("the cgroup's {dir}/pids.max"), max, max.saturating_sub(current)));
        }
    }
    for (what, value, room) in limits {
        if room < need {
            bail!(
                "scale: N = {} needs room for {} more processes (some to spare), but {what} is {value}, which \
                 leaves room for {}: raise it, or pass --max to stay below",
                fmt_count(n),
                fmt_count(need as usize),
                fmt_count(room as usize)
            );
        }
    }
    Ok(())
}

fn table(measured: &[Measured]) -> Table {
    let mut rows = Vec::new();
    for m in measured {
        let (n, shape) = (fmt_count(m.graph.n), m.graph.shape.name().to_string());
        let row = match &m.figures {
            Ok(f) => {
                let goal = START_GOALS.iter().find(|(s, _)| *s == m.graph.shape).map(|&(_, goal)| goal);
                let goal = match goal.filter(|_| m.graph.n >= GOALS_FROM) {
                    Some(goal) => format!("≤ {goal}x: {}", verdict(within_goal(f.start, f.floor, goal))),
                    None => "-".into(),
                };
                vec![
                    n,
                    shape,
                    fmt_duration(f.start),
                    fmt_duration(f.floor),
                    ratio(f.start, f.floor),
                    goal,
                    fmt_duration(f.status),
                    fmt_duration(f.stop_all),
                    f.stop_pm.map_or("-".into(), fmt_duration),
                    fmt_mb(f.memory.rss),
                    fmt_mb(f.memory.anon),
                    fmt_count(f.files),
                    String::new(),
                ]
            }
            Err(why) => {
                let mut row = vec![n, shape, "refused".into()];
                row.extend((0..9).map(|_| "-".to_string()));
                row.push(why.clone());
                row
            }
        };
        rows.push(row);
    }
    let status_runs = STATUS_RUNS.get();
    Table {
        title: "scale: N `sleep 1000` sidecars (ready=started), flat, sparse DAG and dense DAG".into(),
        header: [
            "N",
            "shape",
            "start",
            "floor",
            "ratio",
            "goal",
            "`pm status`",
            "stop --all",
            "`pm stop pm`",
            "RSS",
            "RssAnon",
            "open files",
            "note",
        ]
        .map(str::to_string)
        .into(),
        rows,
        words: vec![1, 5, 12],
        notes: vec![
            "start: `pm start -f pm.toml` until it answers, all ready (checked through pm.status); floor: the \
             harness spawns the same N `sleep 1000` itself in dependency order, each exec done before the next, \
             after pm's are gone; one run each"
                .into(),
            "sparse DAG: a binary tree, sidecar i on sidecar (i-1)/2; dense DAG: levels of min(200, N/5), each \
             sidecar on all of the level below (N = 1,000: 5 levels of 200)"
                .into(),
            format!(
                "with all N running: `pm status`, median of {status_runs} real CLI runs; RSS and RssAnon of the \
                 daemon, started afresh for each row, and its open files; `pm stop pm` (at the largest N up to {}, flat and dense; the \
                 daemon is started again after it and brings them back); then `pm stop --all`, and `pm delete \
                 --all` before the next",
                fmt_count(STOP_PM_MAX)
            ),
            format!(
                "goals (the issue's), from N = {}: start within {}x of the floor flat, {}x sparse, {}x dense",
                fmt_count(GOALS_FROM),
                START_GOALS[0].1,
                START_GOALS[1].1,
                START_GOALS[2].1
            ),
        ],
    }
}

fn rows(measured: &[Measured]) -> Vec<Row> {
    let ran = |shape: Shape| {
        measured
            .iter()
            .filter(move |m| m.graph.shape == shape)
            .filter_map(|m| Some((m.graph.n, m.figures.as_ref().ok()?)))
    };
    let mut rows = Vec::new();
    let flat: Vec<(usize, &Figures)> = ran(Shape::Flat).collect();
    let ns: Vec<String> = flat.iter().map(|(n, _)| fmt_count(*n)).collect();
    let kib = |bytes: f64| format!("{:.1} KiB", bytes / 1024.0);
    let slope_of = |memory: fn(&Memory) -> u64| {
        slope(&flat.iter().map(|(n, f)| (*n as f64, memory(&f.memory) as f64)).collect::<Vec<_>>())
    };
    rows.push(match (slope_of(|m| m.rss), slope_of(|m| m.anon)) {
        (Some(rss), Some(anon)) => Row {
            measure: "memory per sidecar".into(),
            pm: kib(rss),
            reference: "-".into(),
            ratio: "-".into(),
            note: format!(
                "goal ≤ {PER_SIDECAR_GOAL_KIB} KiB: {}; slope of the daemon's VmRSS over N = {} flat (least squares); \
                 RssAnon's: {}; supervisord ~21 KiB, quoted, not measured here",
                verdict(rss <= PER_SIDECAR_GOAL_KIB * 1024.0),
                ns.join(", "),
                kib(anon)
            ),
        },
        _ => Row {
            measure: "memory per sidecar".into(),
            pm: "-".into(),
            reference: "-".into(),
            ratio: "-".into(),
            note: match ns.as_slice() {
                [] => "needs flat at two N at least; none ran".into(),
                _ => format!("needs flat at two N at least; ran at N = {} only", ns.join(", ")),
            },
        },
    });
    if let Some((_, f)) = flat.iter().find(|(n, _)| *n == 1000) {
        rows.push(Row {
            measure: "daemon RSS, 1,000 flat".into(),
            pm: fmt_mb(f.memory.rss),
            reference: "-".into(),
            ratio: "-".into(),
            note: format!(
                "goal ≤ {RSS_1000_GOAL_MB} MB: {}; VmRSS with all 1,000 running (RssAnon {}, RssFile {})",
                verdict(f.memory.rss <= RSS_1000_GOAL_MB * 1_000_000),
                fmt_mb(f.memory.anon),
                fmt_mb(f.memory.file)
            ),
        });
    }
    let stop_pm = |shape| ran(shape).find_map(|(n, f)| Some((n, f.stop_pm?)));
    if let (Some((n, dense)), Some((_, flat))) = (stop_pm(Shape::Dense), stop_pm(Shape::Flat)) {
        rows.push(Row {
            measure: format!("`pm stop pm`, {}, dense DAG vs flat", fmt_count(n)),
            pm: fmt_duration(dense),
            reference: fmt_duration(flat),
            ratio: ratio(dense, flat),
            note: format!(
                "{}; `pm stop pm` with all running, until it answers and nothing of PM_HOME is left; ref: the same \
                 with {} flat",
                ratio_goal(dense, flat, STOP_PM_GOAL),
                fmt_count(n)
            ),
        });
    }
    rows
}

/// The least-squares slope of y over x; None with fewer than two distinct x.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let count = points.len() as f64;
    let (mean_x, mean_y) = points.iter().fold((0.0, 0.0), |(x, y), p| (x + p.0 / count, y + p.1 / count));
    let (mut covariance, mut variance) = (0.0, 0.0);
    for (x, y) in points {
        covariance += (x - mean_x) * (y - mean_y);
        variance += (x - mean_x) * (x - mean_x);
    }
    (variance > 0.0).then(|| covariance / variance)
}

#[cfg(test)]
mod tests {
    use super::slope;

    #[test]
    fn slope_is_least_squares() {
        assert_eq!(slope(&[(10.0, 1.0)]), None);
        let line: Vec<(f64, f64)> = [10.0, 100.0, 1000.0].iter().map(|&x| (x, 3.0 * x + 7.0)).collect();
        assert!((slope(&line).unwrap_or_default() - 3.0).abs() < 1e-9);
    }
}
