//! A runtime that runs nothing: it records what the supervisor asks for and lets the test decide
//! when runs exit and what they print.
//!
//! ```
//! # use pm_runtimes::{fake::{Call, RecordingRuntime}, Exit, Runtime, SpawnSpec};
//! # tokio_test_block_on(async {
//! let runtime = RecordingRuntime::default();
//! let spec = SpawnSpec { instance: "a".into(), command: vec!["x".into()], ..Default::default() };
//! let mut spawned = runtime.spawn(spec.clone()).await.unwrap();
//! runtime.exit("a", Exit { code: Some(0), signal: None });
//! assert_eq!(spawned.handle.wait().await.code, Some(0));
//! assert_eq!(runtime.calls(), [Call::Spawn(Box::new(spec))]);
//! # });
//! # fn tokio_test_block_on(f: impl std::future::Future) {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f);
//! # }
//! ```

use crate::{Exit, Handle, OutputLine, Runtime, SpawnError, SpawnSpec, Spawned, Stream};
use async_trait::async_trait;
use nix::sys::signal::Signal;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};

/// Fake pids count up from here, far from anything a test would confuse them with.
const FIRST_PID: u32 = 100_000;

/// One request the supervisor made, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// Recorded for failed spawns too.
    Spawn(Box<SpawnSpec>),
    Signal {
        instance: String,
        signal: Signal,
    },
    Stop {
        instance: String,
        signal: Signal,
        timeout: Duration,
    },
    Sweep {
        instance: String,
    },
}

/// Records calls; runs end only when the test says so (or on `stop`). Clones share everything.
#[derive(Clone, Default)]
pub struct RecordingRuntime {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    /// Every run, by fake pid.
    runs: HashMap<u32, Run>,
    /// The latest run of each instance: the one `exit` and `emit` address.
    latest: HashMap<String, u32>,
    failures: HashMap<String, String>,
    spawned: u32,
}

struct Run {
    exit: watch::Sender<Option<Exit>>,
    /// Dropped when the run exits, which closes its output like a real child's pipes.
    output: Option<mpsc::Sender<OutputLine>>,
}

impl RecordingRuntime {
    /// Everything asked of this runtime and its handles so far.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Makes the next spawn of `instance` fail with [`SpawnError::Io`] carrying `message`.
    pub fn fail_next_spawn(&self, instance: &str, message: &str) {
        self.lock().failures.insert(instance.to_string(), message.to_string());
    }

    /// Ends the latest run of `instance` with `exit`; false if it has none or it already ended.
    pub fn exit(&self, instance: &str, exit: Exit) -> bool {
        let mut state = self.lock();
        match state.latest.get(instance).copied() {
            Some(pid) => state.finish(pid, exit),
            None => false,
        }
    }

    /// Prints `line` on `stream` of the latest run of `instance`; false if it has no open output.
    /// Waits while the output channel is full, as a real child would.
    pub async fn emit(&self, instance: &str, stream: Stream, line: &str) -> bool {
        let output = {
            let state = self.lock();
            let run = state.latest.get(instance).and_then(|pid| state.runs.get(pid));
            run.and_then(|run| run.output.clone())
        };
        let Some(output) = output else {
            return false;
        };
        let line = OutputLine { stream, line: line.to_string(), at: SystemTime::now() };
        output.send(line).await.is_ok()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// Sets the exit of run `pid` unless it already has one; says whether it did.
    fn finish(&mut self, pid: u32, exit: Exit) -> bool {
        let Some(run) = self.runs.get_mut(&pid) else {
            return false;
        };
        run.output = None;
        run.exit.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                *current = Some(exit);
            }
            first
        })
    }
}

#[async_trait]
impl Runtime for RecordingRuntime {
    async fn spawn(&self, spec: SpawnSpec) -> Result<Spawned, SpawnError> {
        let mut state = self.lock();
        state.calls.push(Call::Spawn(Box::new(spec.clone())));
        if let Some(message) = state.failures.remove(&spec.instance) {
            return Err(SpawnError::Io {
                instance: spec.instance,
                program: spec.command.first().cloned().unwrap_or_default(),
                source: std::io::Error::other(message),
            });
        }
        let pid = FIRST_PID + state.spawned;
        state.spawned += 1;
        let (exit, exit_rx) = watch::channel(None);
        let (output, output_rx) = mpsc::channel(crate::OUTPUT_CAPACITY);
        state.runs.insert(pid, Run { exit, output: Some(output) });
        state.latest.insert(spec.instance.clone(), pid);
        let handle = FakeHandle { runtime: self.clone(), instance: spec.instance, pid, exit: exit_rx };
        Ok(Spawned { handle: Box::new(handle), output: crate::output_of(output_rx) })
    }
}

