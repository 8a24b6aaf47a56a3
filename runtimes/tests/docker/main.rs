//! `DockerRuntime` against a real Docker engine (`scripts/docker-engine.sh` starts one and builds
//! the `pm-test-busybox:latest` image).
//!
//! Without a reachable engine each test prints a loud SKIPPED line and passes, unless
//! `PM_REQUIRE_DOCKER=1`, where that is a failure. Every await runs under a timeout.

use futures::StreamExt;
use nix::sys::signal::Signal;
use pm_protocol::{DockerSpec, PullPolicy, RuntimeKind};
use pm_runtimes::docker::DockerRuntime;
use pm_runtimes::{Exit, Output, OutputLine, Runtime, SpawnSpec, Spawned, Stream};
use std::future::Future;
use std::io::Write;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);
const IMAGE: &str = "pm-test-busybox:latest";

async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future).await.expect("timed out")
}

/// A daemon id unique to this test, so tests running in parallel do not see each other's
/// containers.
fn daemon_id(test: &str) -> String {
    format!("pm-test-{test}-{}", std::process::id())
}

/// The engine, or `None` (after a loud message) when there is none and none is required.
async fn engine(test: &str) -> Option<DockerRuntime> {
    match within(DockerRuntime::connect(daemon_id(test))).await {
        Ok(runtime) => Some(runtime),
        Err(error) if std::env::var("PM_REQUIRE_DOCKER").as_deref() == Ok("1") => {
            panic!("PM_REQUIRE_DOCKER=1 but no Docker engine: {error}")
        }
        Err(error) => {
            // Straight to the process's stderr: the test harness does not capture that, so the skip
            // shows in a normal `cargo test` run.
            let message =
                format!("\n*** SKIPPED {test}: no Docker engine ({error}); run scripts/docker-engine.sh ***\n");
            let _ = std::io::stderr().write_all(message.as_bytes());
            None
        }
    }
}

fn spec(instance: &str, image: &str, command: &[&str]) -> SpawnSpec {
    SpawnSpec {
        runtime: RuntimeKind::Docker,
        docker: Some(DockerSpec {
            image: image.to_string(),
            network: Some("none".to_string()),
            pull: PullPolicy::Never,
            ..Default::default()
        }),
        instance: instance.to_string(),
        command: command.iter().map(|part| part.to_string()).collect(),
        ..Default::default()
    }
}

fn sh(instance: &str, script: &str) -> SpawnSpec {
    spec(instance, IMAGE, &["sh", "-c", script])
}

async fn spawn(runtime: &DockerRuntime, spec: SpawnSpec) -> Spawned {
    match within(runtime.spawn(spec)).await {
        Ok(spawned) => spawned,
        Err(error) => panic!("spawn: {error} (is {IMAGE} built? run scripts/docker-engine.sh)"),
    }
}

async fn all_lines(output: &mut Output) -> Vec<OutputLine> {
    within(async {
        let mut lines = Vec::new();
        while let Some(line) = output.next().await {
            lines.push(line);
        }
        lines
    })
    .await
}

fn of(lines: &[OutputLine], stream: Stream) -> Vec<&str> {
    lines.iter().filter(|line| line.stream == stream).map(|line| line.line.as_str()).collect()
}

/// Every container of this runtime's daemon id, held by a run or not.
async fn containers(runtime: &DockerRuntime) -> Vec<(String, String)> {
    within(runtime.containers()).await.expect("containers")
}

async fn leftovers(runtime: &DockerRuntime) -> Vec<(String, String)> {
    within(runtime.leftovers()).await.expect("leftovers")
}

#[tokio::test]
async fn output_lines_arrive_and_the_exit_code_is_reported() {
    let Some(runtime) = engine("output").await else { return };
    let script = "echo out1; echo err1 >&2; echo out2; echo err2 >&2; printf partial; exit 3";
    let mut spawned = spawn(&runtime, sh("output", script)).await;

    let lines = all_lines(&mut spawned.output).await;
    assert_eq!(of(&lines, Stream::Stdout), ["out1", "out2", "partial"]);
    assert_eq!(of(&lines, Stream::Stderr), ["err1", "err2"]);
    let exit = within(spawned.handle.wait()).await;
    assert_eq!(exit, Exit { code: Some(3), signal: None });
    // Cached, and the container is gone once the run has ended.
    assert_eq!(within(spawned.handle.wait()).await, exit);
    assert_eq!(containers(&runtime).await, []);
}

