//! Extreme values: each is refused with a clear error or handled, and the daemon stays up and
//! quick. Every value here used to panic, wedge or starve the daemon.

use crate::support::{Pm, lines, run_with_deadline, wait_until};
use std::fmt::Write;
use std::time::Duration;

/// `pm stop pm` must finish within this, however much the daemon holds.
const SHUTDOWN: Duration = Duration::from_secs(20);

/// Stops the daemon, failing the test if that takes longer than [`SHUTDOWN`].
fn stop_daemon_quickly(pm: &Pm) {
    let out = run_with_deadline(pm.cmd(&["stop", "pm"]), SHUTDOWN);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn durations_past_a_hundred_years_are_refused_with_file_line_and_key() {
    let pm = Pm::new();
    pm.write("pm.toml", "[sidecars.web]\ncommand = 'sleep 1000'\nbackoff_initial = '500000000000y'\n");
    let err = pm.fails(&["start"]);
    assert!(
        err.contains("pm.toml:3: sidecars.web.backoff_initial: duration `500000000000y`: too long: at most 100years"),
        "{err}"
    );
    let err = pm.fails(&["map", "web", "--ready-timeout", "500000000000y", "--", "sleep", "1000"]);
    assert!(err.contains("--ready-timeout") && err.contains("too long: at most 100years"), "{err}");
    pm.ok(&["map", "web", "--stop-timeout", "100y", "--", "sleep", "1000"]);
    pm.ok(&["start", "web"]);
    assert_eq!(pm.instance("web")["state"], "ready");
}

/// `n0 … n(len-1)`, each depending on the next; the last depends on `last_dep`.
fn chain(len: usize, last_dep: &str) -> String {
    let mut toml = String::new();
    for i in 0..len {
        let dep = if i + 1 < len { format!("n{}", i + 1) } else { last_dep.to_string() };
        writeln!(toml, "[sidecars.n{i}]\ncommand = 'sleep 1000'\nautostart = false\ndepends_on = ['{dep}']").unwrap();
    }
    toml
}

#[test]
fn a_dependency_chain_deeper_than_the_stack_is_walked_without_recursion() {
    let pm = Pm::new();
    pm.write("cycle.toml", &chain(15_000, "n0"));
    let err = pm.fails(&["start", "-f", "cycle.toml"]);
    let whole = (0..15_000).map(|i| format!("n{i}")).collect::<Vec<_>>().join(" -> ");
    assert!(err.contains(&format!("dependency cycle: {whole} -> n0")), "{}…", &err[..err.len().min(300)]);

    // The chain ends at a definition that does not exist: starting its head walks all of it.
    pm.write("pm.toml", &chain(15_000, "missing"));
    pm.ok(&["start", "-f", "pm.toml"]);
    let err = pm.fails(&["start", "n0"]);
    assert!(err.contains("n14999 depends on `missing`, which is not defined"), "{err}");
    assert_eq!(pm.status().len(), 15_000);
    stop_daemon_quickly(&pm);
}

#[test]
fn instance_counts_are_capped_and_the_largest_stops_quickly() {
    let pm = Pm::new();
    pm.write("pm.toml", "[sidecars.many]\ncommand = 'sleep 1000'\ninstances = 100000\n");
    let err = pm.fails(&["start"]);
    assert!(err.contains("pm.toml:3: sidecars.many.instances: must be from 1 to 10000 (got 100000)"), "{err}");
    let err = pm.fails(&["map", "many", "--instances", "100000", "--", "sleep", "1000"]);
    assert!(err.contains("at most 10000 (got 100000)"), "{err}");

    pm.write("pm.toml", "[sidecars.many]\ncommand = 'sleep 1000'\nautostart = false\ninstances = 10000\n");
    pm.ok(&["start"]);
    assert_eq!(pm.status().len(), 10_000);
    stop_daemon_quickly(&pm);
}

#[test]
fn names_too_long_for_a_log_file_are_refused() {
    let pm = Pm::new();
    let huge = "a".repeat(1024);
    pm.write("pm.toml", &format!("[sidecars.{huge}]\ncommand = 'sleep 1000'\n"));
    let err = pm.fails(&["start"]);
    assert!(err.contains(": invalid name `aaaaaaaaaaaaaaaa…`: 1024 bytes long; names are at most 128"), "{err}");
    let err = pm.fails(&["map", &huge, "--", "sleep", "1000"]);
    assert!(err.contains("1024 bytes long; names are at most 128"), "{err}");
    let err = pm.fails(&["map", &"b".repeat(65), "--", "sleep", "1000"]);
    assert!(err.contains("65 bytes long; definition names are at most 64"), "{err}");

    // The longest definition name still leaves room for generated instance names and their logs.
    let longest = "c".repeat(64);
    pm.ok(&["map", &longest, "--no-autostart", "--", "sh", "-c", "echo hello; exec sleep 1000"]);
    pm.ok(&["start", &longest, "--new"]);
    let generated = |s: serde_json::Value| s["name"].as_str().filter(|n| n.len() > 64).map(str::to_string);
    let instance = pm.status().into_iter().find_map(generated).expect("a generated instance");
    let log = pm.log_file(&instance, "out");
    wait_until("its output is logged", Duration::from_secs(10), || lines(&log).iter().any(|l| l.ends_with(" hello")));
}
