//! Logs: nothing lost under a burst, final partial lines, history and live following; a long
//! history goes whole to a slow reader with bounded memory on both sides, without holding up
//! other requests; a follower that cannot keep up is told what it missed and follows on.

use crate::support::{Pm, lines, run_with_deadline, wait_until};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, UNIX_EPOCH};

#[test]
fn a_burst_of_100k_lines_is_all_in_the_log_file_in_order() {
    let pm = Pm::new();
    pm.ok(&["map", "burst", "--ready", "exited", "--restart", "never", "--", "seq", "1", "100000"]);
    pm.ok(&["start", "burst"]);
    let file = pm.log_file("burst", "out");
    wait_until("100000 lines in the log", Duration::from_secs(30), || lines(&file).len() >= 100_000);
    let got = lines(&file);
    assert_eq!(got.len(), 100_000);
    for (i, line) in got.iter().enumerate() {
        let (stamp, text) = line.split_once(' ').unwrap();
        assert_eq!(text, (i + 1).to_string(), "line {i}");
        assert!(stamp.ends_with('Z') && stamp.len() == 24, "timestamp {stamp}");
    }
}

#[test]
fn a_final_line_without_newline_and_stderr_are_kept() {
    let pm = Pm::new();
    pm.ok(&[
        "map",
        "partial",
        "--ready",
        "exited",
        "--restart",
        "never",
        "--",
        "sh",
        "-c",
        "echo oops >&2; printf 'no newline'",
    ]);
    pm.ok(&["start", "partial"]);
    wait_until("partial line logged", Duration::from_secs(10), || !lines(&pm.log_file("partial", "out")).is_empty());
    assert!(lines(&pm.log_file("partial", "out"))[0].ends_with(" no newline"));
    assert!(lines(&pm.log_file("partial", "err"))[0].ends_with(" oops"));
    let out = pm.ok(&["log", "partial"]);
    assert!(out.contains("partial err | oops") && out.contains("partial | no newline"), "{out}");
}

#[test]
fn log_shows_the_last_lines_then_follows_new_ones() {
    let pm = Pm::new();
    let script = "i=0; while [ $i -lt 5 ]; do i=$((i+1)); echo old $i; done; echo up; \
                  while [ ! -e go ]; do sleep 0.02; done; echo fresh line; sleep 1000";
    pm.ok(&["map", "talker", "--ready", "log:^up$", "--", "sh", "-c", script]);
    pm.ok(&["start", "talker"]);
    let history = pm.ok(&["log", "talker", "-n", "2"]);
    let shown: Vec<&str> = history.lines().map(|l| l.rsplit(" | ").next().unwrap()).collect();
    assert_eq!(shown, ["old 5", "up"]);

    // `-n 1`: the history line arrives after the daemon subscribed this follower to live lines,
    // so once it is printed, a new line must follow.
    let mut follower = pm.cmd(&["log", "talker", "-n", "1", "-f", "--json"]).stdout(Stdio::piped()).spawn().unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let text = |line: String| serde_json::from_str::<serde_json::Value>(&line).unwrap()["line"].clone();
    assert_eq!(text(rx.recv_timeout(Duration::from_secs(10)).expect("history")), "up");
    pm.write("go", "");
    let fresh = rx.recv_timeout(Duration::from_secs(10)).expect("a followed line");
    let _ = follower.kill();
    let _ = follower.wait();
    assert_eq!(text(fresh), "fresh line");
}

#[test]
fn events_are_followed_and_end_explicitly_when_the_daemon_stops() {
    let pm = Pm::new();
    pm.ok(&["map", "svc", "--", "sleep", "1000"]);
    let mut follower = pm.cmd(&["events", "--json"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Until the follower is subscribed, changes pass unseen: make changes until it reports one.
    let mut seen = Vec::new();
    wait_until("the follower reports a change", Duration::from_secs(10), || {
        pm.ok(&["restart", "svc"]);
        seen.extend(rx.try_iter());
        !seen.is_empty()
    });
    let event: serde_json::Value = serde_json::from_str(&seen[0]).unwrap();
    assert_eq!(event["instance"], "svc");
    pm.ok(&["stop", "pm"]);
    wait_until("the follower ends", Duration::from_secs(10), || follower.try_wait().unwrap().is_some());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut follower.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("event stream ended: daemon stopping"), "{err}");
    assert!(follower.wait().unwrap().success());
}

/// Writes a log file as the daemon does (`<RFC 3339 ms> <text>\n`), with large writes: line `i`
/// of `texts` at `ms(i)` milliseconds after 2025-01-01.
fn write_log(path: &std::path::Path, texts: impl Iterator<Item = (u64, String)>) {
    let start = UNIX_EPOCH + Duration::from_secs(1_735_689_600);
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    for (ms, text) in texts {
        let at = humantime::format_rfc3339_millis(start + Duration::from_millis(ms));
        writeln!(out, "{at} {text}").unwrap();
    }
    out.flush().unwrap();
}

/// A sidecar that is defined and never started, with `lines` lines of history: `line i` at
/// millisecond `i`, one in three on stderr (so `pm log` merges the two streams).
fn big_history(pm: &Pm, name: &str, lines: u64) {
    pm.ok(&["map", name, "--no-autostart", "--restart", "never", "--", "true"]);
    let texts = |err: bool| (1..=lines).filter(move |i| (i % 3 == 0) == err).map(|i| (i, format!("line {i}")));
    write_log(&pm.log_file(name, "out"), texts(false));
    write_log(&pm.log_file(name, "err"), texts(true));
}

/// The peak resident memory of a process, in KiB (0 once it is gone).
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: 0 kB");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).unwrap_or(0)
}

