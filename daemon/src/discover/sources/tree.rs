//! A YAML or JSON source read as a tree of values, for the translators that walk one (compose,
//! process-compose, PHPeek PM, Phorever): typed reads of its values that report, by key path
//! and line, what they cannot take, and the conversions those formats share.

use crate::config::{ConfigError, Format, Seg, Source, key_path};
use crate::discover::{SourceFile, Untranslated, pm_name};
use pm_protocol::health::{Health, HealthTable};
use pm_protocol::{Definition, RestartPolicy, RuntimeKind};
use serde_yaml::{Mapping, Value};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// For sources whose tool restarts without end: pm's give-up threshold is never reached.
pub(super) const UNLIMITED_RESTARTS: u32 = u32::MAX;

/// A source file being translated, and what of it did not make it.
pub(super) struct Doc<'a> {
    pub src: Source<'a>,
    /// Relative paths in the file are anchored here.
    pub dir: &'a Path,
    untranslated: Vec<Untranslated>,
    /// The pm names given out so far.
    taken: HashSet<String>,
}

impl<'a> Doc<'a> {
    pub fn new(file: &'a SourceFile<'a>, format: Format) -> Self {
        let src = Source { file: file.path, text: file.text, format };
        Doc { src, dir: file.dir, untranslated: Vec::new(), taken: HashSet::new() }
    }

    /// The whole document, with YAML merge keys (`<<: *defaults`) applied.
    pub fn parse(&self) -> Result<Value, ConfigError> {
        let mut value: Value = self.src.parse()?;
        value.apply_merge().map_err(|e| self.src.invalid(Vec::new(), e.to_string()))?;
        Ok(value)
    }

    /// The mapping at `path`, or an error: for the parts that make the file what it is.
    pub fn mapping<'v>(&self, value: &'v Value, path: &[Seg], what: &str) -> Result<&'v Mapping, ConfigError> {
        match value {
            Value::Mapping(map) => Ok(map),
            other => Err(self.src.invalid(path.to_vec(), format!("expected {what}, found {}", kind(other)))),
        }
    }

    /// Reports a key pm did not translate.
    pub fn skip(&mut self, path: &[Seg], why: Option<String>) {
        let line = super::lines::line(self.src.format, self.src.text, path);
        self.untranslated.push(Untranslated { key: key_path(path), line, why });
    }

    /// What was not translated, in the file's order.
    pub fn untranslated(mut self) -> Vec<Untranslated> {
        self.untranslated.sort_by_key(|u| u.line);
        self.untranslated
    }

    /// Reports a key pm did not translate, saying why.
    pub fn because(&mut self, path: &[Seg], why: impl Into<String>) {
        self.skip(path, Some(why.into()));
    }

    /// Reports a value of the wrong type.
    pub fn wrong(&mut self, path: &[Seg], expected: &str, found: &Value) {
        self.because(path, format!("expected {expected}, found {}", kind(found)));
    }

    /// The entries of the mapping `value` as (key, its path, value); `None`, reported, when it is
    /// no mapping. A list, so the caller may report through `self` while it walks them.
    pub fn fields<'v>(&mut self, value: &'v Value, path: &[Seg]) -> Option<Vec<(String, Vec<Seg>, &'v Value)>> {
        let Value::Mapping(map) = value else {
            self.wrong(path, "a mapping", value);
            return None;
        };
        let field = |(key, value)| {
            let key = key_text(key);
            let path = at(path, key.as_str());
            (key, path, value)
        };
        Some(map.iter().map(field).collect())
    }

    /// An entry of the top-level mapping `table` (`processes`, say): its key, path, mapping and
    /// pm name; `None`, reported, when it is no mapping or makes no name.
    pub fn named_entry<'v>(
        &mut self,
        table: &str,
        key: &Value,
        value: &'v Value,
    ) -> Option<(String, Vec<Seg>, &'v Mapping, String)> {
        let raw = key_text(key);
        let path = vec![Seg::from(table), Seg::from(raw.as_str())];
        let Value::Mapping(entry) = value else {
            self.wrong(&path, "a mapping", value);
            return None;
        };
        let name = self.name(&raw, &path)?;
        Some((raw, path, entry, name))
    }

    /// The pm name of a source's `raw` name (at `path`), reported when it had to change; `None`
    /// (reported) when nothing of it is left or another sidecar of the file has it.
    pub fn name(&mut self, raw: &str, path: &[Seg]) -> Option<String> {
        let name = pm_name(raw);
        if name.is_empty() {
            self.because(path, format!("`{raw}` makes no pm name (letters, digits, `-` and `_`)"));
            return None;
        }
        if self.taken.contains(&name) {
            self.because(path, format!("its pm name `{name}` is another's in this file: left out"));
            return None;
        }
        if name != raw {
            self.because(path, format!("named `{name}` in pm"));
        }
        self.taken.insert(name.clone());
        Some(name)
    }

    /// A string (numbers and booleans are taken as written).
    pub fn text(&mut self, value: &Value, path: &[Seg]) -> Option<String> {
        let text = scalar(value);
        if text.is_none() {
            self.wrong(path, "a string", value);
        }
        text
    }

    /// A whole number from `0` to `max`.
    pub fn number(&mut self, value: &Value, path: &[Seg], max: u64) -> Option<u64> {
        match value.as_u64() {
            Some(n) if n <= max => Some(n),
            Some(n) => {
                self.because(path, format!("{n} is more than pm takes ({max})"));
                None
            }
            None => {
                self.wrong(path, "a whole number", value);
                None
            }
        }
    }

    pub fn flag(&mut self, value: &Value, path: &[Seg]) -> Option<bool> {
        let flag = value.as_bool();
        if flag.is_none() {
            self.wrong(path, "true or false", value);
        }
        flag
    }

    /// A list of strings; a single string is a list of one when `one` says so.
    pub fn strings(&mut self, value: &Value, path: &[Seg], one: bool) -> Option<Vec<String>> {
        match value {
            Value::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(self.text(item, &at(path, i))?);
                }
                Some(out)
            }
            Value::String(s) if one => Some(vec![s.clone()]),
            other => {
                self.wrong(path, if one { "a string or a list of strings" } else { "a list of strings" }, other);
                None
            }
        }
    }

    /// A number of seconds, as a duration.
    pub fn seconds(&mut self, value: &Value, path: &[Seg]) -> Option<Duration> {
        let secs = self.number(value, path, pm_protocol::duration::MAX.as_secs())?;
        Some(Duration::from_secs(secs))
    }

    /// A Go duration (`1m30s`, `500ms`, `1.5h`), as compose and Go's YAML decoders take them.
    pub fn go_duration(&mut self, value: &Value, path: &[Seg]) -> Option<Duration> {
        let text = self.text(value, path)?;
        match go_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.because(path, e);
                None
            }
        }
    }

    /// A health check built from its table, with pm's own checks of its values.
    pub fn health(&mut self, table: HealthTable, path: &[Seg]) -> Option<Health> {
        match Health::try_from(table) {
            Ok(health) => Some(health),
            Err(e) => {
                self.because(path, e);
                None
            }
        }
    }

    /// A signal name pm knows (`TERM`, `SIGTERM`, `15`), as pm spells it.
    pub fn signal(&mut self, text: &str, path: &[Seg]) -> Option<String> {
        match pm_runtimes::parse_signal(text) {
            Ok(signal) => Some(signal.as_str().to_string()),
            Err(e) => {
                self.because(path, e);
                None
            }
        }
    }

    /// `path` relative to the file's directory made absolute (`~/` is the home directory).
    pub fn anchored(&self, path: &str) -> PathBuf {
        let home = path.strip_prefix("~/").and_then(|rest| Some(PathBuf::from(std::env::var_os("HOME")?).join(rest)));
        let path = home.unwrap_or_else(|| PathBuf::from(path));
        crate::config::anchored(self.dir, &path)
    }
}

