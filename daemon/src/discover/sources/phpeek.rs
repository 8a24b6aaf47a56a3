//! PHPeek PM files (`phpeek-pm.yaml`): each process becomes a sidecar, read the way PHPeek PM
//! reads them (a process starts only with `enabled: true`; its health check is also its
//! readiness unless `mode: liveness`; restarts follow `global`). The global `pre-start` hooks
//! become one-shot sidecars everything waits for, `post-start` ones one-shots that wait for
//! everything; a `schedule` becomes a `schedule` task sidecar. `${VAR}` and `${VAR:-default}`
//! are filled from the environment.

use super::expand::{self, PHPEEK, Vars};
use super::tree::{self, Doc, at, key_text, restart_at_most, restart_without_end, settle_cwd};
use crate::config::{ConfigError, Format, Seg, key};
use crate::discover::{SourceFile, Translated};
use pm_protocol::definition::{MAX_INSTANCES, MAX_PRIORITY};
use pm_protocol::health::{HealthTable, MAX_THRESHOLD};
use pm_protocol::{Definition, Hook, Readiness, RestartPolicy};
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;
use std::time::Duration;

pub fn read(file: &SourceFile<'_>) -> Result<Translated, ConfigError> {
    let mut doc = Doc::new(file, Format::Yaml);
    let mut root = doc.parse()?;
    expand::tree(&mut doc, &mut root, &[], &Vars::environment(), &PHPEEK);
    let top = doc.mapping(&root, &[], "a PHPeek PM file (a mapping with `processes`)")?;
    let mut global = Global::default();
    let (mut processes, mut hooks) = (None, None);
    for (key, value) in top {
        let key = key_text(key);
        let path = key![key.as_str()];
        match key.as_str() {
            "processes" => processes = Some(value),
            "global" => global.read(&mut doc, value, &path),
            "hooks" => hooks = Some(value),
            "version" => {}
            _ => doc.skip(&path, None),
        }
    }
    let processes = processes.ok_or_else(|| doc.src.invalid(key![], "no `processes`: not a PHPeek PM file"))?;
    let processes = doc.mapping(processes, &[Seg::from("processes")], "a mapping of processes")?;

    let mut sidecars = Vec::new();
    let mut names = BTreeMap::new();
    let mut deps = Vec::new();
    for (key, value) in processes {
        let Some((raw, path, process, name)) = doc.named_entry("processes", key, value) else { continue };
        let mut p =
            Process { doc: &mut doc, global: &global, name: &name, path, def: global.definition(), extra: None };
        let Some(depends_on) = p.translate(process) else { continue };
        let (mut def, extra) = (p.def, p.extra);
        settle_cwd(&mut def, file.dir);
        names.insert(raw, name.clone());
        deps.push((sidecars.len(), depends_on));
        sidecars.push((name, def));
        sidecars.extend(extra);
    }
    for (at, depends_on) in deps {
        for (dep, path) in depends_on {
            match names.get(&dep) {
                Some(name) => sidecars[at].1.depends_on.push(name.clone()),
                None => doc.because(&path, format!("no process `{dep}` is translated")),
            }
        }
    }
    if let Some(hooks) = hooks {
        global_hooks(&mut doc, hooks, &mut sidecars);
    }
    Ok(Translated { sidecars, untranslated: doc.untranslated() })
}

/// What `global` sets for every process.
struct Global {
    restart: RestartPolicy,
    /// 0: no end.
    max_restarts: u32,
    backoff_initial: Duration,
    backoff_max: Duration,
    /// How long dependents wait for a process to be ready.
    dependency_timeout: Duration,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            restart: RestartPolicy::Always,
            max_restarts: 3,
            backoff_initial: Duration::from_secs(5),
            backoff_max: Duration::from_secs(60),
            dependency_timeout: Duration::from_secs(300),
        }
    }
}

