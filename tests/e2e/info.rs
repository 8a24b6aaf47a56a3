//! `pm info`: everything about an instance, its recent states and exits included.

use crate::support::*;
use std::time::Duration;

/// A sidecar that exits with 3 on its first run and keeps running on the next.
fn crash_once(pm: &Pm) -> String {
    let mark = pm.path("crashed-once");
    format!("echo info-says-hi; if [ ! -f {m} ]; then touch {m}; exit 3; fi; exec sleep 1000", m = mark.display())
}

#[test]
fn info_shows_the_states_in_order_the_last_exit_and_the_log_files() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    pm.ok(&["map", "crashy", "--", "sh", "-c", &crash_once(&pm)]);
    pm.ok(&["start", "crashy"]);
    wait_until("crashy restarted once and ready", Duration::from_secs(20), || {
        let s = pm.instance("crashy");
        s["restarts"] == 1 && s["state"] == "ready"
    });

    let out = pm.ok(&["info", "crashy", "--json"]);
    let infos: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(infos.len(), 1, "{out}");
    let info = &infos[0];
    let keys: Vec<&str> = info.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["args", "endpoints", "exits", "history", "logs", "spec", "status"], "{out}");
    assert_eq!(info["status"]["name"], "crashy");
    assert_eq!(info["status"]["pid"], pm.instance("crashy")["pid"]);
    assert_eq!(info["spec"]["command"][0], "sh");

    let states: Vec<&str> = info["history"].as_array().unwrap().iter().map(|e| e["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["waiting", "ready", "backoff", "ready"], "{out}");
    let backoff = &info["history"][2];
    assert!(backoff["reason"].as_str().unwrap().starts_with("exited with code 3; restarting in"), "{out}");
    let times: Vec<u64> = info["history"].as_array().unwrap().iter().map(|e| e["at_ms"].as_u64().unwrap()).collect();
    assert!(times.is_sorted(), "{times:?}");

    let exits = info["exits"].as_array().unwrap();
    assert_eq!(exits.len(), 1, "{out}");
    assert_eq!((&exits[0]["code"], &exits[0]["signal"]), (&serde_json::json!(3), &serde_json::Value::Null));

    let stdout = std::path::PathBuf::from(info["logs"]["stdout"].as_str().unwrap());
    assert_eq!(stdout, pm.log_file("crashy", "out"));
    assert!(lines(&stdout).iter().filter(|l| l.ends_with("info-says-hi")).count() == 2, "{stdout:?}");
    // Nothing went to stderr: the file is named, and made by its first line.
    let stderr = std::path::PathBuf::from(info["logs"]["stderr"].as_str().unwrap());
    assert_eq!(stderr, pm.log_file("crashy", "err"));
    assert!(!stderr.exists(), "{stderr:?}");
    let socket = format!("unix://{}", pm.home.path().join("pm.sock").display());
    assert_eq!(info["endpoints"]["via_daemon"][0], socket.as_str());

    let text = pm.ok(&["info", "crashy"]);
    for part in ["crashy (definition crashy)", "Recent states", "backoff", "Last exits", "code 3"] {
        assert!(text.contains(part), "{part:?} in:\n{text}");
    }
    assert!(text.contains(&pm.log_file("crashy", "out").display().to_string()), "{text}");
    let no_stderr = format!("{} (nothing written yet)", pm.log_file("crashy", "err").display());
    assert!(text.contains(&no_stderr), "{text}");
}

#[test]
fn unknown_names_and_too_many_instances_are_refused_and_no_daemon_is_started() {
    let pm = Pm::new();
    let err = pm.fails(&["info", "web"]);
    assert!(err.contains("the daemon is not running"), "{err}");
    assert!(pm.daemon_pid().is_none(), "a look started no daemon");

    let _daemon = pm.daemon(&[]);
    let err = pm.fails(&["info", "nope"]);
    assert!(err.contains("no sidecar named `nope`"), "{err}");

    pm.ok(&["map", "pool", "--instances", "101", "--", "sleep", "1000"]);
    let err = pm.fails(&["info", "pool"]);
    assert!(err.contains("`pool` stands for 101 instances and pm info shows at most 100"), "{err}");
    let one: Vec<serde_json::Value> = serde_json::from_str(&pm.ok(&["info", "pool-7", "--json"])).unwrap();
    assert_eq!((one.len(), &one[0]["status"]["state"]), (1, &serde_json::json!("stopped")));
    assert_eq!(one[0]["history"], serde_json::json!([]), "never started: no state change yet");
}
