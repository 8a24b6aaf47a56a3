//! `pm map NAME [options] -- COMMAND [ARGS]`: define a sidecar from the command line.

use super::{connect, output};
use crate::home::Home;
use anyhow::{Context, anyhow};
use pm_protocol::duration::parse as duration;
use pm_protocol::health::HealthTable;
use pm_protocol::{Definition, Health, HttpProbe, PmApiClient, Readiness, RestartPolicy};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Name of the sidecar: [a-z0-9][a-z0-9_-]*.
    name: String,
    /// Runtime: process (default), or task (COMMAND names a task built into the daemon, e.g. echo).
    #[arg(long)]
    runtime: Option<String>,
    /// Working directory (default: the current one).
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Environment variable, repeatable.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// File of KEY=VALUE lines, repeatable.
    #[arg(long = "env-file", value_name = "FILE")]
    env_file: Vec<PathBuf>,
    /// Sidecars that must be ready first (repeatable or comma-separated).
    #[arg(short = 'd', long = "depends-on", value_delimiter = ',', value_name = "NAME")]
    depends_on: Vec<String>,
    /// Order among independent sidecars, -10000 to 10000: lower starts first and stops last
    /// (default 0).
    #[arg(long, allow_negative_numbers = true)]
    priority: Option<i32>,
    /// Restart policy: always, on-failure (default), never.
    #[arg(long)]
    restart: Option<String>,
    /// Readiness: started (default), exited, registered, log:REGEX, tcp:HOST:PORT, an http://
    /// URL or exec:COMMAND.
    #[arg(long)]
    ready: Option<String>,
    /// How long readiness may take (default 30s).
    #[arg(long, value_parser = duration)]
    ready_timeout: Option<std::time::Duration>,
    /// Signal that stops it (default SIGTERM).
    #[arg(long)]
    stop_signal: Option<String>,
    /// Wait before SIGKILL to its process group (default 10s).
    #[arg(long, value_parser = duration)]
    stop_timeout: Option<std::time::Duration>,
    /// More restarts than this within --restart-window and it is failed (default 5).
    #[arg(long)]
    max_restarts: Option<u32>,
    /// Window in which --max-restarts counts (default 60s).
    #[arg(long, value_parser = duration)]
    restart_window: Option<std::time::Duration>,
    /// First restart delay, doubled each time (default 100ms).
    #[arg(long, value_parser = duration)]
    backoff_initial: Option<std::time::Duration>,
    /// Longest restart delay (default 30s).
    #[arg(long, value_parser = duration)]
    backoff_max: Option<std::time::Duration>,
    /// A run this long resets the backoff (default 5s).
    #[arg(long, value_parser = duration)]
    min_uptime: Option<std::time::Duration>,
    /// Exit codes that count as success (default 0), comma-separated.
    #[arg(long, value_delimiter = ',')]
    success_exit_codes: Vec<i32>,
    /// Health check once ready: tcp:HOST:PORT, an http:// URL, exec:COMMAND or rpc:METHOD (the
    /// other keys of `health` are in a project file).
    #[arg(long)]
    health: Option<String>,
    /// Time between health checks (default 5s).
    #[arg(long, value_parser = duration, requires = "health")]
    health_interval: Option<std::time::Duration>,
    /// What an unhealthy instance gets: restart (default) or report.
    #[arg(long, requires = "health")]
    on_unhealthy: Option<String>,
    /// Number of instances (name-0 … name-N-1 when more than one).
    #[arg(long)]
    instances: Option<u32>,
    /// Its port, as PORT and PM_PORT (and `${PORT}` in quoted arguments): 8080, 4000-4003 (one
    /// per instance) or auto:5000-5100 (the first free one at each start).
    #[arg(long, value_parser = |s: &str| s.parse::<pm_protocol::PortSpec>())]
    port: Option<pm_protocol::PortSpec>,
    /// Restart when a file matching this glob (relative to --cwd) changes, repeatable:
    /// e.g. --watch 'src/**/*.py'.
    #[arg(long, value_name = "GLOB")]
    watch: Vec<String>,
    /// Changes to files matching this glob never restart, repeatable.
    #[arg(long, value_name = "GLOB", requires = "watch")]
    watch_ignore: Vec<String>,
    /// How long changes must pause before the restart (default 500ms).
    #[arg(long, value_parser = duration, requires = "watch")]
    watch_debounce: Option<std::time::Duration>,
    /// Instances are interchangeable.
    #[arg(long)]
    stateless: bool,
    /// Not started by `pm start` without a name, nor by a restarted daemon.
    #[arg(long)]
    no_autostart: bool,
    /// Replace an existing definition of that name.
    #[arg(long)]
    force: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let here = std::env::current_dir().context("cannot read the current directory")?;
    let (name, force, json) = (args.name.clone(), args.force, args.json);
    let def = definition(args, &here)?;
    let client = connect::daemon(&Home::from_env()).await?;
    let info = client.daemon().map(name, def, force).await?;
    if json {
        output::json(&info)?;
    } else {
        say!("defined {} ({}): {}", info.name, info.instances.join(", "), info.definition.command.join(" "));
    }
    Ok(ExitCode::SUCCESS)
}

