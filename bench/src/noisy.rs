//! Measure 7: noisy neighbours. A well-behaved caller makes sequential `echo` calls through pm to
//! an echo sidecar (`noisy-echo`) over the unix socket, first alone (the reference), then while
//! two neighbours misbehave on their own connections:
//! - a flooder pipelines `echo` calls to the same sidecar as fast as it can, and never reads its
//!   answers;
//! - a deaf sidecar (`pm-bench-echo --deaf`: registers, then never reads its socket again) that a
//!   third client fills up and then keeps calling, in bursts with a 200 ms deadline, reading its
//!   answers as they come.
//!
//! One peer that does not read must not slow the others: goal p99 within 2x of alone. A daemon
//! where it does may stall the caller outright, so every call has a timeout, the noisy run a
//! budget, and the neighbours are threads of their own whose writes time out too: the row then
//! says why it stopped, with the figures it got.

use crate::caller::{Caller, Endpoint};
use crate::mesh::sibling;
use crate::pm::{Pm, within};
use crate::{Row, Size, fmt_duration, fmt_ratio, progress, quantile, verdict};
use anyhow::Context;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const ECHO: &str = "noisy-echo";
const DEAF: &str = "noisy-deaf";
const PARAMS: &str = r#"["hello"]"#;
/// The caller's calls: a warm-up, then CALLS timed ones alone and as many with the neighbours.
const WARMUP: Size<usize> = Size::new(200, 20);
const CALLS: Size<usize> = Size::new(5000, 200);
/// Bounds of the noisy run: each call, and all of them (the last call may add CALL_TIMEOUT).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
const BUDGET: Duration = Duration::from_secs(15);
/// The neighbours' head start, to fill whatever buffers they can before the caller measures.
const HEAD_START: Size<Duration> = Size::new(Duration::from_secs(1), Duration::from_millis(200));
/// The flooder writes its calls this many at a time.
const FLOOD_CHUNK: usize = 256;
/// The deaf sidecar's caller: DEAF_FILL calls at once, more than pm can queue for a sidecar
/// and its socket can hold (so the measure sees the sidecar's queue full), then a burst of
/// DEAF_BURST calls every DEAF_EVERY.
const DEAF_FILL: usize = 8192;
const DEAF_BURST: usize = 20;
const DEAF_EVERY: Duration = Duration::from_millis(10);
const DEADLINE_MS: u64 = 200;
/// How long a neighbour's blocked write or read waits before it looks whether to stop.
const POLL: Duration = Duration::from_millis(100);
/// The goal: p99 with the neighbours, against alone.
const GOAL: f64 = 2.0;

/// Defines and starts the two sidecars, measures, and deletes them again. A daemon the
/// neighbours wedged may fail to delete them: that is reported in the row, not as an error.
pub async fn measure(pm: &Pm) -> anyhow::Result<Vec<Row>> {
    let echo = sibling("pm-bench-echo")?;
    let echo = echo.to_string_lossy();
    #[rustfmt::skip]
    let maps: [&[&str]; 2] = [
        &["map", ECHO, "--ready", "registered", "--ready-timeout", "10s", "--", &echo],
        &["map", DEAF, "--ready", "registered", "--ready-timeout", "10s", "--", &echo, "--deaf"],
    ];
    let outcome = async {
        for map in maps {
            pm.run(map, Duration::from_secs(10)).await?;
        }
        for name in [ECHO, DEAF] {
            pm.run(&["start", name], Duration::from_secs(20)).await?;
        }
        progress(&format!("noisy: {ECHO} and {DEAF} registered"));
        compare(&pm.home().join("pm.sock")).await
    }
    .await;
    let mut afterwards = Vec::new();
    for name in [ECHO, DEAF] {
        if let Err(e) = pm.run(&["delete", name], Duration::from_secs(20)).await {
            progress(&format!("noisy: warning: {e:#}"));
            afterwards.push(format!("{e:#}"));
        }
    }
    Ok(rows(&outcome?, &afterwards))
}

struct Comparison {
    alone: Vec<Duration>,
    noisy: Vec<Duration>,
    /// Why the noisy run ended before CALLS calls.
    stalled: Option<String>,
    neighbours: Counts,
}