impl Global {
    fn read(&mut self, doc: &mut Doc<'_>, value: &Value, path: &[Seg]) {
        let Some(global) = doc.fields(value, path) else {
            return;
        };
        let (mut initial, mut max, mut legacy) = (None, None, None);
        for (key, at, value) in global {
            match key.as_str() {
                "restart_policy" => self.restart = restart(doc, value, &at).unwrap_or(self.restart),
                "max_restart_attempts" => {
                    self.max_restarts = doc.number(value, &at, u32::MAX.into()).map_or(self.max_restarts, |n| n as u32)
                }
                "restart_backoff" => legacy = doc.seconds(value, &at).filter(|d| !d.is_zero()),
                "restart_backoff_initial" => initial = doc.go_duration(value, &at).filter(|d| !d.is_zero()),
                "restart_backoff_max" => max = doc.go_duration(value, &at).filter(|d| !d.is_zero()),
                "dependency_timeout" => {
                    self.dependency_timeout = doc.go_duration(value, &at).unwrap_or(self.dependency_timeout)
                }
                _ => doc.skip(&at, None),
            }
        }
        // The legacy `restart_backoff` (seconds) gives both bounds, the upper one twelvefold.
        let legacy = legacy.unwrap_or(Duration::from_secs(5));
        self.backoff_initial = initial.unwrap_or(legacy);
        self.backoff_max = max.unwrap_or(legacy.saturating_mul(12));
    }

    /// A process definition with these settings.
    fn definition(&self) -> Definition {
        let mut def = Definition::new(Vec::new());
        // PHPeek PM gives an instance 30s to stop.
        def.stop_timeout = Duration::from_secs(30);
        self.restart(&mut def, self.restart);
        def
    }

    /// A restart policy with the global attempts and backoff; PHPeek PM counts attempts in all
    /// and its backoff never resets.
    fn restart(&self, def: &mut Definition, policy: RestartPolicy) {
        match (policy, self.max_restarts) {
            (RestartPolicy::Never, _) => def.restart = RestartPolicy::Never,
            (policy, 0) => restart_without_end(def, policy),
            (policy, max) => restart_at_most(def, policy, max),
        }
        if policy != RestartPolicy::Never {
            def.backoff_initial = self.backoff_initial;
            def.backoff_max = self.backoff_max.max(self.backoff_initial);
        }
    }
}

fn restart(doc: &mut Doc<'_>, value: &Value, path: &[Seg]) -> Option<RestartPolicy> {
    match doc.text(value, path)?.as_str() {
        "always" => Some(RestartPolicy::Always),
        "on-failure" => Some(RestartPolicy::OnFailure),
        "never" => Some(RestartPolicy::Never),
        other => {
            doc.because(path, format!("`{other}`: expected always, on-failure or never"));
            None
        }
    }
}

/// One process being translated.
struct Process<'d, 'a> {
    doc: &'d mut Doc<'a>,
    global: &'d Global,
    name: &'d str,
    path: Vec<Seg>,
    def: Definition,
    /// The `schedule` task sidecar that starts it.
    extra: Option<(String, Definition)>,
}

impl Process<'_, '_> {
    /// Translates the process: its `depends_on` (with their paths), or `None` when it has
    /// nothing to run.
    fn translate(&mut self, process: &Mapping) -> Option<Vec<(String, Vec<Seg>)>> {
        // PHPeek PM starts a process only when it says `enabled: true`.
        self.def.autostart = false;
        let (mut enabled, mut running, mut oneshot) = (false, true, false);
        let (mut deps, mut schedule) = (Vec::new(), None);
        for (key, value) in process {
            let key = key_text(key);
            let path = at(&self.path, key.as_str());
            match key.as_str() {
                "enabled" => enabled = self.doc.flag(value, &path).unwrap_or(false),
                "initial_state" => match self.doc.text(value, &path).as_deref() {
                    Some("running") => {}
                    Some("stopped") => running = false,
                    _ => self.doc.because(&path, "expected running or stopped"),
                },
                "type" => match self.doc.text(value, &path).as_deref() {
                    Some("longrun") => {}
                    Some("oneshot") => oneshot = true,
                    _ => self.doc.because(&path, "expected oneshot or longrun"),
                },
                "command" => self.def.command = self.doc.strings(value, &path, false).unwrap_or_default(),
                "working_dir" => self.def.cwd = self.doc.text(value, &path).map(|d| self.doc.anchored(&d)),
                "env" => self.env(value, &path),
                "restart" => {
                    if let Some(policy) = restart(self.doc, value, &path) {
                        self.global.restart(&mut self.def, policy);
                    }
                }
                "scale" => {
                    self.def.instances =
                        self.doc.number(value, &path, MAX_INSTANCES.into()).map_or(1, |n| n.max(1) as u32)
                }
                "priority" => match value.as_i64() {
                    // Lower starts first, in PHPeek PM's first releases as in pm.
                    Some(p) if p.unsigned_abs() <= MAX_PRIORITY as u64 => self.def.priority = p as i32,
                    _ => self.doc.because(&path, format!("pm's priorities are from -{MAX_PRIORITY} to {MAX_PRIORITY}")),
                },
                "depends_on" => {
                    for (i, dep) in self.doc.strings(value, &path, false).unwrap_or_default().into_iter().enumerate() {
                        deps.push((dep, at(&path, i)));
                    }
                }
                "health_check" => self.health_check(value, &path),
                "shutdown" => self.shutdown(value, &path),
                "schedule" => schedule = self.doc.text(value, &path).map(|cron| (cron, path)),
                "schedule_timezone" | "schedule_max_concurrent" => {} // read with `schedule`
                "user" | "group" => self.doc.because(&path, "pm runs sidecars as its own user"),
                "stdout" | "stderr" | "logging" => self.doc.because(&path, "pm keeps its own logs"),
                _ => self.doc.skip(&path, None),
            }
        }
        if self.def.command.first().is_none_or(String::is_empty) {
            self.doc.because(&self.path, "no `command`: nothing to run");
            return None;
        }
        self.def.autostart = enabled && running;
        if oneshot {
            // A one-shot is never restarted; its dependents wait for it to finish.
            self.def.restart = RestartPolicy::Never;
            self.def.ready = Readiness::Exited;
            if self.def.health.take().is_some() {
                self.doc.because(&at(&self.path, "health_check"), "a one-shot has no health check in pm");
            }
        }
        if let Some((cron, path)) = schedule {
            self.schedule(process, &cron, &path, enabled);
        }
        if self.def.ready != Readiness::Started && self.def.ready != Readiness::Exited {
            self.def.ready_timeout = self.global.dependency_timeout;
        }
        Some(deps)
    }

