//! Containers as sidecars, through the real daemon and a real Docker engine (scripts/docker-
//! engine.sh). Without an engine these tests say SKIPPED loudly, unless PM_REQUIRE_DOCKER=1
//! (as in CI), where a missing engine fails them.

use crate::support::{Pm, lines, run_with_deadline, texts, wait_until};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub const IMAGE: &str = "pm-test-busybox:latest";

/// Whether an engine answers; fails when one is required.
pub fn engine(test: &str) -> bool {
    let answers = Command::new("docker").args(["image", "inspect", IMAGE]).output().is_ok_and(|o| o.status.success());
    if !answers {
        let why = "no Docker engine with the test image (run scripts/docker-engine.sh and export DOCKER_HOST)";
        assert!(std::env::var("PM_REQUIRE_DOCKER").as_deref() != Ok("1"), "PM_REQUIRE_DOCKER=1 but {why}");
        // Straight to stderr: the test harness captures eprintln!, and a skip must be seen.
        let _ = writeln!(std::io::stderr(), "*** SKIPPED {test}: {why} ***");
    }
    answers
}

/// The id of the daemon of `home` (PM_HOME/id), which labels its containers `pm.daemon=<id>`.
pub fn daemon_id(home: &Path) -> String {
    let id = std::fs::read_to_string(home.join("id")).unwrap_or_default().trim().to_string();
    assert!(!id.is_empty(), "no daemon id in {}: the daemon has not run", home.display());
    id
}

/// `docker ARGS…` on the engine at `host` (`None`: the one DOCKER_HOST names), with a deadline.
pub fn docker(host: Option<&str>, args: &[&str]) -> String {
    let mut cmd = Command::new("docker");
    cmd.args(args);
    if let Some(host) = host {
        cmd.env("DOCKER_HOST", host);
    }
    let out = run_with_deadline(cmd, Duration::from_secs(30));
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "docker {args:?} failed: {stderr}");
    stdout
}

/// `(id, state)` of every container labelled with the daemon id `id` on the engine at `host`.
pub fn containers_of(host: Option<&str>, id: &str) -> Vec<(String, String)> {
    let label = format!("label=pm.daemon={id}");
    docker(host, &["ps", "-a", "--no-trunc", "--filter", &label, "--format", "{{.ID}} {{.State}}"])
        .lines()
        .filter_map(|line| line.split_once(' ').map(|(id, state)| (id.to_string(), state.to_string())))
        .collect()
}

/// Containers of this test's daemon.
fn containers(pm: &Pm) -> Vec<String> {
    containers_of(None, &daemon_id(pm.home.path())).into_iter().map(|(id, _)| id).collect()
}

/// A container sidecar running `sh -c script` in the test image.
pub fn container(name: &str, script: &str, extra: &str) -> String {
    format!(
        "[sidecars.{name}]\nruntime = \"docker\"\ncommand = [\"sh\", \"-c\", {script:?}]\nstop_timeout = \"5s\"\n{extra}\n\
         [sidecars.{name}.docker]\nimage = \"{IMAGE}\"\nnetwork = \"none\"\npull = \"never\"\n\n"
    )
}

fn project(pm: &Pm, name: &str, script: &str, extra: &str) {
    pm.write("pm.toml", &container(name, script, extra));
}

#[test]
fn a_container_starts_when_ready_logs_and_stops_gracefully_leaving_nothing() {
    if !engine("a_container_starts_when_ready_logs_and_stops_gracefully_leaving_nothing") {
        return;
    }
    let pm = Pm::new();
    let script = "trap 'echo bye; exit 0' TERM; echo up; echo oops >&2; while :; do sleep 0.1; done";
    project(&pm, "box", script, "ready = { log = \"^up$\" }");
    pm.ok(&["start"]);
    let s = pm.instance("box");
    assert_eq!((s["runtime"].as_str(), s["state"].as_str()), (Some("docker"), Some("ready")), "{s}");
    assert_eq!(containers(&pm).len(), 1);
    assert!(lines(&pm.log_file("box", "err"))[0].ends_with(" oops"));
    pm.ok(&["stop", "box"]);
    let s = pm.instance("box");
    assert_eq!(s["last_exit"]["code"], 0, "it caught SIGTERM: {s}");
    assert!(lines(&pm.log_file("box", "out")).iter().any(|l| l.ends_with(" bye")));
    assert!(containers(&pm).is_empty(), "the container is removed");
}

