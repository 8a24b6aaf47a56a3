//! What the daemon reports: instance states and statuses, definitions, log lines and events.

use crate::{Definition, RuntimeKind};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The life cycle of an instance (DESIGN §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Not running, and not asked to.
    Stopped,
    /// Asked to start; waiting for its dependencies to be ready.
    Waiting,
    /// Spawned; its readiness condition is not met yet.
    Starting,
    /// Running and ready, or running a one-shot that is not ready until it exits.
    Running,
    /// Ready: dependents may start.
    Ready,
    /// Running, but its health check failed `failure_threshold` times in a row (the reason says
    /// how): not ready, so dependents wait; restarted unless `on_unhealthy = "report"`.
    Unhealthy,
    /// Being stopped.
    Stopping,
    /// Exited; waiting out the restart delay.
    Backoff,
    /// Gave up: the reason says why.
    Failed,
    /// A one-shot that finished as expected.
    Exited,
}

impl State {
    /// Whether a process is (or may be) alive in this state.
    pub fn is_active(self) -> bool {
        matches!(self, State::Starting | State::Running | State::Ready | State::Unhealthy | State::Stopping)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = serde_json::to_value(self).ok();
        f.write_str(text.as_ref().and_then(|v| v.as_str()).unwrap_or("?"))
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ExitInfo {
    /// Exit code, when it exited on its own.
    pub code: Option<i32>,
    /// Signal name (`SIGKILL`), when a signal ended it.
    pub signal: Option<String>,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

impl std::fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.code, &self.signal) {
            (_, Some(sig)) => write!(f, "signal {sig}"),
            (Some(code), None) => write!(f, "code {code}"),
            (None, None) => f.write_str("unknown"),
        }
    }
}

/// What an instance's health check last found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HealthInfo {
    /// `unknown` until the first verdict, then `healthy` or `unhealthy`.
    pub status: HealthStatus,
    /// Failed checks in a row.
    pub failures: u32,
    /// Why the last failed check failed, and when (milliseconds since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_at_ms: Option<u64>,
}

/// A health check's verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    #[default]
    Unknown,
    Healthy,
    Unhealthy,
}

impl std::fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HealthStatus::Unknown => "unknown",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        })
    }
}

/// One instance as `pm status` shows it. Field names are stable for `--json` users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InstanceStatus {
    pub name: String,
    pub definition: String,
    pub runtime: RuntimeKind,
    pub state: State,
    pub pid: Option<u32>,
    /// Its port (`PORT`): one given by the definition even while stopped, an `auto:` one while
    /// it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Start of the current run, in milliseconds since the Unix epoch.
    pub started_at_ms: Option<u64>,
    /// Length of the current run so far.
    pub uptime_ms: Option<u64>,
    /// Restarts since the instance was last started by hand.
    pub restarts: u32,
    pub last_exit: Option<ExitInfo>,
    /// Ready, or a one-shot that exited as expected: what dependents wait for.
    pub ready: bool,
    /// Why it is in this state (failed, waiting, backoff), in words.
    pub reason: Option<String>,
    pub autostart: bool,
    /// How its processes are held once it has run: `cgroup` (its own cgroup v2), `marker` (process
    /// group, plus a `PM_RUN_ID` marker that finds what left it), `task` (in the daemon), or
    /// `container`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containment: Option<String>,
    /// Its health check's findings, when it has one and has run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthInfo>,
    /// CPU use of the whole run (every process of it, or its container), in percent of one
    /// core: since the last `pm.status` that measured it at least a second earlier, or since the
    /// run started. Only while it runs, and not for in-process tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    /// Memory of the whole run now, in bytes: the sum of its processes' resident memory, or
    /// the container's usage as `docker stats` counts it. Only while it runs, and not for
    /// in-process tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
}

