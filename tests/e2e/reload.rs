//! `pm reload`: a rolling replacement, one instance at a time, each ready before the next one
//! stops; calls through the mesh to a stateless pool keep being answered all along.

use crate::support::{Pm, Raw};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const SIDECAR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/e2e/fixtures/sidecar.py");

fn pids(pm: &Pm) -> BTreeMap<String, Value> {
    pm.status().into_iter().map(|s| (s["name"].as_str().unwrap().to_string(), s["pid"].clone())).collect()
}

/// Calls `method` through the daemon in a loop until `stop`; returns how many were answered, and
/// every answer that was not a result.
fn caller(
    pm: &Pm,
    method: &'static str,
    params: Value,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(usize, Vec<Value>)> {
    let mut raw = Raw::unix(pm);
    std::thread::spawn(move || {
        let (mut answered, mut failed) = (0, Vec::new());
        while !stop.load(Ordering::SeqCst) {
            let answer = raw.call(method, params.clone());
            match answer.get("result") {
                Some(_) => answered += 1,
                None => failed.push(answer),
            }
        }
        (answered, failed)
    })
}

/// The `stopping` and `ready` changes of `instances`, in the order the daemon reported them, read
/// from an events subscription until the last instance's new run is ready.
fn stops_and_readies(events: &mut Raw, instances: usize) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    while seen.len() < 2 * instances {
        let message = events.line();
        let change = &message["params"]["result"]["change"];
        let state = change["state"].as_str().unwrap_or_default();
        if ["stopping", "ready"].contains(&state) {
            seen.push((change["instance"].as_str().unwrap().to_string(), state.to_string()));
        }
    }
    seen
}

#[test]
fn a_stateless_pool_is_replaced_one_at_a_time_and_no_call_is_lost() {
    let pm = Pm::new();
    let project = format!(
        "[sidecars.pool]\ncommand = [\"python3\", {SIDECAR:?}]\ninstances = 3\nstateless = true\n\
         ready = \"registered\"\nready_timeout = \"10s\"\nstop_timeout = \"5s\"\n"
    );
    pm.write("pm.toml", &project);
    pm.ok(&["start"]);
    let before = pids(&pm);
    let mut events = Raw::unix(&pm);
    assert!(!events.call("pm.events", json!({"name": "pool"}))["result"].is_null());

    let stop = Arc::new(AtomicBool::new(false));
    // Quick calls, and slow ones that are in flight when an instance starts draining.
    let quick = caller(&pm, "pool.whoami", json!([]), stop.clone());
    let slow = caller(&pm, "pool.slow", json!([20]), stop.clone());
    let out = pm.ok(&["reload", "pool", "--json"]);
    stop.store(true, Ordering::SeqCst);
    let (quick, slow) = (quick.join().unwrap(), slow.join().unwrap());

    assert_eq!((quick.1.as_slice(), slow.1.as_slice()), (&[][..], &[][..]), "every call was answered");
    assert!(quick.0 >= 50 && slow.0 >= 10, "calls went on during the reload: {} quick, {} slow", quick.0, slow.0);
    let answer: Value = serde_json::from_str(&out).unwrap();
    let reloaded: Vec<&str> =
        answer["reloaded"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!((reloaded, answer["skipped"].clone()), (vec!["pool-0", "pool-1", "pool-2"], json!([])));
    let after = pids(&pm);
    for name in ["pool-0", "pool-1", "pool-2"] {
        assert_ne!(after[name], before[name], "{name} runs a new process");
        assert_eq!(pm.instance(name)["state"], "ready");
    }
    // Each new run was ready before the next old one was told to stop.
    let order: Vec<(String, String)> = ["pool-0", "pool-1", "pool-2"]
        .iter()
        .flat_map(|n| [(n.to_string(), "stopping".to_string()), (n.to_string(), "ready".to_string())])
        .collect();
    assert_eq!(stops_and_readies(&mut events, 3), order);
    let log = std::fs::read_to_string(pm.home.path().join("daemon.log")).unwrap();
    assert!(log.contains("pool-1: reloading (2/3)"), "{log}");
}

#[test]
fn a_reload_that_cannot_get_ready_stops_there_and_the_rest_keep_their_old_runs() {
    let pm = Pm::new();
    let project = "[sidecars.pool]\n\
                   command = [\"sh\", \"-c\", \"if [ -e broken ]; then exec sleep 1000; fi; echo up; exec sleep 1000\"]\n\
                   instances = 3\nstateless = true\nready = { log = \"^up$\" }\nready_timeout = \"1s\"\n";
    pm.write("pm.toml", project);
    pm.ok(&["start"]);
    let before = pids(&pm);
    pm.write("broken", "");

    let err = pm.fails(&["reload", "pool"]);
    assert!(err.contains("reload stopped at pool-0 (1/3)"), "{err}");
    assert!(err.contains("readiness `log /^up$/` not met within 1s"), "the reason: {err}");
    assert!(err.contains("still on their old runs: pool-1, pool-2"), "{err}");
    assert_eq!(pm.instance("pool-0")["state"], "failed");
    let after = pids(&pm);
    for name in ["pool-1", "pool-2"] {
        assert_eq!(after[name], before[name], "{name} was left alone");
        assert_eq!(pm.instance(name)["state"], "ready");
    }
}

#[test]
fn instances_not_running_are_skipped_and_unknown_names_refused() {
    let pm = Pm::new();
    pm.ok(&["map", "pool", "--instances", "3", "--", "sleep", "1000"]);
    pm.ok(&["start", "pool"]);
    pm.ok(&["stop", "pool-2"]);
    let before = pids(&pm);

    let answer: Value = serde_json::from_str(&pm.ok(&["reload", "pool", "--json"])).unwrap();
    let names = |key: &str| -> Vec<String> {
        answer[key].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!((names("reloaded"), names("skipped")), (vec!["pool-0".into(), "pool-1".into()], vec!["pool-2".into()]));
    assert_eq!(answer["skipped"][0]["state"], "stopped");
    let after = pids(&pm);
    assert!(after["pool-0"] != before["pool-0"] && after["pool-1"] != before["pool-1"]);
    assert_eq!(pm.instance("pool-2")["state"], "stopped", "a reload starts nothing");

    let out = pm.ok(&["reload", "pool-2"]);
    assert!(out.contains("skipped pool-2 (stopped): not running, so not started"), "{out}");
    let err = pm.fails(&["reload", "nope"]);
    assert!(err.contains("no sidecar named `nope`"), "{err}");
    let err = pm.fails(&["reload", "@nogroup"]);
    assert!(err.contains("no sidecar is in group `nogroup`"), "{err}");
}
