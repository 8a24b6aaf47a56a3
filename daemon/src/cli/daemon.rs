//! `pm daemon`: run the daemon in the foreground until SIGTERM or Ctrl-C.

use super::daemon_log::DaemonLog;
use super::log_writer::Lossy;
use crate::daemon::{DaemonConfig, run as run_daemon};
use crate::home::Home;
use std::process::ExitCode;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::filter::Targets;

#[derive(clap::Args)]
pub struct Args {
    /// Longest JSON-RPC frame accepted on an authenticated connection, in bytes (1 KiB to 1 GiB).
    #[arg(long, default_value_t = pm_protocol::ndjson::DEFAULT_MAX_FRAME as u32,
          value_parser = clap::value_parser!(u32).range(1024..=1 << 30))]
    max_frame: u32,
    /// Longest deadline a routed call may ask for with `deadline_ms`; longer ones are capped (1ms to 1d).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = between("1ms", "1d"))]
    max_deadline: Duration,
    /// How long a tcp:// or tls:// client may take to call pm.auth before it is disconnected (100ms to 1h).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = between("100ms", "1h"))]
    auth_timeout: Duration,
    /// Connections at once over tcp/tls/ws(s); the Unix socket has as many again of its own.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_connections: u32,
    /// Also listen here (repeatable): tcp:// or tls://HOST:PORT, ws:// or wss://HOST:PORT/. The Unix socket is always on.
    #[arg(long = "listen", value_name = "URL")]
    listen: Vec<pm_protocol::Endpoint>,
    /// Certificate chain (PEM) for tls:// and wss:// [default: PM_HOME/tls/cert.pem, see `pm tls-cert`].
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<std::path::PathBuf>,
    /// Its private key (PEM) [default: PM_HOME/tls/key.pem].
    #[arg(long, value_name = "FILE")]
    tls_key: Option<std::path::PathBuf>,
    /// Hold sidecars by process group and their PM_RUN_ID marker only, without a cgroup v2 per instance.
    #[arg(long)]
    no_cgroups: bool,
    /// Rotate a sidecar's log file once it is this large (`50M`, `1G`; 0: never, it grows without bound).
    #[arg(long, value_name = "SIZE", default_value = "10M", value_parser = log_size)]
    log_max_size: u64,
    /// Rotated log files kept per file (`web.out.log.1` … `.N`); 0: a full file is deleted.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=crate::logs::MAX_KEEP as i64))]
    log_keep: u32,
}

/// A log size: 0 (never rotate), or from 64 KiB (smaller would rotate on nearly every write).
fn log_size(text: &str) -> Result<u64, String> {
    match pm_protocol::size::parse(text)? {
        0 => Ok(0),
        size if size < 64 << 10 => Err("must be 0 (never rotate) or at least 64K".into()),
        size => Ok(size),
    }
}

/// A duration parser that refuses values outside `[min, max]` (huge ones would overflow timers).
fn between(min: &'static str, max: &'static str) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    move |text| {
        let value = humantime::parse_duration(text).map_err(|e| e.to_string())?;
        let (lo, hi) =
            (humantime::parse_duration(min).unwrap_or_default(), humantime::parse_duration(max).unwrap_or_default());
        if value < lo || value > hi {
            return Err(format!("must be between {min} and {max}"));
        }
        Ok(value)
    }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = config(args, Home::from_env());
    init_tracing("info", DaemonLog::of_stderr(&config.home, config.log_rotation));
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    run_daemon(config, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

/// Logs to stderr at `level` unless PM_LOG says otherwise (`debug`, or `TARGET=LEVEL,…`
/// directives), rotating it when it is daemon.log; never panics on a full or closed stderr.
pub fn init_tracing(level: &str, daemon_log: Option<DaemonLog>) {
    use tracing_subscriber::prelude::*;
    // `Targets`, not `EnvFilter`: the latter's field-value regexes compile a DFA builder into
    // the binary, a tenth of its size, for a feature nobody filters the daemon's log by.
    let parse = |text: &str| text.parse::<Targets>().ok();
    let filter = std::env::var("PM_LOG").ok().and_then(|v| parse(&v)).or_else(|| parse(level)).unwrap_or_default();
    // Colours only on a terminal (a detached daemon writes to daemon.log), and not with NO_COLOR.
    let ansi = crate::logs::colour_on(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let writer = Lossy::new(std::io::stderr).rotating(daemon_log);
    let fmt = tracing_subscriber::fmt::layer().with_ansi(ansi).with_writer(writer);
    // PM_LOG_FORMAT=json: one JSON object per line, for log shippers.
    match std::env::var("PM_LOG_FORMAT").as_deref() {
        Ok("json") => tracing_subscriber::registry().with(fmt.json().flatten_event(true)).with(filter).init(),
        Ok("text") | Err(_) => tracing_subscriber::registry().with(fmt).with(filter).init(),
        Ok(other) => {
            tracing_subscriber::registry().with(fmt).with(filter).init();
            tracing::warn!("PM_LOG_FORMAT={other:?} is not a log format (json or text): writing text");
        }
    }
}

/// The daemon's configuration from its flags.
pub fn config(args: Args, home: Home) -> DaemonConfig {
    let mut config = DaemonConfig::new(home);
    config.limits.max_frame = args.max_frame as usize;
    config.limits.max_deadline = args.max_deadline;
    config.limits.auth_timeout = args.auth_timeout;
    config.limits.max_connections = args.max_connections as usize;
    config.listen = args.listen;
    config.tls_cert = args.tls_cert.unwrap_or(config.tls_cert);
    config.tls_key = args.tls_key.unwrap_or(config.tls_key);
    config.cgroups = !args.no_cgroups;
    config.log_rotation = crate::logs::Rotation { max_size: args.log_max_size, keep: args.log_keep };
    config.reap = true;
    config
}
