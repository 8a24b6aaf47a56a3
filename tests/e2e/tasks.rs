//! In-process tasks: the built-in `echo` through the real binary, and custom tasks through the
//! embedding API (`DaemonConfig::task`), each with the same supervision as a process.

use crate::support::{Pm, lines, wait_until};
use async_trait::async_trait;
use pm_client::{Client, PmApiClient};
use pm_daemon::home::Home;
use pm_daemon::{DaemonConfig, Task, TaskContext, TaskError};
use pm_protocol::params::{StartParams, StopParams};
use pm_protocol::{Definition, RestartPolicy, RuntimeKind, State};
use std::time::Duration;

#[test]
fn the_builtin_echo_task_serves_through_the_mesh_and_a_process_can_depend_on_it() {
    let pm = Pm::new();
    pm.write(
        "pm.toml",
        r#"
[sidecars.echo]
runtime = "task"
command = ["echo"]
ready = "registered"

[sidecars.app]
command = ["sleep", "1000"]
depends_on = ["echo"]
"#,
    );
    pm.ok(&["start"]);
    assert_eq!(pm.instance("echo")["runtime"], "task");
    assert_eq!(pm.instance("app")["state"], "ready");
    assert_eq!(pm.ok(&["call", "echo.add", "[40, 2]"]).trim(), "42");
    assert_eq!(pm.ok(&["call", "echo.sleep", "[50]"]).trim(), "50");
    assert!(lines(&pm.log_file("echo", "out"))[0].ends_with(" echo: serving echo, add, sleep"));
    pm.ok(&["stop", "echo"]);
    let s = pm.instance("echo");
    assert_eq!((s["state"].as_str(), s["last_exit"]["code"].as_i64()), (Some("stopped"), Some(0)), "{s}");
    assert_eq!(pm.instance("app")["state"], "stopped", "its dependent stopped first");
    let err = pm.fails(&["call", "echo.add", "[1]"]);
    assert!(err.contains("not ready"), "{err}");
}

#[test]
fn an_unknown_task_is_a_clear_error() {
    let pm = Pm::new();
    pm.ok(&["map", "ghost", "--runtime", "task", "--", "nosuchtask"]);
    let err = pm.fails(&["start", "ghost"]);
    assert_eq!(err.trim(), "pm: ghost: no task named `nosuchtask` in this daemon (its tasks: echo, schedule)");
}

#[test]
fn schedule_starts_a_one_shot_on_time_and_never_overlaps_it() {
    let pm = Pm::new();
    pm.write(
        "pm.toml",
        r#"
[sidecars.tick]
command = "sh -c 'echo tick'"
ready = "exited"
restart = "never"
autostart = false

[sidecars.slow]
command = "sh -c 'echo slow; sleep 2.5'"
ready = "exited"
restart = "never"
autostart = false

[sidecars.every-second]
runtime = "task"
command = ["schedule", "--cron", "* * * * * *", "--tz", "Europe/Paris", "--start", "tick"]

[sidecars.busy]
runtime = "task"
command = ["schedule", "--cron", "* * * * * *", "--start", "slow"]
"#,
    );
    pm.ok(&["start"]);
    wait_until("tick ran twice", Duration::from_secs(10), || lines(&pm.log_file("tick", "out")).len() >= 2);
    assert_eq!(pm.instance("tick")["last_exit"]["code"], 0, "its runs show in its status");
    let log = lines(&pm.log_file("every-second", "out"));
    assert!(log[0].ends_with("starting `tick` on `* * * * * *` (Europe/Paris)"), "{log:?}");
    assert!(log.iter().any(|l| l.contains(": starting `tick`")), "{log:?}");
    // `slow` runs 2.5 s, longer than the schedule's period: ticks in between are skipped.
    wait_until("a skipped run", Duration::from_secs(10), || {
        lines(&pm.log_file("busy", "out")).iter().any(|l| l.contains("skipped, `slow` is still running"))
    });
    assert_eq!(lines(&pm.log_file("slow", "out")).len(), 1, "never two runs at once");
}

