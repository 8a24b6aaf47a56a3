use super::*;
use crate::discover::sources::testing::{Subject, listed, names, sidecar, strings};

pub const SUBJECT: Subject = Subject { read, file: "process-compose.yaml", fixture: "process_compose" };
use pm_protocol::{Health, HttpProbe, OnUnhealthy, Probe, RuntimeKind};
use std::path::Path;

fn sh(line: &str) -> Vec<String> {
    strings(&["sh", "-c", line])
}

/// A definition as every process of the fixture starts: run by sh, never restarted, with
/// process-compose's variables.
fn process(name: &str, line: &str, dir: &Path) -> Definition {
    let mut def = Definition::new(sh(line));
    def.restart = RestartPolicy::Never;
    def.env = [("PC_PROC_NAME", name), ("PC_REPLICA_NUM", "${PM_INSTANCE}"), ("SHOP_ENV", "test")]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
    def.cwd = Some(dir.to_path_buf());
    def
}

fn health(probe: Probe, interval: u64, failures: u32) -> Health {
    Health {
        probe,
        interval: Duration::from_secs(interval),
        timeout: Duration::from_secs(1),
        initial_delay: Duration::ZERO,
        failure_threshold: failures,
        success_threshold: 1,
        on_unhealthy: OnUnhealthy::Restart,
    }
}

#[test]
fn the_fixture_translates_process_by_process() {
    let (dir, t) = SUBJECT.fixture();
    assert_eq!(names(&t), ["store", "seed", "api", "worker", "report", "report-schedule", "legacy"]);
    let def = |name: &str| sidecar(&t, name);

    let url = "http://127.0.0.1:18761/index.html";
    let mut store = process("store", "python3 -m http.server 18761 --bind 127.0.0.1", &dir);
    store.cwd = Some(dir.join("www"));
    store.ready = Readiness::Http(url.into());
    store.ready_timeout = Duration::from_secs(40);
    let http = HttpProbe { url: url.into(), status: Some(200), body: None };
    store.health = Some(health(Probe::Http(http), 1, 20));
    store.restart = RestartPolicy::Always;
    store.max_restarts = 5;
    store.restart_window = pm_protocol::duration::MAX;
    store.backoff_initial = Duration::from_secs(2);
    store.backoff_max = Duration::from_secs(2);
    store.stop_signal = "SIGINT".into();
    store.stop_timeout = Duration::from_secs(5);
    store.groups = strings(&["backend"]);
    assert_eq!(def("store"), &store);

    let check = "python3 -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:18761/index.html')\"";
    let mut seed = process("seed", &format!("{check} && echo \"seeded by $PC_PROC_NAME\" >> record.log"), &dir);
    seed.depends_on = strings(&["store"]);
    seed.ready = Readiness::Exited;
    assert_eq!(def("seed"), &seed);

    let mut api = process("api", "echo \"api $PC_REPLICA_NUM in $SHOP_ENV\" >> record.log; exec sleep 3600", &dir);
    api.instances = 2;
    api.env.insert("API_MODE".into(), "strict".into());
    api.depends_on = strings(&["seed", "store"]);
    api.health = Some(health(Probe::Exec(sh("test -f record.log")), 5, 3));
    api.restart = RestartPolicy::OnFailure;
    api.max_restarts = u32::MAX;
    api.backoff_initial = Duration::from_secs(1);
    api.backoff_max = Duration::from_secs(1);
    let drain = sh("echo \"api draining\" >> record.log");
    api.hooks.pre_stop = Some(Hook { command: drain, timeout: Duration::from_secs(3), env: BTreeMap::new() });
    api.stop_timeout = Duration::from_secs(3);
    api.groups = strings(&["backend", "web"]);
    assert_eq!(def("api"), &api);

    let mut worker = process("worker", "echo worker up; exec sleep 3600", &dir);
    worker.ready = Readiness::Log("worker up".into());
    worker.depends_on = strings(&["api"]);
    assert_eq!(def("worker"), &worker);

    let mut report = process("report", "python3 -c 'print(\"nightly report\")'", &dir);
    report.autostart = false;
    assert_eq!(def("report"), &report);
    let scheduler = def("report-schedule");
    assert_eq!(scheduler.runtime, RuntimeKind::Task);
    assert_eq!(scheduler.command, strings(&["schedule", "--cron", "0 30 2 * * *", "--tz", "UTC", "--start", "report"]));

    let mut legacy = process("legacy", "./legacy-daemon.sh", &dir);
    legacy.autostart = false;
    assert_eq!(def("legacy"), &legacy);

    assert_eq!(
        listed(&t),
        [
            "log_location (5): pm keeps its own logs",
            "processes.seed.availability.restart (45): pm does not stop the other sidecars when this one fails",
            "processes.worker.is_tty (74)",
            "processes.legacy.description (83)",
            "processes.legacy.is_daemon (85): pm supervises processes that stay in the foreground",
        ]
    );
}

