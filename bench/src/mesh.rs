//! Measure 5: the mesh. One `echo` call (params `["hello"]`) to the echo sidecar
//! (`pm-bench-echo`), over unix and over tcp, by three paths:
//! - direct: to the sidecar's own listener;
//! - bare proxy: through `pm-bench-proxy`, which copies bytes between one client connection and
//!   one connection to the sidecar's listener (the physical floor of one hop);
//! - through pm: `echo.echo` to the daemon, which routes it to the sidecar over the connection
//!   the sidecar registered on (reverse mode).
//!
//! Over tcp every hop is tcp: the proxy reaches the sidecar over tcp, and the routed sidecar
//! (`echo-tcp`) registered over the daemon's tcp listener. One more row calls pm over tcp with
//! the sidecar on the daemon's unix socket (`echo.echo`, as pm starts sidecars by default).
//!
//! Two figures per path, with the same client code (`caller`): sequential latency (one
//! connection, one call at a time; p50 and p99) and throughput with [`CALLERS`] connections each
//! making one call at a time. The paths take turns (rounds), so that all see the same machine.
//! During the throughput rounds the harness also reads the CPU time (`/proc/PID/task/*/schedstat`)
//! of the client (itself), the hop (the daemon or the proxy) and the sidecar: CPU per call shows
//! where the time goes, whatever the scheduling noise of the machine.

use crate::caller::{Caller, Endpoint};
use crate::pm::{Pm, field_sum, within};
use crate::{fmt_duration, fmt_ratio, progress, quantile};
use anyhow::{Context, anyhow, bail};
use pm_client::PmApiClient;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;
use tokio::task::JoinSet;

const PARAMS: &str = r#"["hello"]"#;
/// Sequential calls per path: warm-up, then ROUNDS × PER_ROUND timed.
const WARMUP: usize = 500;
const ROUNDS: usize = 50;
const PER_ROUND: usize = 100;
/// Throughput: CALLERS connections, LOAD_ROUNDS turns per path of a warm-up and a window.
const CALLERS: usize = 32;
const LOAD_ROUNDS: usize = 4;
const LOAD_WARMUP: Duration = Duration::from_millis(100);
const LOAD_WINDOW: Duration = Duration::from_millis(500);
/// The sidecars the mesh measures define, start and delete again.
const SIDECARS: [&str; 3] = ["echo", "echo-tcp", "echo-task"];

/// The issue's goals for a call through pm, against the bare proxy.
const P50_GOAL: f64 = 1.3;
const RATE_GOAL: f64 = 0.8;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    Direct,
    Proxy,
    Pm,
}

struct Route {
    transport: &'static str,
    via: Via,
    what: &'static str,
    endpoint: Endpoint,
    method: &'static str,
    /// pm over tcp: `pm.auth` with the daemon's token first.
    token: Option<String>,
    /// The hop's process (the daemon or the proxy) and the sidecar's, for their CPU time.
    hop_pid: Option<u32>,
    sidecar_pid: u32,
}

impl Route {
    async fn connect(&self) -> anyhow::Result<Caller> {
        let what = format!("connecting to {} ({})", self.endpoint, self.name());
        within(Duration::from_secs(5), &what, Caller::connect(&self.endpoint, self.method, self.token.as_deref()))
            .await?
            .with_context(|| what.clone())
    }

    fn name(&self) -> String {
        format!("{} {}", self.transport, self.what)
    }
}

struct Figures {
    p50: Duration,
    p99: Duration,
    /// Calls per second with CALLERS callers, and their p50 latency.
    rate: f64,
    load_p50: Duration,
    /// Per call during the throughput rounds: client, hop, sidecar.
    usage: [Option<Usage>; 3],
}

/// The mesh measures' own table.
pub struct Table {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub notes: Vec<String>,
}