#[test]
fn a_crashing_container_is_restarted_then_failed() {
    if !engine("a_crashing_container_is_restarted_then_failed") {
        return;
    }
    let pm = Pm::new();
    project(&pm, "crash", "echo run; exit 3", "max_restarts = 2\nbackoff_initial = \"10ms\"");
    pm.ok(&["start"]);
    wait_until("crash failed", Duration::from_secs(30), || pm.instance("crash")["state"] == "failed");
    let s = pm.instance("crash");
    assert_eq!((s["restarts"].as_i64(), s["last_exit"]["code"].as_i64()), (Some(2), Some(3)), "{s}");
    wait_until("3 runs logged", Duration::from_secs(10), || lines(&pm.log_file("crash", "out")).len() == 3);
    assert!(containers(&pm).is_empty(), "no container left by the runs");
}

#[test]
fn after_a_daemon_kill_9_its_container_is_replaced_not_duplicated() {
    if !engine("after_a_daemon_kill_9_its_container_is_replaced_not_duplicated") {
        return;
    }
    let pm = Pm::new();
    project(&pm, "box", "echo up; while :; do sleep 0.1; done", "ready = { log = \"^up$\" }");
    pm.ok(&["start"]);
    let before = containers(&pm);
    assert_eq!(before.len(), 1);
    let daemon = pm.daemon_pid().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemon), nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_until("daemon dead", Duration::from_secs(5), || !crate::support::alive(daemon as i64));
    assert_eq!(containers(&pm), before, "the container outlived its daemon");
    pm.ok(&["start", "pm"]);
    wait_until("box back", Duration::from_secs(30), || pm.instance("box")["state"] == "ready");
    let after = containers(&pm);
    assert_eq!(after.len(), 1, "exactly one container: {after:?}");
    assert_ne!(after, before, "the old one was removed, a new one started");
}

/// An image holding one of this build's binaries and the shared libraries `ldd` lists for it.
fn image_of(binary: &std::path::Path, tag: &str) {
    assert!(binary.exists(), "{} is missing: build with `cargo test --workspace`", binary.display());
    let script = format!(
        "set -e; root=$(mktemp -d); cp {bin} $root/app; \
         for lib in $(ldd {bin} | grep -o '/[^ ]*'); do cp --parents \"$lib\" $root; done; \
         tar -C $root -c . | docker import --change 'ENTRYPOINT [\"/app\"]' - {tag} >/dev/null; rm -rf $root",
        bin = binary.display()
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "building {tag}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_container_calls_a_process_through_the_daemon_and_is_called_back() {
    if !engine("a_container_calls_a_process_through_the_daemon_and_is_called_back") {
        return;
    }
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/examples");
    image_of(&examples.join("caller"), "pm-test-caller:latest");
    let pm = Pm::new();
    pm.write(
        "pm.toml",
        &format!(
            "[sidecars.adder]\ncommand = [{adder:?}]\nready = \"registered\"\n\n\
             [sidecars.caller]\nruntime = \"docker\"\ndepends_on = [\"adder\"]\nready = \"registered\"\n\
             [sidecars.caller.docker]\nimage = \"pm-test-caller:latest\"\nnetwork = \"none\"\npull = \"never\"\n",
            adder = examples.join("adder").display().to_string()
        ),
    );
    pm.ok(&["start"]);
    assert_eq!(pm.instance("caller")["runtime"], "docker");
    // The container calls the native adder through the daemon every second...
    wait_until("the container got a sum from the process", Duration::from_secs(20), || {
        pm.run(&["call", "caller.last"]).status.success() && pm.ok(&["call", "caller.last"]).contains("\"sum\"")
    });
    // ...and answers, through the daemon, with what it got.
    let last: serde_json::Value = serde_json::from_str(&pm.ok(&["call", "caller.last"])).unwrap();
    let params: Vec<i64> = serde_json::from_value(last["params"].clone()).unwrap();
    assert_eq!(last["sum"].as_i64().unwrap(), params.iter().sum::<i64>(), "{last}");
    pm.ok(&["stop", "pm"]);
    assert!(containers(&pm).is_empty());
}

#[test]
fn an_unreachable_engine_fails_only_that_sidecar() {
    let pm = Pm::new();
    project(&pm, "box", "echo up", "");
    pm.write(
        "pm.toml",
        &(std::fs::read_to_string(pm.path("pm.toml")).unwrap() + "\n[sidecars.native]\ncommand = \"sleep 1000\"\n"),
    );
    let missing = format!("unix://{}", pm.path("no-engine.sock").display());
    let out = pm.cmd(&["start"]).env("DOCKER_HOST", &missing).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("box: the docker runtime is not available: Docker engine not reachable at"), "{err}");
    assert_eq!(pm.instance("native")["state"], "ready", "the others carry on");
    assert_eq!(pm.instance("box")["state"], "failed");
}

