//! process-compose files (`process-compose.yaml`): each process becomes a sidecar. Commands run
//! through the file's shell (`bash -c` unless `shell` or `COMPOSE_SHELL` says otherwise), as
//! process-compose runs them; `${VAR}`s are filled from the environment and `.env`, and
//! `{{.VAR}}` templates from `vars`.

use super::expand::{self, SHELL_LIKE, Vars};
use super::tree::{self, Doc, at, is_extension, key_text, restart_at_most, restart_without_end, scalar, settle_cwd};
use super::waits::{self, Wait};
use crate::config::{ConfigError, Format, Seg, key};
use crate::discover::{SourceFile, Translated};
use pm_protocol::definition::MAX_INSTANCES;
use pm_protocol::health::{HealthTable, MAX_THRESHOLD};
use pm_protocol::{Definition, Hook, Readiness, RestartPolicy};
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;
use std::time::Duration;

pub fn read(file: &SourceFile<'_>) -> Result<Translated, ConfigError> {
    let mut doc = Doc::new(file, Format::Yaml);
    let mut root = doc.parse()?;
    let top = doc.mapping(&root, &[], "a process-compose file (a mapping with `processes`)")?;
    if top.get("disable_env_expansion").and_then(Value::as_bool) != Some(true) {
        // process-compose reads `.env` before the environment for its `${VAR}`s.
        expand::tree(&mut doc, &mut root, &[], &Vars::with_dotenv(file.dir, true), &SHELL_LIKE);
    }
    let top = doc.mapping(&root, &[], "a process-compose file (a mapping with `processes`)")?;
    let mut project = Project {
        shell: vec![std::env::var("COMPOSE_SHELL").unwrap_or_else(|_| "bash".into()), "-c".into()],
        env: Vec::new(),
        vars: Mapping::new(),
    };
    let mut processes = None;
    for (key, value) in top {
        let key = key_text(key);
        let path = key![key.as_str()];
        match key.as_str() {
            "processes" => processes = Some(value),
            "environment" => project.env = environment(&mut doc, value, &path),
            "shell" => project.shell(&mut doc, value, &path),
            "vars" => match value {
                Value::Mapping(vars) => project.vars = vars.clone(),
                other => doc.wrong(&path, "a mapping", other),
            },
            // pm always stops dependents before what they depend on.
            "ordered_shutdown" | "disable_env_expansion" | "version" => {}
            k if is_extension(k) => {}
            "log_location" | "log_level" | "log_length" | "log_configuration" | "log_format" => {
                doc.because(&path, "pm keeps its own logs")
            }
            "extends" => doc.because(&path, "pm reads one file: discover the extended one too"),
            _ => doc.skip(&path, None),
        }
    }
    let processes = processes.ok_or_else(|| doc.src.invalid(key![], "no `processes`: not a process-compose file"))?;
    let processes = doc.mapping(processes, &[Seg::from("processes")], "a mapping of processes")?;

    let mut sidecars = Vec::new();
    let mut edges = Vec::new();
    for (key, value) in processes {
        let Some((raw, path, process, name)) = doc.named_entry("processes", key, value) else { continue };
        let def = Definition::new(Vec::new());
        let mut p = Process { doc: &mut doc, project: &project, raw: &raw, name: &name, path, def, scheduler: None };
        let Some(deps) = p.translate(process) else { continue };
        let (mut def, scheduler) = (p.def, p.scheduler);
        settle_cwd(&mut def, file.dir);
        sidecars.push((raw.clone(), name, def));
        edges.push(deps);
        if let Some((name, def)) = scheduler {
            sidecars.push((String::new(), name, def));
            edges.push(Vec::new());
        }
    }

    let mut waits = Vec::new();
    for (dependent, deps) in edges.into_iter().enumerate() {
        for (dep, condition, path) in deps {
            let Some(at) = sidecars.iter().position(|(raw, ..)| *raw == dep) else {
                doc.because(&path, format!("no process `{dep}` is translated"));
                continue;
            };
            let own = sidecars[at].2.ready.clone();
            let ready = match (condition.as_str(), &own) {
                ("process_started", _) => Readiness::Started,
                ("process_completed_successfully", _) => Readiness::Exited,
                ("process_completed", _) => {
                    doc.because(&path, "pm waits for a successful exit");
                    Readiness::Exited
                }
                ("process_healthy", Readiness::Exec(_) | Readiness::Http(_)) => own,
                ("process_log_ready", Readiness::Log(_)) => own,
                ("process_healthy" | "process_log_ready", _) => {
                    let what = if condition == "process_healthy" { "readiness_probe" } else { "ready_log_line" };
                    doc.because(&path, format!("`{dep}` has no {what}: waits for it to start"));
                    Readiness::Started
                }
                (other, _) => {
                    doc.because(&path, format!("unknown condition `{other}`: waits for it to start"));
                    Readiness::Started
                }
            };
            let dep_name = sidecars[at].1.clone();
            sidecars[dependent].2.depends_on.push(dep_name);
            waits.push(Wait { dep: at, ready, path });
        }
    }
    let mut sidecars: Vec<(String, Definition)> = sidecars.into_iter().map(|(_, name, def)| (name, def)).collect();
    waits::settle(&mut doc, &mut sidecars, &waits);
    Ok(Translated { sidecars, untranslated: doc.untranslated() })
}

