//! Finding, reading and checking a project file.

use super::document::Document;
use super::errors::{ConfigError, InterpolationError};
use super::locate::{self, Seg, key};
use super::schema::{Probe, ProjectFile};
use super::{DaemonSection, Project, akala, interpolate};
use pm_protocol::health::http_target;
use pm_protocol::vars;
use pm_protocol::{Definition, Endpoint, Probe as HealthProbe, Readiness};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use std::path::{Path, PathBuf};

/// Looks up the variables of `${VAR}` interpolation.
type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The names [`find`] looks for, in order.
pub const FILE_NAMES: [&str; 4] = ["pm.toml", "pm.yaml", "pm.yml", "pm.json"];

/// The project file in `dir`: the first of [`FILE_NAMES`] that exists there.
pub fn find(dir: &Path) -> Result<PathBuf, ConfigError> {
    FILE_NAMES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| ConfigError::NotFound { dir: dir.to_path_buf(), looked_for: FILE_NAMES.to_vec() })
}

/// Reads and checks the project file at `path` (format by extension). `env` looks up the
/// variables of `${VAR}` interpolation.
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Project, ConfigError> {
    Format::of(path)?;
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    parse(path, &text, env)
}

/// Checks the text of a project file. `path` gives the format (by extension), names the file in
/// errors and anchors relative paths; it is not read.
pub fn parse(path: &Path, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Project, ConfigError> {
    let src = Source { file: path, text, format: Format::of(path)? };
    // An empty YAML file (nothing but comments) is an empty project.
    if src.format == Format::Yaml && locate::line(Format::Yaml, text, &[]).is_none() {
        return finish(&src, DaemonSection::default(), Default::default(), Some(env));
    }
    let probe: Probe = src.parse()?;
    if probe.akala {
        let sidecars = akala::translate(&src)?;
        return finish(&src, DaemonSection::default(), sidecars, None);
    }
    let file: ProjectFile = src.parse()?;
    let sidecars = file.sidecars.into_iter().map(|(name, def)| (name.0, def)).collect();
    finish(&src, file.daemon, sidecars, Some(env))
}

/// Checks values, interpolates strings (not for akala imports: `$` means nothing there) and
/// anchors paths at the project file's directory.
fn finish(
    src: &Source<'_>,
    mut daemon: DaemonSection,
    sidecars: Vec<(String, Definition)>,
    env: Option<Env<'_>>,
) -> Result<Project, ConfigError> {
    let path =
        std::path::absolute(src.file).map_err(|source| ConfigError::Read { path: src.file.to_path_buf(), source })?;
    let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();

    for (i, url) in daemon.listen.iter_mut().enumerate() {
        let at = || key!["daemon", "listen", i];
        if let Some(env) = env {
            *url = src.interpolate(url, env, at)?;
        }
        if let Err(e) = url.parse::<Endpoint>() {
            return Err(src.invalid(at(), e.to_string()));
        }
    }

    let mut out = std::collections::BTreeMap::new();
    for (name, mut def) in sidecars {
        let max = pm_protocol::definition::MAX_INSTANCES;
        if def.instances == 0 || def.instances > max {
            let at = key!["sidecars", name.as_str(), "instances"];
            return Err(src.invalid(at, format!("must be from 1 to {max} (got {})", def.instances)));
        }
        pm_protocol::definition::check_priority(def.priority)
            .map_err(|e| src.invalid(key!["sidecars", name.as_str(), "priority"], e))?;
        if let Some(port) = def.port {
            port.check_instances(def.instances).map_err(|e| src.invalid(key!["sidecars", name.as_str(), "port"], e))?;
        }
        if let Some(env) = env {
            interpolate_definition(src, &name, &mut def, env)?;
        }
        def.cwd = Some(match def.cwd.take() {
            Some(cwd) => anchored(&dir, &cwd),
            None => dir.clone(),
        });
        for file in &mut def.env_file {
            *file = anchored(&dir, file);
        }
        crate::supervisor::watch::check(&def).map_err(|problem| {
            let mut at = key!["sidecars", name.as_str(), problem.key];
            at.extend(problem.index.map(Seg::from));
            src.invalid(at, problem.message)
        })?;
        out.insert(name, def);
    }
    let claims = out.iter().filter_map(|(name, def)| Some((name.as_str(), def.port?, def.instances)));
    if let Some((port, first, second)) = pm_protocol::port::first_conflict(claims) {
        let message =
            format!("port {port} is also claimed by `{first}` (port = {})", out[first].port.expect("claimed"));
        return Err(src.invalid(key!["sidecars", second, "port"], message));
    }
    Ok(Project { path, daemon, sidecars: out })
}

/// Interpolates every string of a definition: command words, cwd, env values, env files,
/// readiness, health check, hooks and stop signal.
fn interpolate_definition(
    src: &Source<'_>,
    name: &str,
    def: &mut Definition,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let at = |rest: Vec<Seg>| {
        let mut path = key!["sidecars", name];
        path.extend(rest);
        path
    };
    // pm's per-instance variables are kept as written, for each instance's start.
    let has_port = def.port.is_some();
    let keep = |var: &str| if vars::is_per_instance(var, has_port) { Some(format!("${{{var}}}")) } else { env(var) };
    let env: Env<'_> = &keep;
    for (i, word) in def.command.iter_mut().enumerate() {
        *word = src.interpolate(word, env, || at(key!["command", i]))?;
    }
    // A container may leave its command to the image; anything else must say what to run.
    if def.docker.is_none() && def.command.is_empty() {
        let message = "missing `command` (what to run; a container gives `[docker] image` instead)";
        return Err(src.invalid(at(key![]), message));
    }
    if def.docker.is_none() && def.command.first().is_none_or(String::is_empty) {
        let message = "the program is empty after interpolation";
        return Err(src.invalid(at(key!["command", 0]), message));
    }
    if let Some(cwd) = &mut def.cwd {
        *cwd = src.interpolate(&cwd.to_string_lossy(), env, || at(key!["cwd"]))?.into();
    }
    for (var, value) in &mut def.env {
        *value = src.interpolate(value, env, || at(key!["env", var.as_str()]))?;
    }
    for (i, file) in def.env_file.iter_mut().enumerate() {
        *file = src.interpolate(&file.to_string_lossy(), env, || at(key!["env_file", i]))?.into();
    }
    match &mut def.ready {
        Readiness::Log(re) => *re = src.interpolate(re, env, || at(key!["ready", "log"]))?,
        Readiness::Tcp(addr) => *addr = src.interpolate(addr, env, || at(key!["ready", "tcp"]))?,
        Readiness::Http(url) => {
            *url = src.interpolate(url, env, || at(key!["ready", "http"]))?;
            http_target(url).map_err(|e| src.invalid(at(key!["ready", "http"]), e))?;
        }
        Readiness::Exec(argv) => {
            for (i, word) in argv.iter_mut().enumerate() {
                *word = src.interpolate(word, env, || at(key!["ready", "exec", i]))?;
            }
        }
        Readiness::Started | Readiness::Exited | Readiness::Registered => {}
    }
    if let Some(health) = &mut def.health {
        match &mut health.probe {
            HealthProbe::Tcp(addr) => *addr = src.interpolate(addr, env, || at(key!["health", "tcp"]))?,
            HealthProbe::Http(http) => {
                http.url = src.interpolate(&http.url, env, || at(key!["health", "http"]))?;
                // The URL is checked again once its variables are in.
                http_target(&http.url).map_err(|e| src.invalid(at(key!["health", "http"]), e))?;
            }
            HealthProbe::Exec(argv) => {
                for (i, word) in argv.iter_mut().enumerate() {
                    *word = src.interpolate(word, env, || at(key!["health", "exec", i]))?;
                }
            }
            HealthProbe::Rpc(method) => *method = src.interpolate(method, env, || at(key!["health", "rpc"]))?,
        }
    }
    let hooks = &mut def.hooks;
    for (which, hook) in [
        ("pre_start", &mut hooks.pre_start),
        ("post_start", &mut hooks.post_start),
        ("pre_stop", &mut hooks.pre_stop),
        ("post_stop", &mut hooks.post_stop),
    ] {
        let Some(hook) = hook else { continue };
        // A hook written as a table has its command under `command`; as a command, it is the key.
        for (i, word) in hook.command.iter_mut().enumerate() {
            *word = src.interpolate(word, env, || at(key!["hooks", which, i]))?;
        }
        for (var, value) in &mut hook.env {
            *value = src.interpolate(value, env, || at(key!["hooks", which, "env", var.as_str()]))?;
        }
    }
    def.stop_signal = src.interpolate(&def.stop_signal, env, || at(key!["stop_signal"]))?;
    Ok(())
}

/// `path` made absolute against `dir`, with `.` steps dropped (`..` is kept: symlinks).
pub(crate) fn anchored(dir: &Path, path: &Path) -> PathBuf {
    dir.join(path).components().collect()
}

/// A project file's formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Toml,
    Yaml,
    Json,
}

