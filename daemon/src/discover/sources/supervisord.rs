//! supervisord's `supervisord.conf`: each `[program:x]` is a sidecar (`numprocs` of them as
//! instances), each `[group:g]` a pm group of its programs, with supervisord's defaults where
//! they differ from pm's (`priority` 999, `startretries` 3, `startsecs` 1). `%(name)s`
//! expansions are resolved as supervisord resolves them; the files of the main `[include]` are
//! read too. The daemon's own sections (`[supervisord]`, `[unix_http_server]`, …) are reported
//! once each.

mod expand;
mod ini;

use crate::config::ConfigError;
use crate::discover::{SourceFile, Translated, Untranslated, pm_name};
use expand::{Names, Val, expand};
use ini::{Ini, Place, Section};
use pm_protocol::definition::{MAX_INSTANCES, MAX_PRIORITY};
use pm_protocol::{Definition, RestartPolicy};
use std::collections::BTreeMap;
use std::time::Duration;

/// supervisord's defaults that pm's differ from.
const PRIORITY: i32 = 999;
const START_RETRIES: u32 = 3;
const START_SECS: u64 = 1;
/// `process_name`'s default, the only one pm keeps (it names instances `web-0`, `web-1`, …).
const PROCESS_NAME: &str = "%(program_name)s";

/// A program's keys with no pm equivalent, and why.
const UNTRANSLATED: &[(&str, &str)] = &[
    ("user", "pm runs sidecars as its own user"),
    ("umask", "pm runs sidecars with its own umask"),
    ("redirect_stderr", "pm keeps stdout and stderr apart in its logs"),
    ("serverurl", "sidecars reach pm through PM_SOCKET"),
    ("stdout_logfile", "pm keeps each instance's logs itself (`pm log`)"),
    ("stdout_logfile_maxbytes", "pm keeps each instance's logs itself (`pm log`)"),
    ("stdout_logfile_backups", "pm keeps each instance's logs itself (`pm log`)"),
    ("stdout_capture_maxbytes", "pm has no supervisord events"),
    ("stdout_events_enabled", "pm has no supervisord events"),
    ("stdout_syslog", "pm keeps each instance's logs itself (`pm log`)"),
    ("stderr_logfile", "pm keeps each instance's logs itself (`pm log`)"),
    ("stderr_logfile_maxbytes", "pm keeps each instance's logs itself (`pm log`)"),
    ("stderr_logfile_backups", "pm keeps each instance's logs itself (`pm log`)"),
    ("stderr_capture_maxbytes", "pm has no supervisord events"),
    ("stderr_events_enabled", "pm has no supervisord events"),
    ("stderr_syslog", "pm keeps each instance's logs itself (`pm log`)"),
];

pub fn read(src: &SourceFile<'_>) -> Result<Translated, ConfigError> {
    let ini = ini::load(src.path, src.text)?;
    let mut reader = Reader { src, ini: &ini, out: Translated::default(), members: BTreeMap::new() };
    reader.groups();
    let environment = reader.daemon_environment();
    for section in &ini.sections {
        match section.name.split_once(':') {
            Some(("program", name)) => reader.program(section, name.trim(), &environment),
            Some(("group", _)) => {}
            None if section.name == "include" => {}
            _ => reader.other(section),
        }
    }
    for at in &ini.nested_includes {
        reader.note("include".into(), at, Some("supervisord follows the [include] of the main file only".into()));
    }
    Ok(reader.out)
}

/// The name of this host, as supervisord's `%(host_node_name)s` gives it.
fn host_name() -> String {
    nix::sys::utsname::uname().map(|u| u.nodename().to_string_lossy().into_owned()).unwrap_or_default()
}

struct Reader<'a> {
    src: &'a SourceFile<'a>,
    ini: &'a Ini,
    out: Translated,
    /// The groups each program is in, by its supervisord name.
    members: BTreeMap<String, Vec<String>>,
}