/// What the top of the file gives every process.
struct Project {
    /// The shell and its argument that run a `command` string.
    shell: Vec<String>,
    /// `environment`, below each process's own.
    env: Vec<(String, String)>,
    /// `vars` for `{{.VAR}}` templates, below each process's own.
    vars: Mapping,
}

impl Project {
    fn shell(&mut self, doc: &mut Doc<'_>, value: &Value, path: &[Seg]) {
        let Some(shell) = doc.fields(value, path) else {
            return;
        };
        for (key, at, value) in shell {
            match key.as_str() {
                "shell_command" => self.shell[0] = doc.text(value, &at).unwrap_or(self.shell[0].clone()),
                "shell_argument" => self.shell[1] = doc.text(value, &at).unwrap_or(self.shell[1].clone()),
                _ => doc.skip(&at, None),
            }
        }
    }
}

/// A list of `KEY=value`.
fn environment(doc: &mut Doc<'_>, value: &Value, path: &[Seg]) -> Vec<(String, String)> {
    let Some(entries) = doc.strings(value, path, false) else { return Vec::new() };
    let mut out = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        match entry.split_once('=') {
            Some((var, value)) => out.push((var.to_string(), value.to_string())),
            None => doc.because(&at(path, i), "expected `KEY=value`"),
        }
    }
    out
}

/// One process being translated.
struct Process<'d, 'a> {
    doc: &'d mut Doc<'a>,
    project: &'d Project,
    raw: &'d str,
    /// Its pm name.
    name: &'d str,
    path: Vec<Seg>,
    def: Definition,
    /// The sidecar that starts it on its `schedule`.
    scheduler: Option<(String, Definition)>,
}

/// `depends_on`: (process, condition, key path).
type Deps = Vec<(String, String, Vec<Seg>)>;

