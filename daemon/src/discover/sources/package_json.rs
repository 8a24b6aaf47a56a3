//! A `package.json`, read the way `@akala/pm`'s `discover` reads one: the first of these that the
//! package has gives its sidecars.
//!
//! 1. `commands` (akala's commandable sidecars): a path, for one sidecar named after the package,
//!    or an object of name → path. A JavaScript module runs as `node <path>`; an akala commands
//!    file (`commands.json`, metadata pm does not read) is reported, and the package itself runs
//!    (`node <main>`, else `node .`). Either way the sidecar is ready once it has called
//!    `pm.register` (`ready = "registered"`).
//! 2. `bin`: a path, for one sidecar named after the package, or an object of name → path. A
//!    script with a `#!` line runs with the interpreter that line names (as the kernel would run
//!    it once npm has linked it); one without runs as `node <path>`.
//! 3. A `commands.json` beside the package.json: as 1, for one sidecar named after the package.
//! 4. `main`: `node <main>`, named after the package.
//! 5. `scripts.start`: `npm start`, named after the package.
//!
//! A package's name is its `name` without its `@scope/`, else its directory's. The `pm` key holds
//! pm settings (see [`super::manifest`]): `"pm": {"restart": "always", "api": {"port": 8080}}`.

use super::manifest::{Names, Settings, line};
use crate::config::{ConfigError, Format, Seg, Source, key, key_path};
use crate::discover::{SourceFile, Translated, Untranslated};
use pm_protocol::{Definition, Readiness};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

#[derive(Deserialize)]
struct PackageJson {
    name: Option<String>,
    main: Option<String>,
    bin: Option<Value>,
    commands: Option<Value>,
    #[serde(default)]
    scripts: Map<String, Value>,
    pm: Option<Map<String, Value>>,
}

/// What a program of the package is, for akala.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    /// It serves commands (`commands`, `commands.json`).
    Commandable,
    /// An executable (`bin`).
    Bin,
}

/// The longest `#!` line read (the kernel's own bound).
const SHEBANG_MAX: u64 = 256;

pub fn read(src: &SourceFile<'_>) -> Result<Translated, ConfigError> {
    let source = Source { file: src.path, text: src.text, format: Format::Json };
    // A derived struct would take an array too.
    source.parse::<BTreeMap<String, IgnoredAny>>()?;
    let pkg: PackageJson = source.parse()?;
    let mut reader =
        Reader { src: &source, dir: src.dir, pkg: &pkg, names: Names::default(), untranslated: Vec::new() };
    let mut derived = Vec::new();
    if let Some(commands) = &pkg.commands {
        derived = reader.programs("commands", commands, Role::Commandable)?;
        if pkg.bin.is_some() {
            let why = "akala maps `commands` and not `bin` when a package has both; a table in `pm` can add a bin";
            reader.report(&[Seg::from("bin")], why);
        }
    } else if let Some(bin) = &pkg.bin {
        derived = reader.programs("bin", bin, Role::Bin)?;
    } else if src.dir.join("commands.json").is_file() {
        derived.extend(reader.own("commands.json", Role::Commandable, &[Seg::from("name")]));
    } else if let Some(main) = &pkg.main {
        let def = Definition::new(vec!["node".into(), main.clone()]);
        derived.extend(reader.package_name(&[Seg::from("main")]).map(|name| (name, def)));
    } else if pkg.scripts.get("start").is_some_and(Value::is_string) {
        let def = Definition::new(vec!["npm".into(), "start".into()]);
        derived.extend(reader.package_name(&[Seg::from("scripts"), Seg::from("start")]).map(|name| (name, def)));
    }
    let sidecars = Settings::new(&source, src.dir, key!["pm"], pkg.pm.clone())?.apply(derived)?;
    Ok(Translated { sidecars, untranslated: reader.untranslated })
}

struct Reader<'a> {
    src: &'a Source<'a>,
    dir: &'a Path,
    pkg: &'a PackageJson,
    names: Names,
    untranslated: Vec<Untranslated>,
}