/// A definition and its instances, as `pm ls` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DefinitionInfo {
    pub name: String,
    pub definition: Definition,
    pub instances: Vec<String>,
    /// Where it came from: a file's path, `npm:NAME@VERSION`, `link:PATH`; none for `pm map`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The daemon itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DaemonInfo {
    pub version: String,
    pub pid: u32,
    pub home: PathBuf,
    pub started_at_ms: u64,
    /// Where the daemon listens (`unix:///…/pm.sock`, `tcp://…`, …).
    pub endpoints: Vec<String>,
    /// What its user should know, said by the CLI: the state was restored from its backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

/// How to reach a sidecar, as `pm connect` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectInfo {
    pub name: String,
    /// Call `<name>.<method>` on any of these: the daemon routes it.
    pub via_daemon: Vec<String>,
    pub instances: Vec<InstanceEndpoint>,
}

/// One instance's mesh presence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InstanceEndpoint {
    pub instance: String,
    pub state: State,
    /// Whether it called `pm.register` (it is commandable).
    pub registered: bool,
    pub methods: Vec<String>,
    /// Where it serves direct calls, if it said.
    pub direct: Option<String>,
    /// Its port (`PORT`), when its definition has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// Which output a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Out,
    Err,
}

impl LogStream {
    /// The suffix of its file: `logs/<instance>.out.log`.
    pub fn file_suffix(self) -> &'static str {
        match self {
            LogStream::Out => "out",
            LogStream::Err => "err",
        }
    }
}

/// One line of a sidecar's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LogLine {
    pub instance: String,
    pub stream: LogStream,
    /// RFC 3339 timestamp with milliseconds, as written in the log file.
    pub at: String,
    pub line: String,
}

/// Consecutive lines of one stream of one instance, in its log file's own format: each line is
/// `<RFC 3339 timestamp with milliseconds> <text>\n`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LogRun {
    pub instance: String,
    pub stream: LogStream,
    pub text: String,
}

impl LogRun {
    /// Each line as `(timestamp, text)`; a line without a space has an empty timestamp.
    pub fn lines(&self) -> impl Iterator<Item = (&str, &str)> {
        self.text.split_terminator('\n').map(|raw| raw.split_once(' ').unwrap_or(("", raw)))
    }
}

/// Which lines `pm.logs` gives, of history and live lines alike.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogFilter {
    /// The instances these names stand for, merged in time order, instead of `name`'s (an
    /// empty list: every instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
    /// Only lines from then on: a duration before now (`10m`, `1h30m`) or an RFC 3339 time
    /// (`2026-11-25T10:00:00Z`). With it, `lines` counts from then on (and `0` means no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Only lines matching this regular expression (Rust `regex` syntax, linear time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grep: Option<String>,
}

/// An item of the `pm.logs` subscription; the stream always ends with `End`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogEvent {
    /// One line (the default).
    Line(LogLine),
    /// Many lines, in time order, when the subscription asked for `chunks`: each run's lines
    /// follow the previous run's.
    Lines(Vec<LogRun>),
    /// This follower fell behind and this many live lines were skipped (they are in the files).
    Skipped(u64),
    /// The stream is over (history sent without follow, instance deleted, daemon stopping).
    End(String),
}

/// An item of the `pm.events` subscription; the stream always ends with `End`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventItem {
    Change(Event),
    /// This follower fell behind and missed this many changes (`pm status` has the present).
    Skipped(u64),
    /// The stream is over (the daemon is stopping).
    End(String),
}

/// A state change of an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    pub instance: String,
    pub state: State,
    pub reason: Option<String>,
    pub at_ms: u64,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The answer to `pm.auth`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "identity", rename_all = "lowercase")]
pub enum AuthInfo {
    /// The daemon's owner: every method.
    Owner,
    /// A supervised sidecar, which may register.
    Sidecar { name: String },
}

/// The answer to `pm.register`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RegisterInfo {
    /// The instance that registered.
    pub name: String,
    /// `reverse` (calls come over this connection) or `direct` (to the endpoint).
    pub mode: String,
}
