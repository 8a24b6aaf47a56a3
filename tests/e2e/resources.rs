//! CPU and memory per instance in `pm status`: counted over every process of the run, those that
//! left its process group included (with a cgroup per instance and with markers alone), read
//! for running instances only, and for containers from the engine.

use crate::containers::{container, engine};
use crate::containment::modes;
use crate::support::*;
use std::time::Duration;

fn cpu(pm: &Pm, name: &str) -> Option<f64> {
    pm.instance(name)["cpu_percent"].as_f64()
}

fn memory(pm: &Pm, name: &str) -> Option<u64> {
    pm.instance(name)["memory_bytes"].as_u64()
}

#[test]
fn cpu_and_memory_count_every_process_of_the_run() {
    for (flags, containment) in modes("cpu_and_memory_count_every_process_of_the_run") {
        let pm = Pm::new();
        let _daemon = pm.daemon(flags);
        // Each leader only sleeps: a child in a session of its own burns the CPU or holds the
        // memory.
        let burn = "setsid sh -c 'while :; do :; done' & exec sleep 1000";
        let hog = "setsid python3 -c 'b = bytearray(200 << 20); import time; time.sleep(1000)' & exec sleep 1000";
        pm.ok(&["map", "burn", "--", "sh", "-c", burn]);
        pm.ok(&["map", "hog", "--", "sh", "-c", hog]);
        pm.ok(&["map", "idle", "--", "sleep", "1000"]);
        for name in ["burn", "hog", "idle"] {
            pm.ok(&["start", name]);
        }
        assert_eq!(pm.instance("burn")["containment"], containment, "{flags:?}");

        wait_until(&format!("{containment}: burn uses > 50 % CPU"), Duration::from_secs(30), || {
            cpu(&pm, "burn").is_some_and(|cpu| cpu > 50.0)
        });
        wait_until(&format!("{containment}: hog holds > 150 MB"), Duration::from_secs(30), || {
            memory(&pm, "hog").is_some_and(|bytes| bytes > 150_000_000)
        });
        // The first figure of a run a few milliseconds old may count one whole clock tick.
        wait_until(&format!("{containment}: idle uses ~0 % CPU and little memory"), Duration::from_secs(10), || {
            let idle = pm.instance("idle");
            let (cpu, bytes) = (idle["cpu_percent"].as_f64(), idle["memory_bytes"].as_u64());
            cpu.is_some_and(|cpu| cpu < 5.0) && bytes.is_some_and(|bytes| bytes > 0 && bytes < 20_000_000)
        });

        let table = pm.ok(&["status"]);
        let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(header[5..7], ["CPU", "MEM"], "{table}");
        let idle: Vec<&str> = table.lines().find(|l| l.starts_with("idle ")).unwrap().split_whitespace().collect();
        assert!(idle[5].ends_with('%') && idle[6].ends_with(['K', 'M']), "{table}");

        // Figures are for running instances only.
        pm.ok(&["stop", "idle"]);
        let idle = pm.instance("idle");
        assert!(idle.get("cpu_percent").is_none() && idle.get("memory_bytes").is_none(), "{idle}");
        let table = pm.ok(&["status"]);
        let idle: Vec<&str> = table.lines().find(|l| l.starts_with("idle ")).unwrap().split_whitespace().collect();
        assert_eq!(idle[5..7], ["-", "-"], "{table}");
    }
}

#[test]
fn a_running_container_shows_its_memory_and_cpu() {
    if !engine("a_running_container_shows_its_memory_and_cpu") {
        return;
    }
    let pm = Pm::new();
    pm.write("pm.toml", &container("box", "while :; do sleep 1; done", ""));
    pm.ok(&["start"]);
    wait_until("the container's figures", Duration::from_secs(20), || {
        memory(&pm, "box").is_some_and(|bytes| bytes > 0) && cpu(&pm, "box").is_some()
    });
    pm.ok(&["stop", "box"]);
    assert_eq!(memory(&pm, "box"), None);
}

#[test]
fn a_run_over_max_memory_is_restarted_with_the_reason() {
    for (flags, _) in modes("a_run_over_max_memory_is_restarted_with_the_reason") {
        let pm = Pm::new();
        let _daemon = pm.daemon(flags);
        // The leader sleeps; a child in a session of its own grows by 20 MB every 50 ms.
        let grow = "import time\nb = []\nfor _ in range(100):\n    b.append(bytearray(20 << 20))\n    time.sleep(0.05)\ntime.sleep(1000)";
        let project = format!(
            "[sidecars.grow]\ncommand = [\"sh\", \"-c\", \"setsid python3 -c \\\"$GROW\\\" & exec sleep 1000\"]\n\
             env = {{ GROW = {grow:?} }}\nmax_memory = \"100M\"\nbackoff_initial = \"1s\"\n"
        );
        pm.write("pm.toml", &project);
        pm.ok(&["start", "-f", &pm.path("pm.toml").display().to_string()]);
        let first = pm.instance("grow")["pid"].as_u64();
        let mut reason = String::new();
        wait_until("a restart for its memory", Duration::from_secs(15), || {
            let grow = pm.instance("grow");
            if let Some(r) = grow["reason"].as_str().filter(|r| r.contains("max_memory")) {
                reason = r.to_string();
            }
            grow["restarts"].as_u64() >= Some(1)
        });
        assert!(reason.starts_with("memory ") && reason.contains("M over max_memory 100.0M"), "{flags:?}: {reason}");
        wait_until("running again", Duration::from_secs(10), || pm.instance("grow")["state"] == "ready");
        assert_ne!(pm.instance("grow")["pid"].as_u64(), first);
    }
}

#[test]
fn a_bad_max_memory_is_refused_with_the_key() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    for (value, want) in
        [("\"12Q\"", "invalid size `12Q`"), ("5", "a size must be from 1.0M"), ("\"3000T\"", "too large")]
    {
        pm.write("pm.toml", &format!("[sidecars.a]\ncommand = \"sleep 1\"\nmax_memory = {value}\n"));
        let err = pm.fails(&["start", "-f", &pm.path("pm.toml").display().to_string()]);
        assert!(err.contains("pm.toml:3: sidecars.a.max_memory") && err.contains(want), "{value}: {err}");
    }
}
