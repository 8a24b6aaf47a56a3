//! What the examples share.

/// Logs to stderr, `PM_LOG` filtering (default `info`); under pm, which timestamps every line
/// of its log files, without a time of its own or colours.
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PM_LOG").unwrap_or_else(|_| "info".into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    if std::env::var_os("PM_NAME").is_some() { logs.without_time().init() } else { logs.init() }
}