impl Reader<'_> {
    /// Notes a key; one of an included file says which file and line in its reason.
    fn note(&mut self, key: String, at: &Place, why: Option<String>) {
        let note = match at.file.as_path() == self.src.path {
            true => Untranslated::new(key, Some(at.line)),
            false => {
                let file = at.file.strip_prefix(self.src.dir).unwrap_or(&at.file).display().to_string();
                let place = format!("in {file}:{}", at.line);
                let why = match why {
                    Some(why) => format!("{why} ({place})"),
                    None => place,
                };
                self.out.untranslated.push(Untranslated::new(key, None).because(why));
                return;
            }
        };
        self.out.untranslated.push(match why {
            Some(why) => note.because(why),
            None => note,
        });
    }

    /// `[group:g]`: `programs` become members of the pm group `g`.
    fn groups(&mut self) {
        let ini = self.ini;
        for section in &ini.sections {
            let Some(raw) = section.name.strip_prefix("group:") else { continue };
            let group = pm_name(raw.trim());
            if group.is_empty() {
                let why = format!("no pm group name can be made of `{}`", raw.trim());
                self.note(section.name.clone(), &section.at, Some(why));
                continue;
            }
            if group != raw.trim() {
                self.note(section.name.clone(), &section.at, Some(format!("group `{group}` in pm")));
            }
            for entry in &section.entries {
                let key = format!("{}.{}", section.name, entry.key);
                match entry.key.as_str() {
                    "programs" => {
                        for program in entry.value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                            let known = |kind: &str| ini.section(&format!("{kind}:{program}")).is_some();
                            if known("program") {
                                self.members.entry(program.to_string()).or_default().push(group.clone());
                            } else if !known("fcgi-program") {
                                let why = format!("there is no [program:{program}]");
                                self.note(key.clone(), &entry.at, Some(why));
                            }
                        }
                    }
                    "priority" => {
                        let why = "pm orders sidecars, not groups: each program keeps its own priority".into();
                        self.note(key, &entry.at, Some(why));
                    }
                    _ => self.note(key, &entry.at, Some("not a supervisord key".into())),
                }
            }
        }
    }

    /// The `environment` of `[supervisord]`, which every program gets.
    fn daemon_environment(&mut self) -> Vec<(String, String)> {
        let Some(entry) = self.ini.section("supervisord").and_then(|s| s.get("environment")) else {
            return Vec::new();
        };
        let mut names = Names::environment();
        names.set("here", Val::Text(entry.at.here().display().to_string()));
        names.set("host_node_name", Val::Text(host_name()));
        match expand(&entry.value, &names).and_then(|text| pairs(&text)) {
            Ok(pairs) => pairs,
            Err(why) => {
                self.note("supervisord.environment".into(), &entry.at, Some(why));
                Vec::new()
            }
        }
    }

    /// A section that is not a program: one note for all of it.
    fn other(&mut self, section: &Section) {
        let (kind, _) = section.name.split_once(':').unwrap_or((section.name.as_str(), ""));
        let why = match kind {
            "supervisord" => match section.get("environment") {
                Some(_) => "supervisord's own settings; its environment is given to every program",
                None => "supervisord's own settings",
            },
            "unix_http_server" | "inet_http_server" => "pm's daemon listens on its own socket (and `[daemon] listen`)",
            "supervisorctl" | "ctlplugin" => "pm's CLI talks to its daemon itself",
            "rpcinterface" => "pm's API is its own",
            "eventlistener" => "pm has no supervisord events (see `notify`)",
            "fcgi-program" => "pm does not open sockets for its sidecars",
            _ => "not a supervisord section",
        };
        self.note(section.name.clone(), &section.at, Some(why.into()));
    }

    fn program(&mut self, section: &Section, raw: &str, environment: &[(String, String)]) {
        let mut program = Program { reader: self, section, names: Names::environment(), numprocs: 1 };
        let Some(def) = program.translate(raw, environment) else { return };
        let name = pm_name(raw);
        if name.is_empty() {
            let why = format!("no pm name can be made of `{raw}`");
            return self.note(section.name.clone(), &section.at, Some(why));
        }
        if name != raw {
            self.note(section.name.clone(), &section.at, Some(format!("named `{name}` in pm")));
        }
        if self.out.sidecars.iter().any(|(n, _)| *n == name) {
            let why = format!("a sidecar named `{name}` comes first in this file");
            return self.note(section.name.clone(), &section.at, Some(why));
        }
        match crate::supervisor::validate(&name, &def) {
            Ok(()) => self.out.sidecars.push((name, def)),
            Err(e) => self.note(section.name.clone(), &section.at, Some(e)),
        }
    }
}

/// One `[program:x]` being translated.
struct Program<'r, 'a> {
    reader: &'r mut Reader<'a>,
    section: &'r Section,
    names: Names,
    numprocs: u32,
}

impl Program<'_, '_> {
    fn note(&mut self, key: &str, why: impl Into<String>) {
        let at = self.section.get(key).map_or(&self.section.at, |e| &e.at);
        let key = format!("{}.{key}", self.section.name);
        self.reader.note(key, at, Some(why.into()));
    }

