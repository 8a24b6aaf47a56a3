//! `pm discover` on one real file of each of these kinds, written for these tests under
//! tests/fixtures/discover/: a Procfile, a package.json, a pyproject.toml, a Cargo workspace and
//! an akala config. Each is discovered in a copy of its directory, then started, and its sidecars
//! run in the order and with the readiness the file said. Each fixture's first sidecar takes half
//! a second to be ready, so a dependent that started at least that much later waited for it.

use crate::support::{
    Pm, copy_discover_fixture, discovered, free_port, have_node, lines, run_with_deadline, texts, wait_until,
};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

/// How long each fixture's first sidecar takes to be ready.
const WARM_UP_MS: u64 = 500;

/// `pm discover . --json` with `env`: the names found and the keys not translated.
fn discover(pm: &Pm, env: &[(&str, &str)]) -> (Vec<String>, Vec<String>) {
    discovered(pm, &["."], env, Duration::from_secs(60))
}

fn started_at(pm: &Pm, instance: &str) -> u64 {
    let status = pm.instance(instance);
    status["started_at_ms"].as_u64().unwrap_or_else(|| panic!("{instance} has not started: {status}"))
}

/// `later` started after `first` was ready (which took [`WARM_UP_MS`]).
fn started_once_ready(pm: &Pm, first: &str, later: &str) {
    let (first_at, later_at) = (started_at(pm, first), started_at(pm, later));
    assert!(later_at >= first_at + WARM_UP_MS, "{later} started at {later_at}, {first} at {first_at}");
}

fn state(pm: &Pm, instance: &str) -> String {
    pm.instance(instance)["state"].as_str().unwrap().to_string()
}

fn logged(pm: &Pm, instance: &str, text: &str) {
    let path = pm.log_file(instance, "out");
    wait_until(&format!("{instance} logs `{text}`"), Duration::from_secs(10), || {
        lines(&path).iter().any(|l| l.contains(text))
    });
}

#[test]
fn a_procfile_runs_its_release_phase_first_then_its_processes() {
    let pm = Pm::new();
    copy_discover_fixture("procfile", pm.dir.path());
    let port = free_port().to_string();
    let (names, untranslated) = discover(&pm, &[("PORT", &port)]);
    assert_eq!(names, ["release", "web", "worker", "clock"]);
    assert_eq!(untranslated, ["web", "Clock"]);

    pm.ok(&["start", "web", "worker", "clock"]);
    assert_eq!(state(&pm, "release"), "exited");
    let migrated = std::fs::metadata(pm.path("migrated.txt")).unwrap().modified().unwrap();
    let migrated_ms = migrated.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    for process in ["web", "worker", "clock"] {
        assert_eq!(state(&pm, process), "ready", "{process}");
        let at = started_at(&pm, process);
        assert!(at >= migrated_ms, "{process} started at {at}, before release had migrated ({migrated_ms})");
    }
    // Through `sh -c`, as Heroku runs it: PORT from the environment.
    wait_until("web listens on PORT", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_ok()
    });
    logged(&pm, "worker", "tick");
    logged(&pm, "clock", "clock ");
}

#[test]
fn a_package_json_runs_its_bins_by_their_shebangs_in_the_order_its_pm_key_says() {
    let pm = Pm::new();
    copy_discover_fixture("package_json", pm.dir.path());
    let (names, untranslated) = discover(&pm, &[]);
    assert_eq!(names, ["notes-api", "notes-sweeper", "notes-report"]);
    assert_eq!(untranslated, ["bin.Notes.Report"]);

    pm.ok(&["start", "notes-api", "notes-sweeper"]);
    assert_eq!(state(&pm, "notes-api"), "ready");
    assert_eq!(state(&pm, "notes-sweeper"), "ready");
    assert_eq!(state(&pm, "notes-report"), "stopped", "not autostarted, as its pm table says");
    started_once_ready(&pm, "notes-api", "notes-sweeper");
    logged(&pm, "notes-api", "listening on 127.0.0.1:");
    logged(&pm, "notes-sweeper", "swept");
}