impl Format {
    fn of(path: &Path) -> Result<Format, ConfigError> {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("toml") => Ok(Format::Toml),
            Some("yaml" | "yml") => Ok(Format::Yaml),
            Some("json") => Ok(Format::Json),
            _ => Err(ConfigError::UnknownFormat { path: path.to_path_buf() }),
        }
    }
}

/// The text of a project file, with what is needed to say where an error is.
pub(crate) struct Source<'a> {
    pub file: &'a Path,
    pub text: &'a str,
    pub format: Format,
}

impl Source<'_> {
    /// Deserializes the whole document, tracking the key path and the line of any error. The
    /// format's parser reads the text (its syntax errors say where); pm's types are then read
    /// from the parsed value, the same code for every format.
    pub(crate) fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        if let Some(line) = too_deep(self.text) {
            let message = format!("brackets nested more than {MAX_NESTING} deep; a project file needs far fewer");
            return Err(self.parse_error(Vec::new(), Some(line), &message));
        }
        let Document(document) = match self.format {
            Format::Toml => toml::from_str(self.text).map_err(|e| self.toml_error(&e))?,
            Format::Yaml => serde_yaml::from_str(self.text).map_err(|e| self.yaml_error(&e))?,
            Format::Json => serde_json::from_str(self.text).map_err(|e| self.json_error(&e))?,
        };
        serde_path_to_error::deserialize(document).map(|SingletonMaps(value)| value).map_err(|e| {
            let (path, _) = locate::from_serde(e.path());
            let message = e.inner().to_string();
            // An unknown key is on its own line, not on its table's.
            let mut at = path.clone();
            if let Some(key) = unknown_key(&message).filter(|k| !matches!(at.last(), Some(Seg::Key(l)) if l == k)) {
                at.push(Seg::Key(key.to_string()));
            }
            let line = self.line(&at);
            self.parse_error(path, line, &message)
        })
    }

    fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        let line = e.span().map(|span| locate::line_of(self.text, span.start));
        self.parse_error(Vec::new(), line, e.message())
    }

    fn yaml_error(&self, e: &serde_yaml::Error) -> ConfigError {
        let mut message = e.to_string();
        if let Some(at) = e.location() {
            message = message.replacen(&format!(" at line {} column {}", at.line(), at.column()), "", 1);
        }
        self.parse_error(Vec::new(), e.location().map(|at| at.line()), &message)
    }

    fn json_error(&self, e: &serde_json::Error) -> ConfigError {
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = e.to_string();
        let message = message.strip_suffix(&suffix).unwrap_or(&message);
        self.parse_error(Vec::new(), (e.line() > 0).then_some(e.line()), message)
    }

    fn parse_error(&self, mut path: Vec<Seg>, line: Option<usize>, message: &str) -> ConfigError {
        // An unknown key or variant is reported against the table that holds it, as
        // `sidecars.web: unknown field `comand``, not `sidecars.web.comand: …`.
        if let Some(Seg::Key(last)) = path.last() {
            let named = |what: &str| message.starts_with(&format!("unknown {what} `{last}`"));
            if named("field") || named("variant") {
                path.pop();
            }
        }
        ConfigError::Parse {
            file: self.file.to_path_buf(),
            line,
            key: locate::display(&path),
            message: message.to_string(),
        }
    }

    /// The line of `path`, as far as it can be followed.
    fn line(&self, path: &[Seg]) -> Option<usize> {
        locate::line(self.format, self.text, path).map(|(line, _)| line)
    }

    /// A value that parsed but is not acceptable.
    pub(crate) fn invalid(&self, path: Vec<Seg>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_path_buf(),
            line: self.line(&path),
            key: locate::display(&path),
            message: message.into(),
        }
    }

    /// Interpolates `text`, the value at `path`.
    fn interpolate(
        &self,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        path: impl FnOnce() -> Vec<Seg>,
    ) -> Result<String, ConfigError> {
        interpolate(text, env).map_err(|problem: InterpolationError| {
            let path = path();
            ConfigError::Interpolation {
                file: self.file.to_path_buf(),
                line: self.line(&path),
                key: locate::display(&path),
                problem,
            }
        })
    }
}

