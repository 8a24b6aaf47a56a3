//! An `@akala/pm` config (`{"containers": {…}, "mapping": {…}}`, DESIGN §3), in pm's terms: for
//! `pm start -f` (where anything it cannot say is an error naming the key, see [`translate`]) and
//! for `pm discover` (where it is reported, see [`translate_all`]).
//!
//! - A container (akala: definition) becomes a sidecar: `path` + `args` → `command` as
//!   `node <path> <args…>` (akala runs `nodejs` containers with node), `dependencies` →
//!   `depends_on`, `stateless` → `stateless`, `commandable` → `ready = "registered"` (akala waits
//!   for a commandable sidecar to say it is ready; a pm sidecar says so with `pm.register`).
//! - A `mapping` entry (akala: instance) becomes a sidecar of its own name, with its container's
//!   definition (its `container`, else the container of its own name), its `cwd` (else akala's
//!   own, the `cwd` of its `pm` entry, else the file's directory), its `autostart`
//!   (off unless `true`, as in akala), its `cli` (arguments after the container's) and its
//!   `config`: akala hands a sidecar its configuration as `--configFile FILE#PATH`, so an object
//!   becomes `--configFile=<this file>#mapping.<name>.config` and a string (a file, with an
//!   optional `#path`) `--configFile=<it>`. A container that no entry maps is a sidecar of its own
//!   name, not autostarted.
//! - akala's own daemon (container and mapping `pm`) is skipped: pm takes its place, and a
//!   dependency on `pm` is always met.
//! - Not translated: a mapping's `connect` (pm sidecars say where they listen with
//!   `pm.register`), `plugins`, `setup.packages`, a `type` other than `nodejs` (run as `nodejs`),
//!   and any other key.

use super::errors::ConfigError;
use super::load::Source;
use super::locate::{Seg, display, key, line};
use crate::discover::{Translated, Untranslated, pm_name};
use pm_protocol::{DAEMON_NAME, Definition, Readiness};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct AkalaFile {
    #[serde(default)]
    containers: BTreeMap<String, Container>,
    #[serde(default)]
    mapping: BTreeMap<String, Mapping>,
}

/// `.akala.json`: akala's CLI config, whose `pm` key is the pm config.
#[derive(Deserialize)]
struct AkalaJson {
    pm: Option<AkalaFile>,
}

#[derive(Deserialize)]
struct Container {
    path: Option<ContainerPath>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    dependencies: Vec<String>,
    #[serde(default)]
    commandable: bool,
    #[serde(default)]
    stateless: bool,
}

/// akala's own `pm` container has its command metadata as `path`; only strings are imported.
#[derive(Deserialize)]
#[serde(untagged)]
enum ContainerPath {
    Path(String),
    Other(IgnoredAny),
}

#[derive(Deserialize)]
struct Mapping {
    container: Option<String>,
    cwd: Option<PathBuf>,
    autostart: Option<bool>,
    #[serde(default)]
    cli: Vec<String>,
    config: Option<Value>,
}

const FILE_KEYS: &[&str] = &["containers", "mapping", "plugins", "setup"];
const CONTAINER_KEYS: &[&str] = &["path", "args", "type", "dependencies", "commandable", "stateless"];
const MAPPING_KEYS: &[&str] = &["container", "cwd", "autostart", "cli", "config"];

/// The sidecars of an akala config, for `pm start -f`: what has no pm equivalent is an error
/// naming the key.
pub(crate) fn translate(src: &Source<'_>) -> Result<Vec<(String, Definition)>, ConfigError> {
    let path =
        std::path::absolute(src.file).map_err(|source| ConfigError::Read { path: src.file.to_path_buf(), source })?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let translated = translate_all(src, dir, &[])?;
    if let Some(first) = translated.untranslated.into_iter().next() {
        let why = first.why.unwrap_or_else(|| "has no pm equivalent".into());
        let message = format!("{why}; `pm discover` maps the rest and lists all it leaves out");
        return Err(ConfigError::Invalid { file: src.file.to_path_buf(), line: first.line, key: first.key, message });
    }
    Ok(translated.sidecars)
}