async fn compare(socket: &Path) -> anyhow::Result<Comparison> {
    let calls = CALLS.get();
    let endpoint = Endpoint::Unix(socket.into());
    let method = format!("{ECHO}.echo");
    let mut caller = within(CALL_TIMEOUT, "noisy: connecting", Caller::connect(&endpoint, &method, None)).await??;
    for _ in 0..WARMUP.get() {
        within(CALL_TIMEOUT, "noisy: warm-up call", caller.call(PARAMS)).await??;
    }
    let mut alone = Vec::with_capacity(calls);
    for _ in 0..calls {
        let sent = Instant::now();
        within(CALL_TIMEOUT, "noisy: call alone", caller.call(PARAMS)).await??;
        alone.push(sent.elapsed());
    }
    progress(&format!("noisy: {calls} calls alone; now with a flooder and a deaf sidecar"));
    let neighbours = Neighbours::start(socket, &method)?;
    tokio::time::sleep(HEAD_START.get()).await;
    let (mut noisy, mut stalled) = (Vec::with_capacity(calls), None);
    let started = Instant::now();
    while noisy.len() < calls {
        if started.elapsed() > BUDGET {
            stalled = Some(format!("gave up after {} s with {} of {calls} calls", BUDGET.as_secs(), noisy.len()));
            break;
        }
        let sent = Instant::now();
        match tokio::time::timeout(CALL_TIMEOUT, caller.call(PARAMS)).await {
            Ok(Ok(())) => noisy.push(sent.elapsed()),
            Ok(Err(e)) => {
                stalled = Some(format!("call {} of {calls} failed: {e:#}", noisy.len() + 1));
                break;
            }
            Err(_) => {
                // Its real latency is longer: figures that include it are lower bounds.
                noisy.push(CALL_TIMEOUT);
                stalled =
                    Some(format!("call {} of {calls} had no answer within {} s", noisy.len(), CALL_TIMEOUT.as_secs()));
                break;
            }
        }
    }
    let neighbours = neighbours.stop();
    progress(&format!(
        "noisy: {} calls with the neighbours{}; flooder wrote {} calls{}, deaf sidecar's caller sent {} ({})",
        noisy.len(),
        stalled.as_ref().map_or(String::new(), |why| format!(" (STALLED: {why})")),
        neighbours.flooded,
        neighbours.flooder_end(),
        neighbours.deaf_sent,
        neighbours.deaf_answers()
    ));
    Ok(Comparison { alone, noisy, stalled, neighbours })
}

fn rows(c: &Comparison, afterwards: &[String]) -> Vec<Row> {
    // A call that timed out counts as CALL_TIMEOUT: a figure that lands on it is a lower bound.
    let at_least = |d: Duration| if d >= CALL_TIMEOUT { "≥ " } else { "" };
    let figures = |q: f64| -> [String; 3] {
        let reference = quantile(&c.alone, q);
        if c.noisy.is_empty() {
            return ["none".into(), fmt_duration(reference), "-".into()];
        }
        let noisy = quantile(&c.noisy, q);
        let ratio = noisy.as_secs_f64() / reference.as_secs_f64().max(1e-9);
        let bound = at_least(noisy);
        [format!("{bound}{}", fmt_duration(noisy)), fmt_duration(reference), format!("{bound}{}", fmt_ratio(ratio))]
    };
    let p99_ratio = quantile(&c.noisy, 0.99).as_secs_f64() / quantile(&c.alone, 0.99).as_secs_f64().max(1e-9);
    let met = c.stalled.is_none() && p99_ratio <= GOAL;
    let n = &c.neighbours;
    let mut note = format!(
        "goal ≤ {GOAL}x: {}; {} sequential `{ECHO}.echo` calls on one unix connection while a flooder pipelines \
         calls to it without reading the answers ({} written{}) and a deaf sidecar is called {DEAF_FILL} times at \
         once, then {DEAF_BURST} per {} ms, with deadline_ms {DEADLINE_MS} ({} sent; {}); ref: the same caller \
         alone, just before ({} calls)",
        verdict(met),
        c.noisy.len(),
        n.flooded,
        n.flooder_end(),
        DEAF_EVERY.as_millis(),
        n.deaf_sent,
        n.deaf_answers(),
        c.alone.len()
    );
    if let Some(why) = &c.stalled {
        note = format!("STALLED: {why}; {note}");
    }
    if !afterwards.is_empty() {
        note.push_str(&format!("; afterwards: {}", afterwards.join("; ")));
    }
    let row = |q: f64, what: &str, note: String| {
        let [pm, reference, ratio] = figures(q);
        Row { measure: format!("noisy neighbours, {what} of `echo` through pm (unix)"), pm, reference, ratio, note }
    };
    let p50_note = if c.stalled.is_some() { "same calls, STALLED (see p99)" } else { "same calls" };
    vec![row(0.5, "p50", format!("{p50_note}; ref: p50 alone")), row(0.99, "p99", note)]
}

/// What the neighbours did.
struct Counts {
    /// Calls the flooder wrote (the daemon took them off its socket, or the socket buffered them).
    flooded: u64,
    /// Whether pm closed the flooder's connection (else it was still open at the end).
    flooder_closed: bool,
    deaf_sent: u64,
    /// The answers to the deaf sidecar's caller, by error code (`ok` for results).
    deaf_answers: BTreeMap<String, u64>,
}

#[derive(Default)]
struct Counters {
    flooded: AtomicU64,
    flooder_closed: AtomicBool,
    deaf_sent: AtomicU64,
    deaf_answers: Mutex<BTreeMap<String, u64>>,
}

/// The misbehaving clients, each a thread with its own blocking connection (so that they share
/// nothing with the measured caller's runtime); they end within [`POLL`] of being stopped.
struct Neighbours {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    threads: Vec<JoinHandle<()>>,
}

impl Counts {
    fn deaf_answers(&self) -> String {
        if self.deaf_answers.is_empty() {
            return "no answer".into();
        }
        let counts: Vec<String> = self.deaf_answers.iter().map(|(code, n)| format!("{code} ×{n}")).collect();
        format!("answers: {}", counts.join(", "))
    }