fn definition(args: Args, here: &Path) -> anyhow::Result<Definition> {
    let mut def = Definition::new(args.command);
    if let Some(runtime) = args.runtime {
        def.runtime = serde_json::from_value(runtime.clone().into()).map_err(|_| {
            anyhow!("--runtime `{runtime}`: expected process or task (containers are defined in a project file)")
        })?;
    }
    def.cwd = Some(here.join(args.cwd.unwrap_or_default()));
    def.port = args.port;
    for pair in args.env {
        let (k, v) = pair.split_once('=').ok_or_else(|| anyhow!("--env `{pair}`: expected KEY=VALUE"))?;
        def.env.insert(k.to_string(), v.to_string());
    }
    def.env_file = args.env_file.into_iter().map(|f| here.join(f)).collect();
    def.depends_on = args.depends_on;
    if let Some(policy) = args.restart {
        def.restart = serde_json::from_value::<RestartPolicy>(policy.clone().into())
            .map_err(|_| anyhow!("--restart `{policy}`: expected always, on-failure or never"))?;
    }
    if let Some(ready) = args.ready {
        def.ready = parse_ready(&ready)?;
    }
    if let Some(health) = args.health {
        let mut table = parse_health(&health)?;
        table.interval = args.health_interval;
        if let Some(on) = args.on_unhealthy {
            table.on_unhealthy = Some(
                serde_json::from_value(on.clone().into())
                    .map_err(|_| anyhow!("--on-unhealthy `{on}`: expected restart or report"))?,
            );
        }
        def.health = Some(Health::try_from(table).map_err(|e| anyhow!("--health `{health}`: {e}"))?);
    }
    def.stop_signal = args.stop_signal.unwrap_or(def.stop_signal);
    def.instances = args.instances.unwrap_or(def.instances);
    def.priority = args.priority.unwrap_or(def.priority);
    def.max_restarts = args.max_restarts.unwrap_or(def.max_restarts);
    def.ready_timeout = args.ready_timeout.unwrap_or(def.ready_timeout);
    def.stop_timeout = args.stop_timeout.unwrap_or(def.stop_timeout);
    def.restart_window = args.restart_window.unwrap_or(def.restart_window);
    def.backoff_initial = args.backoff_initial.unwrap_or(def.backoff_initial);
    def.backoff_max = args.backoff_max.unwrap_or(def.backoff_max);
    def.min_uptime = args.min_uptime.unwrap_or(def.min_uptime);
    if !args.success_exit_codes.is_empty() {
        def.success_exit_codes = args.success_exit_codes;
    }
    def.watch = args.watch;
    def.watch_ignore = args.watch_ignore;
    def.watch_debounce = args.watch_debounce.unwrap_or(def.watch_debounce);
    def.stateless = args.stateless;
    def.autostart = !args.no_autostart;
    Ok(def)
}