#[tokio::test]
async fn env_and_workdir_reach_the_container() {
    let Some(runtime) = engine("env").await else { return };
    let mut spec = sh("env", "echo \"$GREETING from $(pwd)\"");
    spec.env = vec![("GREETING".into(), "hello".into())];
    spec.docker.as_mut().unwrap().workdir = Some("/tmp".into());
    let mut spawned = spawn(&runtime, spec).await;
    let lines = all_lines(&mut spawned.output).await;
    assert_eq!(of(&lines, Stream::Stdout), ["hello from /tmp"]);
    assert_eq!(within(spawned.handle.wait()).await.code, Some(0));
}

#[tokio::test]
async fn stop_kills_a_container_that_ignores_term_and_removes_it() {
    let Some(runtime) = engine("stop").await else { return };
    let script = "trap '' TERM; echo ready; while true; do sleep 1; done";
    let mut spawned = spawn(&runtime, sh("stop", script)).await;
    let first = within(spawned.output.next()).await.expect("output closed");
    assert_eq!(first.line, "ready");
    assert_eq!(containers(&runtime).await.len(), 1);
    let pid = spawned.handle.pid().expect("the container's main pid, as the engine's host sees it");
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::env::var("DOCKER_HOST").is_ok_and(|h| h.starts_with("tcp"))
    );

    let timeout = Duration::from_millis(1500);
    let started = Instant::now();
    let exit = within(spawned.handle.stop(Signal::SIGTERM, timeout)).await;
    let took = started.elapsed();
    assert_eq!(exit, Exit { code: None, signal: Some(libc_sigkill()) }, "ended by SIGKILL");
    assert!(took >= timeout, "SIGKILL came before the timeout ({took:?})");
    assert_eq!(containers(&runtime).await, [], "the container is gone");
    assert_eq!(within(spawned.handle.wait()).await, exit);
}

#[tokio::test]
async fn stop_of_a_container_that_obeys_term_is_quick() {
    let Some(runtime) = engine("term").await else { return };
    let script = "trap 'echo bye; exit 0' TERM; echo ready; while true; do sleep 0.1; done";
    let mut spawned = spawn(&runtime, sh("term", script)).await;
    assert_eq!(within(spawned.output.next()).await.expect("output").line, "ready");
    let exit = within(spawned.handle.stop(Signal::SIGTERM, Duration::from_secs(30))).await;
    assert_eq!(exit, Exit { code: Some(0), signal: None });
    let rest = all_lines(&mut spawned.output).await;
    assert_eq!(of(&rest, Stream::Stdout), ["bye"]);
    assert_eq!(containers(&runtime).await, []);
}

fn libc_sigkill() -> i32 {
    Signal::SIGKILL as i32
}

#[tokio::test]
async fn leftovers_are_the_containers_of_this_daemon_id_that_no_run_holds() {
    let Some(runtime) = engine("leftovers").await else { return };
    let mut spawned = spawn(&runtime, sh("left", "echo ready; while true; do sleep 1; done")).await;
    assert_eq!(within(spawned.output.next()).await.expect("output").line, "ready");
    assert_eq!(leftovers(&runtime).await, [], "its own run holds it");

    // As a restarted daemon with the same id would: list by label, then remove.
    let restarted = engine("leftovers").await.expect("the engine answered a moment ago");
    let found = leftovers(&restarted).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "left");
    // A daemon of another id (the same PM_HOME path on another host) does not see it.
    let other = engine("leftovers-other").await.expect("the engine answered a moment ago");
    assert_eq!(leftovers(&other).await, []);
    within(restarted.remove(&found[0].1)).await.expect("remove");
    assert_eq!(containers(&runtime).await, []);
    // Removing again is not an error, and the handle learns the run ended.
    within(restarted.remove(&found[0].1)).await.expect("remove again");
    let exit = within(spawned.handle.wait()).await;
    assert_eq!(exit.signal, Some(libc_sigkill()), "{exit:?}");
}

