//! How results look: aligned tables for people, stable JSON for scripts.

use pm_protocol::{DaemonInfo, InstanceStatus};
use std::time::Duration;

/// Prints rows under a header, columns aligned.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        say!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    say!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// What the daemon wants its user to know (a state restored from its backup), on stderr so
/// `--json` output stays as it is.
pub fn notice(info: &DaemonInfo) {
    if let Some(notice) = &info.notice {
        eprintln!("pm: notice: {notice}");
    }
}

/// `1h2m`, `3m4s`, `5s`, `120ms`: short and rounded.
pub fn short_duration(ms: u64) -> String {
    let d = Duration::from_millis(ms);
    let s = d.as_secs();
    match s {
        0 => format!("{ms}ms"),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// `512B`, `12.3K`, `12.3M`, `1.5G`: memory as `ps` and `top` show it (units of 1024).
pub fn short_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["K", "M", "G", "T"];
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1}{}", UNITS[unit])
}

/// The answers of several requests as one list: each instance once (its latest status), by name.
pub fn merged(statuses: Vec<InstanceStatus>) -> Vec<InstanceStatus> {
    let by_name: std::collections::BTreeMap<String, InstanceStatus> =
        statuses.into_iter().map(|s| (s.name.clone(), s)).collect();
    by_name.into_values().collect()
}

/// Instances as JSON or as a table, as asked.
pub fn report(list: &[InstanceStatus], json: bool) -> anyhow::Result<()> {
    show(list, json, false)
}

/// [`report`], with CPU and MEM columns: for `pm status`, the one answer that carries them.
pub fn report_usage(list: &[InstanceStatus], json: bool) -> anyhow::Result<()> {
    show(list, json, true)
}

fn show(list: &[InstanceStatus], json: bool, usage: bool) -> anyhow::Result<()> {
    if json {
        self::json(&list)
    } else {
        statuses(list, usage);
        Ok(())
    }
}

/// Instances as a table, with the reason for odd states underneath.
fn statuses(list: &[InstanceStatus], usage: bool) {
    if list.is_empty() {
        say!("no sidecars (define one with `pm map` or a pm.toml)");
        return;
    }
    let dash = || "-".to_string();
    // Columns only some setups use are shown when one instance has them.
    let ports = list.iter().any(|s| s.port.is_some());
    let health = list.iter().any(|s| s.health.is_some());
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            let mut row = vec![
                s.name.clone(),
                s.runtime.to_string(),
                s.state.to_string(),
                s.pid.map_or_else(dash, |p| p.to_string()),
            ];
            if ports {
                row.push(s.port.map_or_else(dash, |p| p.to_string()));
            }
            row.push(s.uptime_ms.map_or_else(dash, short_duration));
            if usage {
                row.push(s.cpu_percent.map_or_else(dash, |p| format!("{p:.1}%")));
                row.push(s.memory_bytes.map_or_else(dash, short_bytes));
            }
            row.push(s.restarts.to_string());
            row.push(s.last_exit.as_ref().map_or_else(dash, |e| e.to_string()));
            row.push(if s.ready { "yes" } else { "no" }.to_string());
            if health {
                row.push(s.health.as_ref().map_or_else(dash, |h| h.status.to_string()));
            }
            row
        })
        .collect();
    let mut header = vec!["NAME", "RUNTIME", "STATE", "PID"];
    if ports {
        header.push("PORT");
    }
    header.push("UPTIME");
    if usage {
        header.extend(["CPU", "MEM"]);
    }
    header.extend(["RESTARTS", "LAST EXIT", "READY"]);
    if health {
        header.push("HEALTH");
    }
    table(&header, &rows);
    for s in list {
        if let Some(reason) = &s.reason {
            say!("  {}: {reason}", s.name);
        }
    }
}

/// Writes one line of a command's output (see the `say!` macro).
pub fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(e) = writeln!(std::io::stdout().lock(), "{line}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("pm: cannot write the output: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_are_short() {
        assert_eq!(super::short_duration(120), "120ms");
        assert_eq!(super::short_duration(5_000), "5s");
        assert_eq!(super::short_duration(3_725_000), "1h2m");
    }

    #[test]
    fn memory_is_short() {
        assert_eq!(super::short_bytes(512), "512B");
        assert_eq!(super::short_bytes(1536), "1.5K");
        assert_eq!(super::short_bytes(12_897_485), "12.3M");
        assert_eq!(super::short_bytes(3 << 30), "3.0G");
        assert_eq!(super::short_bytes(u64::MAX), "16777216.0T");
    }
}