impl Process<'_, '_> {
    /// Translates the process; `None` when it has nothing to run.
    fn translate(&mut self, process: &Mapping) -> Option<Deps> {
        let get = |key: &str| process.get(key);
        let mut vars = self.project.vars.clone();
        if let Some(own) = get("vars") {
            match own {
                Value::Mapping(own) => vars.extend(own.clone()),
                other => self.doc.wrong(&self.at("vars"), "a mapping", other),
            }
        }
        let render = get("is_template_disabled").and_then(Value::as_bool) != Some(true);
        let templates = Templates { vars: &vars };
        // process-compose sets these in every process's environment.
        self.def.env.insert("PC_PROC_NAME".into(), self.raw.to_string());
        self.def.env.insert("PC_REPLICA_NUM".into(), "${PM_INSTANCE}".into());
        self.def.env.extend(self.project.env.iter().cloned());
        self.def.restart = RestartPolicy::Never;

        let (mut command, mut entrypoint, mut env_file, mut deps) = (None, None, None, Vec::new());
        let (mut readiness, mut liveness) = (None, None);
        for (key, value) in process {
            let key = key_text(key);
            let path = self.at(&key);
            match key.as_str() {
                k if is_extension(k) => {}
                "vars" | "is_template_disabled" | "is_dotenv_disabled" => {}
                "command" => {
                    command = self
                        .doc
                        .text(value, &path)
                        .map(|c| if render { templates.render(self.doc, &c, &path) } else { c })
                }
                "entrypoint" => entrypoint = self.doc.strings(value, &path, false),
                "working_dir" => {
                    let dir = self.doc.text(value, &path).map(|d| templates.render(self.doc, &d, &path));
                    self.def.cwd = dir.map(|d| self.doc.anchored(&d));
                }
                "environment" => {
                    let env = environment(self.doc, value, &path);
                    for (i, (var, value)) in env.into_iter().enumerate() {
                        let value = templates.render(self.doc, &value, &at(&path, i));
                        self.def.env.insert(var, value);
                    }
                }
                "env_file" => env_file = self.doc.text(value, &path),
                "depends_on" => deps = self.depends_on(value, &path),
                "readiness_probe" => readiness = self.probe(value, &path, &templates),
                "liveness_probe" => liveness = self.probe(value, &path, &templates),
                "ready_log_line" => {
                    if let Some(line) = self.doc.text(value, &path) {
                        self.def.ready = Readiness::Log(regex::escape(&line));
                    }
                }
                "availability" => self.availability(value, &path),
                "shutdown" => self.shutdown(value, &path),
                "replicas" => {
                    self.def.instances =
                        self.doc.number(value, &path, MAX_INSTANCES.into()).map_or(1, |n| n.max(1) as u32)
                }
                "disabled" => self.def.autostart = !self.doc.flag(value, &path).unwrap_or(false),
                "is_disabled" => match self.doc.text(value, &path).as_deref() {
                    Some("true") => self.def.autostart = false,
                    Some("false") => {}
                    _ => self.doc.because(&path, "pm takes `true` or `false` only"),
                },
                "namespace" => {
                    for (i, group) in self.doc.strings(value, &path, true).unwrap_or_default().iter().enumerate() {
                        let at = if matches!(value, Value::Sequence(_)) { at(&path, i) } else { path.clone() };
                        if let Some(group) = self.group(group, &at) {
                            self.def.groups.push(group);
                        }
                    }
                }
                "success_exit_codes" => {
                    let codes = self.doc.strings(value, &path, false).unwrap_or_default();
                    let codes: Result<Vec<i32>, _> = codes.iter().map(|c| c.parse::<u8>().map(i32::from)).collect();
                    match codes {
                        // 0 always counts in process-compose.
                        Ok(codes) => self.def.success_exit_codes.extend(codes.into_iter().filter(|&c| c != 0)),
                        Err(_) => self.doc.because(&path, "exit codes are from 0 to 255"),
                    }
                }
                "schedule" => self.schedule(value, &path),
                "is_daemon" | "launch_timeout_seconds" => {
                    self.doc.because(&path, "pm supervises processes that stay in the foreground")
                }
                "log_location" | "log_configuration" | "disable_ansi_colors" | "truncate_log" => {
                    self.doc.because(&path, "pm keeps its own logs")
                }
                _ => self.doc.skip(&path, None),
            }
        }
        match (command, entrypoint) {
            (Some(command), entrypoint) if !command.is_empty() => {
                if entrypoint.is_some() {
                    self.doc.because(&self.at("entrypoint"), "`command` is run, as process-compose does");
                }
                self.def.command = self.project.shell.iter().cloned().chain([command]).collect();
            }
            (_, Some(argv)) if !argv.first().is_none_or(String::is_empty) => self.def.command = argv,
            _ => {
                self.doc.because(&self.path, "no `command` or `entrypoint`: nothing to run");
                return None;
            }
        }
        // process-compose gives every process the variables of the `.env` beside the file.
        let dotenv = self.doc.anchored(".env");
        if dotenv.is_file() && get("is_dotenv_disabled").and_then(Value::as_bool) != Some(true) {
            self.def.env_file.push(dotenv);
        }
        if let Some(file) = env_file {
            // Relative to the process's working directory, as process-compose reads it.
            let file = match &self.def.cwd {
                Some(cwd) => cwd.join(file).components().collect(),
                None => self.doc.anchored(&file),
            };
            self.def.env_file.push(file);
        }
        self.probes(readiness, liveness);
        Some(deps)
    }

    fn at(&self, key: &str) -> Vec<Seg> {
        at(&self.path, key)
    }

