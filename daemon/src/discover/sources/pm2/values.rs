//! PM2's spellings of values: strings or numbers for durations, sizes and counts, args lines.

use pm_protocol::definition::MAX_INSTANCES;
use serde_json::Value;
use std::time::Duration;

/// A string, number or boolean as PM2 passes it on; anything else as JSON.
pub(super) fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Splits an argument string as PM2 does: on whitespace, a whole `"…"` or `'…'` word losing its
/// quotes, `key="a b"` kept whole with them; empty words dropped.
pub(super) fn split(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let closing = |from: usize, quote: char| chars[from..].iter().position(|c| *c == quote).map(|p| from + p);
        let key_end = chars[i..].iter().position(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '=')).map(|p| i + p);
        // key="…" or key='…'
        let assigned = key_end.filter(|e| *e > i && chars[*e] == '=').and_then(|e| {
            let quote = *chars.get(e + 1).filter(|q| matches!(q, '"' | '\''))?;
            closing(e + 2, quote).map(|end| (chars[i..=end].iter().collect::<String>(), end + 1))
        });
        let quoted = (matches!(chars[i], '"' | '\''))
            .then(|| closing(i + 1, chars[i]).map(|end| (chars[i + 1..end].iter().collect::<String>(), end + 1)))
            .flatten();
        let (word, next) = assigned.or(quoted).unwrap_or_else(|| {
            let end = chars[i..].iter().position(|c| c.is_whitespace()).map_or(chars.len(), |p| i + p);
            (chars[i..end].iter().collect(), end)
        });
        if !word.trim().is_empty() {
            words.push(word);
        }
        i = next;
    }
    words
}

/// A whole number, written as one or as a string (PM2 reads numbers from strings).
pub(super) fn int(value: &Value) -> Option<i64> {
    let n = number(value)?;
    (n.fract() == 0.0 && n.abs() < 9e15).then_some(n as i64)
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|n| n.is_finite())
}

/// Milliseconds, as PM2's delays and timeouts are written.
pub(super) fn millis(value: &Value) -> Result<Duration, String> {
    let ms = number(value).filter(|n| *n >= 0.0).ok_or("expected a number of milliseconds")?;
    duration(ms)
}

fn duration(ms: f64) -> Result<Duration, String> {
    let max = pm_protocol::duration::MAX;
    match ms / 1000.0 {
        s if s <= max.as_secs_f64() => Ok(Duration::from_millis(ms.round() as u64)),
        _ => Err(format!("longer than pm's {}", humantime::format_duration(max))),
    }
}

/// `min_uptime`: milliseconds, or `30s`, `5m`, `1h`.
pub(super) fn stime(value: &Value) -> Result<Duration, String> {
    if let Value::String(s) = value
        && let Some(unit @ ('h' | 'm' | 's')) = s.trim().chars().last()
    {
        let n: f64 = s.trim()[..s.trim().len() - 1].parse().map_err(|_| format!("invalid duration `{s}`"))?;
        let scale = match unit {
            'h' => 3_600_000.0,
            'm' => 60_000.0,
            _ => 1000.0,
        };
        return match n >= 0.0 {
            true => duration(n * scale),
            false => Err(format!("invalid duration `{s}`")),
        };
    }
    millis(value)
}

/// `instances`: a number, `"max"` or 0 for one per CPU, -N for all CPUs but N.
pub(super) fn instances(value: &Value) -> Result<u32, String> {
    let n = match value {
        Value::String(s) if s.trim() == "max" => 0,
        other => int(other).ok_or("expected a number of instances, or \"max\"")?,
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
    let n = match n {
        0 => cpus,
        n if n < 0 => (cpus + n).max(1),
        n => n,
    };
    match u32::try_from(n) {
        Ok(n) if n <= MAX_INSTANCES => Ok(n),
        _ => Err(format!("{n} instances: pm runs at most {MAX_INSTANCES}")),
    }
}

/// `max_memory_restart`: bytes, or `300M`, `1G`, `512K`.
pub(super) fn memory(value: &Value) -> Result<u64, String> {
    use pm_protocol::size;
    let bytes = match value {
        Value::String(s) => size::parse(s)?,
        other => int(other).and_then(|n| u64::try_from(n).ok()).ok_or("expected a size")?,
    };
    match (size::MIN..=size::MAX).contains(&bytes) {
        true => Ok(bytes),
        false => Err(format!("pm's max_memory is from {} to {}", size::format(size::MIN), size::format(size::MAX))),
    }
}