    fn env(&mut self, value: &Value, path: &[Seg]) {
        let Value::Mapping(env) = value else {
            self.doc.wrong(path, "a mapping", value);
            return;
        };
        for (var, value) in env {
            let var = key_text(var);
            if let Some(value) = self.doc.text(value, &at(path, var.as_str())) {
                self.def.env.insert(var, value);
            }
        }
    }

    /// `health_check`: a tcp, http or exec probe; also the readiness dependents wait for,
    /// unless `mode: liveness`. A failed check restarts the process.
    fn health_check(&mut self, value: &Value, path: &[Seg]) {
        let Some(check) = self.doc.fields(value, path) else {
            return;
        };
        // PHPeek PM's defaults.
        let mut table = HealthTable {
            initial_delay: Some(Duration::from_secs(5)),
            interval: Some(Duration::from_secs(10)),
            timeout: Some(Duration::from_secs(3)),
            ..HealthTable::default()
        };
        let (mut kind, mut address, mut url, mut command, mut status, mut mode) =
            (None, None, None, None, 200, "both".to_string());
        for (key, at, value) in check {
            let seconds = |doc: &mut Doc<'_>| doc.seconds(value, &at).filter(|d| !d.is_zero());
            let threshold = |doc: &mut Doc<'_>| doc.number(value, &at, MAX_THRESHOLD.into()).filter(|&n| n > 0);
            match key.as_str() {
                "type" => kind = self.doc.text(value, &at),
                "address" => address = self.doc.text(value, &at),
                "url" => url = self.doc.text(value, &at),
                "command" => command = self.doc.strings(value, &at, false),
                "initial_delay" => table.initial_delay = seconds(self.doc).or(table.initial_delay),
                "period" => table.interval = seconds(self.doc).or(table.interval),
                "timeout" => table.timeout = seconds(self.doc).or(table.timeout),
                "failure_threshold" => table.failure_threshold = threshold(self.doc).map(|n| n as u32),
                "success_threshold" => table.success_threshold = threshold(self.doc).map(|n| n as u32),
                "expected_status" => status = self.doc.number(value, &at, 599).unwrap_or(status),
                "mode" => mode = self.doc.text(value, &at).unwrap_or(mode),
                _ => self.doc.skip(&at, None),
            }
        }
        let ready = match kind.as_deref() {
            Some("tcp") => address.map(|a| {
                table.tcp = Some(a.clone());
                Readiness::Tcp(a)
            }),
            Some("http") => url.map(|u| {
                table.http = Some(u.clone());
                table.status = Some(status as u16);
                Readiness::Http(u)
            }),
            Some("exec") => command.filter(|c| !c.is_empty()).map(|c| {
                table.exec = Some(c.clone());
                Readiness::Exec(c)
            }),
            _ => {
                self.doc
                    .because(path, "expected `type: tcp` with `address`, `http` with `url` or `exec` with `command`");
                return;
            }
        };
        let Some(ready) = ready else {
            self.doc.because(path, "the check's address, url or command is missing");
            return;
        };
        let Some(health) = self.doc.health(table, path) else { return };
        self.def.health = Some(health);
        match mode.as_str() {
            "both" | "readiness" => self.def.ready = ready,
            "liveness" => {}
            other => self.doc.because(&at(path, "mode"), format!("`{other}`: expected liveness, readiness or both")),
        }
    }