/// The engine tests' own engine, from DOCKER_HOST (or the default socket), as a socket path.
fn engine_socket() -> Option<std::path::PathBuf> {
    let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    host.strip_prefix("unix://").map(std::path::PathBuf::from)
}

#[test]
fn an_engine_unreachable_at_the_first_spawn_is_asked_again_and_its_instances_come_up() {
    let test = "an_engine_unreachable_at_the_first_spawn_is_asked_again_and_its_instances_come_up";
    if !engine(test) {
        return;
    }
    let Some(socket) = engine_socket() else {
        let _ = writeln!(std::io::stderr(), "*** SKIPPED {test}: DOCKER_HOST is not a unix socket ***");
        return;
    };
    let pm = Pm::new();
    let up = "echo up; while :; do sleep 0.1; done";
    pm.write(
        "pm.toml",
        &format!(
            "{}{}[sidecars.native]\ncommand = \"sleep 1000\"\n",
            container("box", up, "ready = { log = \"^up$\" }"),
            container("once", up, "ready = { log = \"^up$\" }\nrestart = \"never\"")
        ),
    );
    // The engine's socket is not there yet: it appears as a link to the test engine's.
    let link = pm.path("engine.sock");
    let host = format!("unix://{}", link.display());
    let mut start = pm.cmd(&["start"]);
    start.env("DOCKER_HOST", &host);
    let out = run_with_deadline(start, Duration::from_secs(60));
    let (_, err) = texts(&out);
    assert!(!out.status.success(), "{err}");
    for name in ["box", "once"] {
        let said = format!("{name}: the docker runtime is not available: Docker engine not reachable at {host}");
        assert!(err.contains(&said), "{err}");
        assert_eq!(pm.instance(name)["state"], "failed");
    }
    assert!(pm.instance("box")["reason"].as_str().unwrap().contains("once the engine answers"));
    assert_eq!(pm.instance("native")["state"], "ready", "the others carry on");

    std::os::unix::fs::symlink(&socket, &link).unwrap();
    // Its policy restarts it (on-failure, the default), with no command and no daemon restart.
    wait_until("box comes up once the engine answers", Duration::from_secs(30), || {
        pm.instance("box")["state"] == "ready"
    });
    // restart = "never": left failed, and a start by hand now reaches the engine.
    assert_eq!(pm.instance("once")["state"], "failed");
    pm.ok(&["start", "once"]);
    assert_eq!(pm.instance("once")["state"], "ready");
    assert_eq!(containers(&pm).len(), 2);
    pm.ok(&["stop", "pm"]);
    assert!(containers(&pm).is_empty(), "nothing left behind");
}