struct FakeHandle {
    runtime: RecordingRuntime,
    instance: String,
    pid: u32,
    exit: watch::Receiver<Option<Exit>>,
}

impl FakeHandle {
    fn record(&self, call: Call) {
        self.runtime.lock().calls.push(call);
    }
}

#[async_trait]
impl Handle for FakeHandle {
    fn pid(&self) -> Option<u32> {
        Some(self.pid)
    }

    async fn wait(&mut self) -> Exit {
        // The runtime keeps every run's sender, so the channel never closes under a live handle.
        let exit = self.exit.wait_for(Option::is_some).await.ok().and_then(|exit| *exit);
        exit.unwrap_or(Exit { code: None, signal: None })
    }

    fn signal(&self, signal: Signal) -> std::io::Result<()> {
        self.record(Call::Signal { instance: self.instance.clone(), signal });
        Ok(())
    }

    /// Ends the run at once with `signal`, unless it had already exited.
    async fn stop(&mut self, signal: Signal, timeout: Duration) -> Exit {
        {
            let mut state = self.runtime.lock();
            state.calls.push(Call::Stop { instance: self.instance.clone(), signal, timeout });
            state.finish(self.pid, Exit { code: None, signal: Some(signal as i32) });
        }
        self.wait().await
    }

    fn sweep(&self) {
        self.record(Call::Sweep { instance: self.instance.clone() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    async fn within<T>(future: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(5), future).await.expect("timed out")
    }

    fn spec(instance: &str) -> SpawnSpec {
        SpawnSpec { instance: instance.into(), command: vec!["run".into()], ..Default::default() }
    }

    #[tokio::test]
    async fn records_calls_and_exits_on_demand() {
        let runtime = RecordingRuntime::default();
        let mut spawned = within(runtime.spawn(spec("a"))).await.unwrap();
        assert_eq!(spawned.handle.pid(), Some(FIRST_PID));
        spawned.handle.signal(Signal::SIGHUP).unwrap();
        spawned.handle.sweep();

        assert!(within(runtime.emit("a", Stream::Stderr, "hello")).await);
        let line = within(futures::StreamExt::next(&mut spawned.output)).await.unwrap();
        assert_eq!((line.stream, line.line.as_str()), (Stream::Stderr, "hello"));

        // A wait cancelled before the exit can be resumed.
        assert!(tokio::time::timeout(Duration::from_millis(10), spawned.handle.wait()).await.is_err());
        let exit = Exit { code: Some(3), signal: None };
        assert!(runtime.exit("a", exit));
        assert!(!runtime.exit("a", exit), "a run exits once");
        assert_eq!(within(spawned.handle.wait()).await, exit);
        assert_eq!(within(spawned.handle.wait()).await, exit);
        assert_eq!(within(futures::StreamExt::next(&mut spawned.output)).await, None, "output closes on exit");
        assert!(!within(runtime.emit("a", Stream::Stdout, "late")).await);

        assert_eq!(
            runtime.calls(),
            [
                Call::Spawn(Box::new(spec("a"))),
                Call::Signal { instance: "a".into(), signal: Signal::SIGHUP },
                Call::Sweep { instance: "a".into() },
            ]
        );
    }

    #[tokio::test]
    async fn stop_ends_the_run_with_the_signal() {
        let runtime = RecordingRuntime::default();
        let mut spawned = within(runtime.spawn(spec("a"))).await.unwrap();
        let timeout = Duration::from_secs(7);
        let exit = within(spawned.handle.stop(Signal::SIGTERM, timeout)).await;
        assert_eq!(exit, Exit { code: None, signal: Some(15) });
        let stop = Call::Stop { instance: "a".into(), signal: Signal::SIGTERM, timeout };
        assert_eq!(runtime.calls().last(), Some(&stop));
    }

    #[tokio::test]
    async fn fails_the_next_spawn_only() {
        let runtime = RecordingRuntime::default();
        runtime.fail_next_spawn("a", "boom");
        let error = within(runtime.spawn(spec("a"))).await.err().unwrap();
        assert!(matches!(error, SpawnError::Io { .. }));
        assert!(error.to_string().contains("boom"), "{error}");
        let spawned = within(runtime.spawn(spec("a"))).await.unwrap();
        assert_eq!(spawned.handle.pid(), Some(FIRST_PID), "a failed spawn takes no pid");
        assert_eq!(runtime.calls().len(), 2);
    }
}
