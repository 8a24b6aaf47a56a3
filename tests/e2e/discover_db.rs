//! `pm discover --start` on one real file of each of these kinds, written for these tests under
//! tests/fixtures/discover/: a compose file (containers, on a real engine), a process-compose
//! file, a PHPeek PM file and a phorever.json. Each is discovered in a copy of its directory,
//! and its sidecars run in the order and with the readiness the file said: each one writes a
//! line to record.log when it gets going, and those that wait for another check it first.

use crate::support::{Pm, copy_discover_fixture, discovered, free_port, lines, wait_until};
use std::time::Duration;

/// `pm discover . --start --json` with `env`: the names found and the keys not translated.
fn discover_and_start(pm: &Pm, env: &[(&str, &str)]) -> (Vec<String>, Vec<String>) {
    discovered(pm, &[".", "--start"], env, Duration::from_secs(90))
}

fn state(pm: &Pm, instance: &str) -> String {
    pm.instance(instance)["state"].as_str().unwrap_or_default().to_string()
}

fn wait_state(pm: &Pm, instances: &[&str], want: &str) {
    wait_until(&format!("{instances:?} {want}"), Duration::from_secs(30), || {
        instances.iter().all(|name| state(pm, name) == want)
    });
}

fn record(pm: &Pm) -> Vec<String> {
    lines(&pm.path("record.log"))
}

#[test]
fn a_compose_file_runs_its_services_as_containers_in_the_order_their_conditions_say() {
    if !crate::containers::engine("a_compose_file_runs_its_services_as_containers_in_the_order_their_conditions_say") {
        return;
    }
    let pm = Pm::new();
    copy_discover_fixture("compose", pm.dir.path());
    let (names, untranslated) = discover_and_start(&pm, &[]);
    assert_eq!(names, ["db", "migrate", "web", "debug"]);
    let keys = [
        "name",
        "services.web.build",
        "services.web.volumes[1]",
        "services.web.environment[1]",
        "services.web.depends_on.db.restart",
        "services.web.deploy.resources.limits.cpus",
        "services.web.networks",
        "services.web.container_name",
        "services.debug.profiles",
        "services.assets.build",
        "networks",
        "volumes",
    ];
    assert_eq!(untranslated, keys);

    wait_state(&pm, &["db", "web"], "ready");
    assert_eq!(state(&pm, "migrate"), "exited");
    assert_eq!(state(&pm, "debug"), "stopped", "a service of a profile is not started by itself");
    // The migration waited for the database's healthcheck, the web server for the migration.
    assert_eq!(record(&pm), ["db ready", "migrated", "web"]);
    assert_eq!(pm.instance("db")["health"]["status"], "healthy");
    // The web server's healthcheck runs in its container: it serves the mounted directory.
    wait_until("web healthy", Duration::from_secs(30), || pm.instance("web")["health"]["status"] == "healthy");
}

#[test]
fn a_process_compose_file_runs_its_processes_as_their_conditions_and_probes_say() {
    let pm = Pm::new();
    copy_discover_fixture("process_compose", pm.dir.path());
    let port = free_port().to_string();
    let (names, untranslated) = discover_and_start(&pm, &[("SHOP_PORT", &port)]);
    assert_eq!(names, ["store", "seed", "api", "worker", "report", "report-schedule", "legacy"]);
    let keys = [
        "log_location",
        "processes.seed.availability.restart",
        "processes.worker.is_tty",
        "processes.legacy.description",
        "processes.legacy.is_daemon",
    ];
    assert_eq!(untranslated, keys);

    wait_state(&pm, &["store", "api-0", "api-1", "worker", "report-schedule"], "ready");
    assert_eq!(state(&pm, "seed"), "exited", "the store answered when the seed ran");
    assert_eq!((state(&pm, "report"), state(&pm, "legacy")), ("stopped".into(), "stopped".into()));
    // Ready may come before a replica's shell has written its line.
    wait_until("the seed and both replicas wrote their lines", Duration::from_secs(10), || record(&pm).len() >= 3);
    let mut lines = record(&pm);
    assert_eq!(lines.first().map(String::as_str), Some("seeded by seed"), "{lines:?}");
    lines.sort();
    assert_eq!(lines, ["api 0 in test", "api 1 in test", "seeded by seed"]);

    // The shutdown command runs before the signal, for each replica.
    pm.ok(&["stop", "api"]);
    assert_eq!(record(&pm).iter().filter(|l| *l == "api draining").count(), 2);
}

