//! What to run: a sidecar definition, exactly as written in a `[sidecars.<name>]` table of a
//! project file and as carried by `pm.map` / `pm.apply`.

use crate::health::Health;
use crate::hooks::Hooks;
use crate::notify::Notify;
use crate::port::PortSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// A sidecar definition. Every field but `command` (or `docker.image`) has a default, so a
/// minimal table is `[sidecars.web]` + `command = ["python3", "-m", "http.server"]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// Which runtime runs it.
    #[serde(default)]
    pub runtime: RuntimeKind,
    /// The program and its arguments (argv); a string is split like a shell would. For a task,
    /// the task's name and arguments; for a container, optional (the image's default command).
    #[serde(default, deserialize_with = "command::deserialize", skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "command::Schema")]
    pub command: Vec<String>,
    /// The container, for `runtime = "docker"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerSpec>,
    /// Working directory; relative paths are resolved against the project file's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// Environment variables added to the daemon's environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Files of `KEY=value` lines loaded before `env` (which wins).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_file: Vec<PathBuf>,
    /// Definitions that must be ready before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Orders independent sidecars: lower starts first and stops last; a dependency still starts
    /// before its dependents whatever their priorities. From -10000 to 10000.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(range(min = -10_000, max = 10_000))]
    pub priority: i32,
    /// Started by `pm start` without a name, and again when the daemon restarts.
    #[serde(default = "yes")]
    pub autostart: bool,
    /// Number of instances: 1 gives an instance of the definition's name, N gives `name-0 … name-(N-1)`;
    /// at most [`MAX_INSTANCES`].
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 10_000))]
    pub instances: u32,
    /// The port it listens on, exported as `PORT` and `PM_PORT` and usable as `${PORT}` in the
    /// command, env, readiness, health check and hooks: `8080`, `"4000-4003"` (one per instance,
    /// in order) or `"auto:5000-5100"` (the first free port at each start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::port::Schema>")]
    pub port: Option<PortSpec>,
    /// Groups it belongs to: `pm start @web`, `pm stop @web`, `pm restart @web`, `pm status @web`
    /// act on every definition of group `web`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Instances are interchangeable (calls may be balanced across them).
    #[serde(default)]
    pub stateless: bool,
    /// Sidecar methods its token may call besides those of its dependencies: globs over
    /// `<sidecar>.<method>`, e.g. `["db.*", "cache.get"]`, or `["*"]` for all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<String>,
    /// Daemon methods its token may call besides `auth`, `register`, `ping` and its own `logs`
    /// and `events`, by name without `pm.`: e.g. `["status", "start", "stop"]`, or `["*"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pm: Vec<String>,
    /// When to restart after an exit.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// First delay before a restart; doubles on each consecutive restart.
    #[serde(default = "defaults::backoff_initial", with = "crate::duration")]
    #[schemars(with = "String")]
    pub backoff_initial: Duration,
    /// Upper bound of the restart delay.
    #[serde(default = "defaults::backoff_max", with = "crate::duration")]
    #[schemars(with = "String")]
    pub backoff_max: Duration,
    /// More restarts than this within `restart_window` and the instance is `failed`.
    #[serde(default = "defaults::max_restarts")]
    pub max_restarts: u32,
    /// The sliding window in which `max_restarts` counts.
    #[serde(default = "defaults::restart_window", with = "crate::duration")]
    #[schemars(with = "String")]
    pub restart_window: Duration,
    /// A run that lasted this long resets the backoff.
    #[serde(default = "defaults::min_uptime", with = "crate::duration")]
    #[schemars(with = "String")]
    pub min_uptime: Duration,
    /// Exit codes that count as success (for `on-failure` and the `exited` readiness).
    #[serde(default = "defaults::success_exit_codes")]
    pub success_exit_codes: Vec<i32>,
    /// Signal sent to the process group to stop it (`SIGTERM`, `SIGINT`, `SIGQUIT`, `SIGHUP`, …).
    #[serde(default = "defaults::stop_signal")]
    pub stop_signal: String,
    /// How long to wait after `stop_signal` before SIGKILL goes to the whole process group.
    #[serde(default = "defaults::stop_timeout", with = "crate::duration")]
    #[schemars(with = "String")]
    pub stop_timeout: Duration,
    /// When the instance counts as ready (dependents wait for it).
    #[serde(default)]
    pub ready: Readiness,
    /// How long readiness may take before the start fails.
    #[serde(default = "defaults::ready_timeout", with = "crate::duration")]
    #[schemars(with = "String")]
    pub ready_timeout: Duration,
    /// A check run every `interval` once the instance is ready, e.g.
    /// `{ http = "http://127.0.0.1:8080/healthz", interval = "5s" }`: past `failure_threshold`
    /// failures in a row it is `unhealthy`, and restarted unless `on_unhealthy = "report"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// Commands run around each run: `pre_start`, `post_start`, `pre_stop`, `post_stop`.
    #[serde(default, skip_serializing_if = "Hooks::is_empty")]
    pub hooks: Hooks,
    /// The most memory an instance's processes (or container) may use together, e.g. `"512M"`:
    /// checked every second, and past it the run is stopped and restarted through the restart
    /// policy (PM2's `max_memory_restart`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::size")]
    #[schemars(with = "Option<String>")]
    pub max_memory: Option<u64>,
    /// Who is told when an instance fails, turns unhealthy or gives up restarting:
    /// `{ webhook = "http://…", exec = "…", on = ["failed", "unhealthy", "gave_up"] }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
    /// Restarts the running instances when a file matching one of these globs (relative to
    /// `cwd`, e.g. `["src/**/*.py", "config.toml"]`) is created, written, touched, renamed or
    /// removed. Empty: no watching.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<String>,
    /// Globs (relative to `cwd`) whose changes never restart, besides those always ignored:
    /// `**/.git/**`, `**/node_modules/**`, `**/__pycache__/**` and editors' swap and backup files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch_ignore: Vec<String>,
    /// How long changes must pause before the restart (a burst of writes restarts once); a
    /// steady stream of changes still restarts after ten times this. From 10ms to 1h.
    #[serde(default = "defaults::watch_debounce", with = "crate::duration")]
    #[schemars(with = "String")]
    pub watch_debounce: Duration,
}

