//! Measure 8: `pm log -n 100000` on a big log (1 GB by default), beside `tail -n 100000` of the
//! same files; and the `pm status` round trip while such a `pm log` runs, beside `pm status`
//! alone.
//!
//! The log belongs to a sidecar that is defined and never started: the harness writes its files
//! straight into PM_HOME's logs dir, in the daemon's own format (`<RFC 3339 ms> <text>\n`), a
//! line per millisecond in `.out.log` and one a second in `.err.log` (which `pm log` merges
//! in). Both commands run as real processes whose output the harness reads; runs alternate, so
//! both see the same machine. The files are read once before measuring: both read from the page
//! cache.
//!
//! Goals: `pm log` within 3x of `tail`; `pm status` unchanged while it runs. The daemon reads
//! the files off its async workers and never waits for the reader anywhere shared, so what is
//! left is sharing the CPUs with `pm log` (its CLI, the daemon's reading and sending, and the
//! harness reading the output): the note also gives `pm status` with every CPU kept busy by a
//! spinning process, for scale.

use crate::pm::{Pm, timed, within};
use crate::{Row, Size, fmt_bytes, fmt_duration, fmt_ratio, median, progress, quantile, verdict};
use anyhow::{Context, bail};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The size of the log, in MB (`--log-mb N` or `PM_BENCH_LOG_MB`).
pub const DEFAULT_MB: Size<u64> = Size::new(1000, 1);
const NAME: &str = "bench-log";
/// Lines asked for.
const LINES: Size<usize> = Size::new(100_000, 1000);
const WARMUP: Size<usize> = Size::new(3, 1);
const RUNS: Size<usize> = Size::new(15, 2);
const STATUS_RUNS: Size<usize> = Size::new(40, 3);
/// Every this many lines of `.out.log`, one in `.err.log` too (few, so that `tail -n` of
/// both files prints about as much as `pm log -n`).
const ERR_EVERY: u64 = 1000;
const LIMIT: Duration = Duration::from_secs(60);
/// Goal for `pm log` against `tail`.
const GOAL_TAIL: f64 = 3.0;
/// What counts as unchanged for `pm status`: the median within this of idle's.
const GOAL_STATUS: f64 = 1.5;

pub async fn measure(pm: &Pm, mb: u64) -> anyhow::Result<Vec<Row>> {
    pm.run(&["map", NAME, "--no-autostart", "--restart", "never", "--", "true"], LIMIT).await?;
    let files = [
        pm.home().join("logs").join(format!("{NAME}.out.log")),
        pm.home().join("logs").join(format!("{NAME}.err.log")),
    ];
    let outcome = async {
        let started = Instant::now();
        let written = write_log(&files, mb * 1_000_000)?;
        progress(&format!(
            "log: wrote {} lines ({:.0} MB) for `{NAME}` in {}",
            written.lines,
            written.bytes as f64 / 1e6,
            fmt_duration(started.elapsed())
        ));
        measure_with(pm, &files, written.bytes).await
    }
    .await;
    for file in &files {
        let _ = std::fs::remove_file(file);
    }
    if let Err(e) = pm.run(&["delete", NAME], LIMIT).await {
        progress(&format!("log: warning: {e:#}"));
    }
    outcome
}

