//! The history's unit tests: merging, rotated files, batches, seams.

use super::*;
use crate::home::Home;

fn hub() -> (tempfile::TempDir, LogHub) {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    home.create().unwrap();
    (dir, LogHub::new(home))
}

fn stamp(ms: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)).to_string()
}

fn texts(lines: &[LogLine]) -> Vec<String> {
    lines.iter().map(|l| l.line.clone()).collect()
}

#[test]
fn the_last_lines_of_one_file_across_blocks() {
    let (_dir, hub) = hub();
    let text: String = (0..50_000).map(|i| format!("{} line {i}\n", stamp(i))).collect();
    std::fs::write(hub.home.log_file("x", LogStream::Out), text).unwrap();
    let x = ["x".to_string()];
    assert_eq!(texts(&hub.history(&x, 3)), ["line 49997", "line 49998", "line 49999"]);
    assert!(hub.history(&x, 0).is_empty());
    assert_eq!(hub.history(&x, 60_000).len(), 50_000);
    let last: Vec<String> = (10_000..50_000).map(|i| format!("line {i}")).collect();
    assert_eq!(texts(&hub.history(&x, 40_000)), last, "whole lines, in order, across many blocks");
}

#[test]
fn the_history_goes_on_into_rotated_files_in_order() {
    let (_dir, hub) = hub();
    let path = hub.home.log_file("x", LogStream::Out);
    // Lines 0..300 over .3 (oldest), .2, .1 and the current file; ties at each seam (the
    // same millisecond on both sides) keep the files' order.
    let file = |k: u32, lines: std::ops::Range<u64>| {
        let text: String = lines.map(|i| format!("{} line {i}\n", stamp(i / 2))).collect();
        std::fs::write(rotated(&path, k), text).unwrap();
    };
    file(3, 0..75);
    file(2, 75..151);
    file(1, 151..225);
    file(0, 225..300);
    let x = ["x".to_string()];
    let all: Vec<String> = (0..300).map(|i| format!("line {i}")).collect();
    assert_eq!(texts(&hub.history(&x, 1000)), all);
    assert_eq!(texts(&hub.history(&x, 100)), all[200..]);
    assert_eq!(texts(&hub.history(&x, 10)), all[290..], "older files are not needed");
    // Just after a rotation there is no current file yet: the history starts at .1.
    std::fs::remove_file(&path).unwrap();
    assert_eq!(texts(&hub.history(&x, 80)), all[145..225]);
    // A gap in the numbering ends the history there.
    std::fs::remove_file(rotated(&path, 2)).unwrap();
    assert_eq!(texts(&hub.history(&x, 1000)), all[151..225]);
}

#[test]
fn streams_and_instances_merge_in_time_order_and_ties_keep_their_order() {
    let (_dir, hub) = hub();
    // out: even milliseconds; err: every third; b: every fifth, with ties among them all.
    let file = |instance: &str, stream, every: u64| {
        let text: String = (0..30_000)
            .filter(|i| i % every == 0)
            .map(|i| format!("{} {instance}-{} {i}\n", stamp(i), stream as usize))
            .collect();
        std::fs::write(hub.home.log_file(instance, stream), text).unwrap();
    };
    file("a", LogStream::Out, 2);
    file("a", LogStream::Err, 3);
    file("b", LogStream::Out, 5);
    let names = ["a".to_string(), "b".to_string()];
    let mut all = Vec::new();
    for i in 0..30_000 {
        for (instance, stream, every) in [("a", 0, 2), ("a", 1, 3), ("b", 0, 5)] {
            if i % every == 0 {
                all.push(format!("{instance}-{stream} {i}"));
            }
        }
    }
    for n in [0, 1, 2, 7, 1000, 12_345, all.len(), all.len() + 10] {
        let want = &all[all.len().saturating_sub(n)..];
        assert_eq!(texts(&hub.history(&names, n)), want, "n = {n}");
    }
}

#[test]
fn many_instances_merge_in_time_order() {
    let (_dir, hub) = hub();
    let names: Vec<String> = (0..60).map(|k| format!("i{k:02}")).collect();
    for (k, name) in names.iter().enumerate() {
        // Instance k logs at every millisecond that is k modulo 7, twice at some.
        let text: String = (0..3000u64)
            .filter(|ms| ms % 7 == k as u64 % 7)
            .flat_map(|ms| {
                let twice = if ms % 5 == 0 { 2 } else { 1 };
                (0..twice).map(move |t| format!("{} {name} {ms} {t}\n", stamp(ms)))
            })
            .collect();
        std::fs::write(hub.home.log_file(name, LogStream::Out), text).unwrap();
    }
    let mut all = Vec::new();
    for ms in 0..3000u64 {
        for (k, name) in names.iter().enumerate() {
            if ms % 7 == k as u64 % 7 {
                all.extend((0..if ms % 5 == 0 { 2 } else { 1 }).map(|t| format!("{name} {ms} {t}")));
            }
        }
    }
    for n in [1, 59, 1000, all.len()] {
        assert_eq!(texts(&hub.history(&names, n)), &all[all.len() - n..], "n = {n}");
    }
}