#[test]
fn a_phpeek_file_runs_its_hooks_and_processes_in_phpeeks_order() {
    let pm = Pm::new();
    copy_discover_fixture("phpeek", pm.dir.path());
    let port = free_port().to_string();
    let (names, untranslated) = discover_and_start(&pm, &[("CACHE_PORT", &port)]);
    let all = ["cache", "app", "queue", "report", "report-schedule", "horizon", "pre-start-migrate"];
    assert_eq!(names, [&all[..], &["post-start-warm-cache"]].concat());
    let keys = [
        "global.log_format",
        "global.metrics_port",
        "hooks.pre-stop",
        "processes.queue.user",
        "processes.queue.logging",
        "processes.report.heartbeat",
    ];
    assert_eq!(untranslated, keys);

    wait_state(&pm, &["cache", "app", "queue-0", "queue-1", "report-schedule"], "ready");
    wait_state(&pm, &["pre-start-migrate", "post-start-warm-cache"], "exited");
    assert_eq!(state(&pm, "horizon"), "stopped", "not `enabled: true`");
    assert_eq!(state(&pm, "report"), "stopped", "started by its schedule only");
    // The migration ran first; the app found the cache answering. Ready means started: the
    // app's shell may not have written its line yet.
    wait_until("the app and the warm-up wrote their lines", Duration::from_secs(10), || {
        let lines = record(&pm);
        lines.iter().any(|l| l == "app testing") && lines.iter().any(|l| l == "warmed")
    });
    let lines = record(&pm);
    assert_eq!(lines.first().map(String::as_str), Some("migrated"), "{lines:?}");

    pm.ok(&["stop", "app"]);
    assert!(record(&pm).iter().any(|l| l == "draining"), "the pre_stop_hook ran");
}

#[test]
fn a_phorever_file_runs_its_clones_in_their_roles_and_resurrects_what_exits() {
    let pm = Pm::new();
    copy_discover_fixture("phorever", pm.dir.path());
    let (names, untranslated) = discover_and_start(&pm, &[]);
    assert_eq!(names, ["web-server", "mailer", "flaky"]);
    let keys = [
        "pidfile",
        "timezone",
        "logging",
        "processes[0].name",
        "processes[0].log_forwarding",
        "processes[1].stdout_file",
        "processes[2].roles[1]",
    ];
    assert_eq!(untranslated, keys);

    wait_state(&pm, &["web-server", "mailer-0", "mailer-1"], "ready");
    wait_until("two mailers up", Duration::from_secs(10), || {
        record(&pm).iter().filter(|l| *l == "mailer up").count() == 2
    });
    // flaky fails each time; it is brought back a second later, again and again.
    wait_until("flaky resurrected twice", Duration::from_secs(20), || {
        pm.instance("flaky")["restarts"].as_u64().is_some_and(|n| n >= 2)
    });
    assert!(record(&pm).iter().filter(|l| *l == "flaky run").count() >= 2);

    // Its roles are groups: stopping the workers leaves the web server running.
    pm.ok(&["stop", "@workers"]);
    for instance in ["mailer-0", "mailer-1", "flaky"] {
        assert_eq!(state(&pm, instance), "stopped", "{instance}");
    }
    assert_eq!(state(&pm, "web-server"), "ready");
}
