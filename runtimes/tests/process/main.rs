//! `ProcessRuntime` against real processes (`sh`, `sleep`, `python3`).
//!
//! Every await runs under a timeout, and conditions are polled against a deadline, so a broken
//! runtime fails a test instead of hanging it.

mod errors;
mod leftover;
mod lifecycle;
mod output;

use futures::StreamExt;
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use pm_runtimes::process::ProcessRuntime;
use pm_runtimes::{Output, OutputLine, Runtime, SpawnError, SpawnSpec, Spawned};
use std::future::Future;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future).await.expect("timed out")
}

fn spec(command: &[&str]) -> SpawnSpec {
    SpawnSpec {
        instance: "test".into(),
        command: command.iter().map(|part| part.to_string()).collect(),
        ..Default::default()
    }
}

fn sh(script: &str) -> SpawnSpec {
    spec(&["sh", "-c", script])
}

async fn try_spawn(spec: SpawnSpec) -> Result<Spawned, SpawnError> {
    within(ProcessRuntime::default().spawn(spec)).await
}

async fn spawn(spec: SpawnSpec) -> Spawned {
    try_spawn(spec).await.expect("spawn")
}

/// Every line until the output closes.
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

async fn next_line(output: &mut Output) -> String {
    within(output.next()).await.expect("output closed").line
}

/// Reads a pid the child printed.
async fn next_pid(output: &mut Output) -> u32 {
    let line = next_line(output).await;
    line.trim().parse().unwrap_or_else(|_| panic!("not a pid: {line:?}"))
}

/// Dead: no such process, or a zombie its new parent has not reaped yet (pid 1 in a container
/// may never reap).
fn is_dead(pid: u32) -> bool {
    match kill(Pid::from_raw(pid as i32), None) {
        Err(Errno::ESRCH) => true,
        _ => std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| stat.rsplit(')').next().map(|rest| rest.trim_start().starts_with('Z')))
            .unwrap_or(true),
    }
}

/// Polls `condition` until it holds or the deadline passes.
async fn eventually(condition: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}