/// `path` with one more step.
pub(super) fn at(path: &[Seg], step: impl Into<Seg>) -> Vec<Seg> {
    let mut out = path.to_vec();
    out.push(step.into());
    out
}

/// A scalar as text, the way YAML wrote it: strings, numbers and booleans.
pub(super) fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// What a value is, for messages.
pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// A mapping key as text (YAML allows numbers and more as keys).
pub(super) fn key_text(key: &Value) -> String {
    scalar(key).unwrap_or_else(|| format!("<{}>", kind(key)))
}

/// Extension keys (`x-…`), which compose and process-compose keep for YAML anchors: ignored.
pub(super) fn is_extension(key: &str) -> bool {
    key.starts_with("x-")
}

/// A Go duration: a sequence of decimal numbers, each with a unit (`ns`, `us`, `µs`, `ms`, `s`,
/// `m`, `h`), like `1h30m` or `1.5s`; `0` alone is zero.
pub(super) fn go_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration `{text}`; expected e.g. `30s`, `1m30s`, `500ms`");
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if t.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let nanos_per = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += number * nanos_per;
    }
    let max = pm_protocol::duration::MAX;
    if !total.is_finite() || total > max.as_nanos() as f64 {
        return Err(format!("duration `{text}` is too long: at most {}", humantime::format_duration(max)));
    }
    Ok(Duration::from_nanos(total as u64))
}

/// A restart policy as a tool without a give-up threshold has it: never failed for restarting.
pub(super) fn restart_without_end(def: &mut Definition, policy: RestartPolicy) {
    def.restart = policy;
    def.max_restarts = UNLIMITED_RESTARTS;
}

/// A restart policy that gives up after `max` restarts in all, not within a window.
pub(super) fn restart_at_most(def: &mut Definition, policy: RestartPolicy, max: u32) {
    def.restart = policy;
    def.max_restarts = max;
    def.restart_window = pm_protocol::duration::MAX;
}

