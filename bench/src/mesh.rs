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
//! connection, one call at a time; p50 and p99) and throughput with 32 and with 256 connections
//! ([`CALLERS`]) each making one call at a time. The paths take turns (rounds), so that all see
//! the same machine. During the throughput rounds with 32, the harness also reads the CPU time
//! (`/proc/PID/task/*/schedstat`) of the client (itself), the hop (the daemon or the proxy) and
//! the sidecar: CPU per call shows where the time goes, whatever the scheduling noise of the
//! machine.

use crate::caller::{Caller, Endpoint};
use crate::pm::{Pm, field_sum, within};
use crate::{Size, Table, fmt_duration, fmt_ratio, progress, quantile, verdict};
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
const WARMUP: Size<usize> = Size::new(500, 20);
const ROUNDS: Size<usize> = Size::new(50, 2);
const PER_ROUND: Size<usize> = Size::new(100, 20);
/// Throughput: with each of these many connections, LOAD_ROUNDS turns per path of a warm-up and
/// a window. The first also gives the p50 under load and the CPU per call.
const CALLERS: [usize; 2] = [32, 256];
const LOAD_ROUNDS: Size<usize> = Size::new(4, 1);
const LOAD_WARMUP: Size<Duration> = Size::new(Duration::from_millis(100), Duration::from_millis(20));
const LOAD_WINDOW: Size<Duration> = Size::new(Duration::from_millis(500), Duration::from_millis(100));
/// The sidecars the mesh measures define, start and delete again.
const SIDECARS: [&str; 3] = ["echo", "echo-tcp", "echo-task"];

/// The issue's goals for a call through pm, against the bare proxy.
const P50_GOAL: f64 = 1.1;
const RATE_GOAL: f64 = 1.0;

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
    /// Calls per second with each of CALLERS callers.
    rates: Vec<f64>,
    /// With the first of CALLERS: the p50 latency, and per call, the CPU of client, hop, sidecar.
    load_p50: Duration,
    usage: [Option<Usage>; 3],
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
    let total = WARMUP.get() + ROUNDS.get() * PER_ROUND.get();
    progress(&format!("mesh: {total} sequential calls on each of {} paths", routes.len()));
    let latencies = within(Duration::from_secs(90), "mesh: sequential calls", sequential(routes)).await??;
    // Per route, a load per count of callers.
    let mut loads: Vec<Vec<Load>> = routes.iter().map(|_| Vec::new()).collect();
    for callers in CALLERS {
        progress(&format!(
            "mesh: {callers} callers, {} × {} s on each path",
            LOAD_ROUNDS.get(),
            (LOAD_WARMUP.get() + LOAD_WINDOW.get()).as_secs_f64()
        ));
        for (per_route, load) in loads.iter_mut().zip(load(routes, callers).await?) {
            per_route.push(load);
        }
    }
    let mut figures = Vec::new();
    for ((route, samples), loads) in routes.iter().zip(latencies).zip(loads) {
        let f = Figures {
            p50: quantile(&samples, 0.5),
            p99: quantile(&samples, 0.99),
            rates: loads.iter().map(|l| l.rate).collect(),
            load_p50: quantile(&loads[0].latencies, 0.5),
            usage: loads[0].usage,
        };
        let rates: Vec<String> = f.rates.iter().map(|r| format!("{r:.0}")).collect();
        progress(&format!(
            "mesh: {:<34} p50 {:>9}  p99 {:>9}  {} calls/s with {} callers (p50 {} with {}); per call, \
             client / hop / sidecar: CPU {} µs, context switches {}",
            route.name(),
            fmt_duration(f.p50),
            fmt_duration(f.p99),
            rates.join(" / "),
            callers_text(" / "),
            fmt_duration(f.load_p50),
            CALLERS[0],
            fmt_usage(&f.usage, " / ", |u| u.cpu_us),
            fmt_usage(&f.usage, " / ", |u| u.switches),
        ));
        figures.push(f);
    }
    Ok(figures)
}

/// `32 / 256`, with `sep`.
fn callers_text(sep: &str) -> String {
    CALLERS.map(|n| n.to_string()).join(sep)
}

