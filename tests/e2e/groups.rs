//! Acting on several sidecars at once: `@group`s, several names in one command, and deleting
//! everything or everything in a state.

use crate::support::*;
use std::time::Duration;

fn project(pm: &Pm) -> String {
    let text = "[sidecars.a]\ncommand = \"sleep 1000\"\ngroups = [\"web\"]\n\
                [sidecars.b]\ncommand = \"sleep 1000\"\ngroups = [\"web\", \"edge\"]\ndepends_on = [\"c\"]\n\
                [sidecars.c]\ncommand = \"sleep 1000\"\nautostart = false\n\
                [sidecars.d]\ncommand = \"sh -c 'exit 3'\"\nrestart = \"never\"\nautostart = false\n";
    pm.write("pm.toml", text).display().to_string()
}

fn state(pm: &Pm, name: &str) -> String {
    pm.instance(name)["state"].as_str().unwrap_or("?").to_string()
}

#[test]
fn a_group_starts_stops_and_lists_its_definitions_with_their_dependencies() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    let file = project(&pm);
    // Define without starting: start what autostarts, then stop it all.
    pm.ok(&["start", "-f", &file]);
    pm.ok(&["stop", "--all"]);

    pm.ok(&["start", "@web"]);
    let states: Vec<String> = ["a", "b", "c", "d"].iter().map(|n| state(&pm, n)).collect();
    assert_eq!(states, ["ready", "ready", "ready", "stopped"], "a and b, and c which b depends on");
    let listed: Vec<String> =
        pm.status().iter().filter_map(|s| s["name"].as_str().map(str::to_string)).collect::<Vec<_>>();
    assert!(listed.len() >= 4);
    let web = pm.ok(&["status", "@web", "--json"]);
    let web: Vec<serde_json::Value> = serde_json::from_str(&web).unwrap();
    let mut names: Vec<&str> = web.iter().filter_map(|s| s["name"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["a", "b"]);

    pm.ok(&["stop", "@edge"]);
    assert_eq!((state(&pm, "a"), state(&pm, "b"), state(&pm, "c")), ("ready".into(), "stopped".into(), "ready".into()));
    let err = pm.fails(&["start", "@nope"]);
    assert!(err.contains("no sidecar is in group `nope` (groups: edge, web)"), "{err}");
    let err = pm.fails(&["delete", "@web"]);
    assert!(err.contains("not a group"), "{err}");
}

#[test]
fn several_names_in_one_command() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    let file = project(&pm);
    pm.ok(&["start", "-f", &file]);
    pm.ok(&["stop", "--all"]);
    let out = pm.ok(&["start", "a", "c"]);
    assert!(out.contains("a ") && out.contains("c "), "one table for both:\n{out}");
    assert_eq!((state(&pm, "a"), state(&pm, "c"), state(&pm, "b")), ("ready".into(), "ready".into(), "stopped".into()));
    let (a, c) = (pm.instance("a")["pid"].clone(), pm.instance("c")["pid"].clone());
    pm.ok(&["restart", "a", "c"]);
    assert_ne!(pm.instance("a")["pid"], a);
    assert_ne!(pm.instance("c")["pid"], c);
    pm.ok(&["stop", "a", "c"]);
    assert_eq!((state(&pm, "a"), state(&pm, "c")), ("stopped".into(), "stopped".into()));
    let err = pm.fails(&["start", "a", "c", "--new"]);
    assert!(err.contains("go with one definition"), "{err}");
}

#[test]
fn delete_by_state_and_delete_all_ask_unless_forced() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    let file = project(&pm);
    pm.ok(&["start", "-f", &file]);
    // Ready once started (the default), then it exits 3 and is not restarted.
    let _ = pm.run(&["start", "d"]);
    wait_until("d failed", Duration::from_secs(10), || state(&pm, "d") == "failed");
    // No terminal to ask on: refused, and nothing is deleted.
    let err = pm.fails(&["delete", "--state", "failed"]);
    assert!(err.contains("pass --force") && err.contains("(d)"), "{err}");
    assert_eq!(pm.status().len(), 4);
    pm.ok(&["delete", "--state", "failed", "--force"]);
    let names: Vec<String> = pm.status().iter().filter_map(|s| s["name"].as_str().map(str::to_string)).collect();
    assert_eq!(names, ["a", "b", "c"]);
    // b depends on c: deleted first.
    let out = pm.ok(&["delete", "--all", "--force"]);
    assert!(out.starts_with("deleted "), "{out}");
    assert!(pm.status().is_empty());
    let err = pm.fails(&["delete", "--state", "sleepy", "--force"]);
    assert!(err.contains("not a state"), "{err}");
}