async fn measure_with(pm: &Pm, files: &[PathBuf; 2], bytes: u64) -> anyhow::Result<Vec<Row>> {
    let (lines_asked, warmup, runs, status_runs) = (LINES.get(), WARMUP.get(), RUNS.get(), STATUS_RUNS.get());
    let log_args = ["log", NAME, "-n", &lines_asked.to_string()];
    let log_args: Vec<&str> = log_args.iter().map(|s| &**s).collect();
    let tail_args = ["-q", "-n", &lines_asked.to_string()];
    let tail = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new("tail");
        cmd.args(args).args(files.iter());
        timed(cmd, "tail", LIMIT)
    };
    // Warm-up, which also checks what each prints.
    for _ in 0..warmup {
        let printed = lines(&pm.run(&log_args, LIMIT).await?.stdout);
        if printed != lines_asked {
            bail!("`pm {}` printed {printed} lines, not {lines_asked}", log_args.join(" "));
        }
        let out = tail(&tail_args).await?.0.stdout;
        if lines(&out) < lines_asked {
            bail!("`tail` printed {} lines, fewer than {lines_asked}", lines(&out));
        }
    }
    let (mut log, mut reference) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        log.push(pm.run_timed(&log_args, LIMIT).await?.1);
        reference.push(tail(&tail_args).await?.1);
    }
    progress(&format!(
        "log: `pm log -n {lines_asked}` median {} (p95 {}), `tail` median {} (p95 {})",
        fmt_duration(median(&log)),
        fmt_duration(quantile(&log, 0.95)),
        fmt_duration(median(&reference)),
        fmt_duration(quantile(&reference, 0.95)),
    ));

    // `pm status` alone, then while `pm log -n` runs again and again.
    for _ in 0..warmup {
        pm.run(&["status"], LIMIT).await?;
    }
    let mut idle = Vec::with_capacity(status_runs);
    for _ in 0..status_runs {
        idle.push(pm.run_timed(&["status"], LIMIT).await?.1);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let logs_done = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (stop, done) = (stop.clone(), logs_done.clone());
        let (bin, home, cwd) = (pm.bin().to_path_buf(), pm.home(), pm.project_dir());
        let args: Vec<String> = log_args.iter().map(|s| s.to_string()).collect();
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let mut cmd = tokio::process::Command::new(&bin);
                cmd.args(&args).env("PM_HOME", &home).current_dir(&cwd).stdin(Stdio::null());
                cmd.stdout(Stdio::piped()).stderr(Stdio::null()).kill_on_drop(true);
                let output = within(LIMIT, "pm log in the background", cmd.output()).await??;
                if !output.status.success() {
                    bail!("`pm log` in the background failed ({})", output.status);
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
            anyhow::Ok(())
        })
    };
    // Once it has got going.
    let deadline = Instant::now() + LIMIT;
    while logs_done.load(Ordering::SeqCst) == 0 && Instant::now() < deadline && !reader.is_finished() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = logs_done.load(Ordering::SeqCst);
    let mut busy = Vec::with_capacity(status_runs);
    for _ in 0..status_runs {
        if reader.is_finished() {
            break;
        }
        busy.push(pm.run_timed(&["status"], LIMIT).await?.1);
    }
    let during = logs_done.load(Ordering::SeqCst) - before;
    stop.store(true, Ordering::SeqCst);
    within(LIMIT, "stopping the background pm log", reader).await?.context("the background pm log")??;
    if busy.len() < status_runs {
        bail!("the background `pm log` stopped early");
    }
    let spinning = status_while_cpus_spin(pm).await?;
    progress(&format!(
        "log: `pm status` median {} (p95 {}) while {during} `pm log -n {lines_asked}` ran; alone {} (p95 {}); \
         every CPU spinning {}",
        fmt_duration(median(&busy)),
        fmt_duration(quantile(&busy, 0.95)),
        fmt_duration(median(&idle)),
        fmt_duration(quantile(&idle, 0.95)),
        fmt_duration(median(&spinning)),
    ));

    let size = fmt_bytes(bytes);
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let tail_ratio = median(&log).as_secs_f64() / median(&reference).as_secs_f64().max(1e-9);
    let status_ratio = median(&busy).as_secs_f64() / median(&idle).as_secs_f64().max(1e-9);
    Ok(vec![
        Row {
            measure: format!("`pm log -n {lines_asked}`, {size} log"),
            pm: fmt_duration(median(&log)),
            reference: fmt_duration(median(&reference)),
            ratio: fmt_ratio(tail_ratio),
            note: format!(
                "median of {runs} runs, real CLI process, output read by the harness (p95 {} vs {}); ref: \
                 `tail -q -n {lines_asked}` of the same two files; goal within {GOAL_TAIL}x: {}",
                fmt_duration(quantile(&log, 0.95)),
                fmt_duration(quantile(&reference, 0.95)),
                verdict(tail_ratio <= GOAL_TAIL)
            ),
        },
        Row {
            measure: format!("`pm status` while `pm log -n {lines_asked}` runs"),
            pm: fmt_duration(median(&busy)),
            reference: fmt_duration(median(&idle)),
            ratio: fmt_ratio(status_ratio),
            note: format!(
                "median of {status_runs} runs (p95 {} vs {}) while {during} `pm log` ran back to back; ref: `pm \
                 status` alone just before; for scale, with all {cpus} CPUs kept busy by spinning processes \
                 instead: {}; goal unchanged (within {GOAL_STATUS}x): {}",
                fmt_duration(quantile(&busy, 0.95)),
                fmt_duration(quantile(&idle, 0.95)),
                fmt_duration(median(&spinning)),
                verdict(status_ratio <= GOAL_STATUS)
            ),
        },
    ])
}

