//! `pm run`: a project in the foreground with prefixed output, ordered stop on SIGTERM and an
//! exit code; and the example image with pm as PID 1 on a real Docker engine.

use crate::support::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `pm run ARGS…` in the work directory, output captured to files read by the test.
struct Running {
    child: Child,
    out: std::path::PathBuf,
    err: std::path::PathBuf,
}

impl Running {
    fn start(pm: &Pm, args: &[&str]) -> Running {
        let (out, err) = (pm.path("run.out"), pm.path("run.err"));
        let mut cmd = pm.cmd(&["run"]);
        cmd.args(args).env("NO_COLOR", "1").stdin(Stdio::null());
        cmd.stdout(std::fs::File::create(&out).unwrap()).stderr(std::fs::File::create(&err).unwrap());
        Running { child: cmd.spawn().unwrap(), out, err }
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Its exit code, once it ends (failing after `within`).
    fn code(&mut self, within: Duration) -> i32 {
        let mut status = None;
        wait_until("pm run exits", within, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        status.unwrap().code().unwrap_or(-1)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const STACK: &str = r#"
[sidecars.db]
command = ["sh", "-c", "trap '' HUP; trap 'echo db got TERM; exit 0' TERM; echo db up; while true; do sleep 0.05; done"]
ready = { log = "db up" }

[sidecars.api]
command = ["sh", "-c", "trap '' HUP; trap 'echo api got TERM; exit 0' TERM; echo api up; echo api warning >&2; while true; do sleep 0.05; done"]
depends_on = ["db"]

[sidecars.hup]
command = ["sh", "-c", "trap 'echo hup got HUP' HUP; echo hup up; while true; do sleep 0.05; done"]
"#;

#[test]
fn pm_run_prefixes_output_stops_in_order_on_sigterm_and_exits_0() {
    let pm = Pm::new();
    pm.write("pm.toml", STACK);
    let mut run = Running::start(&pm, &[]);
    wait_until("every sidecar printed", Duration::from_secs(20), || {
        let out = run.stdout();
        out.contains("db  | db up") && out.contains("api | api up") && out.contains("hup | hup up")
    });
    wait_until("api's stderr, prefixed", Duration::from_secs(5), || run.stderr().contains("api | api warning"));
    // Other commands reach it through the socket.
    assert_eq!(pm.instance("api")["state"], "ready");
    // Signals it does not stop on are forwarded to the sidecars.
    run.signal(Signal::SIGHUP);
    wait_until("hup got the HUP", Duration::from_secs(5), || run.stdout().contains("hup | hup got HUP"));

    run.signal(Signal::SIGTERM);
    assert_eq!(run.code(Duration::from_secs(30)), 0, "stderr:\n{}", run.stderr());
    let out = run.stdout();
    let (api, db) = (out.find("api got TERM").unwrap(), out.find("db got TERM").unwrap());
    assert!(api < db, "api (the dependent) stops before db:\n{out}");
    assert!(pm.daemon_pid().is_none_or(|pid| !alive(pid.into())), "the daemon ended with pm run");
}

#[test]
fn pm_run_exits_with_the_first_failures_code() {
    let pm = Pm::new();
    pm.write(
        "pm.toml",
        "[sidecars.ok]\ncommand = \"sleep 1000\"\n\n[sidecars.bad]\ncommand = \"sh -c 'exit 3'\"\nrestart = \"never\"\n",
    );
    let mut run = Running::start(&pm, &[]);
    wait_until("bad failed", Duration::from_secs(20), || run.stderr().contains("bad failed"));
    run.signal(Signal::SIGTERM);
    assert_eq!(run.code(Duration::from_secs(30)), 3, "stderr:\n{}", run.stderr());
}

#[test]
fn pm_run_exit_with_ends_with_that_sidecars_code() {
    let pm = Pm::new();
    pm.write(
        "pm.toml",
        "[sidecars.server]\ncommand = \"sleep 1000\"\n\n[sidecars.tests]\ncommand = \"sh -c 'echo testing; exit 7'\"\n\
         depends_on = [\"server\"]\nrestart = \"never\"\n",
    );
    let mut run = Running::start(&pm, &["--exit-with", "tests"]);
    assert_eq!(run.code(Duration::from_secs(30)), 7, "stderr:\n{}", run.stderr());
    assert!(run.stdout().contains("tests  | testing"), "padded to the longest name:\n{}", run.stdout());
}

#[test]
fn pm_run_refuses_a_bad_project_and_an_unknown_name_before_starting() {
    let pm = Pm::new();
    pm.write("pm.toml", "[sidecars.a]\ncommand = \"sleep 1000\"\n");
    let stderr = pm.fails(&["run", "nope"]);
    assert!(stderr.contains("no sidecar named `nope`"), "{stderr}");
    pm.write("pm.toml", "[sidecars.a]\ncommand = 42\n");
    let stderr = pm.fails(&["run"]);
    assert!(stderr.contains("pm.toml") && stderr.contains("command"), "{stderr}");
    assert!(pm.daemon_pid().is_none(), "nothing was started");
}

/// The example image: pm as PID 1 of a container, stopped by `docker stop`.
#[test]
fn the_pm_run_example_image_stops_in_order_with_zero_zombies_and_exit_0() {
    let test = "the_pm_run_example_image_stops_in_order_with_zero_zombies_and_exit_0";
    let answers = Command::new("docker").args(["image", "inspect", "pm-test-busybox:latest"]).output();
    if !answers.is_ok_and(|o| o.status.success()) {
        let why = "no Docker engine with the test image (run scripts/docker-engine.sh and export DOCKER_HOST)";
        assert!(std::env::var("PM_REQUIRE_DOCKER").as_deref() != Ok("1"), "PM_REQUIRE_DOCKER=1 but {why}");
        eprintln!("*** SKIPPED {test}: {why} ***");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let context = dir.path();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/pm-run");
    for file in ["Dockerfile", "pm.toml", ".dockerignore"] {
        std::fs::copy(example.join(file), context.join(file)).unwrap();
    }
    std::fs::copy(PM, context.join("pm")).unwrap();
    // A glibc base for the example: busybox plus the libraries `ldd pm` names.
    let base = glibc_base(context);
    let tag = format!("pm-run-example-{}", std::process::id());
    docker(&["build", "-q", "-t", &tag, "--build-arg", &format!("BASE={base}"), &context.display().to_string()]);
    let name = format!("pm-run-{}", std::process::id());
    let _cleanup =
        Cleanup(vec![vec!["rm", "-f", &name], vec!["rmi", "-f", &tag]].into_iter().map(to_strings).collect());
    docker(&["run", "-d", "--name", &name, "--network", "none", &tag]);
    let logs = || docker(&["logs", &name]);
    wait_until("jobs ticks", Duration::from_secs(30), || logs().contains("jobs  | jobs: tick"));
    // pm is PID 1, and the orphans jobs leaves behind are reaped.
    let comm = docker(&["exec", &name, "cat", "/proc/1/comm"]);
    assert_eq!(comm.trim(), "pm");
    wait_until("a few orphans came and went", Duration::from_secs(10), || logs().matches("jobs: tick").count() >= 3);
    let zombies = docker(&["exec", &name, "sh", "-c", "cat /proc/[0-9]*/stat 2>/dev/null | grep -c ') Z ' || true"]);
    assert_eq!(zombies.trim(), "0", "zombies in the container");

    docker(&["stop", "-t", "30", &name]);
    let code = docker(&["inspect", "-f", "{{.State.ExitCode}}", &name]);
    let out = logs();
    assert_eq!(code.trim(), "0", "exit code; logs:\n{out}");
    // The order is read from the log files' timestamps: the prefixed output interleaves lines as
    // each sidecar's pipe is read, which on a busy machine need not be the order they were written.
    let logs = tempfile::tempdir().unwrap();
    docker(&["cp", &format!("{name}:/var/lib/pm/logs"), &logs.path().display().to_string()]);
    let order: Vec<String> = [("jobs", "jobs: stopping"), ("web", "web: draining"), ("store", "store: flushing")]
        .iter()
        .map(|(sidecar, text)| {
            assert!(out.contains(text), "no `{text}` in the output:\n{out}");
            let file = logs.path().join("logs").join(format!("{sidecar}.out.log"));
            let line = lines(&file).into_iter().find(|l| l.ends_with(text));
            line.unwrap_or_else(|| panic!("no `{text}` in {}", file.display())).split(' ').next().unwrap().to_string()
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "reverse dependency order: {order:?}\n{out}");
}

fn to_strings(args: Vec<&str>) -> Vec<String> {
    args.into_iter().map(str::to_string).collect()
}

/// Runs `docker ARGS…`, requires success, returns stdout and stderr together (`docker logs`
/// writes the container's two streams to its own two).
fn docker(args: &[&str]) -> String {
    let out = run_with_deadline(
        {
            let mut cmd = Command::new("docker");
            cmd.args(args);
            cmd
        },
        Duration::from_secs(120),
    );
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "docker {args:?}: {stderr}");
    stdout + &stderr
}

/// Builds (once per engine) `pm-test-glibc`: the busybox test image plus the C library files pm
/// needs, copied from this machine.
fn glibc_base(context: &std::path::Path) -> String {
    let dir = context.join("glibc");
    let out = Command::new("ldd").arg(PM).output().unwrap();
    let mut libs = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` or `/lib64/ld-linux-x86-64.so.2 (0x…)`
        let path = line.split("=>").last().unwrap().split_whitespace().next().unwrap_or("");
        if path.starts_with('/') {
            libs.push(path.to_string());
        }
    }
    let mut dockerfile = String::from("FROM pm-test-busybox:latest\n");
    for (i, lib) in libs.iter().enumerate() {
        std::fs::create_dir_all(&dir).unwrap();
        // A copy keeps the mode: the dynamic loader must stay executable.
        std::fs::copy(lib, dir.join(i.to_string())).unwrap();
        dockerfile.push_str(&format!("COPY {i} {lib}\n"));
    }
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    let base = "pm-test-glibc:latest";
    docker(&["build", "-q", "-t", base, &dir.display().to_string()]);
    base.to_string()
}

/// Docker commands run at the end, whatever happened.
struct Cleanup(Vec<Vec<String>>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for args in &self.0 {
            let _ = Command::new("docker").args(args).output();
        }
    }
}