    /// The value of `key`, expanded; `None` (and a note) when it cannot be.
    fn value(&mut self, key: &str) -> Option<String> {
        let entry = self.section.get(key)?;
        self.names.set("here", Val::Text(entry.at.here().display().to_string()));
        match expand(&entry.value, &self.names) {
            Ok(value) => Some(value),
            Err(why) => {
                self.note(key, why);
                None
            }
        }
    }

    /// A value read by `parse`, or `default` when absent or unreadable (with a note).
    fn read<T>(&mut self, key: &str, default: T, parse: impl FnOnce(&str) -> Result<T, String>) -> T {
        let Some(value) = self.value(key) else { return default };
        match parse(value.trim()) {
            Ok(v) => v,
            Err(why) => {
                self.note(key, why);
                default
            }
        }
    }

    fn translate(&mut self, raw: &str, environment: &[(String, String)]) -> Option<Definition> {
        let group = self.reader.members.get(raw).and_then(|g| g.first()).cloned();
        self.names.set("program_name", Val::Text(raw.into()));
        self.names.set("group_name", Val::Text(group.unwrap_or_else(|| raw.into())));
        self.names.set("host_node_name", Val::Text(host_name()));
        for (var, value) in environment {
            self.names.set(format!("ENV_{var}"), Val::Text(value.clone()));
        }
        let numprocs = self.read("numprocs", 1, |v| int(v, 0, i64::MAX));
        let start = self.read("numprocs_start", 0, |v| int(v, 0, i64::MAX));
        if numprocs == 0 {
            self.note("numprocs", "0: supervisord starts no process");
            return None;
        }
        self.numprocs = match u32::try_from(numprocs) {
            Ok(n) if n <= MAX_INSTANCES => n,
            _ => {
                self.note("numprocs", format!("pm runs at most {MAX_INSTANCES} instances"));
                return None;
            }
        };
        self.names.set("numprocs", Val::Int(numprocs));
        self.names.set(
            "process_num",
            match (self.numprocs, start) {
                (1, start) => Val::Int(start),
                (_, 0) => Val::Instance,
                _ => Val::Missing(format!("pm numbers instances from 0 (numprocs_start = {start})")),
            },
        );

        let mut env: BTreeMap<String, String> = environment.iter().cloned().collect();
        if let Some(text) = self.value("environment") {
            match pairs(&text) {
                Ok(pairs) => {
                    for (var, value) in pairs {
                        self.names.set(format!("ENV_{var}"), Val::Text(value.clone()));
                        env.insert(var, value);
                    }
                }
                Err(why) => self.note("environment", why),
            }
        }
        let Some(line) = self.value("command") else {
            if self.section.get("command").is_none() {
                let at = &self.section.at;
                let why = "no `command`: supervisord cannot start it".to_string();
                self.reader.note(self.section.name.clone(), at, Some(why));
            }
            return None;
        };
        let argv = match shell_words::split(&line) {
            Ok(argv) if !argv.is_empty() => argv,
            Ok(_) => {
                self.note("command", "empty");
                return None;
            }
            Err(e) => {
                self.note("command", format!("`{line}`: {e}"));
                return None;
            }
        };
        let mut def = Definition::new(argv);
        def.env = env;
        def.instances = self.numprocs;
        def.priority = PRIORITY;
        def.max_restarts = START_RETRIES;
        def.min_uptime = Duration::from_secs(START_SECS);
        let dir = self.reader.src.dir;
        def.cwd = Some(match self.value("directory") {
            Some(cwd) if !cwd.trim().is_empty() => dir.join(cwd.trim()).components().collect(),
            _ => dir.to_path_buf(),
        });
        self.keys(&mut def, start);
        def.restart_window = restart_window(&def);
        Some(def)
    }

