//! `pm discover` of other process managers' files: a PM2 ecosystem file (JavaScript, evaluated by
//! node) and a supervisord.conf with an include, each discovered from its fixture and then
//! started: its programs run with what the file said (arguments, environment, instances, stop
//! signal), in its order.

use crate::support::*;
use std::time::Duration;

/// A copy of fixture `kind` in the test's work directory, as `name`.
fn fixture(pm: &Pm, kind: &str, name: &str) -> std::path::PathBuf {
    let to = pm.path(name);
    copy_discover_fixture(kind, &to);
    to
}

fn found_names(out: &serde_json::Value) -> Vec<&str> {
    out["found"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect()
}

/// The untranslated entry of `key`.
fn untranslated<'a>(out: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    let all = out["untranslated"].as_array().unwrap();
    all.iter().find(|u| u["key"] == key).unwrap_or_else(|| panic!("{key} not reported: {out}"))
}

fn wait_ready(pm: &Pm, instances: &[&str]) {
    wait_until(&format!("{instances:?} ready"), Duration::from_secs(20), || {
        let status = pm.status();
        instances.iter().all(|name| status.iter().any(|s| s["name"] == *name && s["state"] == "ready"))
    });
}

/// A GET of `http://127.0.0.1:port/` over a plain socket: the body.
fn get(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

#[test]
fn a_pm2_ecosystem_file_is_discovered_and_runs_as_pm2_would_run_it() {
    if !have_node("a_pm2_ecosystem_file_is_discovered_and_runs_as_pm2_would_run_it") {
        return;
    }
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    let shop = fixture(&pm, "pm2", "shop");
    let port = free_port();
    // The file reads the API's port from the environment of `pm discover`, as PM2 would.
    let out = discover_json(&pm, &["shop"], &[("SHOP_API_PORT", &port.to_string())], Duration::from_secs(60));
    assert_eq!(found_names(&out), ["api", "worker", "cache-warmer", "cache-warmer-cron-restart"], "{out}");
    let dated = untranslated(&out, "apps[2].log_date_format");
    assert_eq!(dated["file"], shop.join("ecosystem.config.js").display().to_string());
    assert_eq!(
        (dated["line"].as_u64(), dated["why"].as_str()),
        (Some(47), Some("pm timestamps every log line itself"))
    );

    pm.ok(&["start", "api", "worker", "cache-warmer"]);
    wait_ready(&pm, &["api", "worker-0", "worker-1", "cache-warmer"]);
    // Ready once started, as PM2 has it: the api answers once it has bound its port.
    let mut body = None;
    wait_until("the api answers", Duration::from_secs(10), || {
        body = get(port);
        body.is_some()
    });
    assert_eq!(body.as_deref(), Some("mode=demo page_size=20\n"), "the api runs with its args and env");
    // Each worker has its NODE_APP_INSTANCE, in the cwd the file gave it.
    let jobs = shop.join("jobs");
    wait_until("both workers up", Duration::from_secs(10), || {
        lines(&jobs.join("worker-0.up")) == ["0"] && lines(&jobs.join("worker-1.up")) == ["1"]
    });
    assert_eq!(pm.instance("cache-warmer")["state"], "ready");

    // PM2 stops with SIGINT: the workers' INT trap cleans up.
    pm.ok(&["stop", "worker"]);
    assert!(!jobs.join("worker-0.up").exists() && !jobs.join("worker-1.up").exists(), "SIGINT trap ran");
}

#[test]
fn a_supervisord_conf_is_discovered_and_runs_in_its_priority_order() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    let shop = fixture(&pm, "supervisord", "shop");
    let out = json(&pm.ok(&["discover", "shop", "--json"]));
    assert_eq!(found_names(&out), ["queue", "api", "worker"], "{out}");
    let conf = shop.join("supervisord.conf").display().to_string();
    let user = untranslated(&out, "program:api.user");
    assert_eq!((user["file"].as_str(), user["line"].as_u64()), (Some(conf.as_str()), Some(34)));
    let name = untranslated(&out, "program:worker.process_name");
    assert!(name["why"].as_str().unwrap().ends_with("(in conf.d/workers.conf:4)"), "{name}");

    // One start of every mapped autostart sidecar: priorities order the definitions of one start
    // (`pm start a b c` starts each name on its own, so they would not be ordered).
    pm.ok(&["start"]);
    let instances = ["queue", "api", "worker-0", "worker-1"];
    wait_ready(&pm, &instances);
    let record = shop.join("spool/record.txt");
    wait_until("every program started", Duration::from_secs(10), || lines(&record).len() == 4);
    let mut started = lines(&record);
    started.sort();
    assert_eq!(started, ["start api", "start queue", "start worker-0", "start worker-1"]);
    // Lower priority first: queue (10), api (20), the workers (30). Each level is spawned once
    // the one before is ready, so their pids come in that order (Linux hands them out in turn).
    let pids: Vec<u64> = instances.iter().map(|i| pm.instance(i)["pid"].as_u64().unwrap()).collect();
    assert!(pids[0] < pids[1] && pids[1] < pids[2] && pids[1] < pids[3], "{instances:?} have pids {pids:?}");
    let shop_group: Vec<String> = json(&pm.ok(&["status", "@shop", "--json"]))
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(shop_group, ["api", "worker-0", "worker-1"]);

    // And the other way round on stop, each level stopped before the next is signalled; the
    // queue with its own stop signal (INT).
    pm.ok(&["stop", "--all"]);
    let stopped = lines(&record)[4..].to_vec();
    assert_eq!(stopped.len(), 4, "{stopped:?}");
    let mut workers = stopped[..2].to_vec();
    workers.sort();
    assert_eq!(workers, ["stop worker-0", "stop worker-1"]);
    assert_eq!(stopped[2..], ["stop api", "stop queue"]);
}
