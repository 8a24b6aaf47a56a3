//! Which lines of a log `pm log --since/--grep` wants, as the history and live lines are read.
//! Lines are `<RFC 3339 timestamp> <text>`; timestamps have a fixed width, so comparing their
//! text compares their times.

use pm_protocol::status::LogFilter;
use regex::bytes::{Regex, RegexBuilder};
use std::time::{Duration, SystemTime};

/// The longest compiled `--grep` pattern: the regex crate matches in linear time, and this
/// bounds the memory a pattern may make it build.
const PATTERN_SIZE: usize = 1 << 20;

#[derive(Debug, Default)]
pub struct Filter {
    /// Lines from this timestamp on (as the log files write them).
    since: Option<String>,
    grep: Option<Regex>,
}

impl Filter {
    /// The filter a client asked for, or why it cannot be.
    pub fn new(asked: &LogFilter, now: SystemTime) -> Result<Filter, String> {
        let since = asked.since.as_deref().map(|since| since_stamp(since, now)).transpose()?;
        let grep = asked
            .grep
            .as_deref()
            .map(|pattern| {
                RegexBuilder::new(pattern)
                    .size_limit(PATTERN_SIZE)
                    .build()
                    .map_err(|e| format!("--grep {pattern:?} is not a regular expression: {e}"))
            })
            .transpose()?;
        Ok(Filter { since, grep })
    }

    pub fn is_empty(&self) -> bool {
        self.since.is_none() && self.grep.is_none()
    }

    /// Whether a line with timestamp `ts` is recent enough.
    pub fn recent(&self, ts: &[u8]) -> bool {
        self.since.as_ref().is_none_or(|since| ts >= since.as_bytes())
    }

    /// Whether the text of a line (after its timestamp) matches.
    pub fn matches(&self, text: &[u8]) -> bool {
        self.grep.as_ref().is_none_or(|grep| grep.is_match(text))
    }

    /// Whether a whole line (timestamp, space, text) is wanted.
    pub fn keeps(&self, line: &[u8]) -> bool {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let (ts, text) = match memchr::memchr(b' ', line) {
            Some(space) => (&line[..space], &line[space + 1..]),
            None => (line, &b""[..]),
        };
        self.recent(ts) && self.matches(text)
    }

    /// The wanted lines of `text` (whole lines, the last one maybe unfinished).
    pub fn keep_lines(&self, text: &[u8]) -> Vec<u8> {
        let mut kept = Vec::new();
        for line in text.split_inclusive(|&b| b == b'\n') {
            if self.keeps(line) {
                kept.extend_from_slice(line);
            }
        }
        kept
    }
}

/// The timestamp `since` stands for: `10m` before `now`, or an RFC 3339 time, written as the
/// log files write timestamps (UTC, milliseconds).
fn since_stamp(since: &str, now: SystemTime) -> Result<String, String> {
    let at = match humantime::parse_duration(since) {
        Ok(ago) => now.checked_sub(ago).unwrap_or(SystemTime::UNIX_EPOCH),
        Err(_) => humantime::parse_rfc3339_weak(since).map_err(|_| {
            format!("--since {since:?}: give a duration before now (`10m`, `2h`) or a time (`2026-11-25T10:00:00Z`)")
        })?,
    };
    // Whole milliseconds, rounded down: a line of the same millisecond is in.
    let ms = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
    Ok(humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH + Duration::from_millis(ms)).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(since: Option<&str>, grep: Option<&str>) -> Result<Filter, String> {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        Filter::new(&LogFilter { names: None, since: since.map(Into::into), grep: grep.map(Into::into) }, now)
    }

    #[test]
    fn since_takes_a_duration_or_a_time_and_grep_a_pattern() {
        let f = filter(Some("10m"), Some("err(or)?")).unwrap();
        assert!(f.keeps(b"2027-01-15T07:50:00.000Z an error\n"), "10 minutes before now, to the millisecond");
        assert!(!f.keeps(b"2027-01-15T07:49:59.999Z an error\n"), "older");
        assert!(!f.keeps(b"2027-01-15T07:55:00.000Z all fine\n"), "no match");
        let f = filter(Some("2027-01-15T07:00:00Z"), None).unwrap();
        assert!(f.keeps(b"2027-01-15T07:00:00.000Z x") && !f.keeps(b"2027-01-15T06:59:59.999Z x"));
        assert_eq!(
            f.keep_lines(b"2027-01-15T06:00:00.000Z a\n2027-01-15T08:00:00.000Z b\n2027-01-15T09:00:00.000Z c"),
            b"2027-01-15T08:00:00.000Z b\n2027-01-15T09:00:00.000Z c"
        );
        assert!(filter(None, None).unwrap().is_empty());
        assert!(filter(Some("yesterday-ish"), None).unwrap_err().contains("--since \"yesterday-ish\""));
        assert!(filter(None, Some("(")).unwrap_err().contains("not a regular expression"));
        // A pattern that would compile to more than the bound is refused, not built.
        assert!(filter(None, Some(r"\w{1000}\w{1000}\w{1000}")).is_err());
    }
}
