//! `pm scale`: instances added or removed while the others, and the dependents, keep running.

use crate::support::*;

fn pids(pm: &Pm) -> std::collections::BTreeMap<String, serde_json::Value> {
    pm.status().into_iter().map(|s| (s["name"].as_str().unwrap().to_string(), s["pid"].clone())).collect()
}

#[test]
fn scaling_up_and_down_leaves_the_other_instances_and_the_dependents_alone() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    let project = "[sidecars.pool]\ncommand = \"sleep 1000\"\ninstances = 3\nstateless = true\n\
                   [sidecars.top]\ncommand = \"sleep 1000\"\ndepends_on = [\"pool\"]\n";
    pm.write("pm.toml", project);
    pm.ok(&["start", "-f", &pm.path("pm.toml").display().to_string()]);
    let before = pids(&pm);

    pm.ok(&["scale", "pool", "5"]);
    let up = pids(&pm);
    for kept in ["pool-0", "pool-1", "pool-2", "top"] {
        assert_eq!(up[kept], before[kept], "{kept} kept its run");
    }
    for added in ["pool-3", "pool-4"] {
        assert_eq!(pm.instance(added)["state"], "ready", "{added} started with the running definition");
    }

    let out = pm.ok(&["scale", "pool", "1", "--json"]);
    let listed: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.len(), 1, "{out}");
    let down = pids(&pm);
    assert_eq!(down.keys().cloned().collect::<Vec<_>>(), ["pool-0", "top"]);
    assert_eq!((&down["pool-0"], &down["top"]), (&before["pool-0"], &before["top"]), "nothing restarted");
    assert_eq!(pm.instance("top")["state"], "ready");

    pm.ok(&["stop", "pool"]);
    pm.ok(&["scale", "pool", "2"]);
    assert_eq!(pm.instance("pool-1")["state"], "stopped", "a stopped definition's new instance waits");
}

#[test]
fn bad_counts_and_names_are_refused() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    pm.ok(&["map", "w", "--", "sleep", "1000"]);
    let err = pm.fails(&["scale", "w", "0"]);
    assert!(err.contains("instances must be at least 1"), "{err}");
    let err = pm.fails(&["scale", "w", "20000"]);
    assert!(err.contains("at most 10000"), "{err}");
    let err = pm.fails(&["scale", "nope", "2"]);
    assert!(err.contains("no sidecar named `nope`"), "{err}");
    let err = pm.fails(&["scale", "w", "-1"]);
    assert!(err.contains("invalid value '-1'") || err.contains("unexpected argument"), "{err}");
}