/// `started`, `exited`, `registered`, `log:REGEX`, `tcp:HOST:PORT`, `http://…`, `exec:COMMAND`.
fn parse_ready(text: &str) -> anyhow::Result<Readiness> {
    let expected = "expected started, exited, registered, log:REGEX, tcp:HOST:PORT, an http:// URL or exec:COMMAND";
    match text.split_once(':') {
        _ if text == "started" => Ok(Readiness::Started),
        _ if text == "exited" => Ok(Readiness::Exited),
        _ if text == "registered" => Ok(Readiness::Registered),
        Some(("log", re)) => Ok(Readiness::Log(re.to_string())),
        Some(("tcp", addr)) => Ok(Readiness::Tcp(addr.to_string())),
        Some(("http", _)) => {
            HttpProbe::new(text.to_string(), None, None).map_err(|e| anyhow!("--ready `{text}`: {e}"))?;
            Ok(Readiness::Http(text.to_string()))
        }
        Some(("exec", command)) => Ok(Readiness::Exec(words(command).map_err(|e| anyhow!("--ready `{text}`: {e}"))?)),
        _ => Err(anyhow!("--ready `{text}`: {expected}")),
    }
}

/// `tcp:HOST:PORT`, `http://…`, `exec:COMMAND`, `rpc:METHOD`.
fn parse_health(text: &str) -> anyhow::Result<HealthTable> {
    let mut table = HealthTable::default();
    match text.split_once(':') {
        Some(("tcp", addr)) => table.tcp = Some(addr.to_string()),
        Some(("http", _)) => table.http = Some(text.to_string()),
        Some(("exec", command)) => table.exec = Some(words(command).map_err(|e| anyhow!("--health `{text}`: {e}"))?),
        Some(("rpc", method)) => table.rpc = Some(method.to_string()),
        _ => {
            return Err(anyhow!(
                "--health `{text}`: expected tcp:HOST:PORT, an http:// URL, exec:COMMAND or rpc:METHOD"
            ));
        }
    }
    Ok(table)
}

/// A command line split like a shell would.
fn words(line: &str) -> Result<Vec<String>, String> {
    match shell_words::split(line) {
        Ok(words) if !words.is_empty() => Ok(words),
        Ok(_) => Err("the command is empty".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_spellings() {
        assert_eq!(parse_ready("log:listening on \\d+").unwrap(), Readiness::Log("listening on \\d+".into()));
        assert_eq!(parse_ready("tcp:127.0.0.1:80").unwrap(), Readiness::Tcp("127.0.0.1:80".into()));
        assert_eq!(parse_ready("exited").unwrap(), Readiness::Exited);
        assert_eq!(parse_ready("http://127.0.0.1:8/h").unwrap(), Readiness::Http("http://127.0.0.1:8/h".into()));
        assert_eq!(parse_ready("exec:pg_isready -q").unwrap(), Readiness::Exec(vec!["pg_isready".into(), "-q".into()]));
        assert!(parse_ready("http:x").unwrap_err().to_string().contains("not a plain http:// URL"));
        assert!(parse_ready("https://x/").unwrap_err().to_string().contains("an http:// URL"));
        assert!(parse_ready("exec:").unwrap_err().to_string().contains("the command is empty"));
        assert!(parse_ready("udp:x").unwrap_err().to_string().contains("expected started"));
    }

    #[test]
    fn health_spellings() {
        assert_eq!(parse_health("rpc:health").unwrap().rpc.as_deref(), Some("health"));
        assert_eq!(parse_health("http://a:1/").unwrap().http.as_deref(), Some("http://a:1/"));
        assert!(parse_health("ping:x").unwrap_err().to_string().contains("expected tcp:HOST:PORT"));
    }
}
