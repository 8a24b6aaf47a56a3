//! Logs: nothing lost under a burst, final partial lines, history and live following.

use crate::support::{Pm, lines, wait_until};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

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

#[test]
fn a_long_history_is_delivered_whole_to_a_reader_slower_than_the_daemon() {
    let pm = Pm::new();
    let n = 200_000;
    let script = format!("seq 1 {n} | sed 's/^/line /'; exec sleep 1000");
    pm.ok(&["map", "chatty", "--", "sh", "-c", &script]);
    pm.ok(&["start", "chatty"]);
    let file = pm.log_file("chatty", "out");
    wait_until("every line is in the log file", Duration::from_secs(30), || lines(&file).len() == n);
    // A reader that takes its time, as a terminal does (the pauses pace a consumer; they wait
    // for nothing): `pm log` then prints slower than the daemon sends.
    let mut log = pm.cmd(&["log", "chatty", "-n", &n.to_string()]).stdout(Stdio::piped()).spawn().unwrap();
    let mut reader = BufReader::new(log.stdout.take().unwrap());
    let mut out = String::new();
    let mut chunk = String::new();
    for read in 0.. {
        if reader.read_line(&mut chunk).unwrap() == 0 {
            break;
        }
        out.push_str(&chunk);
        chunk.clear();
        if read % 100 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert!(log.wait().unwrap().success());
    let printed: Vec<&str> = out.lines().collect();
    assert_eq!(printed.len(), n, "the last line printed: {:?}", printed.last());
    assert!(printed[0].ends_with("chatty | line 1"), "{}", printed[0]);
    assert!(printed[n - 1].ends_with(&format!("chatty | line {n}")), "{}", printed[n - 1]);
}
