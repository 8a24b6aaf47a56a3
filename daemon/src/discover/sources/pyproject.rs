//! A `pyproject.toml`: each script the project declares becomes a sidecar that runs it from the
//! checkout, the way the console-script wrapper pip would install calls it.
//!
//! - `[project.scripts]` and `[project.gui-scripts]` (`name = "module:object.attr"`), and Poetry's
//!   `[tool.poetry.scripts]` (a string, or a table with `callable` or a console `reference`): the
//!   sidecar runs `python3 -c "import sys; sys.argv[0] = 'name'; from module import object;
//!   sys.exit(object.attr())"` in the project's directory, so the checkout's code runs, not
//!   whatever is installed. The interpreter is the project's `.venv/bin/python3` when there is
//!   one. With a `src/` layout (the module is under `src/`, not beside pyproject.toml), `src` is
//!   put first on `sys.path`.
//! - An entry point's extras (`module:func [extra]`) are reported: pm installs nothing.
//! - `[tool.pm]` holds pm settings (see [`super::manifest`]): `[tool.pm.web] port = 8080`.

use super::manifest::{Names, Settings, line};
use crate::config::{ConfigError, Format, Seg, Source, key, key_path};
use crate::discover::{SourceFile, Translated, Untranslated};
use pm_protocol::Definition;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::Path;

#[derive(Deserialize)]
struct Pyproject {
    #[serde(default)]
    project: Project,
    #[serde(default)]
    tool: Tool,
}

#[derive(Deserialize, Default)]
struct Project {
    #[serde(default)]
    scripts: Map<String, Value>,
    #[serde(default, rename = "gui-scripts")]
    gui_scripts: Map<String, Value>,
}

#[derive(Deserialize, Default)]
struct Tool {
    pm: Option<Map<String, Value>>,
    #[serde(default)]
    poetry: Poetry,
}

#[derive(Deserialize, Default)]
struct Poetry {
    #[serde(default)]
    scripts: Map<String, Value>,
}

/// A script's entry point: `module:object.attr`.
#[derive(Debug, PartialEq)]
struct EntryPoint<'a> {
    module: &'a str,
    attr: &'a str,
    /// Whether it named extras (`[…]`).
    extras: bool,
}

pub fn read(src: &SourceFile<'_>) -> Result<Translated, ConfigError> {
    let source = Source { file: src.path, text: src.text, format: Format::Toml };
    let file: Pyproject = source.parse()?;
    let mut reader = Reader { src: &source, dir: src.dir, names: Names::default(), untranslated: Vec::new() };
    let mut derived = Vec::new();
    for (table, scripts) in [
        (key!["project", "scripts"], &file.project.scripts),
        (key!["project", "gui-scripts"], &file.project.gui_scripts),
        (key!["tool", "poetry", "scripts"], &file.tool.poetry.scripts),
    ] {
        // In the file's order (the table's keys come sorted).
        let mut scripts: Vec<_> = scripts.iter().map(|(name, spec)| (at(&table, name), name, spec)).collect();
        scripts.sort_by_cached_key(|(at, _, _)| line(&source, at));
        for (at, name, spec) in scripts {
            derived.extend(reader.script(name, spec, &at));
        }
    }
    let sidecars = Settings::new(&source, src.dir, key!["tool", "pm"], file.tool.pm)?.apply(derived)?;
    Ok(Translated { sidecars, untranslated: reader.untranslated })
}

fn at(table: &[Seg], name: &str) -> Vec<Seg> {
    let mut at = table.to_vec();
    at.push(Seg::from(name));
    at
}

struct Reader<'a> {
    src: &'a Source<'a>,
    dir: &'a Path,
    names: Names,
    untranslated: Vec<Untranslated>,
}