/// The deepest `[`/`{` nesting a file may have. serde_yaml takes time quadratic in the depth of
/// unclosed flow collections (100,000 `[` took 45 s), so deeper files are refused before parsing.
const MAX_NESTING: usize = 100;

/// The line where brackets outside quotes first nest deeper than [`MAX_NESTING`]. Quotes end at
/// a line's end, so a stray apostrophe in a plain YAML value cannot hide what follows.
fn too_deep(text: &str) -> Option<usize> {
    let (mut depth, mut line, mut quote, mut escaped) = (0usize, 1, None, false);
    for b in text.bytes() {
        match (quote, b) {
            (_, b'\n') => {
                line += 1;
                quote = None;
            }
            (Some(b'"'), b'\\') => escaped = !escaped,
            (Some(q), _) if b == q && !escaped => quote = None,
            (Some(_), _) => escaped = false,
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'[' | b'{') => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(line);
                }
            }
            (None, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// The key an "unknown field `x`" or "unknown variant `x`" message is about.
fn unknown_key(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `").or_else(|| message.strip_prefix("unknown variant `"))?;
    rest.split_once('`').map(|(key, _)| key)
}

/// Enums are written the same way in every format: `ready = "started"`, `ready = { log = "…" }`
/// (serde_yaml 0.9's own values would want `!log …` tags).
struct SingletonMaps<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for SingletonMaps<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_yaml::with::singleton_map_recursive::deserialize(d).map(SingletonMaps)
    }
}