/// Reads a child's stdout (or stderr) on a thread, a line at a time, into a channel; with
/// `pause`, the reader takes a millisecond's rest every that many lines, as a slow terminal or
/// pipe would (the pauses pace a consumer; they wait for nothing).
fn lines_of(pipe: impl Read + Send + 'static, pause: Option<usize>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (i, line) in BufReader::new(pipe).lines().map_while(Result::ok).enumerate() {
            if tx.send(line).is_err() {
                return;
            }
            if let Some(every) = pause {
                // A long look at the first screenful, then a moment every `every` lines.
                let rest = if i == 0 { 4000 } else { 1 };
                if i == 0 || i % every == every - 1 {
                    std::thread::sleep(Duration::from_millis(rest));
                }
            }
        }
    });
    rx
}

/// The text after ` | ` of a printed line.
fn shown(line: &str) -> &str {
    line.split_once(" | ").map_or(line, |(_, text)| text)
}

/// Kills and reaps a child on drop, so a failing test leaves nothing behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_long_history_goes_whole_and_in_order_to_a_slow_reader_with_the_cli_s_memory_bounded() {
    let pm = Pm::new();
    let n = 1_000_000;
    big_history(&pm, "chatty", n);
    pm.ok(&["start", "pm"]);
    let mut log = pm.cmd(&["log", "chatty", "-n", &n.to_string()]);
    let mut log = Reaped(log.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap());
    let pid = log.0.id();
    let printed = lines_of(log.0.stdout.take().unwrap(), Some(1000));
    // Every line, in time order across both streams, while the CLI's memory is sampled: it
    // reads a notification only once the last one is printed, so it never holds the history.
    let (mut next, mut peak) = (1, 0);
    let deadline = Instant::now() + Duration::from_secs(180);
    while next <= n {
        assert!(Instant::now() < deadline, "only {} of {n} lines within the deadline", next - 1);
        peak = peak.max(peak_kib(pid));
        let Ok(line) = printed.recv_timeout(Duration::from_millis(100)) else {
            assert!(log.0.try_wait().unwrap().is_none(), "pm log ended after {} of {n} lines", next - 1);
            continue;
        };
        let tag = if next % 3 == 0 { "chatty err" } else { "chatty" };
        assert_eq!(line.split_once(' ').map(|(_, rest)| rest), Some(&*format!("{tag} | line {next}")), "{line}");
        next += 1;
    }
    wait_until("pm log exits", Duration::from_secs(30), || log.0.try_wait().unwrap().is_some());
    assert!(log.0.wait().unwrap().success());
    assert!(printed.recv_timeout(Duration::from_secs(5)).is_err(), "nothing after the last line");
    // About 50 MB of notifications went through it; a CLI that buffers what it cannot print yet
    // holds tens of MB more after the reader's first pause alone.
    assert!(peak < 40 * 1024, "pm log's peak memory was {peak} KiB");
}