    /// Every key besides `command`, `environment`, `directory` and `numprocs`.
    fn keys(&mut self, def: &mut Definition, start: i64) {
        let section = self.section;
        for entry in &section.entries {
            let key = entry.key.as_str();
            match key {
                "command" | "environment" | "directory" | "numprocs" => {}
                "numprocs_start" if start == 0 || self.numprocs == 1 => {}
                "numprocs_start" => self.note(key, "pm numbers instances from 0"),
                "priority" => {
                    let max = i64::from(MAX_PRIORITY);
                    def.priority = self.read(key, PRIORITY, |v| int(v, -max, max).map(|n| n as i32));
                }
                "autostart" => def.autostart = self.read(key, true, boolean),
                "autorestart" => def.restart = self.read(key, RestartPolicy::OnFailure, restart),
                "exitcodes" => def.success_exit_codes = self.read(key, vec![0], exit_codes),
                "startsecs" => def.min_uptime = self.read(key, def.min_uptime, seconds),
                "startretries" => {
                    def.max_restarts =
                        self.read(key, START_RETRIES, |v| int(v, 0, i64::from(u32::MAX)).map(|n| n as u32));
                }
                "stopsignal" => def.stop_signal = self.read(key, def.stop_signal.clone(), signal),
                "stopwaitsecs" => def.stop_timeout = self.read(key, def.stop_timeout, seconds),
                "stopasgroup" | "killasgroup" => {
                    if !self.read(key, true, boolean) {
                        self.note(key, "pm always signals the whole process group");
                    }
                }
                "process_name" if entry.value.trim() == PROCESS_NAME => {}
                "process_name" => {
                    let why =
                        format!("pm names instances itself: `{0}` or `{0}-0`, `{0}-1`, …", pm_name(self.raw_name()));
                    self.note(key, why);
                }
                _ => match UNTRANSLATED.iter().find(|(k, _)| *k == key) {
                    Some((_, why)) => self.note(key, *why),
                    None => self.note(key, "not a supervisord key"),
                },
            }
        }
        if let Some(groups) = self.reader.members.get(self.raw_name()) {
            def.groups = groups.clone();
        }
    }

    fn raw_name(&self) -> &str {
        self.section.name.split_once(':').map_or("", |(_, name)| name.trim())
    }
}

/// How long `startretries` starts that each failed before `startsecs` take with pm's backoff:
/// pm gives up after `max_restarts` restarts within it, as supervisord gives up on a program
/// that keeps failing to start, while one that ran past `startsecs` is restarted without end.
/// With `startsecs = 0` every start succeeds, and supervisord never gives up.
fn restart_window(def: &Definition) -> Duration {
    if def.min_uptime.is_zero() {
        return Duration::ZERO;
    }
    let mut total = Duration::ZERO;
    let mut backoff = def.backoff_initial;
    for _ in 0..def.max_restarts.min(64) {
        total = total.saturating_add(backoff.min(def.backoff_max)).saturating_add(def.min_uptime);
        backoff = backoff.saturating_mul(2);
    }
    total.min(pm_protocol::duration::MAX)
}

/// `KEY=value,KEY2="a, b"`, as supervisord's `environment` is written.
fn pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let key = key.trim().to_string();
        if key.is_empty() || key.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\0') {
            return Err(format!("`{key}` is not a variable name (write KEY=value,KEY2=\"value\")"));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, ',') => break,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (Some('"') | None, '\\') => value.extend(chars.next()),
                (_, c) => value.push(c),
            }
        }
        if quote.is_some() {
            return Err(format!("an unclosed quote in the value of {key}"));
        }
        if value.contains('\0') {
            return Err(format!("the value of {key} has a NUL byte"));
        }
        out.push((key, value.trim_end().to_string()));
    }
}

fn int(text: &str, min: i64, max: i64) -> Result<i64, String> {
    match text.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        Ok(n) => Err(format!("{n} is out of range ({min} to {max})")),
        Err(_) => Err(format!("`{text}` is not a whole number")),
    }
}

fn boolean(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        _ => Err(format!("`{text}` is not true or false")),
    }
}

fn restart(text: &str) -> Result<RestartPolicy, String> {
    match text.to_ascii_lowercase().as_str() {
        "unexpected" => Ok(RestartPolicy::OnFailure),
        other => boolean(other)
            .map(|on| if on { RestartPolicy::Always } else { RestartPolicy::Never })
            .map_err(|_| format!("`{text}` is not true, false or unexpected")),
    }
}

fn exit_codes(text: &str) -> Result<Vec<i32>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let codes: Result<Vec<i32>, String> = text.split(',').map(|c| int(c.trim(), 0, 255).map(|c| c as i32)).collect();
    codes.map_err(|e| format!("exit codes are from 0 to 255: {e}"))
}

fn seconds(text: &str) -> Result<Duration, String> {
    let max = pm_protocol::duration::MAX.as_secs() as i64;
    int(text, 0, max).map(|s| Duration::from_secs(s as u64))
}

/// `TERM`, `SIGTERM` or `15`, as pm writes it: `SIGTERM`.
fn signal(text: &str) -> Result<String, String> {
    let parsed = pm_runtimes::parse_signal(text)?;
    Ok(parsed.as_str().to_string())
}

#[cfg(test)]
mod tests;