    /// `schedule: {cron, timezone, run_on_start, max_concurrent}`: a `schedule` task sidecar
    /// `<name>-schedule` starts it; it starts by itself only with `run_on_start`.
    fn schedule(&mut self, value: &Value, path: &[Seg]) {
        let Some(schedule) = self.doc.fields(value, path) else {
            return;
        };
        let (mut cron, mut tz, mut run_on_start, mut overlap) = (None, None, false, false);
        for (key, at, value) in schedule {
            match key.as_str() {
                "cron" => cron = self.doc.text(value, &at),
                "timezone" => tz = self.doc.text(value, &at),
                "run_on_start" => run_on_start = self.doc.flag(value, &at).unwrap_or(false),
                "max_concurrent" => overlap = self.doc.number(value, &at, u32::MAX.into()).is_some_and(|n| n > 1),
                "interval" => self.doc.because(&at, "pm's schedules are cron expressions"),
                _ => self.doc.skip(&at, None),
            }
        }
        let Some(cron) = cron else { return };
        if tz.is_none() {
            self.doc.because(path, "no `timezone`: pm's schedule runs in UTC, process-compose in local time");
        }
        let Some(name) = self.doc.name(&format!("{}-schedule", self.name), path) else { return };
        match tree::schedule(self.name, &cron, tz.as_deref(), tree::Act::Start { overlap }) {
            Ok(def) => {
                self.def.autostart = run_on_start;
                self.scheduler = Some((name, def));
            }
            Err(e) => self.doc.because(&at(path, "cron"), e),
        }
    }

    /// A namespace as a pm group.
    fn group(&mut self, namespace: &str, path: &[Seg]) -> Option<String> {
        let group = crate::discover::pm_name(namespace);
        if group.is_empty() {
            self.doc.because(path, format!("`{namespace}` makes no pm group name"));
            return None;
        }
        if group != namespace {
            self.doc.because(path, format!("group `{group}` in pm"));
        }
        Some(group)
    }

    /// `readiness_probe` gives `ready` (and the health check, unless there is a liveness probe);
    /// `liveness_probe` the health check.
    fn probes(
        &mut self,
        readiness: Option<(Readiness, HealthTable, Duration)>,
        liveness: Option<(Readiness, HealthTable, Duration)>,
    ) {
        if let Some((ready, table, timeout)) = &readiness {
            if self.def.ready != Readiness::Started {
                self.doc.because(&self.at("ready_log_line"), "`readiness_probe` is used");
            }
            self.def.ready = ready.clone();
            self.def.ready_timeout = *timeout;
            if liveness.is_some() {
                let why = "checked until ready only: pm's health check is the liveness probe";
                self.doc.because(&self.at("readiness_probe"), why);
            } else {
                self.def.health = self.doc.health(table.clone(), &self.at("readiness_probe"));
            }
        }
        if let Some((_, table, _)) = liveness {
            self.def.health = self.doc.health(table, &self.at("liveness_probe"));
        }
    }

    /// A probe: the readiness it gives, its health check, and how long it may take to pass
    /// (its failures in a row at its period).
    fn probe(
        &mut self,
        value: &Value,
        path: &[Seg],
        templates: &Templates<'_>,
    ) -> Option<(Readiness, HealthTable, Duration)> {
        let Value::Mapping(probe) = value else {
            self.doc.wrong(path, "a mapping", value);
            return None;
        };
        let mut table = HealthTable::default();
        let (mut initial, mut period, mut timeout, mut failures) = (0, 10, 1, 3);
        let mut ready = None;
        for (key, value) in probe {
            let key = key_text(key);
            let at_key = at(path, key.as_str());
            let seconds = |doc: &mut Doc<'_>| doc.number(value, &at_key, pm_protocol::duration::MAX.as_secs());
            match key.as_str() {
                "exec" => ready = self.exec_probe(value, &at_key, templates, &mut table),
                "http_get" => ready = self.http_probe(value, &at_key, templates, &mut table),
                "initial_delay_seconds" => initial = seconds(self.doc).unwrap_or(initial),
                // process-compose takes anything below 1 as its default.
                "period_seconds" => period = seconds(self.doc).filter(|&s| s > 0).unwrap_or(period),
                "timeout_seconds" => timeout = seconds(self.doc).filter(|&s| s > 0).unwrap_or(timeout),
                "success_threshold" => {
                    table.success_threshold =
                        self.doc.number(value, &at_key, MAX_THRESHOLD.into()).filter(|&n| n > 0).map(|n| n as u32)
                }
                "failure_threshold" => {
                    failures =
                        self.doc.number(value, &at_key, MAX_THRESHOLD.into()).filter(|&n| n > 0).unwrap_or(failures)
                }
                _ => self.doc.skip(&at_key, None),
            }
        }
        let Some(ready) = ready else {
            if !probe.contains_key("exec") && !probe.contains_key("http_get") {
                self.doc.because(path, "no `exec` or `http_get` probe");
            }
            return None;
        };
        table.initial_delay = Some(Duration::from_secs(initial));
        table.interval = Some(Duration::from_secs(period));
        table.timeout = Some(Duration::from_secs(timeout));
        table.failure_threshold = Some(failures as u32);
        let wait = initial.saturating_add(period.saturating_add(timeout).saturating_mul(failures));
        let wait = Duration::from_secs(wait).min(pm_protocol::duration::MAX);
        Some((ready, table, wait))
    }

