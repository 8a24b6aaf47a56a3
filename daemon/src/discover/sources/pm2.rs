//! PM2 ecosystem files: `ecosystem.config.json` / `ecosystem.json` (`{"apps": […]}`, a list of
//! apps, or one app), and `ecosystem.config.js` / `.cjs`, which node evaluates (as PM2 does).
//!
//! Each app is one sidecar, with PM2's own defaults where they differ from pm's: it restarts at
//! once after every exit, gives up after 16 restarts of runs shorter than `min_uptime` (1s),
//! stops with SIGINT and kills 1.6s later, and sets `NODE_APP_INSTANCE` to the instance's number.

mod interpreter;
mod node;
mod outline;
mod values;

use crate::config::{ConfigError, Format, Seg, Source, anchored, key_path};
use interpreter::{by_extension, is_binary, on_path};
use values::{instances, int, memory, millis, scalar, split, stime};

use crate::discover::{SourceFile, Translated, Untranslated, pm_name};
use pm_protocol::{Definition, PortSpec, RestartPolicy};
use serde_json::{Map, Value};
use std::path::Path;
use std::time::Duration;

/// PM2's defaults that pm's differ from.
const MAX_RESTARTS: u32 = 16;
const MIN_UPTIME: Duration = Duration::from_secs(1);
const STOP_SIGNAL: &str = "SIGINT";
const KILL_TIMEOUT: Duration = Duration::from_millis(1600);
/// How far `exp_backoff_restart_delay` grows.
const MAX_BACKOFF: Duration = Duration::from_secs(15);
/// The variable PM2 gives each instance its number in (`instance_var` renames it).
const INSTANCE_VAR: &str = "NODE_APP_INSTANCE";

/// Keys read into something of pm's.
const TRANSLATED: &[&str] = &[
    "name",
    "script",
    "exec",
    "cmd",
    "command",
    "args",
    "interpreter",
    "exec_interpreter",
    "node_args",
    "interpreter_args",
    "interpreterArgs",
    "cwd",
    "env",
    "instances",
    "exec_mode",
    "instance_var",
    "max_memory_restart",
    "restart_delay",
    "exp_backoff_restart_delay",
    "autorestart",
    "autostart",
    "stop_exit_codes",
    "max_restarts",
    "min_uptime",
    "kill_timeout",
    "wait_ready",
    "watch",
    "ignore_watch",
    "watch_delay",
    "port",
    "namespace",
    "cron_restart",
    "cron",
];

/// PM2's keys with no pm equivalent, and why when the key does not say.
const UNTRANSLATED: &[(&str, Option<&str>)] = &[
    ("listen_timeout", Some("PM2 waits this long for a `ready` message or a listening worker; pm waits for neither")),
    ("shutdown_with_message", Some("pm stops with a signal")),
    ("treekill", Some("pm always signals the whole process group")),
    ("kill_retry_time", None),
    ("increment_var", None),
    ("watch_options", Some("chokidar options")),
    ("filter_env", Some("pm passes its own environment on")),
    ("out_file", Some("pm keeps each instance's logs itself (`pm log`)")),
    ("error_file", Some("pm keeps each instance's logs itself (`pm log`)")),
    ("log_file", Some("pm keeps each instance's logs itself (`pm log`)")),
    ("merge_logs", Some("pm keeps each instance's logs itself (`pm log`)")),
    ("combine_logs", Some("pm keeps each instance's logs itself (`pm log`)")),
    ("log_date_format", Some("pm timestamps every log line itself")),
    ("time", Some("pm timestamps every log line itself")),
    ("log_type", None),
    ("disable_logs", None),
    ("pid_file", None),
    ("uid", Some("pm runs sidecars as its own user")),
    ("user", Some("pm runs sidecars as its own user")),
    ("gid", Some("pm runs sidecars as its own user")),
    ("source_map_support", None),
    ("disable_source_map_support", None),
    ("vizion", None),
    ("pmx", None),
    ("automation", None),
    ("trace", None),
    ("disable_trace", None),
    ("v8", None),
    ("event_loop_inspector", None),
    ("deep_monitoring", None),
    ("io", None),
    ("post_update", None),
    ("install_url", None),
    ("force", None),
    ("append_env_to_name", None),
    ("name_prefix", None),
    ("windowsHide", None),
    ("execute_command", None),
    ("username", None),
];