    fn flooder_end(&self) -> &'static str {
        if self.flooder_closed { ", then pm closed its connection" } else { ", still connected at the end" }
    }
}

impl Neighbours {
    fn start(socket: &Path, echo_method: &str) -> anyhow::Result<Neighbours> {
        let connect = || -> anyhow::Result<UnixStream> {
            let stream =
                UnixStream::connect(socket).with_context(|| format!("cannot connect to {}", socket.display()))?;
            stream.set_write_timeout(Some(POLL))?;
            stream.set_read_timeout(Some(POLL))?;
            Ok(stream)
        };
        let (flooder, deaf_caller) = (connect()?, connect()?);
        let deaf_answers = deaf_caller.try_clone()?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let mut threads = Vec::new();
        let flood = request_line(echo_method, None);
        let (s, c) = (stop.clone(), counters.clone());
        threads.push(std::thread::spawn(move || {
            let mut id = 0u64;
            let mut chunk = Vec::new();
            loop {
                chunk.clear();
                for _ in 0..FLOOD_CHUNK {
                    id += 1;
                    chunk.extend_from_slice(flood.replace("ID", &id.to_string()).as_bytes());
                }
                if !write_until_stopped(&flooder, &chunk, &s, &c.flooded) {
                    c.flooder_closed.store(!s.load(Ordering::SeqCst), Ordering::SeqCst);
                    return;
                }
            }
        }));
        let deaf = request_line(&format!("{DEAF}.echo"), Some(DEADLINE_MS));
        let (s, c) = (stop.clone(), counters.clone());
        threads.push(std::thread::spawn(move || {
            let mut id = 0u64;
            let mut burst = Vec::new();
            let mut calls = DEAF_FILL;
            loop {
                burst.clear();
                for _ in 0..calls {
                    id += 1;
                    burst.extend_from_slice(deaf.replace("ID", &id.to_string()).as_bytes());
                }
                if !write_until_stopped(&deaf_caller, &burst, &s, &c.deaf_sent) {
                    return;
                }
                calls = DEAF_BURST;
                std::thread::sleep(DEAF_EVERY);
            }
        }));
        let (s, c) = (stop.clone(), counters.clone());
        threads.push(std::thread::spawn(move || read_answers(deaf_answers, &s, &c)));
        Ok(Neighbours { stop, counters, threads })
    }

    /// Stops the threads (closing their connections) and says what they did.
    fn stop(mut self) -> Counts {
        self.stop.store(true, Ordering::SeqCst);
        for thread in std::mem::take(&mut self.threads) {
            let _ = thread.join();
        }
        let c = &self.counters;
        Counts {
            flooded: c.flooded.load(Ordering::SeqCst),
            flooder_closed: c.flooder_closed.load(Ordering::SeqCst),
            deaf_sent: c.deaf_sent.load(Ordering::SeqCst),
            deaf_answers: c.deaf_answers.lock().map(|a| a.clone()).unwrap_or_default(),
        }
    }
}

impl Drop for Neighbours {
    /// Also when the measure fails half-way: the threads see it within [`POLL`] and end.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// One request with `ID` to fill in, newline included.
fn request_line(method: &str, deadline_ms: Option<u64>) -> String {
    let deadline = deadline_ms.map_or(String::new(), |ms| format!(r#","deadline_ms":{ms}"#));
    format!(r#"{{"jsonrpc":"2.0","id":ID,"method":"{method}","params":{PARAMS}{deadline}}}"#) + "\n"
}

/// Writes all of `buf`, counting the lines that went out, unless stopped first (or the
/// connection fails): returns whether it wrote it all. A blocked write times out every [`POLL`].
fn write_until_stopped(mut stream: &UnixStream, buf: &[u8], stop: &AtomicBool, lines: &AtomicU64) -> bool {
    let mut rest = buf;
    while !rest.is_empty() {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        match stream.write(rest) {
            Ok(0) => return false,
            Ok(n) => {
                lines.fetch_add(rest[..n].iter().filter(|&&b| b == b'\n').count() as u64, Ordering::SeqCst);
                rest = &rest[n..];
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(_) => return false,
        }
    }
    true
}

/// The deaf sidecar's caller reads its answers (it is not the one that misbehaves), and counts
/// them by error code: -32004 once the deadline has passed, or whatever pm answers instead.
fn read_answers(stream: UnixStream, stop: &AtomicBool, counters: &Counters) {
    let mut reader = BufReader::new(stream);
    // A read that times out keeps what it got of a line in `line`; the next read completes it.
    let mut line = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) if line.ends_with(b"\n") => {
                let answer: serde_json::Value = serde_json::from_slice(&line).unwrap_or_default();
                let code = match answer.get("error") {
                    Some(error) => error.get("code").map_or("error".into(), |c| c.to_string()),
                    None => "ok".into(),
                };
                if let Ok(mut answers) = counters.deaf_answers.lock() {
                    *answers.entry(code).or_default() += 1;
                }
                line.clear();
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(_) => return,
        }
    }
}