#[test]
fn a_pyproject_runs_its_scripts_from_the_checkout_in_the_order_its_tool_pm_says() {
    let pm = Pm::new();
    copy_discover_fixture("pyproject", pm.dir.path());
    let (names, untranslated) = discover(&pm, &[]);
    assert_eq!(names, ["station-report", "station-collector", "station-web"]);
    assert_eq!(untranslated, ["project.scripts.Station.Report", "project.scripts.Station.Report"]);

    pm.ok(&["start", "station-collector", "station-web"]);
    assert_eq!(state(&pm, "station-collector"), "ready");
    assert_eq!(state(&pm, "station-web"), "ready");
    started_once_ready(&pm, "station-collector", "station-web");
    logged(&pm, "station-web", "serving readings as station-web");
    wait_until("a reading", Duration::from_secs(10), || !lines(&pm.path("readings.txt")).is_empty());

    assert_eq!(state(&pm, "station-report"), "stopped", "not autostarted, as its pm table says");
    pm.ok(&["start", "station-report"]);
    assert_eq!(state(&pm, "station-report"), "exited");
    logged(&pm, "station-report", " readings");
}

#[test]
fn a_cargo_workspace_runs_its_members_binaries_in_the_order_their_metadata_says() {
    let pm = Pm::new();
    copy_discover_fixture("cargo", pm.dir.path());
    // Built beforehand (in its own target directory), so the sidecars' `cargo run` starts at once.
    let target = pm.path("target");
    let target = target.to_str().unwrap();
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build.args(["build", "-q", "--release", "--offline"]).env("CARGO_TARGET_DIR", target).current_dir(pm.dir.path());
    let out = run_with_deadline(build, Duration::from_secs(600));
    assert!(out.status.success(), "cargo build failed: {}", texts(&out).1);

    let (names, untranslated) = discover(&pm, &[("CARGO_TARGET_DIR", target)]);
    assert_eq!(names, ["relay", "relay-admin", "ticker", "tick_audit"]);
    assert_eq!(untranslated, ["crates/ticker/Cargo.toml: src/bin/Tick_Audit.rs"]);

    pm.ok(&["start", "relay", "ticker", "tick_audit"]);
    assert_eq!(state(&pm, "relay"), "ready");
    assert_eq!(state(&pm, "ticker"), "ready");
    started_once_ready(&pm, "relay", "ticker");
    logged(&pm, "relay", "relay listening on 127.0.0.1:");
    logged(&pm, "ticker", "tick 1");
    wait_until("tick_audit exits", Duration::from_secs(30), || state(&pm, "tick_audit") == "exited");
    logged(&pm, "tick_audit", "audit ok");
    assert_eq!(state(&pm, "relay-admin"), "stopped", "not autostarted, as its metadata says");
}

#[test]
fn an_akala_config_runs_its_mapping_with_its_config_and_commandables_ready_once_registered() {
    if !have_node("an_akala_config_runs_its_mapping_with_its_config_and_commandables_ready_once_registered") {
        return;
    }
    let pm = Pm::new();
    copy_discover_fixture("akala", pm.dir.path());
    // `pm start -f` takes the same file, and refuses what discover reports.
    let err = pm.fails(&["start", "-f", ".pm.config.json"]);
    assert!(err.contains(".pm.config.json:22: containers.digest.type: a `worker` runs in a thread"), "{err}");

    let (names, untranslated) = discover(&pm, &[]);
    assert_eq!(names, ["digest", "store", "feed"]);
    assert_eq!(untranslated, ["containers.digest.type", "mapping.feed.connect"]);

    pm.ok(&["start", "store", "feed"]);
    assert_eq!(state(&pm, "store"), "ready", "registered");
    assert_eq!(state(&pm, "feed"), "ready");
    started_once_ready(&pm, "store", "feed");
    logged(&pm, "store", "store keeps 100 notes in notes.db");
    logged(&pm, "feed", "feed every 1s");
    assert_eq!(pm.ok(&["call", "store.count"]).trim(), "0");
    assert_eq!(state(&pm, "digest"), "stopped", "an unmapped container is not autostarted");
}
