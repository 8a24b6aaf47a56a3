//! Containers when the engine misbehaves: killed and restarted under running containers, frozen
//! (SIGSTOP) during a stop. Each test runs a private Docker engine of its own (dockerd under a
//! short temporary directory, its test image built by scripts/docker-engine.sh), so that killing
//! or freezing it touches no other test. Without an engine (or the rights to run one) they say
//! SKIPPED loudly, unless PM_REQUIRE_DOCKER=1 (as in CI), where that fails them.

use crate::containers::{container, containers_of, daemon_id, docker, engine};
use crate::support::{Pm, run_with_deadline, texts, wait_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A dockerd of one test: its data, exec root, socket and pid file under one temporary directory.
struct Engine {
    dir: tempfile::TempDir,
    dockerd: Option<Child>,
}

impl Engine {
    /// Starts a private engine with the test image, or says why not: SKIPPED, or a failure when
    /// PM_REQUIRE_DOCKER=1.
    fn start(test: &str) -> Option<Engine> {
        if !engine(test) {
            return None;
        }
        let can = nix::unistd::geteuid().is_root()
            && Command::new("dockerd").arg("--version").output().is_ok_and(|o| o.status.success());
        if !can {
            let why = "a private Docker engine needs dockerd and root";
            assert!(std::env::var("PM_REQUIRE_DOCKER").as_deref() != Ok("1"), "PM_REQUIRE_DOCKER=1 but {why}");
            let _ = writeln!(std::io::stderr(), "*** SKIPPED {test}: {why} ***");
            return None;
        }
        // Short: the engine's sockets live under it, and a socket path has at most 107 bytes.
        let dir = tempfile::Builder::new().prefix("pmd").tempdir_in("/tmp").unwrap();
        let mut engine = Engine { dir, dockerd: None };
        engine.run();
        // The script finds the engine answering and only builds the image.
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/docker-engine.sh");
        let mut build = Command::new("bash");
        build.arg(script).arg(engine.dir.path());
        let out = run_with_deadline(build, Duration::from_secs(120));
        assert!(out.status.success(), "building the test image: {}", texts(&out).1);
        Some(engine)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn host(&self) -> String {
        format!("unix://{}", self.path("docker.sock").display())
    }

    /// Starts dockerd and waits until it answers.
    fn run(&mut self) {
        assert!(self.dockerd.is_none());
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.path("dockerd.log")).unwrap();
        let mut cmd = Command::new("dockerd");
        cmd.arg("--data-root")
            .arg(self.path("data"))
            .arg("--exec-root")
            .arg(self.path("exec"))
            .arg("--pidfile")
            .arg(self.path("dockerd.pid"))
            .args(["--host", &self.host()])
            .args(["--iptables=false", "--ip-masq=false", "--bridge=none", "--storage-driver=vfs"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0);
        self.dockerd = Some(cmd.spawn().expect("start dockerd"));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut version = Command::new("docker");
            version.args(["version", "--format", "{{.Server.Version}}"]).env("DOCKER_HOST", self.host());
            if run_with_deadline(version, Duration::from_secs(30)).status.success() {
                return;
            }
            let exited = self.dockerd.as_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "dockerd does not answer ({exited:?}): {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.dockerd.as_ref().expect("dockerd runs").id() as i32)
    }

    /// SIGKILL to dockerd (its containerd dies with it; the containers' shims live on), reaped.
    fn kill(&mut self) {
        let mut dockerd = self.dockerd.take().expect("dockerd runs");
        let _ = dockerd.kill();
        let _ = dockerd.wait();
        // Its containerd may not be reaped yet: the next dockerd must not wait for it.
        let _ = std::fs::remove_file(self.path("exec/containerd/containerd.pid"));
        let _ = std::fs::remove_file(self.path("dockerd.pid"));
    }

    fn log(&self) -> String {
        let log = std::fs::read_to_string(self.path("dockerd.log")).unwrap_or_default();
        log.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Engine {
    /// Removes whatever containers are left, then stops dockerd (SIGKILL if it takes too long).
    fn drop(&mut self) {
        if let Some(mut dockerd) = self.dockerd.take() {
            let _ = kill(Pid::from_raw(dockerd.id() as i32), Signal::SIGCONT);
            let mut rm = Command::new("sh");
            rm.args(["-c", "ids=$(docker ps -aq); [ -z \"$ids\" ] || docker rm -f $ids"])
                .env("DOCKER_HOST", self.host());
            let _ = rm.stdout(Stdio::null()).stderr(Stdio::null()).status();
            let _ = kill(Pid::from_raw(dockerd.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while dockerd.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = dockerd.kill();
            let _ = dockerd.wait();
        }
        // dockerd bind-mounts its data root onto itself, and may leave it mounted: unmount what
        // is under the directory (deepest first), so that it can be removed.
        let dir = self.dir.path().to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut under: Vec<&str> = mounts
            .lines()
            .filter_map(|line| line.split(' ').nth(1))
            .filter(|target| target.starts_with(&format!("{dir}/")))
            .collect();
        under.sort_by_key(|target| std::cmp::Reverse(target.len()));
        for target in under {
            let _ = Command::new("umount").args(["-l", target]).status();
        }
    }
}

/// Thaws a frozen engine when dropped: a failing test must not leave it frozen for the
/// teardown that follows.
struct Frozen<'a>(&'a Engine);

impl<'a> Frozen<'a> {
    fn new(engine: &'a Engine) -> Self {
        kill(engine.pid(), Signal::SIGSTOP).unwrap();
        Frozen(engine)
    }
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        let _ = kill(self.0.pid(), Signal::SIGCONT);
    }
}

/// `pm ARGS…` with the daemon (started by it) on `engine`.
fn pm_on(pm: &Pm, engine: &Engine, args: &[&str]) -> String {
    let mut cmd = pm.cmd(args);
    cmd.env("DOCKER_HOST", engine.host());
    let out = run_with_deadline(cmd, Duration::from_secs(60));
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "pm {args:?} failed: {stderr}\n{stdout}");
    stdout
}

#[test]
fn containers_come_back_after_the_engine_is_killed_and_restarted_and_leave_nothing() {
    let Some(mut engine) =
        Engine::start("containers_come_back_after_the_engine_is_killed_and_restarted_and_leave_nothing")
    else {
        return;
    };
    let pm = Pm::new();
    let up = "echo up; while :; do sleep 0.1; done";
    let ready = "ready = { log = \"^up$\" }";
    pm.write(
        "pm.toml",
        &format!(
            "{}{}",
            container("always", up, &format!("{ready}\nrestart = \"always\"")),
            container("fails", up, ready)
        ),
    );
    pm_on(&pm, &engine, &["start"]);
    let id = daemon_id(pm.home.path());
    let host = engine.host();
    let before: Vec<String> = containers_of(Some(&host), &id).into_iter().map(|(c, _)| c).collect();
    assert_eq!(before.len(), 2, "{before:?}");

    engine.kill();
    // The engine comes back, and stops what ran (it has no live restore).
    engine.run();
    let back = |name: &str| {
        let s = pm.instance(name);
        s["state"] == "ready" && s["restarts"].as_u64() >= Some(1)
    };
    wait_until("both instances restarted per their policy", Duration::from_secs(60), || {
        back("always") && back("fails")
    });
    wait_until("only their new containers, running", Duration::from_secs(30), || {
        let now = containers_of(Some(&host), &id);
        now.len() == 2 && now.iter().all(|(c, state)| state == "running" && !before.contains(c))
    });
    pm.ok(&["stop", "pm"]);
    let left = containers_of(Some(&host), &id);
    assert!(left.is_empty(), "left behind after `pm stop pm`: {left:?}");
    assert_eq!(docker(Some(&host), &["ps", "-aq"]).trim(), "", "nothing at all on the engine");
}

#[test]
fn a_stop_with_the_engine_frozen_ends_at_its_deadline_and_the_container_goes_once_it_answers() {
    let test = "a_stop_with_the_engine_frozen_ends_at_its_deadline_and_the_container_goes_once_it_answers";
    let Some(engine) = Engine::start(test) else { return };
    let pm = Pm::new();
    let script = "trap 'exit 0' TERM; echo up; while :; do sleep 0.1; done";
    // stop_timeout 2s, so the stop's deadline is 2s + the 10s grace.
    pm.write("pm.toml", &container("box", script, "ready = { log = \"^up$\" }").replace("\"5s\"", "\"2s\""));
    pm_on(&pm, &engine, &["start"]);
    let id = daemon_id(pm.home.path());
    let host = engine.host();
    assert_eq!(containers_of(Some(&host), &id).len(), 1);

    let frozen = Frozen::new(&engine);
    let started = Instant::now();
    let out = pm.run(&["stop", "box"]);
    let took = started.elapsed();
    let s = pm.instance("box");
    drop(frozen);
    assert!(out.status.success(), "{}", texts(&out).1);
    assert!(took < Duration::from_secs(15), "the stop took {took:?}, past stop_timeout + grace");
    assert!(took >= Duration::from_secs(2), "it cannot be confirmed before the deadline: {took:?}");
    assert_eq!(s["state"], "stopped", "{s}");
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("the Docker engine did not confirm the stop"), "says why: {s}");

    // Once the engine answers, the container is removed without being asked for.
    wait_until("the container is removed", Duration::from_secs(30), || containers_of(Some(&host), &id).is_empty());
    pm.ok(&["stop", "pm"]);
    assert_eq!(docker(Some(&host), &["ps", "-aq"]).trim(), "");
}

#[test]
fn status_with_the_engine_frozen_answers_within_a_second_without_the_containers_figures() {
    let test = "status_with_the_engine_frozen_answers_within_a_second_without_the_containers_figures";
    let Some(engine) = Engine::start(test) else { return };
    let pm = Pm::new();
    pm.write("pm.toml", &container("box", "while :; do sleep 1; done", ""));
    pm_on(&pm, &engine, &["start"]);
    wait_until("the container's figures", Duration::from_secs(20), || pm.instance("box")["memory_bytes"].is_u64());

    let frozen = Frozen::new(&engine);
    let started = Instant::now();
    let s = pm.instance("box");
    let took = started.elapsed();
    drop(frozen);
    assert!(took < Duration::from_secs(3), "pm status took {took:?} with the engine frozen");
    assert_eq!(s["state"], "ready", "{s}");
    assert!(s.get("memory_bytes").is_none() && s.get("cpu_percent").is_none(), "no figures: {s}");
    pm.ok(&["stop", "pm"]);
}