/// `N` distinct free tcp ports on 127.0.0.1 (bound together, then released).
pub fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    let listeners: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<_, _>>()
        .context("cannot find a free tcp port")?;
    let ports: Vec<u16> = listeners.iter().map(|l| Ok(l.local_addr()?.port())).collect::<anyhow::Result<_>>()?;
    ports.try_into().map_err(|_| anyhow!("cannot find {N} free tcp ports"))
}

/// A binary built with pm-bench, next to it.
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the pm-bench executable")?;
    let bin = exe.parent().map(|dir| dir.join(name)).ok_or_else(|| anyhow!("{} has no parent", exe.display()))?;
    if !bin.is_file() {
        bail!("no {name} at {}: run `cargo build --release -p pm-bench` first", bin.display());
    }
    Ok(bin)
}

/// Runs the mesh measures against the running daemon, which listens on tcp `daemon_port` too.
/// Leaves no sidecar of its own defined, and no proxy running, also when it fails.
pub async fn measure(pm: &Pm, daemon_port: u16) -> anyhow::Result<Table> {
    let echo = sibling("pm-bench-echo")?;
    let [echo_port, proxy_port] = free_ports()?;
    let localhost = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let (echo_sock, proxy_sock) = (pm.project_dir().join("echo.sock"), pm.project_dir().join("proxy.sock"));
    let echo_tcp = localhost(echo_port).to_string();
    let daemon_url = format!("tcp://{}", localhost(daemon_port));

    let echo = echo.to_string_lossy();
    let unix_arg = echo_sock.to_string_lossy();
    #[rustfmt::skip]
    let maps: [&[&str]; 3] = [
        &["map", "echo", "--ready", "registered", "--ready-timeout", "10s", "--", &echo, "--unix", &unix_arg, "--tcp", &echo_tcp],
        &["map", "echo-tcp", "--ready", "registered", "--ready-timeout", "10s", "--", &echo, "--daemon", &daemon_url],
        // The daemon's built-in echo task: in-process, reached over an in-memory connection.
        &["map", "echo-task", "--runtime", "task", "--ready", "registered", "--ready-timeout", "10s", "--", "echo"],
    ];
    let outcome = async {
        for map in maps {
            pm.run(map, Duration::from_secs(10)).await?;
        }
        for name in SIDECARS {
            pm.run(&["start", name], Duration::from_secs(20)).await?;
        }
        let token = String::from_utf8(pm.run(&["token"], Duration::from_secs(10)).await?.stdout)?.trim().to_string();
        let proxy = Proxy::spawn(
            &sibling("pm-bench-proxy")?,
            &[
                "--unix",
                &proxy_sock.to_string_lossy(),
                &echo_sock.to_string_lossy(),
                "--tcp",
                &localhost(proxy_port).to_string(),
                &echo_tcp,
            ],
        )
        .await?;
        progress("mesh: echo sidecars registered, proxy ready");
        let pids = Pids {
            daemon: pm.daemon_pid(),
            proxy: proxy.pid()?,
            echo: pid_of(pm, "echo").await?,
            echo_tcp: pid_of(pm, "echo-tcp").await?,
        };
        let routes = routes(pm, &echo_sock, &proxy_sock, [echo_port, proxy_port, daemon_port], &token, pids);
        let figures = run(&routes).await;
        proxy.stop().await;
        Ok::<_, anyhow::Error>((routes, figures?))
    }
    .await;
    // Forget the echo sidecars again (stopping them), so that the daemon is left as it was.
    for name in SIDECARS {
        let deleted = pm.run(&["delete", name], Duration::from_secs(20)).await;
        // After a failure they may not exist; the failure is the news then.
        if outcome.is_ok() {
            deleted?;
        }
    }
    let (routes, figures) = outcome?;
    Ok(table(&routes, &figures))
}

#[derive(Clone, Copy)]
struct Pids {
    daemon: u32,
    proxy: u32,
    echo: u32,
    echo_tcp: u32,
}