    /// `exec: {command, working_dir}`: the command through the file's shell.
    fn exec_probe(
        &mut self,
        value: &Value,
        path: &[Seg],
        templates: &Templates<'_>,
        table: &mut HealthTable,
    ) -> Option<Readiness> {
        let exec = self.doc.fields(value, path)?;
        let mut command = None;
        for (key, at, value) in exec {
            match key.as_str() {
                "command" => command = self.doc.text(value, &at).map(|c| templates.render(self.doc, &c, &at)),
                "working_dir" => self.doc.because(&at, "pm runs a probe in the process's working directory"),
                _ => self.doc.skip(&at, None),
            }
        }
        let argv: Vec<String> = self.project.shell.iter().cloned().chain([command?]).collect();
        table.exec = Some(argv.clone());
        Some(Readiness::Exec(argv))
    }

    /// `http_get: {host, scheme, path, port, status_code}` as a URL.
    fn http_probe(
        &mut self,
        value: &Value,
        path: &[Seg],
        templates: &Templates<'_>,
        table: &mut HealthTable,
    ) -> Option<Readiness> {
        let http = self.doc.fields(value, path)?;
        let (mut host, mut scheme, mut url_path, mut port) =
            ("127.0.0.1".to_string(), "http".to_string(), "/".to_string(), None);
        for (key, at, value) in http {
            let text = |doc: &mut Doc<'_>| {
                doc.text(value, &at).map(|t| templates.render(doc, &t, &at)).filter(|t| !t.trim().is_empty())
            };
            match key.as_str() {
                "host" => host = text(self.doc).unwrap_or(host),
                "scheme" => scheme = text(self.doc).unwrap_or(scheme),
                "path" => url_path = text(self.doc).unwrap_or(url_path),
                "port" | "num_port" => port = text(self.doc),
                // process-compose checks for 200 unless given another status below 400.
                "status_code" => {
                    table.status = self.doc.number(value, &at, 399).filter(|&s| s >= 100).map(|s| s as u16)
                }
                _ => self.doc.skip(&at, None),
            }
        }
        if scheme != "http" {
            self.doc.because(&at(path, "scheme"), format!("`{scheme}`: pm probes plain http"));
            return None;
        }
        let url = match port {
            Some(port) => format!("http://{host}:{port}{url_path}"),
            None => format!("http://{host}{url_path}"),
        };
        table.status = Some(table.status.unwrap_or(200));
        table.http = Some(url.clone());
        Some(Readiness::Http(url))
    }

    /// `depends_on`: a mapping of processes to `{condition}`.
    fn depends_on(&mut self, value: &Value, path: &[Seg]) -> Deps {
        let Value::Mapping(map) = value else {
            self.doc.wrong(path, "a mapping of processes", value);
            return Vec::new();
        };
        let mut out = Vec::new();
        for (dep, spec) in map {
            let dep = key_text(dep);
            let at_dep = at(path, dep.as_str());
            let mut condition = ("process_started".to_string(), at_dep.clone());
            match spec {
                Value::Mapping(spec) => {
                    for (key, value) in spec {
                        let key = key_text(key);
                        let at_key = at(&at_dep, key.as_str());
                        match key.as_str() {
                            "condition" => {
                                if let Some(text) = self.doc.text(value, &at_key) {
                                    condition = (text, at_key);
                                }
                            }
                            k if is_extension(k) => {}
                            _ => self.doc.skip(&at_key, None),
                        }
                    }
                }
                Value::Null => {}
                other => self.doc.wrong(&at_dep, "a mapping", other),
            }
            out.push((dep, condition.0, condition.1));
        }
        out
    }

    /// `availability`: `restart`, `backoff_seconds` (a fixed delay, 1s at least) and
    /// `max_restarts` (in all; 0: no end).
    fn availability(&mut self, value: &Value, path: &[Seg]) {
        let Some(availability) = self.doc.fields(value, path) else {
            return;
        };
        let (mut policy, mut backoff, mut max) = (RestartPolicy::Never, 1, 0);
        for (key, at, value) in availability {
            match key.as_str() {
                "restart" => match self.doc.text(value, &at).as_deref() {
                    Some("always") => policy = RestartPolicy::Always,
                    Some("on_failure") => policy = RestartPolicy::OnFailure,
                    Some("no") => policy = RestartPolicy::Never,
                    Some("exit_on_failure") => {
                        policy = RestartPolicy::Never;
                        self.doc.because(&at, "pm does not stop the other sidecars when this one fails");
                    }
                    Some(other) => {
                        self.doc.because(&at, format!("`{other}`: expected always, on_failure, exit_on_failure or no"))
                    }
                    None => {}
                },
                "backoff_seconds" => {
                    backoff = self.doc.number(value, &at, pm_protocol::duration::MAX.as_secs()).unwrap_or(1).max(1)
                }
                "max_restarts" => max = self.doc.number(value, &at, u32::MAX.into()).unwrap_or(0) as u32,
                _ => self.doc.skip(&at, None),
            }
        }
        if policy == RestartPolicy::Never {
            return;
        }
        match max {
            0 => restart_without_end(&mut self.def, policy),
            max => restart_at_most(&mut self.def, policy, max),
        }
        self.def.backoff_initial = Duration::from_secs(backoff);
        self.def.backoff_max = self.def.backoff_initial;
    }

    /// `shutdown`: `signal` (a number), `timeout_seconds`, and `command`, run before the signal
    /// as a `pre_stop` hook.
    fn shutdown(&mut self, value: &Value, path: &[Seg]) {
        let Some(shutdown) = self.doc.fields(value, path) else {
            return;
        };
        let (mut command, mut timeout) = (None, None);
        for (key, at, value) in shutdown {
            match key.as_str() {
                "signal" => {
                    let signal = self.doc.text(value, &at).and_then(|s| self.doc.signal(&s, &at));
                    self.def.stop_signal = signal.unwrap_or(self.def.stop_signal.clone());
                }
                "timeout_seconds" => timeout = self.doc.seconds(value, &at),
                "command" => command = self.doc.text(value, &at),
                "parent_only" if value.as_bool() == Some(false) => {}
                "parent_only" => self.doc.because(&at, "pm signals the whole process group"),
                _ => self.doc.skip(&at, None),
            }
        }
        if let Some(timeout) = timeout.filter(|t| !t.is_zero()) {
            self.def.stop_timeout = timeout;
        }
        if let Some(command) = command.filter(|c| !c.is_empty()) {
            self.def.hooks.pre_stop = Some(Hook {
                command: self.project.shell.iter().cloned().chain([command]).collect(),
                timeout: timeout.filter(|t| !t.is_zero()).unwrap_or(Duration::from_secs(10)),
                env: BTreeMap::new(),
            });
        }
    }
}

/// `{{.VAR}}` templates (Go's text/template), for the simple form: a variable of `vars`, or
/// `PC_REPLICA_NUM` (pm's `${PM_INSTANCE}`). Anything else is kept as written, and said.
struct Templates<'v> {
    vars: &'v Mapping,
}

impl Templates<'_> {
    fn render(&self, doc: &mut Doc<'_>, text: &str, path: &[Seg]) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            out.push_str(&rest[..open]);
            let Some(close) = rest[open..].find("}}") else { break };
            let action = &rest[open + 2..open + close];
            let value =
                action.trim().strip_prefix('.').filter(|v| v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            let found = value.and_then(|var| match var {
                "PC_REPLICA_NUM" => Some("${PM_INSTANCE}".to_string()),
                _ => self.vars.get(var).and_then(scalar),
            });
            match found {
                Some(value) => out.push_str(&value),
                _ => {
                    doc.because(path, format!("template `{{{{{action}}}}}`: kept as written"));
                    out.push_str(&rest[open..open + close + 2]);
                }
            }
            rest = &rest[open + close + 2..];
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
pub(super) mod tests;
