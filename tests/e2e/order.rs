//! Stop order through idle one-shots, and dependents of multi-instance definitions.

use crate::support::{Pm, lines, recording_sidecar};

/// A sidecar that, on TERM, waits 0.3 s, records `<name> exits` and exits; it says `up` once
/// started. A dependency signalled while it is still exiting records its TERM first.
fn slow_to_exit(name: &str, record: &std::path::Path) -> String {
    let r = record.display();
    format!("trap 'sleep 0.3; echo {name} exits >> {r}; exit 0' TERM; echo up; sleep 1000 & wait")
}

/// A sidecar that records `<name> got TERM` the moment it is signalled.
fn records_term(name: &str, record: &std::path::Path) -> String {
    let r = record.display();
    format!("trap 'echo {name} got TERM >> {r}; exit 0' TERM; echo up; sleep 1000 & wait")
}

fn sidecar(name: &str, cmd: &str, deps: &[&str], extra: &str) -> String {
    format!(
        "[sidecars.{name}]\ncommand = [\"sh\", \"-c\", {cmd:?}]\nready = {{ log = \"^up$\" }}\ndepends_on = {deps:?}\nstop_timeout = \"5s\"\n{extra}"
    )
}

#[test]
fn an_exited_one_shot_in_the_chain_keeps_the_reverse_stop_order() {
    let pm = Pm::new();
    let record = pm.path("record.txt");
    let toml = [
        sidecar("base", &records_term("base", &record), &[], ""),
        "[sidecars.once]\ncommand = \"echo migrated\"\ndepends_on = [\"base\"]\nready = \"exited\"\nrestart = \"on-failure\"\n"
            .into(),
        sidecar("mid", &slow_to_exit("mid", &record), &["once"], ""),
        sidecar("top", &slow_to_exit("top", &record), &["mid"], ""),
    ];
    pm.write("pm.toml", &toml.join("\n"));
    pm.ok(&["start"]);
    assert_eq!(pm.instance("once")["state"], "exited");

    // top exits before mid is signalled, and mid before base: each line is written by the
    // sidecar itself, so their order is the order of the events.
    pm.ok(&["stop", "base"]);
    assert_eq!(lines(&record), ["top exits", "mid exits", "base got TERM"]);
    for name in ["base", "mid", "top"] {
        assert_eq!(pm.instance(name)["state"], "stopped", "{name}");
    }
}

/// pool (3 stateless instances, each recording as itself) <- top.
fn pool_project(pm: &Pm) -> std::path::PathBuf {
    let record = pm.path("record.txt");
    let toml = [
        sidecar("pool", &recording_sidecar("$PM_NAME", &record), &[], "instances = 3\nstateless = true\n"),
        sidecar("top", &recording_sidecar("top", &record), &["pool"], ""),
    ];
    pm.write("pm.toml", &toml.join("\n"));
    record
}

fn stops(record: &std::path::Path) -> Vec<String> {
    lines(record).into_iter().filter(|l| l.starts_with("stop")).collect()
}

#[test]
fn a_dependent_stays_up_while_an_instance_of_its_dependency_is_ready() {
    let pm = Pm::new();
    let record = pool_project(&pm);
    pm.ok(&["start"]);
    let top_pid = pm.instance("top")["pid"].clone();

    pm.ok(&["stop", "pool-1"]);
    assert_eq!(stops(&record), ["stop pool-1"]);
    assert_eq!(pm.instance("top")["state"], "ready");
    pm.ok(&["start", "pool-1"]);
    assert_eq!(pm.instance("pool-1")["state"], "ready");

    pm.ok(&["stop", "pool-0"]);
    pm.ok(&["stop", "pool-1"]);
    let top = pm.instance("top");
    assert_eq!((&top["state"], &top["pid"]), (&"ready".into(), &top_pid), "top was never stopped");

    // The last ready instance takes its dependents with it, dependents first.
    pm.ok(&["stop", "pool-2"]);
    assert_eq!(stops(&record), ["stop pool-1", "stop pool-0", "stop pool-1", "stop top", "stop pool-2"]);
    assert_eq!(pm.instance("top")["state"], "stopped");
}

#[test]
fn a_dependent_stopped_with_its_dependency_comes_back_only_when_started() {
    let pm = Pm::new();
    let record = pool_project(&pm);
    pm.ok(&["start"]);
    pm.ok(&["stop", "pool"]);
    assert_eq!(stops(&record)[0], "stop top", "dependents first");

    // top was stopped because pool went: starting pool again does not start it.
    pm.ok(&["start", "pool-2"]);
    assert_eq!(pm.instance("pool-2")["state"], "ready");
    assert_eq!(pm.instance("top")["state"], "stopped");
    // Starting top starts what it needs: the rest of pool.
    pm.ok(&["start", "top"]);
    for s in pm.status() {
        assert_eq!(s["state"], "ready", "{s}");
    }
}