/// The sidecars of the akala config at `at` in `src` (the whole file, or the `pm` key of an
/// `.akala.json`), and what has no pm equivalent. `dir` is the file's directory. Only a file that
/// is not an akala config at all is an error.
pub(crate) fn translate_all(src: &Source<'_>, dir: &Path, at: &[Seg]) -> Result<Translated, ConfigError> {
    // A derived struct would take an array too.
    src.parse::<BTreeMap<String, IgnoredAny>>()?;
    let (file, document) = match at {
        [] => (Some(src.parse::<AkalaFile>()?), src.parse::<Value>()?),
        [Seg::Key(key)] if key == "pm" => {
            let mut document = src.parse::<Value>()?;
            (src.parse::<AkalaJson>()?.pm, document["pm"].take())
        }
        _ => return Err(src.invalid(at.to_vec(), "akala configs are read from a file or its `pm` key")),
    };
    let Some(file) = file else { return Ok(Translated::default()) };
    let mut reader = Reader { src, dir, at, out: Translated::default(), renamed: BTreeMap::new() };
    reader.report_unknown_keys(&document);
    reader.sidecars(&file);
    // In the file's order.
    let mut sidecars = std::mem::take(&mut reader.out.sidecars);
    sidecars.sort_by_cached_key(|(name, _)| reader.line_of_sidecar(&file, name));
    let mut untranslated = reader.out.untranslated;
    untranslated.sort_by_key(|u| u.line.unwrap_or(usize::MAX));
    Ok(Translated { sidecars, untranslated })
}

struct Reader<'a> {
    src: &'a Source<'a>,
    dir: &'a Path,
    /// Where the akala config is in the file.
    at: &'a [Seg],
    out: Translated,
    /// The pm name of each sidecar, by its akala name.
    renamed: BTreeMap<String, String>,
}