/// The pid of a running instance, from `pm.status`.
async fn pid_of(pm: &Pm, name: &str) -> anyhow::Result<u32> {
    let client = pm.client().await?;
    let statuses = within(Duration::from_secs(5), "pm.status", client.daemon().status(Some(name.into()))).await??;
    statuses.first().and_then(|s| s.pid).ok_or_else(|| anyhow!("`{name}` has no pid after it started"))
}

fn routes(pm: &Pm, echo_sock: &Path, proxy_sock: &Path, ports: [u16; 3], token: &str, pids: Pids) -> Vec<Route> {
    let [echo, proxy, daemon] = ports.map(|port| Endpoint::Tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, port))));
    let route = |transport, via, what, endpoint: &Endpoint, method: &'static str, token: Option<&str>| Route {
        transport,
        via,
        what,
        endpoint: endpoint.clone(),
        method,
        token: token.map(str::to_string),
        hop_pid: match via {
            Via::Direct => None,
            Via::Proxy => Some(pids.proxy),
            Via::Pm => Some(pids.daemon),
        },
        sidecar_pid: match method.split_once('.').map(|(sidecar, _)| sidecar) {
            Some("echo-tcp") => pids.echo_tcp,
            // A task runs inside the daemon: its CPU is the daemon's.
            Some("echo-task") => pids.daemon,
            _ => pids.echo,
        },
    };
    vec![
        route("unix", Via::Direct, "direct to sidecar", &Endpoint::Unix(echo_sock.into()), "echo", None),
        route("unix", Via::Proxy, "bare proxy", &Endpoint::Unix(proxy_sock.into()), "echo", None),
        route("unix", Via::Pm, "through pm", &Endpoint::Unix(pm.home().join("pm.sock")), "echo.echo", None),
        route(
            "unix",
            Via::Pm,
            "through pm to a task (in memory)",
            &Endpoint::Unix(pm.home().join("pm.sock")),
            "echo-task.echo",
            None,
        ),
        route("tcp", Via::Direct, "direct to sidecar", &echo, "echo", None),
        route("tcp", Via::Proxy, "bare proxy", &proxy, "echo", None),
        route("tcp", Via::Pm, "through pm", &daemon, "echo-tcp.echo", Some(token)),
        route("tcp", Via::Pm, "through pm, sidecar on unix", &daemon, "echo.echo", Some(token)),
    ]
}

async fn run(routes: &[Route]) -> anyhow::Result<Vec<Figures>> {
    let total = WARMUP + ROUNDS * PER_ROUND;
    progress(&format!("mesh: {total} sequential calls on each of {} paths", routes.len()));
    let latencies = within(Duration::from_secs(90), "mesh: sequential calls", sequential(routes)).await??;
    progress(&format!(
        "mesh: {CALLERS} callers, {LOAD_ROUNDS} × {} s on each path",
        (LOAD_WARMUP + LOAD_WINDOW).as_secs_f64()
    ));
    let loads = load(routes).await?;
    let mut figures = Vec::new();
    for ((route, samples), load) in routes.iter().zip(latencies).zip(loads) {
        let f = Figures {
            p50: quantile(&samples, 0.5),
            p99: quantile(&samples, 0.99),
            rate: load.rate,
            load_p50: quantile(&load.latencies, 0.5),
            usage: load.usage,
        };
        progress(&format!(
            "mesh: {:<34} p50 {:>9}  p99 {:>9}  {:>7.0} calls/s (p50 {} with {CALLERS} callers); per call, \
             client / hop / sidecar: CPU {} µs, context switches {}",
            route.name(),
            fmt_duration(f.p50),
            fmt_duration(f.p99),
            f.rate,
            fmt_duration(f.load_p50),
            fmt_usage(&f.usage, " / ", |u| u.cpu_us),
            fmt_usage(&f.usage, " / ", |u| u.switches),
        ));
        figures.push(f);
    }
    Ok(figures)
}