impl Definition {
    /// A definition with every default, running `command`.
    pub fn new(command: Vec<String>) -> Self {
        Definition {
            runtime: RuntimeKind::default(),
            command,
            docker: None,
            cwd: None,
            env: BTreeMap::new(),
            env_file: Vec::new(),
            depends_on: Vec::new(),
            priority: 0,
            autostart: true,
            instances: 1,
            port: None,
            groups: Vec::new(),
            stateless: false,
            calls: Vec::new(),
            pm: Vec::new(),
            restart: RestartPolicy::default(),
            backoff_initial: defaults::backoff_initial(),
            backoff_max: defaults::backoff_max(),
            max_restarts: defaults::max_restarts(),
            restart_window: defaults::restart_window(),
            min_uptime: defaults::min_uptime(),
            success_exit_codes: defaults::success_exit_codes(),
            stop_signal: defaults::stop_signal(),
            stop_timeout: defaults::stop_timeout(),
            ready: Readiness::default(),
            ready_timeout: defaults::ready_timeout(),
            health: None,
            hooks: Hooks::default(),
            notify: None,
            max_memory: None,
            watch: Vec::new(),
            watch_ignore: Vec::new(),
            watch_debounce: defaults::watch_debounce(),
        }
    }

    /// Whether `code` is a successful exit for this definition.
    pub fn is_success(&self, code: Option<i32>) -> bool {
        code.is_some_and(|c| self.success_exit_codes.contains(&c))
    }
}

/// The most instances one definition may ask for (the supervisor checks it): every instance is an
/// actor, a status row and two log files.
pub const MAX_INSTANCES: u32 = 10_000;

/// The bound of `priority`, either way (the supervisor and the project loader check it).
pub const MAX_PRIORITY: i32 = 10_000;