#[test]
fn a_big_pm_log_holds_up_neither_other_requests_nor_the_daemon_s_memory() {
    let pm = Pm::new();
    let n = 1_000_000;
    big_history(&pm, "big", n);
    pm.ok(&["map", "small", "--", "sh", "-c", "echo hello; exec sleep 1000"]);
    pm.ok(&["start", "small"]);
    wait_until("small's line is logged", Duration::from_secs(10), || {
        last_line(&pm.log_file("small", "out")).ends_with(" hello")
    });
    let daemon = pm.daemon_pid().unwrap() as u32;
    let before = peak_kib(daemon);
    // A reader that stops after the first line: the daemon must wait for it, not read ahead.
    let mut log = pm.cmd(&["log", "big", "-n", &n.to_string()]);
    let mut log = Reaped(log.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap());
    let mut stdout = BufReader::new(log.0.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.ends_with("big | line 1\n"), "{first}");
    // Other requests are answered meanwhile, and the big read is still going on after them.
    for _ in 0..3 {
        let status = run_with_deadline(pm.cmd(&["status", "--json"]), Duration::from_secs(10));
        assert!(status.status.success() && String::from_utf8_lossy(&status.stdout).contains("small"));
        let small = run_with_deadline(pm.cmd(&["log", "small"]), Duration::from_secs(10));
        assert!(String::from_utf8_lossy(&small.stdout).contains("small | hello"), "{small:?}");
    }
    assert!(log.0.try_wait().unwrap().is_none(), "the big pm log finished: the reader was not slow enough");
    // What the daemon holds of a history it cannot send is bounded (the connection's queue),
    // far below the history (about 55 MB of lines, several times that as notifications).
    let grew = peak_kib(daemon).saturating_sub(before);
    assert!(grew < 100 * 1024, "the daemon's peak memory grew by {grew} KiB");
    // Then all of it arrives.
    let rest = lines_of(stdout, None);
    let mut count = 1;
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    while let Ok(line) = rest.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        count += 1;
        last = line;
    }
    assert_eq!(count, n, "the last line: {last}");
    assert!(last.ends_with(&format!("big | line {n}")), "{last}");
    assert!(log.0.wait().unwrap().success());
}

#[test]
fn a_follower_that_falls_behind_is_told_how_many_lines_it_missed_and_follows_on() {
    let pm = Pm::new();
    // A burst far larger than what the daemon queues for one connection (32 MiB), written
    // while the follower does not read, then one more line once the burst is over.
    let script = "echo ready; while [ ! -e go ]; do sleep 0.02; done; \
                  seq 1 200000 | awk '{ printf \"burst %d %0400d\\n\", $1, 0 }'; \
                  while [ ! -e later ]; do sleep 0.02; done; echo after the burst; exec sleep 1000";
    pm.ok(&["map", "flood", "--ready", "log:^ready$", "--", "sh", "-c", script]);
    pm.ok(&["start", "flood"]);
    let mut follower = pm.cmd(&["log", "flood", "-n", "1", "-f"]);
    let mut follower = Reaped(follower.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap());
    let mut stdout = BufReader::new(follower.0.stdout.take().unwrap());
    let notices = lines_of(follower.0.stderr.take().unwrap(), None);
    // Once the history line is printed, the follower is subscribed to live lines.
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.ends_with("flood | ready\n"), "{first}");
    pm.write("go", "");
    let file = pm.log_file("flood", "out");
    let burst = 200_000;
    wait_until("the burst is in the log file", Duration::from_secs(120), || {
        last_line(&file).contains(&format!(" burst {burst} "))
    });
    pm.write("later", "");
    wait_until("the line after the burst is logged", Duration::from_secs(30), || {
        last_line(&file).ends_with(" after the burst")
    });
    // Now it reads: what was queued for it, the notice, then the lines that came after.
    let printed = lines_of(stdout, None);
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = printed.recv_timeout(deadline.saturating_duration_since(Instant::now()));
        let line = line.unwrap_or_else(|_| panic!("no `after the burst` within the deadline ({seen} lines before)"));
        if shown(&line) == "after the burst" {
            break;
        }
        assert!(shown(&line).starts_with("burst "), "{line}");
        seen += 1;
    }
    assert!(seen < burst, "all {seen} lines of the burst were shown: the follower never fell behind");
    assert!(follower.0.try_wait().unwrap().is_none(), "the follower still follows");
    // Its notices were written before the lines that came after them; once it is gone, every
    // one of them has been read.
    drop(follower);
    let mut skipped = 0;
    while let Ok(notice) = notices.recv_timeout(Duration::from_secs(10)) {
        skipped += notice
            .strip_prefix("pm: ")
            .and_then(|n| n.split_once(" lines skipped while following"))
            .and_then(|(n, _)| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("{notice}"));
    }
    assert_eq!(seen + skipped, burst, "the lines shown and those said to be skipped make the burst");
}

