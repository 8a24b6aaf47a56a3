//! Importing an `@akala/pm` config (`{"containers": {…}, "mapping": {…}}`, DESIGN §3).
//!
//! - A container (akala: definition) becomes a sidecar: `path` + `args` → `command` as
//!   `node <path> <args…>` (akala runs `nodejs` containers with node, and that is its only
//!   process type), `dependencies` → `depends_on`, `stateless` → `stateless`. `commandable` is
//!   accepted and dropped: any pm sidecar may join the mesh.
//! - A `mapping` entry (akala: instance) becomes a sidecar of its own name, with its container's
//!   definition, its `cwd` and its `autostart` (off unless `true`, as in akala). A container
//!   that no entry maps is imported under its own name, not autostarted.
//! - akala's own daemon (container and mapping `pm`) is skipped: pm takes its place, and a
//!   dependency on `pm` is always met.
//! - What has no pm equivalent is an error naming the key: `type` other than `nodejs`, a
//!   mapping's `connect`, `config` or `cli`, plugins, and any other key.

use super::errors::ConfigError;
use super::load::Source;
use super::locate::{Seg, key};
use pm_protocol::{DAEMON_NAME, Definition, validate_name};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an akala config with `containers` and `mapping`")]
struct AkalaFile {
    containers: BTreeMap<String, Container>,
    #[serde(default)]
    mapping: BTreeMap<String, Mapping>,
    #[serde(default)]
    plugins: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Container {
    path: Option<ContainerPath>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default, rename = "type", deserialize_with = "nodejs_only")]
    _type: (),
    #[serde(default)]
    dependencies: Vec<String>,
    #[serde(default, rename = "commandable")]
    _commandable: bool,
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
#[serde(deny_unknown_fields)]
struct Mapping {
    container: String,
    #[serde(default)]
    cwd: Option<PathBuf>,
    #[serde(default)]
    autostart: Option<bool>,
    #[serde(default)]
    connect: Option<IgnoredAny>,
    #[serde(default)]
    config: Option<IgnoredAny>,
    #[serde(default)]
    cli: Option<IgnoredAny>,
}

fn nodejs_only<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    match String::deserialize(d)?.as_str() {
        "nodejs" => Ok(()),
        "worker" => Err(serde::de::Error::custom(
            "type `worker` runs in a thread of akala's own node process; pm has no equivalent \
             (import it as `nodejs`, run by pm as `node <path> <args…>`)",
        )),
        other => Err(serde::de::Error::custom(format!(
            "container type `{other}` cannot be imported; pm imports `nodejs` containers only"
        ))),
    }
}

/// The sidecars an akala config describes.
pub(crate) fn translate(src: &Source<'_>) -> Result<Vec<(String, Definition)>, ConfigError> {
    let file: AkalaFile = src.parse()?;
    if !file.plugins.is_empty() {
        let message = "akala plugins have no pm equivalent; remove them to import this file";
        return Err(src.invalid(key!["plugins"], message));
    }
    let mut sidecars = BTreeMap::new();
    for (instance, entry) in &file.mapping {
        if instance == DAEMON_NAME {
            continue;
        }
        for (field, present) in
            [("connect", entry.connect.is_some()), ("config", entry.config.is_some()), ("cli", entry.cli.is_some())]
        {
            if present {
                let message = format!("akala's `{field}` has no pm equivalent; remove it");
                return Err(src.invalid(key!["mapping", instance.as_str(), field], message));
            }
        }
        check_name(src, "mapping", instance)?;
        let Some(container) = file.containers.get(&entry.container) else {
            let message = format!("no container `{}` under `containers`", entry.container);
            return Err(src.invalid(key!["mapping", instance.as_str(), "container"], message));
        };
        let mut def = definition(src, &entry.container, container)?;
        def.cwd = entry.cwd.clone();
        def.autostart = entry.autostart.unwrap_or(false);
        sidecars.insert(instance.clone(), def);
    }
    for (name, container) in &file.containers {
        let mapped = file.mapping.values().any(|m| &m.container == name);
        if name == DAEMON_NAME || mapped {
            continue;
        }
        check_name(src, "containers", name)?;
        if sidecars.contains_key(name) {
            let message = format!("`{name}` is also the name of a mapping entry; rename one");
            return Err(src.invalid(key!["containers", name.as_str()], message));
        }
        let mut def = definition(src, name, container)?;
        def.autostart = false;
        sidecars.insert(name.clone(), def);
    }
    for (name, container) in &file.containers {
        for (i, dep) in container.dependencies.iter().enumerate() {
            if name != DAEMON_NAME && dep != DAEMON_NAME && !sidecars.contains_key(dep) {
                let message = format!("`{dep}` is neither a container nor a mapping entry");
                return Err(src.invalid(key!["containers", name.as_str(), "dependencies", i], message));
            }
        }
    }
    Ok(sidecars.into_iter().collect())
}