/// Checks that a `priority` is within ±[`MAX_PRIORITY`].
pub fn check_priority(priority: i32) -> Result<(), String> {
    match (-MAX_PRIORITY..=MAX_PRIORITY).contains(&priority) {
        true => Ok(()),
        false => Err(format!("must be from -{MAX_PRIORITY} to {MAX_PRIORITY} (got {priority})")),
    }
}

fn yes() -> bool {
    true
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

fn one() -> u32 {
    1
}

/// The defaults, in one place so docs, schema and code agree.
pub mod defaults {
    use std::time::Duration;

    pub fn backoff_initial() -> Duration {
        Duration::from_millis(100)
    }
    pub fn backoff_max() -> Duration {
        Duration::from_secs(30)
    }
    pub fn max_restarts() -> u32 {
        5
    }
    pub fn restart_window() -> Duration {
        Duration::from_secs(60)
    }
    pub fn min_uptime() -> Duration {
        Duration::from_secs(5)
    }
    pub fn success_exit_codes() -> Vec<i32> {
        vec![0]
    }
    pub fn stop_signal() -> String {
        "SIGTERM".into()
    }
    pub fn stop_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub fn ready_timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub fn watch_debounce() -> Duration {
        Duration::from_millis(500)
    }
}

/// Which runtime runs a definition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// A native executable in its own process group.
    #[default]
    Process,
    /// An async Rust task inside the daemon (`command` names it).
    Task,
    /// A container driven through the Docker Engine API (see `docker`).
    Docker,
}

impl std::fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RuntimeKind::Process => "process",
            RuntimeKind::Task => "task",
            RuntimeKind::Docker => "docker",
        })
    }
}

/// A container: `[sidecars.web.docker]` with `image = "…"` and the rest optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerSpec {
    /// Image to run, e.g. `busybox:latest`.
    pub image: String,
    /// Overrides the image's entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Working directory inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// Bind mounts, `host:container[:ro]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// Published ports, `[host_ip:]host_port:container_port[/tcp|udp]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    /// Network mode: `none`, `host`, `bridge` or a network's name (default: the engine's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Labels added to the container (pm adds its own `pm.instance` and `pm.daemon`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// User to run as, `uid[:gid]` or a name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// When to pull the image.
    #[serde(default)]
    pub pull: PullPolicy,
    /// Runs an init as the container's pid 1 (the engine's `--init`), which forwards signals and
    /// reaps zombies: a main process that ignores SIGTERM as pid 1 (such as `sleep`) still stops
    /// at once. `false` runs the command itself as pid 1.
    #[serde(default = "yes")]
    pub init: bool,
}

impl Default for DockerSpec {
    fn default() -> Self {
        DockerSpec {
            image: String::new(),
            entrypoint: None,
            workdir: None,
            volumes: Vec::new(),
            ports: Vec::new(),
            network: None,
            labels: BTreeMap::new(),
            user: None,
            pull: PullPolicy::default(),
            init: true,
        }
    }
}

/// When to pull a container's image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PullPolicy {
    /// Only when the engine does not have it.
    #[default]
    Missing,
    /// Before every start.
    Always,
    /// Never: a missing image is an error.
    Never,
}

/// When to restart an instance after it exits on its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// After every exit.
    Always,
    /// After an exit whose code is not in `success_exit_codes`, or a signal.
    #[default]
    OnFailure,
    /// Never.
    Never,
}

/// When an instance counts as ready.
///
/// In a project file: `ready = "started"`, `ready = "exited"`, `ready = { log = "listening on" }`,
/// `ready = { tcp = "127.0.0.1:8080" }`, `ready = { http = "http://127.0.0.1:8080/healthz" }`,
/// `ready = { exec = "pg_isready -q" }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Readiness {
    /// As soon as it is spawned.
    #[default]
    Started,
    /// When a line of its stdout or stderr matches this regular expression.
    Log(String),
    /// When a TCP connection to this `host:port` succeeds.
    Tcp(String),
    /// When a GET of this plain `http://` URL answers with a 2xx or 3xx status.
    Http(String),
    /// When this command (argv or a string split like a shell) exits 0; for a container, run
    /// inside it.
    Exec(
        #[serde(deserialize_with = "command::deserialize")]
        #[schemars(with = "command::Schema")]
        Vec<String>,
    ),
    /// When it has called `pm.register` (it is commandable).
    Registered,
    /// When it exits with a success code (a one-shot).
    Exited,
}

