//! `pm info NAME [--json]`: everything about an instance. A definition (or `@group`) with
//! several instances shows each of them in turn, up to the daemon's bound.

use super::{Target, connect, output};
use crate::home::Home;
use humantime::format_duration;
use pm_protocol::info::InstanceInfo;
use pm_protocol::{Definition, HealthStatus, InstanceStatus, PmApiClient};
use std::process::ExitCode;

/// Width of the labels of a section's lines.
const LABEL: usize = 12;

pub async fn run(args: Target) -> anyhow::Result<ExitCode> {
    let (client, info) = connect::running(&Home::from_env()).await?;
    output::notice(&info);
    let infos = client.daemon().info(args.name).await?;
    if args.json {
        output::json(&infos)?;
        return Ok(ExitCode::SUCCESS);
    }
    for (i, info) in infos.iter().enumerate() {
        if i > 0 {
            say!("");
        }
        show(info);
    }
    Ok(ExitCode::SUCCESS)
}

fn show(info: &InstanceInfo) {
    let s = &info.status;
    say!("{} (definition {})", s.name, s.definition);
    state(s);
    process(s);
    health(s);
    section("Ports");
    field("port", s.port.map_or_else(|| "-".to_string(), |p| p.to_string()));
    definition(&info.spec, &info.args);
    section("Recent states");
    if info.history.is_empty() {
        say!("  none since the daemon started");
    }
    for e in &info.history {
        match &e.reason {
            Some(reason) => say!("  {}  {:<9}  {reason}", when(e.at_ms), e.state.to_string()),
            None => say!("  {}  {}", when(e.at_ms), e.state),
        }
    }
    section("Last exits");
    if info.exits.is_empty() {
        say!("  none since the daemon started");
    }
    for exit in &info.exits {
        say!("  {}  {exit}", when(exit.at_ms));
    }
    section("Logs");
    // A log file is made by its first line.
    for (name, path) in [("stdout", &info.logs.stdout), ("stderr", &info.logs.stderr)] {
        let written = if path.exists() { "" } else { " (nothing written yet)" };
        field(name, format!("{}{written}", path.display()));
    }
    section("Endpoints");
    field("via daemon", info.endpoints.via_daemon.join(", "));
    for e in &info.endpoints.instances {
        field("registered", if e.registered { "yes" } else { "no" });
        if !e.methods.is_empty() {
            field("methods", e.methods.join(", "));
        }
        if let Some(direct) = &e.direct {
            field("direct", direct);
        }
    }
}

fn state(s: &InstanceStatus) {
    section("State");
    field("state", s.state);
    if let Some(reason) = &s.reason {
        field("reason", reason);
    }
    field("ready", if s.ready { "yes" } else { "no" });
    field("autostart", if s.autostart { "yes" } else { "no" });
}

fn process(s: &InstanceStatus) {
    let dash = || "-".to_string();
    section("Process");
    field("pid", s.pid.map_or_else(dash, |p| p.to_string()));
    let uptime = s.uptime_ms.map(output::short_duration);
    let since = s.started_at_ms.map(when);
    field("uptime", uptime.zip(since).map_or_else(dash, |(up, since)| format!("{up} (since {since})")));
    field("restarts", s.restarts);
    field("containment", s.containment.clone().unwrap_or_else(dash));
    field("cpu", s.cpu_percent.map_or_else(dash, |p| format!("{p:.1}%")));
    field("memory", s.memory_bytes.map_or_else(dash, output::short_bytes));
}

fn health(s: &InstanceStatus) {
    section("Health");
    let Some(h) = &s.health else {
        say!("  no check, or none has run yet");
        return;
    };
    let status = match h.status {
        HealthStatus::Unknown => "unknown (no verdict yet)",
        HealthStatus::Healthy => "healthy",
        HealthStatus::Unhealthy => "unhealthy",
    };
    field("status", status);
    field("failures", format!("{} in a row", h.failures));
    if let Some(failure) = &h.last_failure {
        let at = h.last_failure_at_ms.map(|ms| format!(" (at {})", when(ms))).unwrap_or_default();
        field("last failure", format!("{failure}{at}"));
    }
}

fn definition(def: &Definition, args: &[String]) {
    section("Definition");
    field("runtime", def.runtime);
    let argv: Vec<&String> = def.command.iter().chain(args).collect();
    if !argv.is_empty() {
        field("command", shell_words::join(argv));
    }
    if let Some(docker) = &def.docker {
        field("image", &docker.image);
    }
    if let Some(cwd) = &def.cwd {
        field("cwd", cwd.display());
    }
    if let Some(port) = &def.port {
        field("port", port);
    }
    let list = |items: &[String]| if items.is_empty() { "-".to_string() } else { items.join(", ") };
    field("depends on", list(&def.depends_on));
    if !def.groups.is_empty() {
        field("groups", list(&def.groups));
    }
    if !def.env.is_empty() {
        // Values may be secrets: `--json` has them.
        field("env", def.env.keys().cloned().collect::<Vec<_>>().join(", "));
    }
    field(
        "restart",
        format!(
            "{} (backoff {} to {}, at most {} in {}, reset after {} up)",
            serde_plain(&def.restart),
            format_duration(def.backoff_initial),
            format_duration(def.backoff_max),
            def.max_restarts,
            format_duration(def.restart_window),
            format_duration(def.min_uptime),
        ),
    );
    field("ready", format!("{} (within {})", def.ready, format_duration(def.ready_timeout)));
    if let Some(h) = &def.health {
        field(
            "health check",
            format!(
                "{} every {} (timeout {}; {} failures in a row: {})",
                h.probe,
                format_duration(h.interval),
                format_duration(h.timeout),
                h.failure_threshold,
                serde_plain(&h.on_unhealthy)
            ),
        );
    }
    field("stop", format!("{}, SIGKILL after {}", def.stop_signal, format_duration(def.stop_timeout)));
    if let Some(max) = def.max_memory {
        field("max memory", pm_protocol::size::format(max));
    }
    let hooks = &def.hooks;
    let named = [("pre_start", &hooks.pre_start), ("post_start", &hooks.post_start)]
        .into_iter()
        .chain([("pre_stop", &hooks.pre_stop), ("post_stop", &hooks.post_stop)]);
    for (name, hook) in named {
        if let Some(hook) = hook {
            field(name, shell_words::join(&hook.command));
        }
    }
    if let Some(notify) = &def.notify {
        let to: Vec<String> = notify.webhook.iter().cloned().chain(notify.exec.iter().map(shell_words::join)).collect();
        let on: Vec<String> = notify.on.iter().map(serde_plain).collect();
        field("notify", format!("{} on {}", to.join(", "), on.join(", ")));
    }
}

/// A unit enum as its serde name (`on-failure`, `gave_up`).
fn serde_plain(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// A time in milliseconds since the epoch, in local time.
fn when(ms: u64) -> String {
    let at = i64::try_from(ms).ok().and_then(chrono::DateTime::from_timestamp_millis);
    let Some(at) = at else { return format!("{ms} ms since the epoch") };
    at.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

fn section(title: &str) {
    say!("{title}");
}

fn field(label: &str, value: impl std::fmt::Display) {
    say!("  {label:<LABEL$} {value}");
}