fn definition(src: &Source<'_>, name: &str, c: &Container) -> Result<Definition, ConfigError> {
    let path = match &c.path {
        Some(ContainerPath::Path(path)) if !path.is_empty() => path,
        Some(_) => {
            let message = "must be the path of the node module to run (a non-empty string)";
            return Err(src.invalid(key!["containers", name, "path"], message));
        }
        None => {
            let message = "missing `path`, the node module to run";
            return Err(src.invalid(key!["containers", name], message));
        }
    };
    let mut command = vec!["node".to_string(), path.clone()];
    command.extend(c.args.iter().cloned());
    let mut def = Definition::new(command);
    def.depends_on = c.dependencies.iter().filter(|d| *d != DAEMON_NAME).cloned().collect();
    def.stateless = c.stateless;
    Ok(def)
}

fn check_name(src: &Source<'_>, table: &str, name: &str) -> Result<(), ConfigError> {
    validate_name(name).map_err(|message| src.invalid(key![table, name], message))
}

#[cfg(test)]
mod tests {
    use super::super::{ConfigError, Project, load, parse};
    use pm_protocol::Definition;
    use std::path::Path;

    const AKALA: &str = r#"{
  "containers": {
    "pm": {"commandable": true, "stateless": false, "path": {"name": "pm", "commands": []}},
    "db": {"path": "./db/index.js", "args": ["--port", "5432"], "type": "nodejs", "commandable": true},
    "api": {"path": "api.js", "dependencies": ["db", "pm"], "stateless": true}
  },
  "mapping": {
    "pm": {"container": "pm", "cwd": "/var/lib/pm", "connect": {"jsonrpc+tcp://localhost:31416": {}}},
    "api-1": {"container": "api", "cwd": "srv", "autostart": true},
    "api-2": {"container": "api"}
  },
  "plugins": []
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

        let mut db = node(&["./db/index.js", "--port", "5432"]);
        db.cwd = Some(dir.to_path_buf());
        let mut api1 = node(&["api.js"]);
        api1.depends_on = vec!["db".into()];
        api1.stateless = true;
        api1.autostart = true;
        api1.cwd = Some(dir.join("srv"));
        let mut api2 = api1.clone();
        api2.autostart = false;
        api2.cwd = Some(dir.to_path_buf());

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
        assert_eq!(
            with(r#""type": "nodejs""#, r#""type": "worker""#),
            "pm.json:4: containers.db.type: type `worker` runs in a thread of akala's own node \
             process; pm has no equivalent (import it as `nodejs`, run by pm as `node <path> \
             <args…>`)"
        );
        assert_eq!(
            with(r#""type": "nodejs""#, r#""cmd": "x""#),
            "pm.json:4: containers.db: unknown field `cmd`, expected one of `path`, `args`, \
             `type`, `dependencies`, `commandable`, `stateless`"
        );
        assert_eq!(
            with(r#""autostart": true"#, r#""connect": {}"#),
            "pm.json:9: mapping.api-1.connect: akala's `connect` has no pm equivalent; remove it"
        );
        assert_eq!(
            with(r#"{"container": "api"}"#, r#"{"container": "apj"}"#),
            "pm.json:10: mapping.api-2.container: no container `apj` under `containers`"
        );
        assert_eq!(
            with(r#"["db", "pm"]"#, r#"["cache"]"#),
            "pm.json:5: containers.api.dependencies[0]: `cache` is neither a container nor a \
             mapping entry"
        );
        assert_eq!(
            with(r#""db": {"path""#, r#""@akala/db": {"path""#),
            "pm.json:4: containers.@akala/db: invalid name `@akala/db`: names match \
             [a-z0-9][a-z0-9_-]* (lowercase, no dots)"
        );
        assert_eq!(
            with(r#""plugins": []"#, r#""plugins": ["@akala/pm-plugin"]"#),
            "pm.json:12: plugins: akala plugins have no pm equivalent; remove them to import this \
             file"
        );
        assert_eq!(
            with(r#""path": "api.js", "#, ""),
            "pm.json:5: containers.api: missing `path`, the node module to run"
        );
        let e = parse(Path::new("pm.yaml"), "containers: []\n", &no_env).unwrap_err();
        assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
        assert_eq!(e.to_string(), "pm.yaml:1: containers: invalid type: sequence, expected a map");
    }
}