/// The last line of a file (read from its end).
fn last_line(path: &std::path::Path) -> String {
    let Ok(mut file) = std::fs::File::open(path) else { return String::new() };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(4096);
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(from)).unwrap();
    let mut tail = String::new();
    let _ = file.read_to_string(&mut tail);
    tail.trim_end_matches('\n').rsplit('\n').next().unwrap_or_default().to_string()
}

#[test]
fn logs_rotate_under_a_flood_without_losing_a_line_and_keep_their_count() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&["--log-max-size", "64K", "--log-keep", "3"]);
    // About 780 KB of lines: a dozen rotations, of which the last three files are kept.
    pm.ok(&["map", "flood", "--ready", "exited", "--restart", "never", "--", "seq", "-f", "line %09g", "1", "20000"]);
    pm.ok(&["start", "flood"]);
    let current = pm.log_file("flood", "out");
    let rotated = |k: u32| std::path::PathBuf::from(format!("{}.{k}", current.display()));
    let last = "line 000020000";
    wait_until("the last line in the log", Duration::from_secs(30), || {
        lines(&current).last().is_some_and(|l| l.ends_with(last))
            || (!current.exists() && lines(&rotated(1)).last().is_some_and(|l| l.ends_with(last)))
    });
    assert!(!rotated(4).exists(), "only 3 rotated files are kept");
    let mut kept = Vec::new();
    for k in [3, 2, 1] {
        let size = std::fs::metadata(rotated(k)).expect("3 rotated files").len();
        // Rotated between blocks of whole lines (16 KiB at most) once 64 KiB were reached.
        assert!((64 << 10..(64 + 17) << 10).contains(&size), ".{k} is {size} bytes");
        kept.extend(lines(&rotated(k)));
    }
    kept.extend(lines(&current));
    // Whole lines, none lost or repeated across the files' seams, up to the last.
    let numbers: Vec<u64> = kept
        .iter()
        .map(|l| {
            let (stamp, text) = l.split_once(' ').unwrap();
            assert!(stamp.ends_with('Z') && stamp.len() == 24, "timestamp {stamp}");
            text.strip_prefix("line ").unwrap().parse().unwrap()
        })
        .collect();
    let first = numbers[0];
    assert_eq!(numbers, (first..=20_000).collect::<Vec<_>>());
    // `pm log` reads across the rotated files, oldest first.
    let shown: Vec<String> =
        pm.ok(&["log", "flood", "-n", "100000"]).lines().filter(|l| l.contains("line 0")).map(String::from).collect();
    assert_eq!(shown.len(), numbers.len(), "pm log shows every kept line");
    assert!(shown.first().unwrap().ends_with(&format!("line {first:09}")) && shown.last().unwrap().ends_with(last));
}

#[test]
fn daemon_log_rotates_too_and_later_lines_go_to_the_fresh_file() {
    let pm = Pm::new();
    // As `pm start pm` starts it: the daemon's stdout and stderr are PM_HOME/daemon.log.
    let log = pm.home.path().join("daemon.log");
    let rotated = |k: u32| std::path::PathBuf::from(format!("{}.{k}", log.display()));
    let file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
    let mut daemon = pm
        .cmd(&["daemon", "--log-max-size", "64K", "--log-keep", "2"])
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    wait_until("the daemon answers", Duration::from_secs(10), || pm.run(&["status"]).status.success());
    // A crash loop: a few lines of the daemon's log per restart.
    pm.ok(&[
        "map",
        "crash",
        "--restart",
        "always",
        "--backoff-initial",
        "0s",
        "--max-restarts",
        "1000000",
        "--",
        "false",
    ]);
    pm.ok(&["start", "crash"]);
    wait_until("daemon.log rotated twice and written again", Duration::from_secs(60), || {
        rotated(2).exists() && std::fs::metadata(&log).is_ok_and(|m| m.len() > 0)
    });
    pm.ok(&["stop", "crash"]);
    assert!(!rotated(3).exists(), "only 2 rotated files are kept");
    for k in [1, 2] {
        let size = std::fs::metadata(rotated(k)).unwrap().len();
        assert!((64 << 10..(64 + 4) << 10).contains(&size), "daemon.log.{k} is {size} bytes");
    }
    // What the daemon logs now goes to the fresh file.
    pm.ok(&["map", "marker-after-rotation", "--", "true"]);
    pm.ok(&["start", "marker-after-rotation"]);
    wait_until("the fresh daemon.log is written", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).unwrap_or_default().contains("marker-after-rotation")
    });
    pm.ok(&["stop", "pm"]);
    wait_until("the daemon exits", Duration::from_secs(10), || daemon.try_wait().is_ok_and(|s| s.is_some()));
}