#[test]
fn files_that_are_not_process_compose_files_are_errors() {
    SUBJECT.errors(&[
        ("", "expected a process-compose file (a mapping with `processes`), found nothing"),
        ("version: '0.5'\n", "no `processes`: not a process-compose file"),
        ("processes: 5\n", "processes: expected a mapping of processes, found a number"),
        ("processes: {a: [}\n", "did not find expected"),
    ]);
}

#[test]
fn commands_entrypoints_and_the_default_shell() {
    let (t, listed) = SUBJECT.one(
        "processes:\n  a:\n    command: echo a\n    entrypoint: [x]\n  b:\n    entrypoint: [python3, -V]\n  c:\n    \
         description: nothing to run\n  d: 5\n  é:\n    command: x\n",
    );
    let shell = std::env::var("COMPOSE_SHELL").unwrap_or_else(|_| "bash".into());
    assert_eq!(t.sidecars[0].1.command, [shell.as_str(), "-c", "echo a"]);
    assert_eq!(t.sidecars[1].1.command, ["python3", "-V"]);
    assert_eq!(t.sidecars.len(), 2);
    assert_eq!(
        listed,
        [
            "processes.a.entrypoint (4): `command` is run, as process-compose does",
            "processes.c (7): no `command` or `entrypoint`: nothing to run",
            "processes.c.description (8)",
            "processes.d (9): expected a mapping, found a number",
            "processes.é (10): `é` makes no pm name (letters, digits, `-` and `_`)",
        ]
    );
}

#[test]
fn conditions_templates_and_odd_values() {
    let (t, listed) = SUBJECT.one(
        "vars: {GREETING: hi}\nprocesses:\n  db:\n    command: 'echo {{.GREETING}} {{.NOPE}} {{ .PC_REPLICA_NUM }} {{if x}}'\n    \
         ready_log_line: up\n    availability: {restart: sometimes, backoff_seconds: -1, max_restarts: 1}\n    \
         shutdown: {signal: 99, parent_only: true}\n    replicas: 999999\n  job:\n    command: x\n    \
         depends_on:\n      db: {condition: process_healthy}\n      ghost: {}\n    readiness_probe:\n      \
         http_get: {scheme: https, port: 443}\n    schedule: {cron: 'not cron', timezone: UTC}\n  web:\n    \
         command: x\n    depends_on:\n      db: {condition: process_log_ready}\n      job: {condition: process_completed}\n",
    );
    let def = |name: &str| sidecar(&t, name);
    assert_eq!(def("db").command[2], "echo hi {{.NOPE}} ${PM_INSTANCE} {{if x}}");
    assert_eq!((def("db").ready.clone(), def("db").instances), (Readiness::Log("up".into()), 1));
    assert_eq!(def("job").ready, Readiness::Exited);
    assert!(def("job").autostart, "the schedule could not be read: it starts as it would");
    assert_eq!(def("web").depends_on, ["db", "job"]);
    assert_eq!(
        listed,
        [
            "processes.db.command (4): template `{{.NOPE}}`: kept as written",
            "processes.db.command (4): template `{{if x}}`: kept as written",
            "processes.db.availability.restart (6): `sometimes`: expected always, on_failure, exit_on_failure or no",
            "processes.db.availability.backoff_seconds (6): expected a whole number, found a number",
            "processes.db.shutdown.signal (7): unknown signal `99` (expected a name or number such as SIGTERM, TERM, INT, 15)",
            "processes.db.shutdown.parent_only (7): pm signals the whole process group",
            "processes.db.replicas (8): 999999 is more than pm takes (10000)",
            "processes.job.depends_on.db.condition (12): `db` has no readiness_probe: waits for it to start",
            "processes.job.depends_on.db.condition (12): pm waits until `db` is ready (log /up/), as for all its dependents",
            "processes.job.depends_on.ghost (13): no process `ghost` is translated",
            "processes.job.readiness_probe.http_get.scheme (15): `https`: pm probes plain http",
            "processes.job.schedule.cron (16): cron `not cron`: The 'Minutes' field does not support using names. 'not' specified.",
            "processes.web.depends_on.job.condition (21): pm waits for a successful exit",
        ]
    );
}

#[test]
fn a_dotenv_beside_the_file_fills_variables_and_every_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "PM_PC_TEST_GREETING=hello\n").unwrap();
    let text = "processes:\n  a:\n    command: echo ${PM_PC_TEST_GREETING}\n  b:\n    command: x\n    \
                is_dotenv_disabled: true\n";
    let t = SUBJECT.translate(dir.path(), text).unwrap();
    assert_eq!(t.sidecars[0].1.command[2], "echo hello");
    assert_eq!(t.sidecars[0].1.env_file, [dir.path().join(".env")]);
    assert!(t.sidecars[1].1.env_file.is_empty());
    assert!(t.untranslated.is_empty(), "{:?}", t.untranslated);
}
