//! Runtimes: how a sidecar is spawned, watched, signalled and stopped.
//!
//! The supervisor only sees the [`Runtime`] and [`Handle`] traits, so native processes (and, later,
//! in-process tasks and containers) obey one set of restart, readiness, log and stop rules.
//! [`fake::RecordingRuntime`] records what the supervisor asked for, for unit tests of its logic.

pub mod docker;
pub mod fake;
pub mod process;
mod signal;
pub mod task;

pub use signal::{parse_signal, signal_name};

use async_trait::async_trait;
use nix::sys::signal::Signal;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

/// What to run, fully resolved by the daemon (env files merged, paths absolute).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpawnSpec {
    /// Which runtime it is for (a runtime refuses specs of another kind).
    pub runtime: pm_protocol::RuntimeKind,
    /// The container, for the docker runtime.
    pub docker: Option<pm_protocol::DockerSpec>,
    /// The instance name, for messages.
    pub instance: String,
    /// argv; `command[0]` is looked up in PATH when it has no slash.
    pub command: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// Added to (and overriding) the daemon's own environment.
    pub env: Vec<(String, String)>,
}

/// Which output a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of output, without its line terminator; invalid UTF-8 is replaced, over-long lines are
/// split, and a final line without a newline is still delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputLine {
    pub stream: Stream,
    pub line: String,
    /// When the line was read.
    pub at: SystemTime,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The exit code, when it exited on its own.
    pub code: Option<i32>,
    /// The signal number, when a signal ended it.
    pub signal: Option<i32>,
}

/// A run's output, line by line, in order per stream. The sender side never drops a line: it
/// waits when the consumer is behind. It ends once every writer of the outputs has gone.
pub type Output = Pin<Box<dyn futures::Stream<Item = OutputLine> + Send>>;

/// Lines buffered between a run's writers and the consumer before the writers wait.
pub const OUTPUT_CAPACITY: usize = 1024;

/// A channel's receiving end as an [`Output`].
pub fn output_of(mut rx: mpsc::Receiver<OutputLine>) -> Output {
    Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// A running sidecar, as returned by [`Runtime::spawn`].
pub struct Spawned {
    pub handle: Box<dyn Handle>,
    pub output: Output,
}

/// Starts sidecars.
#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    async fn spawn(&self, spec: SpawnSpec) -> Result<Spawned, SpawnError>;

    /// For a spawn that failed because the runtime's engine did not answer: resolves once it
    /// answers again, when a new try can succeed. `None` (the default) when waiting would not
    /// help.
    fn when_available(&self, _error: &SpawnError) -> Option<futures::future::BoxFuture<'static, ()>> {
        None
    }
}

/// One running sidecar.
#[async_trait]
pub trait Handle: Send {
    /// The OS process id, where there is one.
    fn pid(&self) -> Option<u32>;

    /// The process's start time (field 22 of `/proc/PID/stat`), read at spawn: with the pid, what
    /// tells it from a later process that reuses the pid.
    fn start_time(&self) -> Option<u64> {
        None
    }

    /// Waits for the run to end. Cancel-safe: may be used in `select!` and called again.
    async fn wait(&mut self) -> Exit;

    /// Sends `signal` to the whole run (the process group for native processes).
    fn signal(&self, signal: Signal) -> std::io::Result<()>;

    /// Stops the run: `signal`, then after `timeout` SIGKILL to everything it started, then waits.
    /// Whatever it left behind (grandchildren in its group) is killed too, so nothing is orphaned.
    async fn stop(&mut self, signal: Signal, timeout: Duration) -> Exit;

    /// Kills anything of the run that outlived its main process (after a crash, before a restart).
    fn sweep(&self);

    /// How the run's processes are held, for `pm status --json`: `cgroup` or `marker` for native
    /// processes, `task` in process, `container` for containers.
    fn containment(&self) -> Option<&'static str> {
        None
    }

    /// Why the last [`stop`](Handle::stop) could not be confirmed (a container engine that did
    /// not answer in time), if it could not.
    fn stop_error(&self) -> Option<String> {
        None
    }

    /// Where the whole run's CPU and memory use can be read, each time someone asks
    /// (`pm status`); `None` (the default) where there is no figure (in-process tasks).
    fn usage(&self) -> Option<UsageSource> {
        None
    }

    /// Runs commands inside the run (a container), for exec probes; `None` (the default): they
    /// run on the host.
    fn exec_in(&self) -> Option<ExecIn> {
        None
    }
}

/// Runs a command inside a run and gives its exit code and the end of its output, or why it
/// could not run. Cloned into probes that outlive no run: they end with it.
pub type ExecIn = std::sync::Arc<
    dyn Fn(Vec<String>) -> futures::future::BoxFuture<'static, Result<(i64, String), String>> + Send + Sync,
>;

/// What a run uses: the CPU time all its processes have had so far, and their memory now.
/// Either is `None` where the run's runtime could not tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Cumulative, since the run started.
    pub cpu: Option<Duration>,
    pub memory_bytes: Option<u64>,
}

/// Where a run's [`Usage`] is read. Independent of the handle, and cheap to clone.
#[derive(Debug, Clone)]
pub enum UsageSource {
    /// Native processes, read from `/proc` by [`process::sample`]: blocking, so off the async
    /// workers.
    Processes(process::Members),
    /// A container, asked of its engine by [`docker::ContainerStats::sample`].
    Container(docker::ContainerStats),
}

/// Why a spawn failed; the message names the instance and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("{instance}: command is empty")]
    EmptyCommand { instance: String },
    #[error("{instance}: executable `{program}` not found{hint}")]
    NotFound { instance: String, program: String, hint: String },
    #[error("{instance}: `{program}` is not executable (permission denied)")]
    PermissionDenied { instance: String, program: String },
    #[error("{instance}: working directory `{}` does not exist", cwd.display())]
    NoCwd { instance: String, cwd: PathBuf },
    #[error("{instance}: no task named `{task}` in this daemon (its tasks: {known})")]
    UnknownTask { instance: String, task: String, known: String },
    #[error("{instance}: the {runtime} runtime is not available: {why}")]
    Unavailable { instance: String, runtime: String, why: String },
    #[error("{instance}: cannot start `{program}`: {source}")]
    Io { instance: String, program: String, source: std::io::Error },
}