    /// `shutdown`: `signal`, `timeout` and a `pre_stop_hook`.
    fn shutdown(&mut self, value: &Value, path: &[Seg]) {
        let Some(shutdown) = self.doc.fields(value, path) else {
            return;
        };
        for (key, at, value) in shutdown {
            match key.as_str() {
                "signal" => {
                    let signal = self.doc.text(value, &at).and_then(|s| self.doc.signal(&s, &at));
                    self.def.stop_signal = signal.unwrap_or(self.def.stop_signal.clone());
                }
                "timeout" => self.def.stop_timeout = self.doc.seconds(value, &at).unwrap_or(self.def.stop_timeout),
                "kill_signal" if self.doc.text(value, &at).as_deref() == Some("SIGKILL") => {}
                "kill_signal" => self.doc.because(&at, "pm kills with SIGKILL"),
                "pre_stop_hook" => self.def.hooks.pre_stop = hook(self.doc, value, &at, self.def.cwd.as_deref()),
                _ => self.doc.skip(&at, None),
            }
        }
    }

    /// `schedule` (five cron fields): the process runs when a `schedule` task sidecar starts it,
    /// not at start-up.
    fn schedule(&mut self, process: &Mapping, cron: &str, path: &[Seg], enabled: bool) {
        let tz = process.get("schedule_timezone").and_then(Value::as_str).unwrap_or("UTC");
        let tz = match tz {
            "Local" => {
                self.doc.because(&at(&self.path, "schedule_timezone"), "pm's schedule runs in UTC, not local time");
                "UTC"
            }
            tz => tz,
        };
        // 0: no limit; 1: a run is skipped while the last one goes on.
        let limit = process.get("schedule_max_concurrent").and_then(Value::as_u64).unwrap_or(0);
        if limit > 1 {
            self.doc.because(&at(&self.path, "schedule_max_concurrent"), "pm's schedule overlaps runs without a limit");
        }
        let Some(name) = self.doc.name(&format!("{}-schedule", self.name), path) else { return };
        match tree::schedule(self.name, cron, Some(tz), tree::Act::Start { overlap: limit != 1 }) {
            Ok(mut scheduler) => {
                scheduler.autostart = enabled;
                self.def.autostart = false;
                self.def.restart = RestartPolicy::Never;
                self.def.ready = Readiness::Exited;
                self.extra = Some((name, scheduler));
            }
            Err(e) => self.doc.because(path, e),
        }
    }
}

/// A hook: `command` (a list), `timeout` (30s), `env`, and `name` (in `PHPEEK_PM_HOOK_NAME`).
fn hook(doc: &mut Doc<'_>, value: &Value, path: &[Seg], cwd: Option<&std::path::Path>) -> Option<Hook> {
    let hook = doc.fields(value, path)?;
    let mut out = Hook { command: Vec::new(), timeout: Duration::from_secs(30), env: BTreeMap::new() };
    for (key, at, value) in hook {
        match key.as_str() {
            "name" => {
                let name = doc.text(value, &at).unwrap_or_default();
                out.env.insert("PHPEEK_PM_HOOK_NAME".into(), name);
            }
            "command" => out.command = doc.strings(value, &at, false).unwrap_or_default(),
            "timeout" => out.timeout = doc.seconds(value, &at).filter(|d| !d.is_zero()).unwrap_or(out.timeout),
            "env" => {
                if let Value::Mapping(env) = value {
                    for (var, value) in env {
                        let var = key_text(var);
                        out.env.extend(doc.text(value, &tree::at(&at, var.as_str())).map(|v| (var, v)));
                    }
                } else {
                    doc.wrong(&at, "a mapping", value);
                }
            }
            "working_dir" if doc.text(value, &at).map(|d| doc.anchored(&d)).as_deref() == cwd => {}
            "working_dir" => doc.because(&at, "pm runs a hook in its sidecar's working directory"),
            // pm goes on with a stop whatever its pre_stop hook does.
            "continue_on_error" => {}
            _ => doc.skip(&at, None),
        }
    }
    if out.command.first().is_none_or(String::is_empty) {
        doc.because(path, "no `command`");
        return None;
    }
    Some(out)
}