/// One connection per route, one call at a time; the routes take turns every PER_ROUND calls.
async fn sequential(routes: &[Route]) -> anyhow::Result<Vec<Vec<Duration>>> {
    let (warmup, rounds, per_round) = (WARMUP.get(), ROUNDS.get(), PER_ROUND.get());
    let mut callers = Vec::with_capacity(routes.len());
    for route in routes {
        let mut caller = route.connect().await?;
        for _ in 0..warmup {
            caller.call(PARAMS).await.with_context(|| route.name())?;
        }
        callers.push(caller);
    }
    let mut samples = vec![Vec::with_capacity(rounds * per_round); routes.len()];
    for _ in 0..rounds {
        for ((caller, route), samples) in callers.iter_mut().zip(routes).zip(&mut samples) {
            for _ in 0..per_round {
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

/// `callers` connections per route, the routes taking turns for LOAD_ROUNDS rounds.
async fn load(routes: &[Route], callers: usize) -> anyhow::Result<Vec<Load>> {
    let (rounds, window) = (LOAD_ROUNDS.get(), LOAD_WINDOW.get());
    let mut pools = Vec::with_capacity(routes.len());
    for route in routes {
        let mut pool = Vec::with_capacity(callers);
        for _ in 0..callers {
            pool.push(route.connect().await?);
        }
        pools.push(pool);
    }
    let mut loads: Vec<Load> =
        routes.iter().map(|_| Load { rate: 0.0, latencies: Vec::new(), usage: [Some(Usage::default()); 3] }).collect();
    // All calls of the rounds (warm-ups too), which the CPU time is spread over.
    let mut calls = vec![0u64; routes.len()];
    for _ in 0..rounds {
        for (i, route) in routes.iter().enumerate() {
            let limit = LOAD_WARMUP.get() + window + Duration::from_secs(10);
            let what = format!("mesh: {callers} callers {}", route.name());
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
    let seconds = (window * rounds as u32).as_secs_f64();
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
    let opens = Instant::now() + LOAD_WARMUP.get();
    let closes = opens + LOAD_WINDOW.get();
    // Dropping the set (on error or timeout) aborts the callers still running.
    let mut tasks = JoinSet::new();
    for mut caller in callers {
        tasks.spawn(async move {
            let mut samples = Vec::with_capacity(1024);
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
    let (mut back, mut all, mut total) = (Vec::new(), Vec::new(), 0);
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
    let rate_ratio = |f: &Figures, reference: &Figures, k: usize| f.rates[k] / reference.rates[k].max(1e-9);
    let none = || vec!["-".to_string(); CALLERS.len()];
    let mut rows = Vec::new();
    for (route, f) in routes.iter().zip(figures) {
        let (proxy, direct) = (find(route.transport, Via::Proxy), find(route.transport, Via::Direct));
        let (p50_proxy, rates_proxy) = match proxy {
            Some(r) if route.via == Via::Pm => {
                let p = p50_ratio(f, r);
                let rates = (0..CALLERS.len()).map(|k| {
                    let t = rate_ratio(f, r, k);
                    format!("{} (goal ≥ {RATE_GOAL}x: {})", fmt_ratio(t), verdict(t >= RATE_GOAL))
                });
                (format!("{} (goal ≤ {P50_GOAL}x: {})", fmt_ratio(p), verdict(p <= P50_GOAL)), rates.collect())
            }
            _ => ("-".to_string(), none()),
        };
        let [p50_direct, rate_direct] = match direct {
            Some(r) if route.via != Via::Direct => [fmt_ratio(p50_ratio(f, r)), fmt_ratio(rate_ratio(f, r, 0))],
            _ => ["-".to_string(), "-".to_string()],
        };
        let added = direct.map_or("-".to_string(), |d| {
            if route.via == Via::Direct { "-".to_string() } else { format!("{:+.0} µs", us(f.p50) - us(d.p50)) }
        });
        let mut row =
            vec![route.transport.to_string(), route.what.to_string(), fmt_duration(f.p50), fmt_duration(f.p99), added];
        row.extend(f.rates.iter().map(|rate| format!("{rate:.0}")));
        row.extend([fmt_duration(f.load_p50), fmt_usage(&f.usage, " + ", |u| u.cpu_us), p50_proxy]);
        row.extend(rates_proxy);
        row.extend([p50_direct, rate_direct]);
        rows.push(row);
    }
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let sequential = ROUNDS.get() * PER_ROUND.get();
    let first = CALLERS[0];
    let mut header: Vec<String> = ["transport", "path", "p50", "p99", "p50 - direct"].map(str::to_string).into();
    header.extend(CALLERS.map(|n| format!("calls/s, {n} callers")));
    header.extend([
        format!("p50, {first} callers"),
        format!("CPU µs/call ({first} callers): client + hop + sidecar"),
        "p50 vs proxy".into(),
    ]);
    header.extend(CALLERS.map(|n| format!("calls/s vs proxy, {n}")));
    header.extend(["p50 vs direct".into(), format!("calls/s vs direct, {first}")]);
    Table {
        title: format!("mesh: one `echo` call, params {PARAMS}: direct, through a bare proxy, through pm"),
        header,
        rows,
        words: vec![0, 1],
        notes: vec![
            format!(
                "p50/p99: one connection, one call at a time, {sequential} calls per path after {} warm-up; \
                 calls/s: {} connections, each one call at a time, {} windows of {} s after {} ms warm-up each; the \
                 paths take turns, so all see the same machine (absolute latencies may differ several-fold between \
                 runs on a virtual machine, which wakes idle CPUs slowly: compare within a run)",
                WARMUP.get(),
                callers_text(" or "),
                LOAD_ROUNDS.get(),
                LOAD_WINDOW.get().as_secs_f64(),
                LOAD_WARMUP.get().as_millis()
            ),
            format!(
                "this machine has {cpus} CPUs, shared by the client (pm-bench, one task per connection), pm or the \
                 proxy, and the echo sidecar: the calls/s are bound by CPU, not by the path alone"
            ),
            format!(
                "CPU µs/call: CPU time (schedstat) of the client (pm-bench), the hop (pm's daemon or the proxy) and \
                 the echo sidecar during the calls/s rounds with {first} callers, divided by their calls"
            ),
            "tcp: every hop is tcp (the proxy reaches the sidecar over tcp; `echo-tcp` registered over the \
             daemon's tcp listener); `sidecar on unix`: pm over tcp, routed to `echo` on the daemon's unix socket"
                .to_string(),
            format!(
                "goals (the issue's): through pm, p50 within {P50_GOAL}x of the bare proxy and calls/s at least \
                 {RATE_GOAL}x of it, with {} callers",
                callers_text(" and ")
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