/// One connection per route, one call at a time; the routes take turns every PER_ROUND calls.
async fn sequential(routes: &[Route]) -> anyhow::Result<Vec<Vec<Duration>>> {
    let mut callers = Vec::with_capacity(routes.len());
    for route in routes {
        let mut caller = route.connect().await?;
        for _ in 0..WARMUP {
            caller.call(PARAMS).await.with_context(|| route.name())?;
        }
        callers.push(caller);
    }
    let mut samples = vec![Vec::with_capacity(ROUNDS * PER_ROUND); routes.len()];
    for _ in 0..ROUNDS {
        for ((caller, route), samples) in callers.iter_mut().zip(routes).zip(&mut samples) {
            for _ in 0..PER_ROUND {
                let sent = Instant::now();
                caller.call(PARAMS).await.with_context(|| route.name())?;
                samples.push(sent.elapsed());
            }
        }
    }
    Ok(samples)
}

struct Load {
    rate: f64,
    /// Of the calls that ended in the windows.
    latencies: Vec<Duration>,
    usage: [Option<Usage>; 3],
}

/// CALLERS connections per route, the routes taking turns for LOAD_ROUNDS rounds.
async fn load(routes: &[Route]) -> anyhow::Result<Vec<Load>> {
    let mut pools = Vec::with_capacity(routes.len());
    for route in routes {
        let mut pool = Vec::with_capacity(CALLERS);
        for _ in 0..CALLERS {
            pool.push(route.connect().await?);
        }
        pools.push(pool);
    }
    let mut loads: Vec<Load> =
        routes.iter().map(|_| Load { rate: 0.0, latencies: Vec::new(), usage: [Some(Usage::default()); 3] }).collect();
    // All calls of the rounds (warm-ups too), which the CPU time is spread over.
    let mut calls = vec![0u64; routes.len()];
    for _ in 0..LOAD_ROUNDS {
        for (i, route) in routes.iter().enumerate() {
            let limit = LOAD_WARMUP + LOAD_WINDOW + Duration::from_secs(10);
            let what = format!("mesh: {CALLERS} callers {}", route.name());
            let pids = [Some(std::process::id()), route.hop_pid, Some(route.sidecar_pid)];
            let before = pids.map(|pid| pid.and_then(usage));
            let (pool, samples, all) =
                within(limit, &what, load_round(std::mem::take(&mut pools[i]))).await?.with_context(|| route.name())?;
            let after = pids.map(|pid| pid.and_then(usage));
            let load = &mut loads[i];
            for ((sum, before), after) in load.usage.iter_mut().zip(before).zip(after) {
                *sum = match (*sum, before, after) {
                    (Some(sum), Some(b), Some(a)) => Some(sum.plus(a.minus(b), 1.0)),
                    _ => None,
                };
            }
            pools[i] = pool;
            load.rate += samples.len() as f64;
            load.latencies.extend(samples);
            calls[i] += all;
        }
    }
    let seconds = (LOAD_WINDOW * LOAD_ROUNDS as u32).as_secs_f64();
    for (load, calls) in loads.iter_mut().zip(calls) {
        load.rate /= seconds;
        for usage in &mut load.usage {
            *usage = usage.map(|u| Usage::default().plus(u, 1.0 / calls.max(1) as f64));
        }
    }
    Ok(loads)
}

