//! Start order, readiness waits, reverse stop order, cycles and missing dependencies.

use crate::support::{Pm, lines, recording_sidecar, wait_until};
use std::time::Duration;

/// db <- api <- web, and cache <- web: a project with a diamond-ish graph.
fn project(pm: &Pm) -> std::path::PathBuf {
    let record = pm.path("record.txt");
    let sidecar = |name: &str, deps: &[&str]| {
        format!(
            "[sidecars.{name}]\ncommand = [\"sh\", \"-c\", {cmd:?}]\nready = {{ log = \"^up$\" }}\ndepends_on = {deps:?}\nstop_timeout = \"5s\"\n",
            cmd = recording_sidecar(name, &record)
        )
    };
    let toml = [sidecar("db", &[]), sidecar("api", &["db"]), sidecar("cache", &[]), sidecar("web", &["api", "cache"])];
    pm.write("pm.toml", &toml.join("\n"));
    record
}

fn position(record: &[String], line: &str) -> usize {
    record.iter().position(|l| l == line).unwrap_or_else(|| panic!("`{line}` missing from {record:?}"))
}

#[test]
fn starts_dependencies_first_and_stops_dependents_first() {
    let pm = Pm::new();
    let record = project(&pm);
    pm.ok(&["start"]);
    let started = lines(&record);
    assert_eq!(started.len(), 4, "{started:?}");
    assert!(position(&started, "start db") < position(&started, "start api"));
    assert!(position(&started, "start api") < position(&started, "start web"));
    assert!(position(&started, "start cache") < position(&started, "start web"));
    for s in pm.status() {
        assert_eq!(s["state"], "ready", "{s}");
    }

    // Stopping db stops api and web first (cache is not a dependent and keeps running).
    pm.ok(&["stop", "db"]);
    let all = lines(&record);
    let stops: Vec<&String> = all.iter().filter(|l| l.starts_with("stop")).collect();
    assert_eq!(stops, ["stop web", "stop api", "stop db"], "{all:?}");
    assert_eq!(pm.instance("cache")["state"], "ready");
    assert_eq!(pm.instance("web")["state"], "stopped");
}

#[test]
fn starting_one_sidecar_starts_only_what_it_needs() {
    let pm = Pm::new();
    let record = project(&pm);
    pm.ok(&["start", "-f", "pm.toml"]);
    pm.ok(&["stop", "--all"]);
    std::fs::remove_file(&record).unwrap();
    pm.ok(&["start", "api"]);
    assert_eq!(lines(&record), ["start db", "start api"]);
    assert_eq!(pm.instance("web")["state"], "stopped");
}

#[test]
fn a_cycle_is_rejected_with_its_whole_path_before_anything_starts() {
    let pm = Pm::new();
    pm.write(
        "pm.toml",
        r#"
[sidecars.a]
command = "sleep 100"
depends_on = ["b"]
[sidecars.b]
command = "sleep 100"
depends_on = ["c"]
[sidecars.c]
command = "sleep 100"
depends_on = ["a"]
[sidecars.free]
command = "sleep 100"
"#,
    );
    let err = pm.fails(&["start"]);
    assert!(err.contains("dependency cycle: a -> b -> c -> a"), "{err}");
    assert!(pm.status().is_empty(), "nothing was defined or started");
}

#[test]
fn a_missing_dependency_is_named() {
    let pm = Pm::new();
    pm.ok(&["map", "web", "--depends-on", "db", "--", "sleep", "100"]);
    let err = pm.fails(&["start", "web"]);
    assert!(err.contains("web depends on `db`, which is not defined"), "{err}");
    assert_eq!(pm.instance("web")["state"], "stopped");
}

#[test]
fn a_failed_dependency_fails_the_start_of_its_dependents() {
    let pm = Pm::new();
    pm.ok(&["map", "db", "--restart", "never", "--ready", "log:^up$", "--", "sh", "-c", "exit 7"]);
    pm.ok(&["map", "web", "--depends-on", "db", "--", "sleep", "100"]);
    let err = pm.fails(&["start", "web"]);
    assert!(err.contains("db: exited with code 7 (restart = never)"), "{err}");
    assert!(err.contains("web: dependency `db` did not start"), "{err}");
    wait_until("web marked failed", Duration::from_secs(5), || pm.instance("web")["state"] == "failed");
}

#[test]
fn one_shot_dependency_is_ready_when_it_exits_successfully() {
    let pm = Pm::new();
    let marker = pm.path("migrated");
    let migrate = format!("sleep 0.2; touch {}", marker.display());
    pm.ok(&["map", "migrate", "--ready", "exited", "--restart", "never", "--", "sh", "-c", &migrate]);
    let check = format!("test -e {} && exec sleep 100", marker.display());
    pm.ok(&["map", "app", "--depends-on", "migrate", "--restart", "never", "--", "sh", "-c", &check]);
    pm.ok(&["start", "app"]);
    assert_eq!(pm.instance("migrate")["state"], "exited");
    assert_eq!(pm.instance("app")["state"], "ready", "app started after the migration had finished");
}