pub fn read(src: &SourceFile<'_>) -> Result<Translated, ConfigError> {
    let root = load(src)?;
    let mut file = File { src, outline: outline::Node::of(src.text), lines: true, out: Translated::default() };
    file.root(&root)?;
    file.out.untranslated.sort_by_key(|u| (u.line.is_none(), u.line));
    Ok(file.out)
}

/// The file's value: JSON as it is, else (or for JavaScript) what node makes of it.
fn load(src: &SourceFile<'_>) -> Result<Value, ConfigError> {
    let name = src.path.file_name().map_or_else(|| src.path.display().to_string(), |n| n.to_string_lossy().into());
    if src.path.extension().is_some_and(|e| e == "json") {
        let strict = Source { file: src.path, text: src.text, format: Format::Json }.parse::<Value>();
        // PM2 evaluates a .json as JavaScript: comments and bare keys are fine there.
        return strict.or_else(|e| node::evaluate(src, node::How::Expression).map_err(|_| e));
    }
    node::evaluate(src, node::How::Module).map_err(|failure| match failure {
        node::Failure::Missing => {
            error(src, None, format!("{name} needs node on PATH to be read (or write ecosystem.config.json)"))
        }
        node::Failure::Failed { message, line } => error(src, line, format!("node cannot evaluate it: {message}")),
    })
}

fn error(src: &SourceFile<'_>, line: Option<usize>, message: String) -> ConfigError {
    ConfigError::Parse { file: src.path.to_path_buf(), line, key: String::new(), message }
}

struct File<'a> {
    src: &'a SourceFile<'a>,
    outline: outline::Node,
    /// Whether the outline's apps are the evaluated ones (same count), so its lines hold.
    lines: bool,
    out: Translated,
}

impl File<'_> {
    fn root(&mut self, root: &Value) -> Result<(), ConfigError> {
        let shape = "an ecosystem file gives `{\"apps\": [...]}`, a list of apps, or one app with a `script`";
        match root {
            Value::Array(apps) => self.apps(apps, Vec::new()),
            Value::Object(map) => {
                let Some(key) = ["apps", "pm2"].into_iter().find(|k| map.contains_key(*k)) else {
                    if !["script", "cmd", "command", "exec"].iter().any(|k| map.contains_key(*k)) {
                        return Err(error(self.src, None, shape.into()));
                    }
                    self.app(map, Vec::new());
                    return Ok(());
                };
                for other in map.keys().filter(|k| *k != key) {
                    let why = match other.as_str() {
                        "apps" | "pm2" => Some("PM2 reads `apps` first".to_string()),
                        "deploy" => Some("pm does not deploy".into()),
                        _ => None,
                    };
                    self.note(&[Seg::Key(other.clone())], why);
                }
                match &map[key] {
                    Value::Array(apps) => self.apps(apps, vec![Seg::Key(key.into())]),
                    Value::Object(app) => self.app(app, vec![Seg::Key(key.into())]),
                    _ => return Err(error(self.src, self.line(&[Seg::Key(key.into())]), shape.into())),
                }
            }
            _ => return Err(error(self.src, None, shape.into())),
        }
        Ok(())
    }

    fn apps(&mut self, apps: &[Value], at: Vec<Seg>) {
        self.lines = self.outline.len(&at) == Some(apps.len());
        for (i, app) in apps.iter().enumerate() {
            let mut here = at.clone();
            here.push(Seg::Index(i));
            match app {
                Value::Object(app) => self.app(app, here),
                _ => self.note(&here, Some("an app is an object".into())),
            }
        }
    }

    fn app(&mut self, app: &Map<String, Value>, at: Vec<Seg>) {
        let mut reader = App { file: self, app, at, notes: Vec::new() };
        let found = reader.translate();
        let App { at, notes, .. } = reader;
        self.out.untranslated.extend(notes);
        let Some((name, def)) = found else { return };
        if self.out.sidecars.iter().any(|(n, _)| *n == name) {
            self.note(&whole(&at, app), Some(format!("a sidecar named `{name}` comes first in this file")));
            return;
        }
        match crate::supervisor::validate(&name, &def) {
            Ok(()) => {
                self.out.sidecars.push((name.clone(), def));
                self.cron_restart(app, &at, &name);
            }
            Err(e) => self.note(&whole(&at, app), Some(e)),
        }
    }

    /// PM2's `cron_restart` (or `cron`): a sidecar `<name>-cron-restart` running pm's `schedule`
    /// task, which restarts the app at each time the expression gives.
    fn cron_restart(&mut self, app: &Map<String, Value>, at: &[Seg], name: &str) {
        let Some((key, value)) = ["cron_restart", "cron"].into_iter().find_map(|k| app.get(k).map(|v| (k, v))) else {
            return;
        };
        let mut path = at.to_vec();
        path.push(Seg::Key(key.into()));
        let Value::String(cron) = value else {
            return self.note(&path, Some("expected a cron expression".into()));
        };
        let scheduler = format!("{name}-cron-restart");
        let def = super::tree::schedule(name, cron, None, super::tree::Act::Restart)
            .and_then(|def| crate::supervisor::validate(&scheduler, &def).map(|()| def));
        match def {
            Ok(def) => self.out.sidecars.push((scheduler, def)),
            Err(e) => self.note(&path, Some(e)),
        }
    }

    fn line(&self, path: &[Seg]) -> Option<usize> {
        self.lines.then(|| self.outline.line(path)).flatten()
    }

    fn note(&mut self, path: &[Seg], why: Option<String>) {
        let note = untranslated(self, path, why);
        self.out.untranslated.push(note);
    }
}