/// Every caller calls, one call at a time, through a warm-up and a window. Gives the callers
/// back for the next round, the latencies of the calls that ended in the window, and how many
/// calls there were in all.
async fn load_round(callers: Vec<Caller>) -> anyhow::Result<(Vec<Caller>, Vec<Duration>, u64)> {
    let opens = Instant::now() + LOAD_WARMUP;
    let closes = opens + LOAD_WINDOW;
    // Dropping the set (on error or timeout) aborts the callers still running.
    let mut tasks = JoinSet::new();
    for mut caller in callers {
        tasks.spawn(async move {
            let mut samples = Vec::with_capacity(8192);
            let mut calls = 0u64;
            loop {
                let sent = Instant::now();
                if sent >= closes {
                    return Ok::<_, anyhow::Error>((caller, samples, calls));
                }
                caller.call(PARAMS).await?;
                calls += 1;
                let done = Instant::now();
                if done >= opens && done < closes {
                    samples.push(done - sent);
                }
            }
        });
    }
    let (mut back, mut all, mut total) = (Vec::with_capacity(CALLERS), Vec::new(), 0);
    while let Some(joined) = tasks.join_next().await {
        let (caller, samples, calls) = joined??;
        back.push(caller);
        all.extend(samples);
        total += calls;
    }
    Ok((back, all, total))
}

/// What a process has used: CPU time (µs) and context switches.
#[derive(Clone, Copy, Default)]
struct Usage {
    cpu_us: f64,
    switches: f64,
}

impl Usage {
    /// `self + other × factor`.
    fn plus(self, other: Usage, factor: f64) -> Usage {
        Usage { cpu_us: self.cpu_us + other.cpu_us * factor, switches: self.switches + other.switches * factor }
    }

    fn minus(self, other: Usage) -> Usage {
        self.plus(other, -1.0)
    }
}

/// A process's usage so far, summed over its threads: CPU from /proc/PID/task/*/schedstat (ns on
/// a CPU), context switches (voluntary and not) from /proc/PID/task/*/status. `None` if it cannot
/// be read.
fn usage(pid: u32) -> Option<Usage> {
    let mut u = Usage::default();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let dir = task.ok()?.path();
        let stat = std::fs::read_to_string(dir.join("schedstat")).ok()?;
        u.cpu_us += stat.split_whitespace().next()?.parse::<f64>().ok()? / 1e3;
        let status = std::fs::read_to_string(dir.join("status")).ok()?;
        u.switches += field_sum(&status, &["voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"]) as f64;
    }
    Some(u)
}

/// One figure of client, hop and sidecar, joined by `sep` (`-` where there is none).
fn fmt_usage(usage: &[Option<Usage>; 3], sep: &str, figure: impl Fn(&Usage) -> f64) -> String {
    let parts: Vec<String> =
        usage.iter().map(|u| u.as_ref().map_or("-".into(), |u| format!("{:.1}", figure(u)))).collect();
    parts.join(sep)
}

