//! Health checks: a probe run every `interval` while an instance runs, with thresholds that turn
//! it `unhealthy` and back. In a project file, one table with the probe's kind as a key:
//!
//! ```toml
//! health = { http = "http://127.0.0.1:8080/healthz", interval = "5s", failure_threshold = 3 }
//! ```

use crate::definition::command;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a probe checks. Readiness (`ready = { http = … }`) and health checks share them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A TCP connection to `host:port` succeeds.
    Tcp(String),
    /// An HTTP GET answers as expected.
    Http(HttpProbe),
    /// A command exits 0 (inside the container, for a container).
    Exec(Vec<String>),
    /// The sidecar answers a call to this method of its own through the mesh.
    Rpc(String),
}

/// An HTTP GET of `url` (plain http): healthy on a 2xx or 3xx status, or exactly `status`, and
/// with `body` somewhere in the first 64 KiB of the body when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpProbe {
    pub url: String,
    pub status: Option<u16>,
    pub body: Option<String>,
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Probe::Tcp(addr) => write!(f, "tcp {addr}"),
            Probe::Http(http) => write!(f, "http {}", http.url),
            Probe::Exec(argv) => write!(f, "exec `{}`", shell_words::join(argv)),
            Probe::Rpc(method) => write!(f, "rpc {method}"),
        }
    }
}

/// What an unhealthy instance gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnUnhealthy {
    /// Stopped and started again through the restart policy (`restart = "never"`: failed).
    #[default]
    Restart,
    /// Only reported (state `unhealthy`, an event); healthy again after `success_threshold`.
    Report,
}

/// A health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "HealthTable", into = "HealthTable")]
#[schemars(with = "HealthTable")]
pub struct Health {
    pub probe: Probe,
    pub interval: Duration,
    pub timeout: Duration,
    pub initial_delay: Duration,
    pub failure_threshold: u32,
    pub success_threshold: u32,
    pub on_unhealthy: OnUnhealthy,
}

/// The most consecutive results a threshold may ask for.
pub const MAX_THRESHOLD: u32 = 1000;
/// The shortest interval: checks are sequential, but a zero interval would spin.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// A health check as written: exactly one of `tcp`, `http`, `exec`, `rpc`, and the rest optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthTable {
    /// `host:port` that must accept a TCP connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    /// `http://host:port/path` that must answer a GET with 2xx–3xx (or `status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// With `http`: the status that counts as healthy (default: any 2xx or 3xx).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// With `http`: text the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// A command (argv or a string split like a shell) that must exit 0 within `timeout`; for a
    /// container it runs inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "command::optional")]
    #[schemars(with = "Option<command::Schema>")]
    pub exec: Option<Vec<String>>,
    /// A method the sidecar registered (e.g. `health`), called through the mesh with no params:
    /// any result is healthy, an error or no answer within `timeout` is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc: Option<String>,
    /// Time between the starts of two checks (at least 100ms); default 5s.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::duration::option")]
    #[schemars(with = "Option<String>")]
    pub interval: Option<Duration>,
    /// How long one check may take before it counts as failed; default 1s.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::duration::option")]
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Duration>,
    /// Time after the instance is ready before the first check; default 0s.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::duration::option")]
    #[schemars(with = "Option<String>")]
    pub initial_delay: Option<Duration>,
    /// Consecutive failures that make the instance unhealthy (1–1000); default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub failure_threshold: Option<u32>,
    /// Consecutive successes that make an unhealthy instance healthy again (1–1000); default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub success_threshold: Option<u32>,
    /// `restart` (default): stop it and start it again through the restart policy; `report`:
    /// only say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_unhealthy: Option<OnUnhealthy>,
}

impl TryFrom<HealthTable> for Health {
    type Error = String;

    fn try_from(t: HealthTable) -> Result<Health, String> {
        let kinds = [t.tcp.is_some(), t.http.is_some(), t.exec.is_some(), t.rpc.is_some()];
        let probe = match (t.tcp, t.http, t.exec, t.rpc) {
            _ if kinds.iter().filter(|&&k| k).count() != 1 => {
                return Err("a health check needs exactly one of `tcp`, `http`, `exec` or `rpc`".into());
            }
            (Some(addr), ..) => Probe::Tcp(addr),
            (_, Some(url), ..) => Probe::Http(HttpProbe::new(url, t.status, t.body.clone())?),
            (_, _, Some(argv), _) => Probe::Exec(argv),
            (.., Some(method)) => Probe::Rpc(method),
            _ => unreachable!("exactly one kind is set"),
        };
        if !matches!(probe, Probe::Http(_)) && (t.status.is_some() || t.body.is_some()) {
            return Err("`status` and `body` go with an `http` check".into());
        }
        let interval = t.interval.unwrap_or(Duration::from_secs(5));
        if interval < MIN_INTERVAL {
            return Err(format!("`interval` must be at least {}", humantime::format_duration(MIN_INTERVAL)));
        }
        let timeout = t.timeout.unwrap_or(Duration::from_secs(1));
        if timeout.is_zero() {
            return Err("`timeout` must be more than 0s".into());
        }
        let threshold = |value: Option<u32>, default: u32, key: &str| match value.unwrap_or(default) {
            n @ 1..=MAX_THRESHOLD => Ok(n),
            n => Err(format!("`{key}` must be from 1 to {MAX_THRESHOLD}, not {n}")),
        };
        Ok(Health {
            probe,
            interval,
            timeout,
            initial_delay: t.initial_delay.unwrap_or(Duration::ZERO),
            failure_threshold: threshold(t.failure_threshold, 3, "failure_threshold")?,
            success_threshold: threshold(t.success_threshold, 1, "success_threshold")?,
            on_unhealthy: t.on_unhealthy.unwrap_or_default(),
        })
    }
}