/// How a schedule acts on its target.
#[derive(Clone, Copy)]
pub(super) enum Act {
    /// Starts it when it is not running (or, with `overlap`, at each run).
    Start { overlap: bool },
    /// Restarts it at each run.
    Restart,
}

/// The sidecar that starts (or restarts) `target` on a cron expression of five fields (minute
/// first) or a `@daily`-like name, through pm's `schedule` task; an error when pm's cron cannot
/// read it.
pub(super) fn schedule(target: &str, cron: &str, tz: Option<&str>, act: Act) -> Result<Definition, String> {
    let cron = cron.trim();
    // pm's expressions have a seconds field first; `@daily` and the like have none.
    let expr = if cron.starts_with('@') { cron.to_string() } else { format!("0 {cron}") };
    <cron::Schedule as std::str::FromStr>::from_str(&expr).map_err(|e| {
        // The parser's message ends a drawing of where it stopped: its last line says why.
        let e = e.to_string();
        format!("cron `{cron}`: {}", e.lines().last().unwrap_or_default())
    })?;
    let mut command: Vec<String> = vec!["schedule".into(), "--cron".into(), expr];
    if let Some(tz) = tz {
        tz.parse::<chrono_tz::Tz>().map_err(|_| format!("unknown time zone `{tz}`"))?;
        command.extend(["--tz".into(), tz.into()]);
    }
    match act {
        Act::Start { overlap } => {
            command.extend(["--start".into(), target.into()]);
            if overlap {
                command.push("--overlap".into());
            }
        }
        Act::Restart => command.extend(["--restart".into(), target.into()]),
    }
    let mut def = Definition::new(command);
    def.runtime = RuntimeKind::Task;
    Ok(def)
}

/// A definition's working directory: its own, else the file's directory.
pub(super) fn settle_cwd(def: &mut Definition, dir: &Path) {
    if def.cwd.is_none() {
        def.cwd = Some(dir.to_path_buf());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::sources::testing::accepted;

    /// Every fixture of these translators, cut short at many points and with bytes changed:
    /// an error or a translation, never a panic.
    #[test]
    fn mangled_fixtures_never_panic() {
        use crate::discover::sources::{compose, phorever, phpeek, process_compose};
        for subject in
            [compose::tests::SUBJECT, process_compose::tests::SUBJECT, phpeek::tests::SUBJECT, phorever::tests::SUBJECT]
        {
            let dir = subject.fixture_dir();
            let text = std::fs::read_to_string(dir.join(subject.file)).unwrap();
            let mut texts: Vec<String> =
                (0..text.len()).step_by(7).filter_map(|at| text.get(..at)).map(String::from).collect();
            for (i, swap) in [":", "-", " ", "\n", "{", "[", "\"", "'", "$", "}", "0", "é"].iter().enumerate() {
                let mut bytes: Vec<char> = text.chars().collect();
                for at in (i..bytes.len()).step_by(13) {
                    bytes[at] = swap.chars().next().unwrap();
                }
                texts.push(bytes.into_iter().collect());
            }
            for text in &texts {
                if let Ok(t) = subject.translate(&dir, text) {
                    accepted(&t);
                }
            }
        }
    }

    #[test]
    fn go_durations() {
        let ms = |t: &str| go_duration(t).map(|d| d.as_millis());
        assert_eq!(ms("30s"), Ok(30_000));
        assert_eq!(ms("1m30s"), Ok(90_000));
        assert_eq!(ms("1.5s"), Ok(1_500));
        assert_eq!(ms("500ms"), Ok(500));
        assert_eq!(ms("2h"), Ok(7_200_000));
        assert_eq!(ms("0"), Ok(0));
        for bad in ["", "10", "5 s", "1d", "s", "..s", "-1s"] {
            assert!(go_duration(bad).is_err(), "{bad}");
        }
        assert!(go_duration("99999999999999h").unwrap_err().contains("too long"));
    }

    #[test]
    fn schedules_take_five_fields_and_known_zones() {
        let def = schedule("backup", "*/5 * * * *", Some("Europe/Paris"), Act::Start { overlap: false }).unwrap();
        assert_eq!(def.command, ["schedule", "--cron", "0 */5 * * * *", "--tz", "Europe/Paris", "--start", "backup"]);
        assert_eq!(def.runtime, RuntimeKind::Task);
        assert!(
            schedule("x", "@daily", None, Act::Start { overlap: true })
                .unwrap()
                .command
                .ends_with(&["--overlap".to_string()])
        );
        assert!(schedule("x", "nope", None, Act::Restart).is_err());
        let restart = schedule("web", "0 3 * * *", None, Act::Restart).unwrap().command;
        assert_eq!(restart, ["schedule", "--cron", "0 0 3 * * *", "--restart", "web"]);
        assert!(schedule("x", "* * * * *", Some("Mars/Olympus"), Act::Start { overlap: false }).is_err());
    }
}