fn table(routes: &[Route], figures: &[Figures]) -> Table {
    let find = |transport: &str, via: Via| {
        routes.iter().zip(figures).find(|(r, _)| r.transport == transport && r.via == via).map(|(_, f)| f)
    };
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let p50_ratio = |f: &Figures, reference: &Figures| f.p50.as_secs_f64() / reference.p50.as_secs_f64().max(1e-9);
    let rate_ratio = |f: &Figures, reference: &Figures| f.rate / reference.rate.max(1e-9);
    let mut rows = Vec::new();
    for (route, f) in routes.iter().zip(figures) {
        let (proxy, direct) = (find(route.transport, Via::Proxy), find(route.transport, Via::Direct));
        let verdict = |met: bool| if met { "met" } else { "MISSED" };
        let [p50_proxy, rate_proxy] = match proxy {
            Some(r) if route.via == Via::Pm => {
                let (p, t) = (p50_ratio(f, r), rate_ratio(f, r));
                [
                    format!("{} (goal ≤ {P50_GOAL}x: {})", fmt_ratio(p), verdict(p <= P50_GOAL)),
                    format!("{} (goal ≥ {RATE_GOAL}x: {})", fmt_ratio(t), verdict(t >= RATE_GOAL)),
                ]
            }
            _ => ["-".to_string(), "-".to_string()],
        };
        let [p50_direct, rate_direct] = match direct {
            Some(r) if route.via != Via::Direct => [fmt_ratio(p50_ratio(f, r)), fmt_ratio(rate_ratio(f, r))],
            _ => ["-".to_string(), "-".to_string()],
        };
        let added = direct.map_or("-".to_string(), |d| {
            if route.via == Via::Direct { "-".to_string() } else { format!("{:+.0} µs", us(f.p50) - us(d.p50)) }
        });
        rows.push(vec![
            route.transport.to_string(),
            route.what.to_string(),
            fmt_duration(f.p50),
            fmt_duration(f.p99),
            added,
            format!("{:.0}", f.rate),
            fmt_duration(f.load_p50),
            fmt_usage(&f.usage, " + ", |u| u.cpu_us),
            p50_proxy,
            rate_proxy,
            p50_direct,
            rate_direct,
        ]);
    }
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let sequential = ROUNDS * PER_ROUND;
    Table {
        title: format!("mesh: one `echo` call, params {PARAMS}: direct, through a bare proxy, through pm"),
        header: [
            "transport",
            "path",
            "p50",
            "p99",
            "p50 - direct",
            &format!("calls/s, {CALLERS} callers"),
            &format!("p50, {CALLERS} callers"),
            "CPU µs/call: client + hop + sidecar",
            "p50 vs proxy",
            "calls/s vs proxy",
            "p50 vs direct",
            "calls/s vs direct",
        ]
        .map(str::to_string)
        .into(),
        rows,
        notes: vec![
            format!(
                "p50/p99: one connection, one call at a time, {sequential} calls per path after {WARMUP} warm-up; \
                 calls/s: {CALLERS} connections, each one call at a time, {LOAD_ROUNDS} windows of {} s after {} ms \
                 warm-up each; the paths take turns, so all see the same machine (absolute latencies may differ \
                 several-fold between runs on a virtual machine, which wakes idle CPUs slowly: compare within a run)",
                LOAD_WINDOW.as_secs_f64(),
                LOAD_WARMUP.as_millis()
            ),
            format!(
                "this machine has {cpus} CPUs, shared by the client (pm-bench, {CALLERS} tasks), pm or the proxy, \
                 and the echo sidecar: the calls/s are bound by CPU, not by the path alone"
            ),
            "CPU µs/call: CPU time (schedstat) of the client (pm-bench), the hop (pm's daemon or the proxy) and \
             the echo sidecar during the calls/s rounds, divided by their calls"
                .to_string(),
            "tcp: every hop is tcp (the proxy reaches the sidecar over tcp; `echo-tcp` registered over the \
             daemon's tcp listener); `sidecar on unix`: pm over tcp, routed to `echo` on the daemon's unix socket"
                .to_string(),
            format!(
                "goals (the issue's): through pm, p50 within {P50_GOAL}x of the bare proxy and calls/s at least \
                 {RATE_GOAL}x of it"
            ),
            "@akala/pm routed calls, measured elsewhere (quoted, not measured here): p50 0.34–0.46 ms, \
             ~12,500 calls/s with 16 callers"
                .to_string(),
        ],
    }
}

/// The proxy process; killed if dropped before [`Proxy::stop`].
struct Proxy {
    child: tokio::process::Child,
}

impl Proxy {
    async fn spawn(bin: &Path, args: &[&str]) -> anyhow::Result<Proxy> {
        let mut child = tokio::process::Command::new(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout of the proxy"))?;
        let mut line = String::new();
        let mut reader = tokio::io::BufReader::new(stdout);
        within(Duration::from_secs(10), "the proxy saying ready", reader.read_line(&mut line)).await??;
        if line.trim() != "ready" {
            bail!("the proxy did not start ({:?})", line.trim());
        }
        Ok(Proxy { child })
    }

    fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().ok_or_else(|| anyhow!("the proxy has exited"))
    }

    /// Closes its stdin, which ends it; kills it if it does not end within a second.
    async fn stop(mut self) {
        drop(self.child.stdin.take());
        if within(Duration::from_secs(1), "proxy exit", self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}