impl Reader<'_> {
    fn path(&self, rest: Vec<Seg>) -> Vec<Seg> {
        let mut path = self.at.to_vec();
        path.extend(rest);
        path
    }

    fn report(&mut self, rest: Vec<Seg>, why: impl Into<String>) {
        let path = self.path(rest);
        let line = line(self.src.format, self.src.text, &path).map(|(line, _)| line);
        self.out.untranslated.push(Untranslated::new(display(&path), line).because(why));
    }

    /// Keys akala has and pm does not, and keys akala does not have either.
    fn report_unknown_keys(&mut self, document: &Value) {
        let Value::Object(top) = document else { return };
        for (key, value) in top {
            match key.as_str() {
                "plugins" if value.as_array().is_some_and(|p| !p.is_empty()) => {
                    self.report(key!["plugins"], "akala plugins run inside akala's own process; pm has no equivalent");
                }
                "setup" if value["packages"].as_array().is_some_and(|p| !p.is_empty()) => {
                    self.report(key!["setup", "packages"], "pm installs no packages; install them before `pm start`");
                }
                key if !FILE_KEYS.contains(&key) => self.report(key![key], "not an akala pm key"),
                _ => {}
            }
        }
        for (table, known) in [("containers", CONTAINER_KEYS), ("mapping", MAPPING_KEYS)] {
            let Some(entries) = top.get(table).and_then(Value::as_object) else { continue };
            for (name, entry) in entries.iter().filter(|(name, _)| *name != DAEMON_NAME) {
                for key in entry.as_object().into_iter().flat_map(|e| e.keys()) {
                    let at = key![table, name.as_str(), key.as_str()];
                    match key.as_str() {
                        "connect" if table == "mapping" => self.report(
                            at,
                            "akala's `connect` (where a sidecar listens) has no pm equivalent: a pm sidecar \
                             gives its endpoint to pm.register",
                        ),
                        key if !known.contains(&key) => self.report(at, "not an akala pm key"),
                        _ => {}
                    }
                }
            }
        }
    }

    fn sidecars(&mut self, file: &AkalaFile) {
        // Names first: dependencies name sidecars by their akala names.
        let mapped = |name: &str| file.mapping.iter().any(|(m, e)| e.container.as_deref().unwrap_or(m) == name);
        let unmapped: Vec<&String> = file.containers.keys().filter(|c| !mapped(c)).collect();
        for (table, name) in
            file.mapping.keys().map(|m| ("mapping", m)).chain(unmapped.iter().map(|c| ("containers", *c)))
        {
            if name == DAEMON_NAME {
                continue;
            }
            let pm = pm_name(name);
            if pm.is_empty() {
                self.report(
                    key![table, name.as_str()],
                    format!("`{name}` has nothing a pm name can be made of; skipped"),
                );
            } else if self.renamed.values().any(|taken| *taken == pm) {
                self.report(key![table, name.as_str()], format!("`{pm}` is the pm name of another sidecar; skipped"));
            } else {
                if pm != *name {
                    self.report(key![table, name.as_str()], format!("named `{pm}` in pm"));
                }
                self.renamed.insert(name.clone(), pm);
            }
        }
        // akala runs its sidecars in its own working directory, its `pm` entry's `cwd`.
        let home = match file.mapping.get(DAEMON_NAME).and_then(|pm| pm.cwd.as_ref()) {
            Some(cwd) => crate::config::anchored(self.dir, cwd),
            None => self.dir.to_path_buf(),
        };
        let definitions: BTreeMap<&str, Option<Definition>> = file
            .containers
            .iter()
            .filter(|(name, _)| *name != DAEMON_NAME)
            .map(|(name, c)| (name.as_str(), self.definition(name, c)))
            .collect();
        for (instance, entry) in &file.mapping {
            let Some(pm) = self.renamed.get(instance).cloned() else { continue };
            let container = entry.container.as_deref().unwrap_or(instance);
            let Some(def) = definitions.get(container) else {
                let at = match entry.container {
                    Some(_) => key!["mapping", instance.as_str(), "container"],
                    None => key!["mapping", instance.as_str()],
                };
                self.report(at, format!("no container `{container}` under `containers`; skipped"));
                continue;
            };
            let Some(mut def) = def.clone() else { continue };
            def.cwd =
                Some(entry.cwd.as_ref().map_or_else(|| home.clone(), |cwd| crate::config::anchored(self.dir, cwd)));
            def.autostart = entry.autostart.unwrap_or(false);
            def.command.extend(entry.cli.iter().cloned());
            if let Some(config) = &entry.config {
                def.command.extend(self.config_file(instance, config));
            }
            self.out.sidecars.push((pm, def));
        }
        for container in unmapped {
            let Some(pm) = self.renamed.get(container).cloned() else { continue };
            if let Some(Some(mut def)) = definitions.get(container.as_str()).cloned() {
                def.cwd = Some(home.clone());
                def.autostart = false;
                self.out.sidecars.push((pm, def));
            }
        }
    }

    /// The definition of container `name`.
    fn definition(&mut self, name: &str, c: &Container) -> Option<Definition> {
        let path = match &c.path {
            Some(ContainerPath::Path(path)) if !path.is_empty() => path,
            Some(_) => {
                let why = "must be the path of the node module to run (a non-empty string); skipped";
                self.report(key!["containers", name, "path"], why);
                return None;
            }
            None => {
                self.report(key!["containers", name], "needs `path`, the node module to run; skipped");
                return None;
            }
        };
        match c.kind.as_deref() {
            None | Some("nodejs") => {}
            Some("worker") => self.report(
                key!["containers", name, "type"],
                "a `worker` runs in a thread of akala's own node process; pm runs it as a process, `node <path>`",
            ),
            Some(other) => self.report(
                key!["containers", name, "type"],
                format!("akala runs type `{other}` as it runs `nodejs`; so does pm, as `node <path>`"),
            ),
        }
        let mut command = vec!["node".to_string(), path.clone()];
        command.extend(c.args.iter().cloned());
        let mut def = Definition::new(command);
        def.stateless = c.stateless;
        if c.commandable {
            def.ready = Readiness::Registered;
        }
        for (i, dep) in c.dependencies.iter().enumerate() {
            match self.renamed.get(dep) {
                Some(pm) => def.depends_on.push(pm.clone()),
                None if dep == DAEMON_NAME => {}
                None => {
                    let why = format!("`{dep}` is neither a container nor a mapping entry pm imports");
                    self.report(key!["containers", name, "dependencies", i], why);
                }
            }
        }
        Some(def)
    }

    /// The `--configFile` argument that hands mapping entry `instance` its `config`, as akala does.
    fn config_file(&mut self, instance: &str, config: &Value) -> Option<String> {
        let at = key!["mapping", instance, "config"];
        match config {
            Value::Object(_) if !instance.contains('.') => {
                let mut needle = self.path(key!["mapping", instance, "config"]);
                needle.retain(|seg| matches!(seg, Seg::Key(_)));
                let file = self.dir.join(self.src.file.file_name().unwrap_or_default());
                Some(format!("--configFile={}#{}", file.display(), display(&needle)))
            }
            Value::String(target) if !target.is_empty() => {
                let (file, needle) = target.split_once('#').map_or((target.as_str(), None), |(f, n)| (f, Some(n)));
                let file =
                    if file.contains("://") { file.to_string() } else { self.dir.join(file).display().to_string() };
                Some(match needle {
                    Some(needle) => format!("--configFile={file}#{needle}"),
                    None => format!("--configFile={file}"),
                })
            }
            _ => {
                let why = "akala passes an object (or a file) as `--configFile`; this value is neither, or its \
                           entry's name has a `.`";
                self.report(at, why);
                None
            }
        }
    }

    /// Where a sidecar is given in the file, to keep the file's order.
    fn line_of_sidecar(&self, file: &AkalaFile, pm: &str) -> Option<usize> {
        let (name, _) = self.renamed.iter().find(|(_, p)| *p == pm)?;
        let table = if file.mapping.contains_key(name) { "mapping" } else { "containers" };
        line(self.src.format, self.src.text, &self.path(key![table, name.as_str()])).map(|(line, _)| line)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ConfigError, Project, load, parse};
    use pm_protocol::{Definition, Readiness};
    use std::path::Path;

    const AKALA: &str = r#"{
  "containers": {
    "pm": {"commandable": true, "stateless": false, "path": {"name": "pm", "commands": []}},
    "db": {"path": "./db/index.js", "args": ["--port", "5432"], "type": "nodejs", "commandable": true},
    "api": {"path": "api.js", "dependencies": ["db", "pm"], "stateless": true}
  },
  "mapping": {
    "pm": {"container": "pm", "cwd": "/var/lib/pm", "connect": {"jsonrpc+tcp://localhost:31416": {}}},
    "api-1": {"container": "api", "cwd": "srv", "autostart": true, "cli": ["--verbose"]},
    "api-2": {"container": "api", "config": {"greeting": "hi"}}
  },
  "plugins": [],
  "setup": {"packages": []}
}
"#;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn node(args: &[&str]) -> Definition {
        let mut command = vec!["node".to_string()];
        command.extend(args.iter().map(|a| a.to_string()));
        let mut def = Definition::new(command);
        def.autostart = false;
        def
    }

    fn error(name: &str, text: &str) -> String {
        match parse(Path::new(name), text, &no_env) {
            Ok(project) => panic!("{name} loaded: {project:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn load_in_tempdir(name: &str, text: &str) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(name), text).unwrap();
        let project = load(&dir.path().join(name), &no_env).unwrap_or_else(|e| panic!("{e}"));
        (dir, project)
    }

    #[test]
    fn akala_containers_and_mappings_become_sidecars() {
        let (dir, project) = load_in_tempdir("pm.json", AKALA);
        let dir = dir.path();

        // akala runs them in its own working directory, unless their entry says otherwise.
        let mut db = node(&["./db/index.js", "--port", "5432"]);
        db.cwd = Some("/var/lib/pm".into());
        db.ready = Readiness::Registered;
        let mut api1 = node(&["api.js", "--verbose"]);
        api1.depends_on = vec!["db".into()];
        api1.stateless = true;
        api1.autostart = true;
        api1.cwd = Some(dir.join("srv"));
        let mut api2 = node(&["api.js"]);
        api2.command.push(format!("--configFile={}#mapping.api-2.config", dir.join("pm.json").display()));
        api2.depends_on = vec!["db".into()];
        api2.stateless = true;
        api2.cwd = Some("/var/lib/pm".into());

        let names: Vec<&str> = project.sidecars.keys().map(String::as_str).collect();
        assert_eq!(names, ["api-1", "api-2", "db"], "pm is skipped, mapped `api` is not doubled");
        assert_eq!(project.sidecars["db"], db);
        assert_eq!(project.sidecars["api-1"], api1);
        assert_eq!(project.sidecars["api-2"], api2);
        assert!(project.daemon.listen.is_empty());
    }

    #[test]
    fn akala_yaml_is_imported_too_without_interpolation() {
        let yaml = "containers:\n  web:\n    path: web.js\n    args: [\"$$x\", \"${NOPE}\"]\n";
        let (_dir, project) = load_in_tempdir("pm.yaml", yaml);
        assert_eq!(project.sidecars["web"].command, ["node", "web.js", "$$x", "${NOPE}"]);
    }

    #[test]
    fn what_akala_has_and_pm_does_not_is_an_error_naming_the_key() {
        let with = |from: &str, to: &str| {
            assert!(AKALA.contains(from), "{from}");
            error("pm.json", &AKALA.replacen(from, to, 1))
        };
        let rest = "; `pm discover` maps the rest and lists all it leaves out";
        assert_eq!(
            with(r#""type": "nodejs""#, r#""type": "worker""#),
            format!(
                "pm.json:4: containers.db.type: a `worker` runs in a thread of akala's own node process; pm runs \
                 it as a process, `node <path>`{rest}"
            )
        );
        assert_eq!(
            with(r#""type": "nodejs""#, r#""cmd": "x""#),
            format!("pm.json:4: containers.db.cmd: not an akala pm key{rest}")
        );
        assert_eq!(
            with(r#""autostart": true"#, r#""connect": {}"#),
            format!(
                "pm.json:9: mapping.api-1.connect: akala's `connect` (where a sidecar listens) has no pm \
                 equivalent: a pm sidecar gives its endpoint to pm.register{rest}"
            )
        );
        assert_eq!(
            with(r#"{"container": "api", "config""#, r#"{"container": "apj", "config""#),
            format!("pm.json:10: mapping.api-2.container: no container `apj` under `containers`; skipped{rest}")
        );
        assert_eq!(
            with(r#"["db", "pm"]"#, r#"["cache"]"#),
            format!(
                "pm.json:5: containers.api.dependencies[0]: `cache` is neither a container nor a mapping entry pm \
                 imports{rest}"
            )
        );
        assert_eq!(
            with(r#""db": {"path""#, r#""@akala/db": {"path""#),
            format!("pm.json:4: containers.@akala/db: named `akala-db` in pm{rest}")
        );
        assert_eq!(
            with(r#""plugins": []"#, r#""plugins": ["@akala/pm-plugin"]"#),
            format!("pm.json:12: plugins: akala plugins run inside akala's own process; pm has no equivalent{rest}")
        );
        assert_eq!(
            with(r#""path": "api.js", "#, ""),
            format!("pm.json:5: containers.api: needs `path`, the node module to run; skipped{rest}")
        );
        let e = parse(Path::new("pm.yaml"), "containers: []\n", &no_env).unwrap_err();
        assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
        assert_eq!(e.to_string(), "pm.yaml:1: containers: invalid type: sequence, expected a map");
    }
}
