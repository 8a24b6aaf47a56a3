//! `priority`: independent sidecars start lowest first and stop highest first, each level done
//! before the next; dependencies still come first whatever their priorities.

use crate::support::{Pm, lines};

/// A sidecar that takes a moment to start, records `start <name>` just before it says `up`, and
/// `stop <name>` when it is told to stop.
fn sidecar(name: &str, priority: i32, deps: &[&str], record: &std::path::Path) -> String {
    let r = record.display();
    let cmd = format!(
        "trap 'echo stop {name} >> {r}; exit 0' TERM; sleep 0.2; echo start {name} >> {r}; echo up; sleep 1000 & wait"
    );
    format!(
        "[sidecars.{name}]\ncommand = [\"sh\", \"-c\", {cmd:?}]\nready = {{ log = \"^up$\" }}\npriority = {priority}\ndepends_on = {deps:?}\n"
    )
}

#[test]
fn independent_sidecars_start_by_ascending_priority_and_stop_by_descending() {
    let pm = Pm::new();
    let record = pm.path("record.txt");
    let toml = [sidecar("a", 2, &[], &record), sidecar("b", 0, &[], &record), sidecar("c", 1, &[], &record)];
    pm.write("pm.toml", &toml.join("\n"));
    pm.ok(&["start"]);
    assert_eq!(lines(&record), ["start b", "start c", "start a"]);
    pm.ok(&["stop", "--all"]);
    assert_eq!(lines(&record)[3..], ["stop a", "stop c", "stop b"]);
}

#[test]
fn a_dependency_starts_before_its_dependent_whatever_their_priorities() {
    let pm = Pm::new();
    let record = pm.path("record.txt");
    // web's own priority is the lowest, but it needs db: it goes with db, after x.
    let toml = [sidecar("db", 5, &[], &record), sidecar("web", 0, &["db"], &record), sidecar("x", 3, &[], &record)];
    pm.write("pm.toml", &toml.join("\n"));
    pm.ok(&["start"]);
    assert_eq!(lines(&record), ["start x", "start db", "start web"]);
    pm.ok(&["stop", "--all"]);
    assert_eq!(lines(&record)[3..], ["stop web", "stop db", "stop x"]);
}

#[test]
fn a_priority_out_of_range_is_refused_where_it_is_written() {
    let pm = Pm::new();
    pm.write("pm.toml", "[sidecars.web]\ncommand = \"sleep 1000\"\npriority = 10001\n");
    let err = pm.fails(&["start"]);
    assert!(err.contains("pm.toml:3: sidecars.web.priority: must be from -10000 to 10000 (got 10001)"), "{err}");
    let err = pm.fails(&["map", "w", "--priority", "-20000", "--", "sleep", "1000"]);
    assert!(err.contains("sidecar `w`: priority: must be from -10000 to 10000 (got -20000)"), "{err}");
    pm.ok(&["map", "w", "--priority", "-3", "--", "sleep", "1000"]);
    let listed: serde_json::Value = serde_json::from_str(&pm.ok(&["ls", "--json"])).unwrap();
    assert_eq!(listed[0]["definition"]["priority"], -3, "{listed}");
}