/// The global hooks: `pre-start` ones as one-shot sidecars run in turn before every process,
/// `post-start` ones as one-shots that wait for every process to start.
fn global_hooks(doc: &mut Doc<'_>, value: &Value, sidecars: &mut Vec<(String, Definition)>) {
    let path = key!["hooks"];
    let Some(hooks) = doc.fields(value, &path) else {
        return;
    };
    let processes: Vec<String> = sidecars.iter().filter(|(_, d)| d.autostart).map(|(n, _)| n.clone()).collect();
    for (key, at_kind, value) in hooks {
        let after = match key.as_str() {
            "pre-start" => false,
            "post-start" => true,
            "pre-stop" | "post-stop" => {
                doc.because(&at_kind, "pm has no hooks around the daemon's own stop");
                continue;
            }
            _ => {
                doc.skip(&at_kind, None);
                continue;
            }
        };
        let Value::Sequence(list) = value else {
            doc.wrong(&at_kind, "a list of hooks", value);
            continue;
        };
        let mut previous: Option<String> = None;
        for (i, item) in list.iter().enumerate() {
            let at_hook = at(&at_kind, i);
            let Some((name, def)) = one_shot(doc, &key, item, &at_hook, i) else { continue };
            let mut def = def;
            if after {
                def.depends_on = processes.clone();
            } else {
                def.depends_on.extend(previous.clone());
                previous = Some(name.clone());
            }
            sidecars.push((name, def));
        }
        if let Some(last) = previous {
            for (name, def) in sidecars.iter_mut() {
                if processes.contains(name) {
                    def.depends_on.push(last.clone());
                }
            }
        }
    }
}