fn untranslated(file: &File<'_>, path: &[Seg], why: Option<String>) -> Untranslated {
    let note = Untranslated::new(key_path(path), file.line(path));
    match why {
        Some(why) => note.because(why),
        None => note,
    }
}

/// The path that names a whole app: its own, or for a file that is one app, its name or script.
fn whole(at: &[Seg], app: &Map<String, Value>) -> Vec<Seg> {
    match at.is_empty() {
        true => vec![Seg::Key(if app.contains_key("name") { "name" } else { "script" }.into())],
        false => at.to_vec(),
    }
}

/// One app being translated.
struct App<'f, 'a> {
    file: &'f File<'a>,
    app: &'f Map<String, Value>,
    at: Vec<Seg>,
    notes: Vec<Untranslated>,
}

impl<'f> App<'f, '_> {
    fn path(&self, key: &str) -> Vec<Seg> {
        let mut path = self.at.clone();
        path.push(Seg::Key(key.into()));
        path
    }

    fn note(&mut self, key: &str, why: impl Into<Option<String>>) {
        let note = untranslated(self.file, &self.path(key), why.into());
        self.notes.push(note);
    }

    fn note_at(&mut self, path: &[Seg], why: String) {
        let note = untranslated(self.file, path, Some(why));
        self.notes.push(note);
    }

    /// The first of `keys` the app has, each other one reported as unused.
    fn first_of(&mut self, keys: &[&'static str]) -> Option<(&'static str, &'f Value)> {
        let app = self.app;
        let mut found: Option<(&'static str, &'f Value)> = None;
        for key in keys {
            let Some(value) = app.get(*key) else { continue };
            match found {
                Some((first, _)) => self.note(key, format!("PM2 uses `{first}`")),
                None => found = Some((key, value)),
            }
        }
        found
    }

    /// The sidecar, unless the app cannot be run (what is wrong is noted).
    fn translate(&mut self) -> Option<(String, Definition)> {
        let dir = self.file.src.dir;
        let cwd = match self.app.get("cwd") {
            None => dir.to_path_buf(),
            Some(Value::String(cwd)) if !cwd.is_empty() => anchored(dir, Path::new(cwd)),
            Some(_) => {
                self.note("cwd", "expected a directory".to_string());
                dir.to_path_buf()
            }
        };
        let Some(command) = self.command(&cwd) else {
            let why = "no `script` to run".to_string();
            let at = whole(&self.at, self.app);
            self.note_at(&at, why);
            return None;
        };
        let mut def = Definition::new(command.argv);
        def.cwd = Some(cwd);
        def.restart = RestartPolicy::Always;
        def.max_restarts = MAX_RESTARTS;
        def.min_uptime = MIN_UPTIME;
        def.stop_signal = STOP_SIGNAL.into();
        def.stop_timeout = KILL_TIMEOUT;
        // PM2 restarts at once unless given a delay.
        def.backoff_initial = Duration::ZERO;
        def.backoff_max = Duration::ZERO;
        def.env.extend(command.env);
        self.env(&mut def);
        self.instances(&mut def, command.node);
        self.restarts(&mut def);
        self.watch(&mut def);
        self.port(&mut def);
        self.rest(&mut def);
        for key in self.app.keys() {
            if key.starts_with("env_") {
                self.note(key, "used by `pm2 start --env NAME` only; pm takes `env`".to_string());
            } else if !TRANSLATED.contains(&key.as_str()) {
                let why = match UNTRANSLATED.iter().find(|(k, _)| k == key) {
                    Some((_, why)) => why.map(String::from),
                    None => Some("not a PM2 key".into()),
                };
                self.note(key, why);
            }
        }
        let name = self.name(command.name)?;
        Some((name, def))
    }

    /// The pm name: PM2's `name`, else the script's file name without its extension.
    fn name(&mut self, from_script: String) -> Option<String> {
        let raw = match self.app.get("name") {
            Some(Value::String(name)) if !name.is_empty() => name.clone(),
            None => from_script,
            Some(_) => {
                self.note("name", "expected a string: named after the script".to_string());
                from_script
            }
        };
        let name = pm_name(&raw);
        let key = if self.app.contains_key("name") { self.path("name") } else { whole(&self.at, self.app) };
        if name.is_empty() {
            self.note_at(&key, format!("no pm name can be made of `{raw}`"));
            return None;
        }
        if name != raw {
            self.note_at(&key, format!("named `{name}` in pm"));
        }
        Some(name)
    }

    /// What PM2 runs: the script with its interpreter (by its extension, as PM2 picks it).
    fn command(&mut self, cwd: &Path) -> Option<Command> {
        let (script_key, script) = self.first_of(&["script", "cmd", "command", "exec"])?;
        let Value::String(script) = script else {
            self.note(script_key, "expected a string".to_string());
            return None;
        };
        let script = script.trim().to_string();
        if script.is_empty() {
            return None;
        }
        let interpreter = self.first_of(&["exec_interpreter", "interpreter"]).map(|(k, v)| (k, v.clone()));
        let interpreter = match interpreter {
            Some((_, Value::String(i))) if !i.trim().is_empty() => Some(i.trim().to_string()),
            Some((key, _)) => {
                self.note(key, "expected a program".to_string());
                None
            }
            None => None,
        };
        let interpreter_args = self.words(&["node_args", "interpreter_args", "interpreterArgs"]);
        let args = self.words(&["args"]);
        let mut env = Vec::new();

        // PM2 runs a script with spaces through the shell, and nothing else.
        if script.contains(' ') {
            let why = "PM2 runs a `script` with spaces as `bash -c SCRIPT`, without it".to_string();
            for key in ["args", "exec_interpreter", "interpreter", "node_args", "interpreter_args", "interpreterArgs"] {
                if self.app.contains_key(key) {
                    self.note(key, why.clone());
                }
            }
            let shell = if on_path("bash") { "bash" } else { "sh" };
            return Some(Command {
                argv: vec![shell.into(), "-c".into(), script.clone()],
                name: script,
                node: false,
                env,
            });
        }

        let file = anchored(cwd, Path::new(&script));
        let program = if file.is_file() { file.to_string_lossy().into_owned() } else { script.clone() };
        let stem = Path::new(&script).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let extension = Path::new(&script).extension().map(|e| format!(".{}", e.to_string_lossy()));
        let interpreter = match interpreter {
            Some(i) if i == "none" => None,
            Some(i) if i.contains("node@") => {
                let key = if self.app.contains_key("exec_interpreter") { "exec_interpreter" } else { "interpreter" };
                self.note(key, "pm does not pick node versions: it runs `node`".to_string());
                Some("node".to_string())
            }
            Some(i) => Some(i),
            None => by_extension(extension.as_deref())
                .or_else(|| (file.is_file() && !is_binary(&file)).then(|| "node".into())),
        };
        let mut argv = Vec::new();
        match &interpreter {
            Some(i) => {
                argv.push(i.clone());
                argv.extend(interpreter_args.iter().cloned());
                if i.contains("python") {
                    env.push(("PYTHONUNBUFFERED".to_string(), "1".to_string()));
                }
            }
            None if !interpreter_args.is_empty() => {
                let key = ["node_args", "interpreter_args", "interpreterArgs"]
                    .into_iter()
                    .find(|k| self.app.contains_key(*k));
                self.note(key.unwrap_or("node_args"), "the script runs without an interpreter".to_string());
            }
            None => {}
        }
        argv.push(program);
        argv.extend(args);
        let node = interpreter.as_deref().is_some_and(|i| i.ends_with("node"));
        Some(Command { argv, name: stem, node, env })
    }

    /// Words of an argv key: a list, or a string split as PM2 splits it.
    fn words(&mut self, keys: &[&'static str]) -> Vec<String> {
        let Some((key, value)) = self.first_of(keys) else { return Vec::new() };
        match value {
            Value::String(line) => split(line),
            Value::Array(items) if items.iter().all(|v| v.is_string() || v.is_number()) => {
                items.iter().map(scalar).collect()
            }
            _ => {
                self.note(key, "expected a string or a list of strings".to_string());
                Vec::new()
            }
        }
    }

    fn env(&mut self, def: &mut Definition) {
        let Some(value) = self.app.get("env") else { return };
        let Value::Object(vars) = value else {
            return self.note("env", "expected an object of variables".to_string());
        };
        for (var, value) in vars {
            let mut path = self.path("env");
            path.push(Seg::Key(var.clone()));
            if var.is_empty() || var.contains(['=', '\0']) {
                self.note_at(&path, "not a variable name".into());
                continue;
            }
            let value = match value {
                Value::Null => {
                    self.note_at(&path, "null: PM2 leaves it out".into());
                    continue;
                }
                Value::String(s) => s.clone(),
                // PM2 passes objects on as JSON, and numbers and booleans as they print.
                other => scalar(other),
            };
            if value.contains('\0') {
                self.note_at(&path, "a NUL byte cannot be passed on".into());
                continue;
            }
            def.env.insert(var.clone(), value);
        }
    }

    fn instances(&mut self, def: &mut Definition, node: bool) {
        if let Some(value) = self.app.get("instances") {
            match instances(value) {
                Ok(n) => def.instances = n,
                Err(why) => self.note("instances", why),
            }
        }
        match self.app.get("exec_mode") {
            Some(Value::String(mode)) if mode.starts_with("cluster") => {
                let why = "pm runs each instance as a process of its own: they do not share a port as PM2's cluster \
                           workers do";
                self.note("exec_mode", why.to_string());
            }
            Some(Value::String(mode)) if mode == "fork" || mode == "fork_mode" => {}
            Some(_) => self.note("exec_mode", "expected `fork` or `cluster`".to_string()),
            // PM2 clusters a node script's instances unless told otherwise.
            None if node && def.instances > 1 => {
                let why = "PM2 runs a node script's instances in cluster mode, sharing its port; pm runs each as a \
                           process of its own";
                self.note("instances", why.to_string());
            }
            None => {}
        }
        let var = match self.app.get("instance_var") {
            Some(Value::String(var)) if !var.is_empty() && !var.contains(['=', '\0']) => var.clone(),
            Some(_) => {
                self.note("instance_var", "not a variable name".to_string());
                INSTANCE_VAR.into()
            }
            None => INSTANCE_VAR.into(),
        };
        def.env.entry(var).or_insert_with(|| "${PM_INSTANCE}".into());
    }

    /// `autorestart`, `stop_exit_codes`, `max_restarts`, `min_uptime` and the restart delays.
    fn restarts(&mut self, def: &mut Definition) {
        match self.app.get("autorestart") {
            None | Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => def.restart = RestartPolicy::Never,
            Some(Value::String(s)) if s == "false" => def.restart = RestartPolicy::Never,
            Some(Value::String(s)) if s == "true" => {}
            Some(_) => self.note("autorestart", "expected true or false".to_string()),
        }
        if let Some(value) = self.app.get("stop_exit_codes") {
            let items = match value {
                Value::Array(items) => items.iter().collect(),
                one => vec![one],
            };
            match items.into_iter().map(int).collect::<Option<Vec<i64>>>() {
                Some(codes) if !codes.is_empty() && codes.iter().all(|c| i32::try_from(*c).is_ok()) => {
                    def.success_exit_codes = codes.into_iter().map(|c| c as i32).collect();
                    if def.restart == RestartPolicy::Always {
                        def.restart = RestartPolicy::OnFailure;
                    }
                }
                _ => self.note("stop_exit_codes", "expected exit codes".to_string()),
            }
        }
        if let Some(value) = self.app.get("max_restarts") {
            match int(value).and_then(|n| u32::try_from(n).ok()) {
                Some(n) => def.max_restarts = n,
                None => self.note("max_restarts", "expected a number of restarts".to_string()),
            }
        }
        if let Some(value) = self.app.get("min_uptime") {
            match stime(value) {
                Ok(d) => def.min_uptime = d,
                Err(why) => self.note("min_uptime", why),
            }
        }
        let exponential = self.app.get("exp_backoff_restart_delay").map(millis);
        let fixed = self.app.get("restart_delay").map(millis);
        match (exponential, fixed) {
            (Some(Ok(first)), fixed) => {
                def.backoff_initial = first;
                def.backoff_max = first.max(MAX_BACKOFF);
                if fixed.is_some() {
                    self.note("restart_delay", "exp_backoff_restart_delay wins over it".to_string());
                }
            }
            (Some(Err(why)), _) => self.note("exp_backoff_restart_delay", why),
            (None, Some(Ok(delay))) => {
                def.backoff_initial = delay;
                def.backoff_max = delay;
            }
            (None, Some(Err(why))) => self.note("restart_delay", why),
            (None, None) => {}
        }
        // PM2 gives up after `max_restarts` runs shorter than `min_uptime` within that many
        // `min_uptime`s of the start; longer runs restart without end.
        def.restart_window = def
            .min_uptime
            .checked_mul(def.max_restarts)
            .unwrap_or(pm_protocol::duration::MAX)
            .min(pm_protocol::duration::MAX);
    }

    fn watch(&mut self, def: &mut Definition) {
        let cwd = def.cwd.clone().unwrap_or_default();
        // Each watched path; `None` for the whole cwd, which PM2 watches for `true` or `[]`.
        let watched: Vec<(Vec<Seg>, Option<&Value>)> = match self.app.get("watch") {
            None | Some(Value::Bool(false)) => Vec::new(),
            Some(Value::Bool(true)) => vec![(self.path("watch"), None)],
            Some(Value::Array(items)) if items.is_empty() => vec![(self.path("watch"), None)],
            Some(Value::Array(items)) => {
                items.iter().enumerate().map(|(i, v)| (index(self.path("watch"), i), Some(v))).collect()
            }
            Some(one) => vec![(self.path("watch"), Some(one))],
        };
        for (path, value) in watched {
            let glob = match value {
                None => Some("**".to_string()),
                Some(Value::String(p)) => self.relative(&cwd, p, &path),
                Some(_) => {
                    self.note_at(&path, "expected a path".into());
                    None
                }
            };
            if let Some(glob) = glob {
                self.glob(def, &cwd, glob, false, &path);
            }
        }
        match self.app.get("ignore_watch") {
            None if !def.watch.is_empty() => {
                // PM2 ignores dot files unless told what to ignore (pm always ignores node_modules).
                def.watch_ignore = vec!["**/.*".into(), "**/.*/**".into()];
            }
            None => {}
            Some(value) => {
                let items: Vec<(Vec<Seg>, &Value)> = match value {
                    Value::Array(items) => {
                        items.iter().enumerate().map(|(i, v)| (index(self.path("ignore_watch"), i), v)).collect()
                    }
                    one => vec![(self.path("ignore_watch"), one)],
                };
                for (path, value) in items {
                    let Value::String(p) = value else {
                        self.note_at(&path, "a regular expression, or not a path: pm takes globs".into());
                        continue;
                    };
                    if let Some(glob) = self.relative(&cwd, p, &path) {
                        self.glob(def, &cwd, glob, true, &path);
                    }
                }
            }
        }
        if let Some(value) = self.app.get("watch_delay") {
            let range = crate::supervisor::watch::MIN_DEBOUNCE..=crate::supervisor::watch::MAX_DEBOUNCE;
            match millis(value) {
                Ok(d) if range.contains(&d) => def.watch_debounce = d,
                Ok(_) => self.note("watch_delay", "pm's watch_debounce is from 10ms to 1h".to_string()),
                Err(why) => self.note("watch_delay", why),
            }
        }
    }

    /// A watched path made relative to cwd, where pm's globs are.
    fn relative(&mut self, cwd: &Path, path: &str, at: &[Seg]) -> Option<String> {
        let p = Path::new(path);
        if !p.is_absolute() {
            return Some(path.to_string());
        }
        match p.strip_prefix(cwd) {
            Ok(rel) if rel.as_os_str().is_empty() => Some("**".into()),
            Ok(rel) => Some(rel.to_string_lossy().into_owned()),
            Err(_) => {
                self.note_at(at, "outside cwd: pm watches under it only".into());
                None
            }
        }
    }

    /// Adds a glob to `watch` (or `watch_ignore`) if pm takes it. An ignored path is ignored with
    /// what is under it, as PM2's watcher does not go into an ignored directory.
    fn glob(&mut self, def: &mut Definition, cwd: &Path, glob: String, ignore: bool, at: &[Seg]) {
        let mut globs = vec![glob.clone()];
        if ignore && !glob.contains(['*', '?', '[', '{', '\\']) {
            globs.push(format!("{}/**", glob.trim_end_matches('/')));
        }
        let mut probe = Definition::new(vec!["-".into()]);
        probe.cwd = Some(cwd.to_path_buf());
        let list = if ignore { &mut probe.watch_ignore } else { &mut probe.watch };
        list.clone_from(if ignore { &def.watch_ignore } else { &def.watch });
        list.extend(globs.iter().cloned());
        match crate::supervisor::watch::check(&probe) {
            Ok(()) if ignore => def.watch_ignore = probe.watch_ignore,
            Ok(()) => def.watch = probe.watch,
            Err(problem) => self.note_at(at, problem.message),
        }
    }

    fn port(&mut self, def: &mut Definition) {
        let Some(value) = self.app.get("port") else { return };
        let Some(port) = int(value).and_then(|n| u16::try_from(n).ok()).filter(|p| *p > 0) else {
            return self.note("port", "expected a port number".to_string());
        };
        // PM2 sets PORT; pm's `port` does too, for one instance (several would each need one).
        def.env.remove("PORT");
        match def.instances {
            1 => def.port = port.to_string().parse::<PortSpec>().ok(),
            _ => {
                def.env.insert("PORT".into(), port.to_string());
            }
        }
    }

    /// `max_memory_restart`, `autostart`, `kill_timeout`, `wait_ready`, `namespace`.
    fn rest(&mut self, def: &mut Definition) {
        if let Some(value) = self.app.get("max_memory_restart") {
            match memory(value) {
                Ok(bytes) => def.max_memory = Some(bytes),
                Err(why) => self.note("max_memory_restart", why),
            }
        }
        match self.app.get("autostart") {
            None => {}
            Some(Value::Bool(on)) => def.autostart = *on,
            Some(_) => self.note("autostart", "expected true or false".to_string()),
        }
        if let Some(value) = self.app.get("kill_timeout") {
            match millis(value) {
                Ok(d) => def.stop_timeout = d,
                Err(why) => self.note("kill_timeout", why),
            }
        }
        match self.app.get("wait_ready") {
            None | Some(Value::Bool(false)) => {}
            Some(_) => {
                let why = "PM2 waits for the app's process.send('ready'); pm has no such message (a readiness probe \
                           or `ready = \"registered\"` does it)";
                self.note("wait_ready", why.to_string());
            }
        }
        match self.app.get("namespace") {
            None => {}
            Some(Value::String(ns)) if ns == "default" => {}
            Some(Value::String(ns)) => match pm_name(ns) {
                group if group.is_empty() => self.note("namespace", format!("no pm group can be made of `{ns}`")),
                group => {
                    if group != *ns {
                        self.note("namespace", format!("group `{group}` in pm"));
                    }
                    def.groups.push(group);
                }
            },
            Some(_) => self.note("namespace", "expected a string".to_string()),
        }
    }
}

/// What an app runs.
struct Command {
    argv: Vec<String>,
    /// The name PM2 gives an app without one.
    name: String,
    /// Run by node (PM2 clusters its instances).
    node: bool,
    /// Variables PM2 adds for the interpreter.
    env: Vec<(String, String)>,
}

fn index(mut path: Vec<Seg>, i: usize) -> Vec<Seg> {
    path.push(Seg::Index(i));
    path
}

#[cfg(test)]
mod tests;