#[test]
fn schedule_restart_restarts_a_running_sidecar_at_each_run() {
    let pm = Pm::new();
    pm.write(
        "pm.toml",
        r#"
[sidecars.web]
command = "sleep 1000"

[sidecars.nightly]
runtime = "task"
command = ["schedule", "--cron", "*/2 * * * * *", "--restart", "web"]
"#,
    );
    pm.ok(&["start"]);
    let first = pm.instance("web")["pid"].clone();
    assert!(first.is_u64());
    let mut pids = std::collections::BTreeSet::new();
    wait_until("web restarted twice by the schedule", Duration::from_secs(15), || {
        let web = pm.instance("web");
        if web["state"] == "ready" && web["pid"] != first {
            pids.insert(web["pid"].to_string());
        }
        pids.len() >= 2
    });
    let log = lines(&pm.log_file("nightly", "out"));
    assert!(log[0].ends_with("restarting `web` on `*/2 * * * * *` (UTC)"), "{log:?}");
    assert!(log.iter().any(|l| l.contains(": restarting `web`")), "{log:?}");
}

struct Panics;
#[async_trait]
impl Task for Panics {
    async fn run(&self, ctx: TaskContext) -> Result<(), TaskError> {
        ctx.log.out("about to panic").await;
        panic!("boom");
    }
}

struct Fails;
#[async_trait]
impl Task for Fails {
    async fn run(&self, _ctx: TaskContext) -> Result<(), TaskError> {
        Err("the disk is full".into())
    }
}

/// Ignores its cancellation token: only the abort after the stop timeout ends it.
struct Stubborn;
#[async_trait]
impl Task for Stubborn {
    async fn run(&self, ctx: TaskContext) -> Result<(), TaskError> {
        ctx.log.out("never stopping").await;
        std::future::pending::<()>().await;
        Ok(())
    }
}

fn task_def(name: &str) -> Definition {
    let mut d = Definition::new(vec![name.into()]);
    d.runtime = RuntimeKind::Task;
    d.restart = RestartPolicy::Always;
    d.backoff_initial = Duration::from_millis(10);
    d.max_restarts = 2;
    d.stop_timeout = Duration::from_millis(200);
    d
}

#[test]
fn embedded_tasks_panic_fail_and_get_aborted_like_crashing_processes() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let limit = Duration::from_secs(10);
        let config =
            DaemonConfig::new(home.clone()).task("panics", Panics).task("fails", Fails).task("stubborn", Stubborn);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let daemon = tokio::spawn(config.run(async move {
            let _ = stopped.await;
        }));
        let client = tokio::time::timeout(limit, async {
            loop {
                if let Ok(client) = Client::connect_unix(&home.socket()).await {
                    return client;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the embedded daemon answers");
        let api = client.daemon();
        for name in ["panics", "fails", "stubborn"] {
            api.map(name.into(), task_def(name), false).await.unwrap();
            api.start(StartParams { name: Some(name.into()), ..Default::default() }).await.unwrap();
        }
        for name in ["panics", "fails"] {
            tokio::time::timeout(limit, async {
                while api.status(Some(name.into())).await.unwrap()[0].state != State::Failed {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("{name} never failed"));
            let s = api.status(Some(name.into())).await.unwrap().remove(0);
            assert_eq!(s.restarts, 2, "{s:?}");
        }
        let panics = api.status(Some("panics".into())).await.unwrap().remove(0);
        assert_eq!(panics.last_exit.unwrap().code, Some(101), "a panic exits like a Rust process's");
        let err_log = std::fs::read_to_string(home.log_file("panics", pm_protocol::LogStream::Err)).unwrap();
        assert_eq!(err_log.matches("task panicked: boom").count(), 3, "each of the 3 runs: {err_log}");
        let err_log = std::fs::read_to_string(home.log_file("fails", pm_protocol::LogStream::Err)).unwrap();
        assert!(err_log.contains("task failed: the disk is full"), "{err_log}");

        let stopped = api.stop(StopParams { name: Some("stubborn".into()), all: false }).await.unwrap();
        assert_eq!(stopped[0].last_exit.as_ref().unwrap().signal.as_deref(), Some("SIGKILL"), "aborted after 200ms");
        let _ = stop.send(());
        tokio::time::timeout(limit, daemon).await.unwrap().unwrap().unwrap();
    });
    wait_until("the socket is gone", Duration::from_secs(5), || !home.socket().exists());
}