impl Reader<'_> {
    /// The sidecars of `commands` or `bin` (`value`, at the top-level key `key`).
    fn programs(&mut self, key: &str, value: &Value, role: Role) -> Result<Vec<(String, Definition)>, ConfigError> {
        match value {
            Value::String(path) => Ok(self.own(path, role, &[Seg::from(key)]).into_iter().collect()),
            Value::Object(entries) => {
                // In the file's order (the object's keys come sorted).
                let mut entries: Vec<_> =
                    entries.iter().map(|(raw, path)| (key![key, raw.as_str()], raw, path)).collect();
                entries.sort_by_cached_key(|(at, _, _)| line(self.src, at));
                let mut found = Vec::new();
                for (at, raw, path) in entries {
                    let Value::String(path) = path else {
                        self.report(&at, "not a path (a string)");
                        continue;
                    };
                    if let Some(name) = self.names.claim(self.src, raw, &at, &mut self.untranslated) {
                        found.push((name, self.program(path, role, &at)));
                    }
                }
                Ok(found)
            }
            _ => Err(self.src.invalid(key![key], "must be a path, or an object of name → path")),
        }
    }

    /// The one sidecar named after the package, running `path`.
    fn own(&mut self, path: &str, role: Role, at: &[Seg]) -> Option<(String, Definition)> {
        let name = self.package_name(at)?;
        Some((name, self.program(path, role, at)))
    }

    /// The package's name, for its one sidecar (reported at `at` when it cannot be one).
    fn package_name(&mut self, at: &[Seg]) -> Option<String> {
        let (raw, at) = match &self.pkg.name {
            Some(name) => (name.rsplit('/').next().unwrap_or(name).to_string(), key!["name"]),
            None => (self.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), at.to_vec()),
        };
        self.names.claim(self.src, &raw, &at, &mut self.untranslated)
    }

    /// The definition of a program at `path` (the value at `at`).
    fn program(&mut self, path: &str, role: Role, at: &[Seg]) -> Definition {
        match role {
            Role::Bin => Definition::new(match shebang(&self.dir.join(path)) {
                Some(mut interpreter) => {
                    interpreter.push(path.to_string());
                    interpreter
                }
                None => vec!["node".into(), path.to_string()],
            }),
            Role::Commandable => {
                let module = [".js", ".mjs", ".cjs"].iter().any(|ext| path.ends_with(ext));
                let run = match (&self.pkg.main, module) {
                    (_, true) => path.to_string(),
                    (Some(main), false) => main.clone(),
                    (None, false) => ".".to_string(),
                };
                if !module {
                    let why = format!(
                        "`{path}` is an akala commands file, which pm does not read: the sidecar runs `node {run}`, \
                         ready once that has called pm.register"
                    );
                    self.report(at, why);
                }
                let mut def = Definition::new(vec!["node".into(), run]);
                def.ready = Readiness::Registered;
                def
            }
        }
    }

    fn report(&mut self, at: &[Seg], why: impl Into<String>) {
        self.untranslated.push(Untranslated::new(key_path(at), line(self.src, at)).because(why));
    }
}