/// `pm status` round trips while one spinning process per CPU keeps them all busy.
async fn status_while_cpus_spin(pm: &Pm) -> anyhow::Result<Vec<Duration>> {
    let status_runs = STATUS_RUNS.get();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut spinners = crate::pm::Children::default();
    for _ in 0..cpus {
        let spinner = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot spawn sh")?;
        spinners.push(spinner);
    }
    let mut spinning = Vec::with_capacity(status_runs);
    for _ in 0..status_runs {
        spinning.push(pm.run_timed(&["status"], LIMIT).await?.1);
    }
    Ok(spinning)
}

fn lines(out: &[u8]) -> usize {
    out.iter().filter(|&&b| b == b'\n').count()
}

struct Written {
    lines: u64,
    bytes: u64,
}

/// Writes about `size` bytes of log lines, a line per millisecond from 2025-01-01 in `out`, and
/// one every [`ERR_EVERY`] in `err`, in large writes.
fn write_log([out, err]: &[PathBuf; 2], size: u64) -> anyhow::Result<Written> {
    let open = |path: &Path| {
        std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))
    };
    let (mut out_file, mut err_file) = (open(out)?, open(err)?);
    const BUF: usize = 8 << 20;
    let (mut out_buf, mut err_buf) = (Vec::with_capacity(BUF + 4096), Vec::with_capacity(BUF + 4096));
    // 2025-01-01T00:00:00.000Z in milliseconds since the epoch.
    const START_MS: u64 = 1_735_689_600_000;
    let mut stamp = Stamp::default();
    let (mut written, mut ms) = (0, 0);
    while written < size {
        stamp.set(START_MS + ms);
        out_buf.extend_from_slice(&stamp.text);
        writeln!(
            out_buf,
            " GET /api/v1/items/{} 200 {}ms user=user{} request={:016x} bytes={}",
            ms % 100_003,
            ms % 997,
            ms % 50,
            ms.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            ms % 65_536
        )?;
        if ms % ERR_EVERY == 0 {
            err_buf.extend_from_slice(&stamp.text);
            writeln!(err_buf, " WARN slow request {ms}: upstream answered in {} ms", ms % 3001)?;
        }
        ms += 1;
        for (buf, file) in [(&mut out_buf, &mut out_file), (&mut err_buf, &mut err_file)] {
            if buf.len() >= BUF {
                file.write_all(buf)?;
                written += buf.len() as u64;
                buf.clear();
            }
        }
    }
    for (buf, file) in [(&mut out_buf, &mut out_file), (&mut err_buf, &mut err_file)] {
        file.write_all(buf)?;
        written += buf.len() as u64;
    }
    Ok(Written { lines: ms + ms.div_ceil(ERR_EVERY), bytes: written })
}

/// An RFC 3339 timestamp with milliseconds, rewritten in place: only the date is computed
/// once a day.
struct Stamp {
    text: [u8; 24],
    day: u64,
}

impl Default for Stamp {
    fn default() -> Stamp {
        Stamp { text: *b"0000-00-00T00:00:00.000Z", day: u64::MAX }
    }
}

impl Stamp {
    fn set(&mut self, epoch_ms: u64) {
        let (day, ms_of_day) = (epoch_ms / 86_400_000, epoch_ms % 86_400_000);
        if day != self.day {
            self.day = day;
            let (y, m, d) = civil_from_days(day as i64);
            self.text[..10].copy_from_slice(format!("{y:04}-{m:02}-{d:02}").as_bytes());
        }
        let digits = |text: &mut [u8], mut n: u64| {
            for b in text.iter_mut().rev() {
                *b = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        digits(&mut self.text[11..13], ms_of_day / 3_600_000);
        digits(&mut self.text[14..16], ms_of_day / 60_000 % 60);
        digits(&mut self.text[17..19], ms_of_day / 1000 % 60);
        digits(&mut self.text[20..23], ms_of_day % 1000);
    }
}

/// Year, month and day of a day counted from 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_rfc3339_millis() {
        let mut stamp = Stamp::default();
        stamp.set(1_735_689_600_000 + 3_723_004);
        assert_eq!(&stamp.text, b"2025-01-01T01:02:03.004Z");
        stamp.set(951_782_400_000 - 1);
        assert_eq!(&stamp.text, b"2000-02-28T23:59:59.999Z");
        stamp.set(951_782_400_000 + 86_400_000);
        assert_eq!(&stamp.text, b"2000-03-01T00:00:00.000Z");
    }
}