#[test]
fn a_sleep_container_stops_at_once_with_its_init_and_only_by_sigkill_without() {
    if !engine("a_sleep_container_stops_at_once_with_its_init_and_only_by_sigkill_without") {
        return;
    }
    let pm = Pm::new();
    let table = format!("image = \"{IMAGE}\"\nnetwork = \"none\"\npull = \"never\"\n");
    pm.write(
        "pm.toml",
        &format!(
            "[sidecars.nap]\nruntime = \"docker\"\ncommand = [\"sleep\", \"1000\"]\nstop_timeout = \"20s\"\n\
             [sidecars.nap.docker]\n{table}\n\
             [sidecars.bare]\nruntime = \"docker\"\ncommand = [\"sleep\", \"1000\"]\nstop_timeout = \"1s\"\n\
             [sidecars.bare.docker]\n{table}init = false\n"
        ),
    );
    pm.ok(&["start"]);
    let id = daemon_id(pm.home.path());
    let inits: Vec<String> = containers_of(None, &id)
        .iter()
        .map(|(container, _)| {
            docker(None, &["inspect", "--format", "{{.HostConfig.Init}}", container]).trim().to_string()
        })
        .collect();
    assert_eq!(inits.iter().filter(|init| *init == "true").count(), 1, "{inits:?}");

    let started = Instant::now();
    pm.ok(&["stop", "nap"]);
    let took = started.elapsed();
    let nap = pm.instance("nap");
    assert!(took < Duration::from_secs(5), "sleep got SIGTERM from the init: stopped in {took:?}, not at stop_timeout");
    assert_eq!(nap["last_exit"]["signal"], "SIGTERM", "{nap}");

    let started = Instant::now();
    pm.ok(&["stop", "bare"]);
    let bare = pm.instance("bare");
    assert!(started.elapsed() >= Duration::from_secs(1), "pid 1 ignores SIGTERM without an init");
    assert_eq!(bare["last_exit"]["signal"], "SIGKILL", "{bare}");
    assert!(containers(&pm).is_empty());
}

#[test]
fn two_daemons_of_one_home_path_never_remove_each_others_containers() {
    if !engine("two_daemons_of_one_home_path_never_remove_each_others_containers") {
        return;
    }
    let pm = Pm::new();
    project(&pm, "box", "echo up; while :; do sleep 0.1; done", "ready = { log = \"^up$\" }");
    pm.ok(&["start"]);
    let first_id = daemon_id(pm.home.path());
    let first = containers(&pm);
    assert_eq!(first.len(), 1);
    let pid = pm.instance("box")["pid"].as_i64().expect("the container's host pid");
    let daemon = pm.daemon_pid().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemon), nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_until("daemon dead", Duration::from_secs(5), || !crate::support::alive(daemon as i64));

    // Another daemon with the same PM_HOME path (another host sharing the engine): its own id.
    let id_file = pm.home.path().join("id");
    std::fs::remove_file(&id_file).unwrap();
    pm.ok(&["start"]);
    let second_id = daemon_id(pm.home.path());
    assert_ne!(second_id, first_id);
    assert_eq!(pm.instance("box")["state"], "ready");
    assert_eq!(containers_of(None, &second_id).len(), 1, "it runs its own container");
    assert_eq!(
        containers_of(None, &first_id),
        [(first[0].clone(), "running".to_string())],
        "the other daemon's container is not its to remove"
    );
    assert!(crate::support::alive(pid), "nor is the other container's process its to kill");
    pm.ok(&["stop", "pm"]);
    assert!(containers_of(None, &second_id).is_empty());
    assert_eq!(containers_of(None, &first_id).len(), 1);

    // The first daemon again: its leftover is its own, replaced and not duplicated.
    std::fs::write(&id_file, format!("{first_id}\n")).unwrap();
    pm.ok(&["start"]);
    let now = containers_of(None, &first_id);
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now[0].0, first[0], "the leftover was removed, a new container started");
    pm.ok(&["stop", "pm"]);
    assert!(containers_of(None, &first_id).is_empty());
}