/// The interpreter and its optional argument of a script's `#!` line, as the kernel splits it:
/// the first word, then the rest as one argument.
fn shebang(script: &Path) -> Option<Vec<String>> {
    // Only a regular file: opening a FIFO would wait for a writer.
    if !script.is_file() {
        return None;
    }
    let mut head = Vec::new();
    std::fs::File::open(script).ok()?.take(SHEBANG_MAX).read_to_end(&mut head).ok()?;
    let rest = head.strip_prefix(b"#!")?;
    let line = rest.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim();
    let (interpreter, argument) = match line.split_once([' ', '\t']) {
        Some((interpreter, argument)) => (interpreter, argument.trim()),
        None => (line, ""),
    };
    if interpreter.is_empty() {
        return None;
    }
    let mut argv = vec![interpreter.to_string()];
    if !argument.is_empty() {
        argv.push(argument.to_string());
    }
    Some(argv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::sources::testing::definitions;
    use pm_protocol::RestartPolicy;
    use std::path::PathBuf;
    use std::time::Duration;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/discover/package_json");

    fn translate_in(dir: &Path, text: &str) -> Result<Translated, ConfigError> {
        read(&SourceFile { path: &dir.join("package.json"), dir, text })
    }

    fn translate(text: &str) -> Translated {
        translate_in(Path::new("/nowhere/app"), text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn def(argv: &[&str], dir: &str) -> Definition {
        let mut def = Definition::new(argv.iter().map(|s| s.to_string()).collect());
        def.cwd = Some(PathBuf::from(dir));
        def
    }

    fn names(out: &Translated) -> Vec<&str> {
        out.sidecars.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn the_fixture_runs_its_bins_by_their_shebangs_with_its_pm_settings() {
        let dir = Path::new(FIXTURE);
        let text = std::fs::read_to_string(dir.join("package.json")).unwrap();
        let out = translate_in(dir, &text).unwrap();
        assert_eq!(names(&out), ["notes-api", "notes-sweeper", "notes-report"]);

        let mut api = def(&["/usr/bin/env", "python3", "bin/api.py"], FIXTURE);
        api.stop_timeout = Duration::from_secs(5);
        api.ready = Readiness::Log("^listening".into());
        let mut sweeper = def(&["/bin/sh", "bin/sweeper.sh"], FIXTURE);
        sweeper.stop_timeout = Duration::from_secs(5);
        sweeper.depends_on = vec!["notes-api".into()];
        sweeper.restart = RestartPolicy::Always;
        let mut report = def(&["node", "bin/report.js"], FIXTURE);
        report.stop_timeout = Duration::from_secs(5);
        report.autostart = false;
        definitions(&out, &[api, sweeper, report]);
        assert_eq!(
            out.untranslated,
            [Untranslated::new("bin.Notes.Report", Some(9)).because("named `notes-report` in pm")]
        );
    }

    #[test]
    fn commands_come_first_and_are_commandable() {
        let out = translate(
            r#"{"name": "@acme/calc", "main": "lib/index.js", "bin": {"calc": "cli.js"},
                "commands": {
                  "calc": "./commands.json",
                  "admin": "admin.mjs"}}"#,
        );
        assert_eq!(names(&out), ["calc", "admin"]);
        let mut calc = def(&["node", "lib/index.js"], "/nowhere/app");
        calc.ready = Readiness::Registered;
        let mut admin = def(&["node", "admin.mjs"], "/nowhere/app");
        admin.ready = Readiness::Registered;
        assert_eq!(out.sidecars[0].1, calc);
        assert_eq!(out.sidecars[1].1, admin);
        assert_eq!(
            out.untranslated,
            [
                Untranslated::new("commands.calc", Some(3)).because(
                    "`./commands.json` is an akala commands file, which pm does not read: the sidecar runs `node \
                     lib/index.js`, ready once that has called pm.register"
                ),
                Untranslated::new("bin", Some(1)).because(
                    "akala maps `commands` and not `bin` when a package has both; a table in `pm` can add a bin"
                ),
            ]
        );

        let out = translate(r#"{"name": "@acme/calc", "commands": "commands.json"}"#);
        assert_eq!(names(&out), ["calc"]);
        assert_eq!(out.sidecars[0].1.command, ["node", "."]);
    }

    #[test]
    fn bin_then_main_then_start_each_named_after_the_package() {
        let out = translate(r#"{"name": "@acme/tool", "bin": "cli.js", "main": "index.js"}"#);
        assert_eq!(names(&out), ["tool"]);
        assert_eq!(out.sidecars[0].1, def(&["node", "cli.js"], "/nowhere/app"));
        let out = translate(r#"{"name": "web", "main": "server.js", "scripts": {"start": "node x"}}"#);
        assert_eq!(out.sidecars, [("web".to_string(), def(&["node", "server.js"], "/nowhere/app"))]);
        let out = translate(r#"{"scripts": {"start": "node x", "test": "jest"}}"#);
        assert_eq!(out.sidecars, [("app".to_string(), def(&["npm", "start"], "/nowhere/app"))]);
        assert!(translate(r#"{"name": "lib", "version": "1.0.0"}"#).sidecars.is_empty());
        assert!(translate("{}").sidecars.is_empty());
    }

    #[test]
    fn odd_values_are_reported_or_errors_naming_the_key_never_panics() {
        let out = translate("{\"bin\": {\n\"a\": 5,\n\"B c\": \"b.js\",\n\"\": \"x.js\"}}");
        assert_eq!(names(&out), ["b-c"]);
        let keys: Vec<&str> = out.untranslated.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(keys, ["bin.a", "bin.B c", "bin."]);
        let out = translate(r#"{"name": "日本", "main": "index.js"}"#);
        assert!(out.sidecars.is_empty());
        assert_eq!(out.untranslated[0].key, "name");

        let err = |text: &str| translate_in(Path::new("/a"), text).unwrap_err().to_string();
        assert_eq!(err("[]"), "/a/package.json:1: invalid type: sequence, expected a map");
        assert_eq!(err("{\n\"bin\": 7}"), "/a/package.json:2: bin: must be a path, or an object of name → path");
        assert_eq!(
            err("{\"commands\": [1]}"),
            "/a/package.json:1: commands: must be a path, or an object of name → path"
        );
        assert_eq!(err("{\"name\": 1}"), "/a/package.json:1: name: invalid type: integer `1`, expected a string");
        assert_eq!(
            err("{\"main\": \"x.js\", \"pm\": {\"instances\": 99999999999}}"),
            "/a/package.json:1: pm.instances: invalid value: integer `99999999999`, expected u32"
        );
        assert!(err("{").starts_with("/a/package.json:1: EOF while parsing"));
    }

    #[test]
    fn shebangs_split_like_the_kernel_splits_them() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &[u8]| {
            std::fs::write(dir.path().join(name), text).unwrap();
            shebang(&dir.path().join(name))
        };
        assert_eq!(write("a", b"#!/bin/sh\necho"), Some(vec!["/bin/sh".into()]));
        assert_eq!(
            write("b", b"#! /usr/bin/env -S node --x  \n"),
            Some(vec!["/usr/bin/env".into(), "-S node --x".into()])
        );
        assert_eq!(write("c", b"console.log(1)"), None);
        assert_eq!(write("d", b"#!\n"), None);
        assert_eq!(write("e", &[b'#', b'!', 0xff, b'\n']), None);
        assert_eq!(shebang(&dir.path().join("missing")), None);
        assert_eq!(shebang(dir.path()), None);
        nix::unistd::mkfifo(&dir.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(shebang(&dir.path().join("fifo")), None, "a FIFO is not opened");
    }
}