impl From<Health> for HealthTable {
    fn from(h: Health) -> HealthTable {
        let mut t = HealthTable {
            interval: Some(h.interval),
            timeout: Some(h.timeout),
            initial_delay: Some(h.initial_delay),
            failure_threshold: Some(h.failure_threshold),
            success_threshold: Some(h.success_threshold),
            on_unhealthy: Some(h.on_unhealthy),
            ..HealthTable::default()
        };
        match h.probe {
            Probe::Tcp(addr) => t.tcp = Some(addr),
            Probe::Http(http) => {
                t.http = Some(http.url);
                t.status = http.status;
                t.body = http.body;
            }
            Probe::Exec(argv) => t.exec = Some(argv),
            Probe::Rpc(method) => t.rpc = Some(method),
        }
        t
    }
}

impl HttpProbe {
    /// Checks the URL's shape up front: plain `http://host[:port][/path]`.
    pub fn new(url: String, status: Option<u16>, body: Option<String>) -> Result<HttpProbe, String> {
        http_target(&url)?;
        if let Some(status) = status
            && !(100..=599).contains(&status)
        {
            return Err(format!("`status` must be an HTTP status (100–599), not {status}"));
        }
        Ok(HttpProbe { url, status, body })
    }
}

/// `host:port` and the path of a plain-http URL.
pub fn http_target(url: &str) -> Result<(String, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("`{url}` is not a plain http:// URL (https is not supported by http checks; use a tcp check)")
    })?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') || authority.chars().any(char::is_whitespace) {
        return Err(format!("`{url}`: expected http://host[:port]/path"));
    }
    let path = if path.starts_with('?') { format!("/{path}") } else { path.to_string() };
    let host_port = if authority.rsplit_once(':').is_some_and(|(_, port)| !port.contains(']')) {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((host_port, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Health, String> {
        serde_json::from_str::<Health>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn one_kind_with_defaults_round_trips() {
        let h = parse(r#"{"http": "http://127.0.0.1:8080/healthz", "status": 204}"#).unwrap();
        assert_eq!(h.interval, Duration::from_secs(5));
        assert_eq!((h.failure_threshold, h.success_threshold), (3, 1));
        assert_eq!(h.on_unhealthy, OnUnhealthy::Restart);
        let again: Health = serde_json::from_value(serde_json::to_value(&h).unwrap()).unwrap();
        assert_eq!(again, h);
        let exec = parse(r#"{"exec": "pg_isready -q", "interval": "1s", "on_unhealthy": "report"}"#).unwrap();
        assert_eq!(exec.probe, Probe::Exec(vec!["pg_isready".into(), "-q".into()]));
    }

    #[test]
    fn bad_checks_say_why() {
        for (json, want) in [
            (r#"{"interval": "5s"}"#, "exactly one of"),
            (r#"{"tcp": "a:1", "rpc": "health"}"#, "exactly one of"),
            (r#"{"tcp": "a:1", "status": 200}"#, "go with an `http` check"),
            (r#"{"http": "https://a/"}"#, "not a plain http://"),
            (r#"{"http": "http:///x"}"#, "expected http://host"),
            (r#"{"http": "http://a/", "status": 1000}"#, "an HTTP status"),
            (r#"{"tcp": "a:1", "interval": "0s"}"#, "at least 100ms"),
            (r#"{"tcp": "a:1", "timeout": "0s"}"#, "more than 0s"),
            (r#"{"tcp": "a:1", "failure_threshold": 0}"#, "from 1 to 1000"),
            (r#"{"tcp": "a:1", "success_threshold": 4000000000}"#, "from 1 to 1000"),
            (r#"{"tcp": "a:1", "interval": "500000000000y"}"#, "too long"),
            (r#"{"tcp": "a:1", "intervall": "1s"}"#, "unknown field `intervall`"),
            (r#"{"exec": []}"#, "command is empty"),
        ] {
            let err = parse(json).unwrap_err();
            assert!(err.contains(want), "{json}: {err}");
        }
    }

    #[test]
    fn http_targets() {
        assert_eq!(http_target("http://127.0.0.1:81/a?b").unwrap(), ("127.0.0.1:81".into(), "/a?b".into()));
        assert_eq!(http_target("http://localhost").unwrap(), ("localhost:80".into(), "/".into()));
        assert_eq!(http_target("http://[::1]:9/").unwrap(), ("[::1]:9".into(), "/".into()));
        assert_eq!(http_target("http://[::1]/").unwrap(), ("[::1]:80".into(), "/".into()));
        assert_eq!(http_target("http://h?q").unwrap(), ("h:80".into(), "/?q".into()));
    }
}