impl std::fmt::Display for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Readiness::Started => f.write_str("started"),
            Readiness::Log(re) => write!(f, "log /{re}/"),
            Readiness::Tcp(addr) => write!(f, "tcp {addr}"),
            Readiness::Http(url) => write!(f, "http {url}"),
            Readiness::Exec(argv) => write!(f, "exec `{}`", shell_words::join(argv)),
            Readiness::Registered => f.write_str("registered"),
            Readiness::Exited => f.write_str("exited successfully"),
        }
    }
}

/// `command` accepts an argv array or a string split like a POSIX shell would.
pub(crate) mod command {
    use schemars::JsonSchema;
    use serde::de::{self, Deserializer, SeqAccess, Visitor};

    /// A command: one string split like a shell would, or an argv array.
    #[derive(JsonSchema)]
    #[serde(untagged)]
    #[schemars(rename = "Command")]
    #[allow(dead_code)] // only its shape matters
    pub enum Schema {
        Line(String),
        Argv(Vec<String>),
    }

    struct Command;

    impl<'de> Visitor<'de> for Command {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a command line (a string) or an argv array of strings")
        }

        fn visit_str<E: de::Error>(self, line: &str) -> Result<Vec<String>, E> {
            shell_words::split(line).map_err(|e| E::custom(format!("command `{line}`: {e}")))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut argv = Vec::new();
            while let Some(word) = seq.next_element::<String>()? {
                argv.push(word);
            }
            Ok(argv)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        let argv = d.deserialize_any(Command)?;
        if argv.first().is_none_or(|p| p.is_empty()) {
            return Err(de::Error::custom("command is empty"));
        }
        Ok(argv)
    }

    /// The same, for an optional key.
    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_definition_gets_defaults_and_rejects_unknown_keys() {
        let d: Definition = serde_json::from_str(r#"{"command": "sleep 10"}"#).unwrap();
        assert_eq!(d, Definition::new(vec!["sleep".into(), "10".into()]));
        let err =
            serde_json::from_str::<Definition>(r#"{"command": "x", "restrat": "always"}"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `restrat`"), "{err}");
    }

    #[test]
    fn durations_are_bounded() {
        let err = serde_json::from_str::<Definition>(r#"{"command": "x", "stop_timeout": "500000000000y"}"#);
        assert!(err.unwrap_err().to_string().contains("too long: at most 100years"));
    }

    #[test]
    fn command_strings_split_like_a_shell() {
        let d: Definition = serde_json::from_str(r#"{"command": "sh -c 'echo \"hi there\"'"}"#).unwrap();
        assert_eq!(d.command, vec!["sh", "-c", "echo \"hi there\""]);
        let err = serde_json::from_str::<Definition>(r#"{"command": "echo 'oops"}"#).unwrap_err();
        assert!(err.to_string().contains("command `echo 'oops`"), "{err}");
        assert!(serde_json::from_str::<Definition>(r#"{"command": []}"#).is_err());
        let err = serde_json::from_str::<Definition>(r#"{"command": 5}"#).unwrap_err().to_string();
        assert!(err.contains("expected a command line (a string) or an argv array of strings"), "{err}");
    }

    #[test]
    fn readiness_spellings_round_trip() {
        for (json, want) in [
            (r#""started""#, Readiness::Started),
            (r#""exited""#, Readiness::Exited),
            (r#"{"log":"ready"}"#, Readiness::Log("ready".into())),
            (r#"{"tcp":"127.0.0.1:80"}"#, Readiness::Tcp("127.0.0.1:80".into())),
            (r#"{"http":"http://a/b"}"#, Readiness::Http("http://a/b".into())),
            (r#"{"exec":["true"]}"#, Readiness::Exec(vec!["true".into()])),
        ] {
            let r: Readiness = serde_json::from_str(json).unwrap();
            assert_eq!(r, want);
            assert_eq!(serde_json::to_string(&r).unwrap(), json);
        }
    }
}