#[tokio::test]
async fn with_its_init_a_sleep_container_stops_at_once_on_sigterm() {
    let Some(runtime) = engine("init").await else { return };
    let mut spawned = spawn(&runtime, spec("init", IMAGE, &["sleep", "1000"])).await;
    let started = Instant::now();
    let exit = within(spawned.handle.stop(Signal::SIGTERM, Duration::from_secs(30))).await;
    let took = started.elapsed();
    assert_eq!(exit, Exit { code: None, signal: Some(Signal::SIGTERM as i32) }, "ended by SIGTERM");
    assert!(took < Duration::from_secs(5), "the init passed SIGTERM on to sleep: {took:?}");
    assert_eq!(containers(&runtime).await, []);
}

#[tokio::test]
async fn without_an_init_a_sleep_container_as_pid_1_ignores_sigterm() {
    let Some(runtime) = engine("no-init").await else { return };
    let mut spec = spec("no-init", IMAGE, &["sleep", "1000"]);
    spec.docker.as_mut().unwrap().init = false;
    let mut spawned = spawn(&runtime, spec).await;
    let timeout = Duration::from_millis(1500);
    let started = Instant::now();
    let exit = within(spawned.handle.stop(Signal::SIGTERM, timeout)).await;
    assert_eq!(exit, Exit { code: None, signal: Some(libc_sigkill()) }, "pid 1 ignored SIGTERM");
    assert!(started.elapsed() >= timeout);
    assert_eq!(containers(&runtime).await, []);
}

#[tokio::test]
async fn a_dropped_handle_removes_its_container() {
    let Some(runtime) = engine("dropped").await else { return };
    let spawned = spawn(&runtime, sh("dropped", "echo ready; while true; do sleep 1; done")).await;
    drop(spawned);
    within(async {
        while !containers(&runtime).await.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_missing_image_with_pull_never_is_a_clear_error() {
    let Some(runtime) = engine("missing").await else { return };
    let spec = spec("nope", "pm-test-missing:never", &["true"]);
    let error = within(runtime.spawn(spec)).await.err().expect("spawn must fail").to_string();
    eprintln!("{error}");
    assert!(error.starts_with("nope: "), "names the instance: {error}");
    assert!(error.contains("pm-test-missing:never"), "names the image: {error}");
    assert!(error.contains("`never`"), "says why: {error}");
    assert_eq!(containers(&runtime).await, []);
}

#[tokio::test]
async fn a_failed_pull_names_the_image() {
    let Some(runtime) = engine("pull").await else { return };
    let mut spec = spec("pulled", "localhost:1/pm-test-unpullable:v1", &["true"]);
    spec.docker.as_mut().unwrap().pull = PullPolicy::Missing;
    let error = within(runtime.spawn(spec)).await.err().expect("spawn must fail").to_string();
    eprintln!("{error}");
    assert!(error.starts_with("pulled: "), "{error}");
    assert!(error.contains("cannot pull image `localhost:1/pm-test-unpullable:v1`"), "{error}");
}

#[tokio::test]
async fn an_unreachable_engine_is_a_clear_error() {
    let address = "unix:///nonexistent/pm-test/docker.sock";
    let error = within(DockerRuntime::connect_at(address, daemon_id("unreachable"))).await.expect_err("must fail");
    let message = error.to_string();
    eprintln!("{message}");
    assert!(message.starts_with(&format!("Docker engine not reachable at {address}")), "{message}");
    assert!(message.contains("scripts/docker-engine.sh"), "{message}");
}

/// `connect` honours `DOCKER_HOST`: checked in a child process, as tests must not change the
/// environment of this multi-threaded one.
#[test]
fn an_unreachable_docker_host_is_a_clear_error() {
    let address = "unix:///nonexistent/pm-test/docker.sock";
    if std::env::var("PM_DOCKER_TEST_CHILD").is_ok() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let error = runtime.block_on(within(DockerRuntime::connect(daemon_id("child")))).expect_err("must fail");
        let message = error.to_string();
        assert!(message.starts_with(&format!("Docker engine not reachable at {address}")), "{message}");
        return;
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "an_unreachable_docker_host_is_a_clear_error", "--nocapture"])
        .env("PM_DOCKER_TEST_CHILD", "1")
        .env("DOCKER_HOST", address)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "child test timed out");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "child test failed: {status}");
}