impl Reader<'_> {
    /// The sidecar of script `name`, whose entry point is `spec` (at `at`).
    fn script(&mut self, name: &str, spec: &Value, at: &[Seg]) -> Option<(String, Definition)> {
        let text = match spec {
            Value::String(text) => Some(text.as_str()),
            // Poetry: `{ callable = "…" }`, or `{ reference = "…", type = "console" }`.
            Value::Object(table) => match (table.get("callable"), table.get("reference"), table.get("type")) {
                (Some(Value::String(text)), None, None) => Some(text.as_str()),
                (None, Some(Value::String(text)), None) => Some(text.as_str()),
                (None, Some(Value::String(text)), Some(Value::String(kind))) if kind == "console" => {
                    Some(text.as_str())
                }
                _ => None,
            },
            _ => None,
        };
        let Some(entry) = text.and_then(entry_point) else {
            self.report(at, "not an entry point pm can run (`module:function`)");
            return None;
        };
        let name = self.names.claim(self.src, name, at, &mut self.untranslated)?;
        if entry.extras {
            self.report(at, "extras are not installed by pm: the script runs with what its environment has");
        }
        Some((name.clone(), Definition::new(self.command(&name, &entry))))
    }

    /// `python3 -c CODE`, CODE calling the entry point as pip's wrapper would (its words are
    /// identifiers, checked by [`entry_point`], so the code is only what is written here).
    fn command(&self, name: &str, entry: &EntryPoint<'_>) -> Vec<String> {
        let quoted = |text: &str| serde_json::to_string(text).unwrap_or_default();
        let object = entry.attr.split('.').next().unwrap_or(entry.attr);
        let mut code = format!("import sys; sys.argv[0] = {}; ", quoted(name));
        let top = entry.module.split('.').next().unwrap_or(entry.module);
        let beside = |dir: &Path| dir.join(top).is_dir() || dir.join(format!("{top}.py")).is_file();
        let src = self.dir.join("src");
        if !beside(self.dir) && beside(&src) {
            code.push_str(&format!("sys.path.insert(0, {}); ", quoted(&src.to_string_lossy())));
        }
        code.push_str(&format!("from {} import {object}; sys.exit({}())", entry.module, entry.attr));
        let venv = self.dir.join(".venv/bin/python3");
        let python = if venv.is_file() { venv.to_string_lossy().into_owned() } else { "python3".into() };
        vec![python, "-c".into(), code]
    }

    fn report(&mut self, at: &[Seg], why: &str) {
        self.untranslated.push(Untranslated::new(key_path(at), line(self.src, at)).because(why));
    }
}