#[test]
fn pm_log_format_json_makes_the_daemon_log_json_lines() {
    let pm = Pm::new();
    let mut cmd = pm.cmd(&["daemon"]);
    cmd.env("PM_LOG_FORMAT", "json");
    let _daemon = pm.foreground(cmd);
    pm.ok(&["map", "quick", "--ready", "exited", "--restart", "never", "--", "true"]);
    pm.ok(&["start", "quick"]);
    let out = pm.path("daemon.out");
    wait_until("the start in the daemon's log", Duration::from_secs(10), || {
        std::fs::read_to_string(&out).unwrap_or_default().contains("quick")
    });
    for line in lines(&out) {
        let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(event["timestamp"].is_string() && event["level"].is_string() && event["message"].is_string(), "{line}");
    }
}

#[test]
fn pm_log_merges_several_or_all_instances_and_filters_by_time_and_pattern() {
    let pm = Pm::new();
    for name in ["alpha", "beta"] {
        let script = format!("for i in 1 2 3 4; do echo {name}-$i; done");
        pm.ok(&["map", name, "--ready", "exited", "--restart", "never", "--", "sh", "-c", &script]);
        pm.ok(&["start", name]);
        wait_until("its lines in the log", Duration::from_secs(10), || lines(&pm.log_file(name, "out")).len() == 4);
    }
    let texts = |args: &[&str]| -> Vec<String> {
        pm.ok(args).lines().map(|l| l.split_once(" | ").map_or(l, |(_, text)| text).to_string()).collect()
    };
    let all = ["alpha-1", "alpha-2", "alpha-3", "alpha-4", "beta-1", "beta-2", "beta-3", "beta-4"];
    // Merged in time order (alpha ran first), each line with its instance's name.
    assert_eq!(texts(&["log", "alpha", "beta"]), all);
    assert_eq!(texts(&["log"]), all, "no name: every instance");
    let out = pm.ok(&["log", "beta", "alpha", "-n", "1"]);
    assert!(out.trim_end().ends_with("beta | beta-4") && out.lines().count() == 1, "{out}");
    assert_eq!(texts(&["log", "--grep", "-[13]$"]), ["alpha-1", "alpha-3", "beta-1", "beta-3"]);
    assert_eq!(texts(&["log", "--grep", "-[13]$", "-n", "1"]), ["beta-3"], "-n counts matching lines");
    assert_eq!(texts(&["log", "alpha", "--since", "1h"]).len(), 4, "--since without -n: every line since then");
    assert!(texts(&["log", "--since", "2000-01-01T00:00:00Z", "-n", "2"]).len() == 2);
    assert!(pm.ok(&["log", "--since", "2999-01-01T00:00:00Z"]).is_empty(), "nothing after a future time");
    let err = pm.fails(&["log", "--grep", "("]);
    assert!(err.contains("not a regular expression"), "{err}");
    let err = pm.fails(&["log", "--since", "last tuesday"]);
    assert!(err.contains("--since"), "{err}");
    let err = pm.fails(&["log", "alpha", "ghost"]);
    assert!(err.contains("ghost"), "{err}");
}

#[test]
fn flush_empties_the_logs_and_later_lines_still_go_to_them() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&["--log-max-size", "64K", "--log-keep", "2"]);
    // Lines until told to stop: about 100 KB at once (a rotation), then one a line per 50 ms.
    let script = "seq -f 'old %06g' 1 8000; while :; do echo new; sleep 0.05; done";
    pm.ok(&["map", "chatty", "--", "sh", "-c", script]);
    pm.ok(&["start", "chatty"]);
    let current = pm.log_file("chatty", "out");
    let rotated = std::path::PathBuf::from(format!("{}.1", current.display()));
    wait_until("a rotation and new lines", Duration::from_secs(20), || {
        rotated.exists() && lines(&current).iter().any(|l| l.ends_with(" new"))
    });
    let said = pm.ok(&["flush", "chatty"]);
    assert!(said.contains(&format!("flushed {}", current.display())) && said.contains(".out.log.1"), "{said}");
    assert!(!rotated.exists(), "rotated files are deleted");
    // The writer goes on into the emptied file: no old line, new ones again.
    wait_until("new lines after the flush", Duration::from_secs(10), || {
        let now = lines(&current);
        !now.is_empty() && now.iter().all(|l| l.ends_with(" new"))
    });
    assert!(pm.ok(&["log", "chatty", "-n", "1000"]).lines().all(|l| l.ends_with("| new")));
    let err = pm.fails(&["flush", "ghost"]);
    assert!(err.contains("ghost"), "{err}");
}