#[test]
fn long_lines_an_unfinished_last_line_and_missing_files() {
    let (_dir, hub) = hub();
    let long = "y".repeat(3 * BLOCK + 17);
    let text = format!("{} a\n{} {long}\n{} b\n{} unfinished", stamp(1), stamp(2), stamp(3), stamp(4));
    std::fs::write(hub.home.log_file("x", LogStream::Out), text).unwrap();
    let x = ["x".to_string(), "missing".to_string()];
    assert_eq!(texts(&hub.history(&x, 3)), [long.as_str(), "b", "unfinished"]);
    assert_eq!(texts(&hub.history(&x, 10)), ["a", long.as_str(), "b", "unfinished"]);
}

#[test]
fn batches_are_bounded_and_chunks_carry_many_lines() {
    let (_dir, hub) = hub();
    let text: String = (0..100_000).map(|i| format!("{} line {i}\n", stamp(i))).collect();
    std::fs::write(hub.home.log_file("x", LogStream::Out), &text).unwrap();
    let mut history = hub.open_history(&["x".to_string()], 100_000, false, Default::default());
    let mut lines = 0;
    let mut batches = 0;
    loop {
        let batch = history.read_batch(true, 4 * CHUNK);
        if batch.is_empty() {
            break;
        }
        batches += 1;
        let bytes: usize = batch.iter().map(|(_, len)| len).sum();
        assert!(bytes < 6 * CHUNK, "a batch of {bytes} bytes");
        for (event, _) in batch {
            let LogEvent::Lines(runs) = event else { panic!("{event:?}") };
            for run in runs {
                for (at, line) in run.lines() {
                    assert_eq!(line, format!("line {lines}"));
                    assert_eq!(at, stamp(lines));
                    lines += 1;
                }
            }
        }
    }
    assert_eq!(lines, 100_000);
    assert!(batches > 10, "{batches} batches");
}

#[test]
fn live_lines_already_in_the_history_are_not_repeated() {
    let (_dir, hub) = hub();
    let text = format!("{} a\n{} b\n{} c\n", stamp(1), stamp(2), stamp(2));
    std::fs::write(hub.home.log_file("x", LogStream::Out), text).unwrap();
    let mut seen = hub.open_history(&["x".to_string()], 1, true, Default::default()).into_seen();
    let line = |ms, text: &str, stream| LogLine { instance: "x".into(), stream, at: stamp(ms), line: text.into() };
    assert!(!seen.is_new(&line(1, "a", LogStream::Out)), "older");
    assert!(!seen.is_new(&line(2, "c", LogStream::Out)), "the same millisecond, in the history");
    assert!(seen.is_new(&line(2, "c", LogStream::Out)), "the same line again, written after");
    assert!(seen.is_new(&line(1, "clock went back", LogStream::Out)), "caught up");
    assert!(seen.is_new(&line(0, "no err file", LogStream::Err)));
}

#[test]
fn since_and_grep_count_and_give_only_the_lines_they_keep() {
    let (_dir, hub) = hub();
    // One line a second, over the current file and a rotated one; every third is an error.
    let line = |i: u64| format!("{} {} {i}\n", stamp(i * 1000), if i.is_multiple_of(3) { "error" } else { "fine" });
    let path = hub.home.log_file("x", LogStream::Out);
    std::fs::write(rotated(&path, 1), (0..50).map(line).collect::<String>()).unwrap();
    std::fs::write(&path, (50..100).map(line).collect::<String>()).unwrap();
    let x = ["x".to_string()];
    let with = |since: Option<&str>, grep: Option<&str>, n: usize| {
        let asked =
            pm_protocol::status::LogFilter { names: None, since: since.map(Into::into), grep: grep.map(Into::into) };
        let filter = Filter::new(&asked, std::time::UNIX_EPOCH + std::time::Duration::from_secs(100)).unwrap();
        let mut history = hub.open_history(&x, n, false, Arc::new(filter));
        let mut got = Vec::new();
        while let Some(runs) = history.next_chunk() {
            got.extend(runs.iter().flat_map(|run| run.lines().map(|(_, line)| line.to_string()).collect::<Vec<_>>()));
        }
        got
    };
    let errors: Vec<String> = (0u64..100).filter(|i| i.is_multiple_of(3)).map(|i| format!("error {i}")).collect();
    assert_eq!(with(None, Some("^error"), 5), errors[errors.len() - 5..], "the last 5 that match");
    assert_eq!(with(None, Some("^error"), usize::MAX), errors, "across the rotated file");
    // 70 s before now (100 s): lines 30 to 99, reaching into the rotated file.
    let recent: Vec<String> =
        (30u64..100).map(|i| format!("{} {i}", if i.is_multiple_of(3) { "error" } else { "fine" })).collect();
    assert_eq!(with(Some("70s"), None, usize::MAX), recent);
    assert_eq!(with(Some("70s"), None, 3), recent[recent.len() - 3..]);
    assert_eq!(with(Some("70s"), Some("^error"), usize::MAX), errors[10..], "both");
    assert!(with(Some("1ms"), None, usize::MAX).is_empty(), "nothing that recent");
}