/// `module:object.attr [extras]`, each of module and attr dotted Python identifiers.
fn entry_point(spec: &str) -> Option<EntryPoint<'_>> {
    let (spec, extras) = match spec.split_once('[') {
        Some((spec, extras)) => (spec, extras.trim_end().ends_with(']').then_some(true)?),
        None => (spec, false),
    };
    let (module, attr) = spec.split_once(':')?;
    let (module, attr) = (module.trim(), attr.trim());
    let identifier = |word: &str| {
        let mut chars = word.chars();
        chars.next().is_some_and(|c| c.is_alphabetic() || c == '_') && chars.all(|c| c.is_alphanumeric() || c == '_')
    };
    let dotted = |path: &str| path.split('.').all(identifier);
    (dotted(module) && dotted(attr)).then_some(EntryPoint { module, attr, extras })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::sources::testing::definitions;
    use pm_protocol::Readiness;
    use std::path::PathBuf;
    use std::time::Duration;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/discover/pyproject");

    fn translate_in(dir: &Path, text: &str) -> Result<Translated, ConfigError> {
        read(&SourceFile { path: &dir.join("pyproject.toml"), dir, text })
    }

    fn python(dir: &str, code: &str) -> Definition {
        let mut def = Definition::new(vec!["python3".into(), "-c".into(), code.into()]);
        def.cwd = Some(PathBuf::from(dir));
        def
    }

    #[test]
    fn the_fixture_runs_each_script_from_the_checkouts_src() {
        let dir = Path::new(FIXTURE);
        let text = std::fs::read_to_string(dir.join("pyproject.toml")).unwrap();
        let out = translate_in(dir, &text).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = out.sidecars.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["station-report", "station-collector", "station-web"]);
        let src = format!("sys.path.insert(0, \"{FIXTURE}/src\"); ");
        let code = |argv0: &str, import: &str, call: &str| {
            format!("import sys; sys.argv[0] = \"{argv0}\"; {src}from {import}; sys.exit({call}())")
        };
        let mut collector = python(FIXTURE, &code("station-collector", "station.collector import main", "main"));
        collector.stop_timeout = Duration::from_secs(5);
        collector.ready = Readiness::Log("^collecting".into());
        let mut web = python(FIXTURE, &code("station-web", "station.web import app", "app.run"));
        web.stop_timeout = Duration::from_secs(5);
        web.ready = Readiness::Log("^serving".into());
        web.depends_on = vec!["station-collector".into()];
        let mut report = python(FIXTURE, &code("station-report", "station.report import main", "main"));
        report.stop_timeout = Duration::from_secs(5);
        report.ready = Readiness::Exited;
        report.autostart = false;
        definitions(&out, &[report, collector, web]);
        assert_eq!(
            out.untranslated,
            [
                Untranslated::new("project.scripts.Station.Report", Some(12)).because("named `station-report` in pm"),
                Untranslated::new("project.scripts.Station.Report", Some(12))
                    .because("extras are not installed by pm: the script runs with what its environment has"),
            ]
        );
    }

    #[test]
    fn poetry_and_gui_scripts_and_odd_entries() {
        let text = r#"
[project]
name = "x"
[project.gui-scripts]
viewer = "x.gui:main"
[tool.poetry.scripts]
serve = { callable = "x.serve:run" }
job = { reference = "x.job:go", type = "console" }
file = { reference = "bin/f.sh", type = "file" }
evil = "os:system('rm -rf /')"
bare = "x.mod"
num = 5
"#;
        let out = translate_in(Path::new("/p"), text).unwrap();
        let names: Vec<&str> = out.sidecars.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["viewer", "serve", "job"]);
        let code = "import sys; sys.argv[0] = \"serve\"; from x.serve import run; sys.exit(run())";
        assert_eq!(out.sidecars[1].1, python("/p", code));
        let why = "not an entry point pm can run (`module:function`)";
        let keys: Vec<(&str, Option<usize>, Option<&str>)> =
            out.untranslated.iter().map(|u| (u.key.as_str(), u.line, u.why.as_deref())).collect();
        assert_eq!(
            keys,
            [
                ("tool.poetry.scripts.file", Some(9), Some(why)),
                ("tool.poetry.scripts.evil", Some(10), Some(why)),
                ("tool.poetry.scripts.bare", Some(11), Some(why)),
                ("tool.poetry.scripts.num", Some(12), Some(why)),
            ]
        );
        assert!(translate_in(Path::new("/p"), "").unwrap().sidecars.is_empty());
        let err = translate_in(Path::new("/p"), "[project]\nscripts = 3\n").unwrap_err().to_string();
        assert_eq!(err, "/p/pyproject.toml:2: project.scripts: invalid type: integer `3`, expected a map");
        let err = translate_in(Path::new("/p"), "[tool.pm.web]\nrestart = 1\n").unwrap_err().to_string();
        assert!(err.starts_with("/p/pyproject.toml:2: tool.pm.web.restart: invalid type: integer `1`"), "{err}");
        assert!(translate_in(Path::new("/p"), "[project").is_err());
    }

    #[test]
    fn entry_points_are_identifiers_only() {
        let ep = |module, attr, extras| Some(EntryPoint { module, attr, extras });
        assert_eq!(entry_point("a.b:c"), ep("a.b", "c", false));
        assert_eq!(entry_point(" a : c.d [x, y] "), ep("a", "c.d", true));
        assert_eq!(entry_point("_é1:f"), ep("_é1", "f", false));
        for bad in ["a", "a:", ":f", "a:f()", "a b:f", "1a:f", "a:f [x", "a..b:f", "a:\"f\"", "a:f;g"] {
            assert_eq!(entry_point(bad), None, "{bad}");
        }
    }
}