/// A global hook as a one-shot sidecar `<kind>-<name>` (or `<kind>-<n>`): `retry` restarts
/// it that many times, `retry_delay` apart; `timeout` bounds the wait for it to finish.
fn one_shot(doc: &mut Doc<'_>, kind: &str, item: &Value, path: &[Seg], index: usize) -> Option<(String, Definition)> {
    let Value::Mapping(spec) = item else {
        doc.wrong(path, "a mapping", item);
        return None;
    };
    let label = spec.get("name").and_then(tree::scalar).unwrap_or_else(|| (index + 1).to_string());
    let name = doc.name(&format!("{kind}-{label}"), &at(path, "name"))?;
    // The hook's own keys, without those a sidecar has instead.
    let mut own = spec.clone();
    let (retry, delay, cwd) = (own.remove("retry"), own.remove("retry_delay"), own.remove("working_dir"));
    if let Some(continue_on_error) = own.remove("continue_on_error")
        && continue_on_error.as_bool() != Some(false)
    {
        doc.because(&at(path, "continue_on_error"), "the processes wait for it to succeed");
    }
    let hook = hook(doc, &Value::Mapping(own), path, None)?;
    let mut def = Definition::new(hook.command);
    def.env = hook.env;
    def.ready = Readiness::Exited;
    def.ready_timeout = hook.timeout;
    def.restart = RestartPolicy::Never;
    if let Some(retry) = retry.and_then(|r| doc.number(&r, &at(path, "retry"), u32::MAX.into())).filter(|&n| n > 0) {
        restart_at_most(&mut def, RestartPolicy::OnFailure, retry as u32);
        let delay = delay.and_then(|d| doc.seconds(&d, &at(path, "retry_delay"))).unwrap_or_default();
        def.backoff_initial = delay;
        def.backoff_max = delay;
    }
    def.cwd = cwd.and_then(|d| doc.text(&d, &at(path, "working_dir"))).map(|d| doc.anchored(&d));
    settle_cwd(&mut def, doc.dir);
    Some((name, def))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::discover::sources::testing::{Subject, listed, names, sidecar, strings};

    pub const SUBJECT: Subject = Subject { read, file: "phpeek-pm.yaml", fixture: "phpeek" };
    use pm_protocol::{Health, OnUnhealthy, Probe, RuntimeKind};
    use std::path::Path;

    /// A process of the fixture with its `global` settings.
    fn process(command: &[&str], dir: &Path) -> Definition {
        let mut def = Definition::new(strings(command));
        def.restart = RestartPolicy::OnFailure;
        def.max_restarts = 5;
        def.restart_window = pm_protocol::duration::MAX;
        def.backoff_initial = Duration::from_secs(2);
        def.backoff_max = Duration::from_secs(30);
        def.stop_timeout = Duration::from_secs(30);
        def.cwd = Some(dir.to_path_buf());
        def
    }

    fn health(probe: Probe, initial: u64, interval: u64) -> Health {
        Health {
            probe,
            interval: Duration::from_secs(interval),
            timeout: Duration::from_secs(3),
            initial_delay: Duration::from_secs(initial),
            failure_threshold: 3,
            success_threshold: 1,
            on_unhealthy: OnUnhealthy::Restart,
        }
    }

    #[test]
    fn the_fixture_translates_process_by_process() {
        let (dir, t) = SUBJECT.fixture();
        let all = ["cache", "app", "queue", "report", "report-schedule", "horizon", "pre-start-migrate"];
        assert_eq!(names(&t), [&all[..], &["post-start-warm-cache"]].concat());
        let def = |name: &str| sidecar(&t, name);

        let mut cache = process(&["python3", "-m", "http.server", "18762", "--bind", "127.0.0.1"], &dir);
        cache.restart = RestartPolicy::Always;
        cache.health = Some(health(Probe::Tcp("127.0.0.1:18762".into()), 1, 2));
        cache.ready = Readiness::Tcp("127.0.0.1:18762".into());
        cache.ready_timeout = Duration::from_secs(60);
        cache.stop_signal = "SIGINT".into();
        cache.stop_timeout = Duration::from_secs(5);
        cache.depends_on = strings(&["pre-start-migrate"]);
        assert_eq!(def("cache"), &cache);

        let check = "python3 -c \"import socket; socket.create_connection(('127.0.0.1', 18762))\"";
        let line = format!("{check} && echo \"app $APP_ENV\" >> record.log; exec sleep 3600");
        let mut app = process(&["sh", "-c", &line], &dir);
        app.depends_on = strings(&["cache", "pre-start-migrate"]);
        app.env = [("APP_ENV".to_string(), "testing".to_string())].into();
        app.health = Some(health(Probe::Exec(strings(&["test", "-f", "record.log"])), 5, 10));
        app.stop_timeout = Duration::from_secs(10);
        let env = [("PHPEEK_PM_HOOK_NAME".to_string(), "drain".to_string())].into();
        let drain = strings(&["sh", "-c", "echo draining >> record.log"]);
        app.hooks.pre_stop = Some(Hook { command: drain, timeout: Duration::from_secs(5), env });
        assert_eq!(def("app"), &app);

        let mut queue = process(&["sh", "-c", "echo queue worker up; exec sleep 3600"], &dir);
        queue.instances = 2;
        queue.depends_on = strings(&["app", "pre-start-migrate"]);
        assert_eq!(def("queue"), &queue);

        let mut report = process(&["python3", "-c", "print('nightly report')"], &dir);
        report.restart = RestartPolicy::Never;
        report.ready = Readiness::Exited;
        report.autostart = false;
        assert_eq!(def("report"), &report);
        let scheduler = def("report-schedule");
        assert_eq!(scheduler.runtime, RuntimeKind::Task);
        let cron = ["schedule", "--cron", "0 0 3 * * *", "--tz", "Europe/Paris", "--start", "report", "--overlap"];
        assert_eq!(scheduler.command, strings(&cron));
        assert_eq!(scheduler.depends_on, strings(&["pre-start-migrate"]));

        let mut horizon = process(&["php", "artisan", "horizon"], &dir);
        horizon.restart = RestartPolicy::Never;
        horizon.autostart = false;
        assert_eq!(def("horizon"), &horizon);

        let mut migrate = Definition::new(strings(&["sh", "-c", "echo migrated >> record.log"]));
        migrate.env = [("PHPEEK_PM_HOOK_NAME".to_string(), "migrate".to_string())].into();
        migrate.ready = Readiness::Exited;
        migrate.ready_timeout = Duration::from_secs(60);
        migrate.restart = RestartPolicy::OnFailure;
        migrate.max_restarts = 2;
        migrate.restart_window = pm_protocol::duration::MAX;
        migrate.backoff_initial = Duration::from_secs(1);
        migrate.backoff_max = Duration::from_secs(1);
        migrate.cwd = Some(dir.clone());
        assert_eq!(def("pre-start-migrate"), &migrate);

        let mut warm = Definition::new(strings(&["sh", "-c", "echo warmed >> record.log"]));
        warm.env = [("PHPEEK_PM_HOOK_NAME".to_string(), "warm-cache".to_string())].into();
        warm.ready = Readiness::Exited;
        warm.restart = RestartPolicy::Never;
        warm.depends_on = strings(&["cache", "app", "queue", "report-schedule"]);
        warm.cwd = Some(dir.clone());
        assert_eq!(def("post-start-warm-cache"), &warm);

        assert_eq!(
            listed(&t),
            [
                "global.log_format (12)",
                "global.metrics_port (13)",
                "hooks.pre-stop (25): pm has no hooks around the daemon's own stop",
                "processes.queue.user (69): pm runs sidecars as its own user",
                "processes.queue.logging (70): pm keeps its own logs",
                "processes.report.heartbeat (79)",
            ]
        );
    }

    #[test]
    fn files_that_are_not_phpeek_files_are_errors() {
        SUBJECT.errors(&[
            ("", "expected a PHPeek PM file (a mapping with `processes`), found nothing"),
            ("global: {}\n", "no `processes`: not a PHPeek PM file"),
            ("processes: [a]\n", "processes: expected a mapping of processes, found a list"),
            ("processes:\n\t- x", "found character that cannot start any token"),
        ]);
    }

    #[test]
    fn odd_values_are_reported_and_defaults_follow_phpeek() {
        let (t, listed) = SUBJECT.one(
            "global: {restart_backoff: 3, max_restart_attempts: 0, restart_policy: sometimes}\nprocesses:\n  a:\n    \
             enabled: true\n    command: \"php -v\"\n  b:\n    enabled: true\n    command: [x]\n    priority: 99999\n    \
             scale: 0\n    depends_on: [a, ghost]\n    health_check: {type: http, url: 'https://x/', interval: 5}\n    \
             shutdown: {signal: SIGWHAT, kill_signal: SIGQUIT}\n    type: forever\n  c:\n    enabled: true\n    \
             type: oneshot\n    command: [y]\n    health_check: {type: exec, command: [z]}\n    \
             schedule: 'bad cron'\n  ${NOPE}: {command: [w]}\n",
        );
        let def = |name: &str| sidecar(&t, name);
        let b = def("b");
        assert_eq!(
            (b.restart, b.max_restarts, b.backoff_initial, b.backoff_max),
            (RestartPolicy::Always, u32::MAX, Duration::from_secs(3), Duration::from_secs(36))
        );
        assert_eq!((b.instances, b.priority, b.depends_on.len()), (1, 0, 0), "`a` is not translated");
        assert_eq!((def("c").ready.clone(), def("c").health.clone()), (Readiness::Exited, None));
        assert_eq!(t.sidecars.len(), 3);
        assert_eq!(
            listed,
            [
                "global.restart_policy (1): `sometimes`: expected always, on-failure or never",
                "processes.a (3): no `command`: nothing to run",
                "processes.a.command (5): expected a list of strings, found a string",
                "processes.b.priority (9): pm's priorities are from -10000 to 10000",
                "processes.b.depends_on[0] (11): no process `a` is translated",
                "processes.b.depends_on[1] (11): no process `ghost` is translated",
                "processes.b.health_check.interval (12)",
                "processes.b.health_check (12): `https://x/` is not a plain http:// URL (https is not supported by http checks; use a tcp check)",
                "processes.b.shutdown.signal (13): unknown signal `SIGWHAT` (expected a name or number such as SIGTERM, TERM, INT, 15)",
                "processes.b.shutdown.kill_signal (13): pm kills with SIGKILL",
                "processes.b.type (14): expected oneshot or longrun",
                "processes.c.health_check (19): a one-shot has no health check in pm",
                "processes.c.schedule (20): cron `bad cron`: The 'Minutes' field does not support using names. 'bad' specified.",
                "processes.${NOPE} (21): named `nope` in pm",
            ]
        );
    }
}
