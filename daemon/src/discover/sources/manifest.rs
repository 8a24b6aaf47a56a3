//! What the translators of project manifests (package.json, Cargo.toml, pyproject.toml) share:
//! the pm names of the programs they describe, and the table of pm settings each may carry
//! (`"pm"` in package.json, `[package.metadata.pm]` in Cargo.toml, `[tool.pm]` in pyproject.toml).
//!
//! A settings table holds the keys of a `[sidecars.<name>]` table of a project file, which apply
//! to every sidecar the manifest gives, and tables named after one sidecar, which apply to it alone
//! (after those). A table named after no sidecar of the manifest defines one of its own (with its
//! own `command`). Values are taken as written: it is pm's syntax, so a wrong key or value is an
//! error naming it, as in a project file.

use crate::config::{ConfigError, Seg, Source, key_line, key_path, serde_key_path};
use crate::discover::{Untranslated, pm_name};
use pm_protocol::Definition;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::LazyLock;

/// The line of the key at `at`, when it can be found.
pub(super) fn line(src: &Source<'_>, at: &[Seg]) -> Option<usize> {
    key_line(src.format, src.text, at).map(|(line, _)| line)
}

/// The pm names given so far to the programs of a manifest (or of a workspace's manifests).
#[derive(Default)]
pub(super) struct Names(BTreeSet<String>);

impl Names {
    /// The pm name of a program the file names `raw` (at `at`): reported when it had to change,
    /// and `None` (reported as well) when nothing of it is left or another program has it.
    pub fn claim(
        &mut self,
        src: &Source<'_>,
        raw: &str,
        at: &[Seg],
        untranslated: &mut Vec<Untranslated>,
    ) -> Option<String> {
        let name = pm_name(raw);
        let report = |why: String| Untranslated::new(key_path(at), line(src, at)).because(why);
        if name.is_empty() {
            untranslated.push(report(format!("`{raw}` has nothing a pm name can be made of ([a-z0-9_-]); skipped")));
            return None;
        }
        if self.0.contains(&name) {
            untranslated.push(report(format!("`{name}` is the pm name of another program already; skipped")));
            return None;
        }
        if name != raw {
            untranslated.push(report(format!("named `{name}` in pm")));
        }
        self.0.insert(name.clone());
        Some(name)
    }
}

/// The keys of a `[sidecars.<name>]` table.
static FIELDS: LazyLock<BTreeSet<String>> = LazyLock::new(|| {
    let schema = schemars::schema_for!(Definition).to_value();
    schema["properties"].as_object().map(|fields| fields.keys().cloned().collect()).unwrap_or_default()
});

/// A manifest's table of pm settings.
pub(super) struct Settings<'s> {
    src: &'s Source<'s>,
    /// The manifest's directory: relative `cwd` and `env_file` are anchored there, and a sidecar
    /// without a `cwd` runs there.
    dir: &'s Path,
    /// Where the table is in the file.
    at: Vec<Seg>,
    /// Keys of a sidecar table, for every sidecar.
    common: Map<String, Value>,
    /// Tables named after one sidecar.
    each: Vec<(String, Map<String, Value>)>,
}

impl<'s> Settings<'s> {
    /// The table at `at` (`None` when the manifest has none).
    pub fn new(
        src: &'s Source<'s>,
        dir: &'s Path,
        at: Vec<Seg>,
        table: Option<Map<String, Value>>,
    ) -> Result<Self, ConfigError> {
        let mut common = Map::new();
        let mut each = Vec::new();
        for (key, value) in table.unwrap_or_default() {
            if FIELDS.contains(&key) {
                common.insert(key, value);
                continue;
            }
            let mut here = at.clone();
            here.push(Seg::from(key.as_str()));
            let Value::Object(table) = value else {
                let message = "neither a key of a sidecar table (`command`, `ready`, `restart`, …) nor a table \
                               named after a sidecar";
                return Err(src.invalid(here, message));
            };
            pm_protocol::validate_name(&key).map_err(|e| src.invalid(here, e))?;
            each.push((key, table));
        }
        Ok(Settings { src, dir, at, common, each })
    }

    /// The sidecars derived from the manifest with the settings applied, then those the settings
    /// alone define; each anchored at the manifest's directory and checked as `pm.map` would.
    pub fn apply(mut self, sidecars: Vec<(String, Definition)>) -> Result<Vec<(String, Definition)>, ConfigError> {
        let mut out = Vec::with_capacity(sidecars.len() + self.each.len());
        for (name, def) in sidecars {
            let own = self.each.iter().position(|(n, _)| *n == name).map(|i| self.each.remove(i));
            out.push(self.settle(name, def, own)?);
        }
        for own in std::mem::take(&mut self.each) {
            out.push(self.settle(own.0.clone(), Definition::new(Vec::new()), Some(own))?);
        }
        Ok(out)
    }

    fn settle(
        &self,
        name: String,
        def: Definition,
        own: Option<(String, Map<String, Value>)>,
    ) -> Result<(String, Definition), ConfigError> {
        let mut def = self.overlay(def, &self.common, &self.at)?;
        let mut at = self.at.clone();
        if let Some((key, table)) = &own {
            at.push(Seg::from(key.as_str()));
            def = self.overlay(def, table, &at)?;
        }
        def.cwd = Some(match def.cwd.take() {
            Some(cwd) => self.dir.join(cwd),
            None => self.dir.to_path_buf(),
        });
        for file in &mut def.env_file {
            *file = self.dir.join(&*file);
        }
        crate::supervisor::validate(&name, &def).map_err(|e| self.src.invalid(at, e))?;
        Ok((name, def))
    }

    /// `def` with the keys of `table` (the table at `at`) in place of its own.
    fn overlay(&self, def: Definition, table: &Map<String, Value>, at: &[Seg]) -> Result<Definition, ConfigError> {
        if table.is_empty() {
            return Ok(def);
        }
        let mut fields = match serde_json::to_value(&def) {
            Ok(Value::Object(fields)) => fields,
            other => return Err(self.src.invalid(at.to_vec(), format!("cannot apply pm settings to {other:?}"))),
        };
        fields.extend(table.iter().map(|(k, v)| (k.clone(), v.clone())));
        serde_path_to_error::deserialize(Value::Object(fields)).map_err(|e| {
            let (rest, _) = serde_key_path(e.path());
            let message = e.inner().to_string();
            // An unknown key is reported against the table that holds it, as in a project file.
            let unknown =
                matches!(rest.last(), Some(Seg::Key(k)) if message.starts_with(&format!("unknown field `{k}`")));
            let mut path = at.to_vec();
            path.extend(rest);
            if unknown {
                path.pop();
            }
            ConfigError::Parse {
                file: self.src.file.to_path_buf(),
                line: line(self.src, &path),
                key: key_path(&path),
                message,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Format, key};
    use pm_protocol::{Readiness, RestartPolicy};

    const TEXT: &str = r#"{
  "pm": {
    "restart": "always",
    "web": {"ready": {"log": "up"}, "cwd": "www"},
    "extra": {"command": "sleep 1"}
  }
}"#;

    fn table(json: &str) -> Option<Map<String, Value>> {
        let value: Value = serde_json::from_str(json).unwrap();
        value["pm"].as_object().cloned()
    }

    fn src(text: &str) -> Source<'_> {
        Source { file: Path::new("package.json"), text, format: Format::Json }
    }

    #[test]
    fn common_keys_then_a_sidecars_own_table_then_sidecars_of_their_own() {
        let src = src(TEXT);
        let dir = Path::new("/app");
        let settings = Settings::new(&src, dir, key!["pm"], table(TEXT)).unwrap();
        let derived = vec![
            ("web".to_string(), Definition::new(vec!["node".into(), "web.js".into()])),
            ("cli".to_string(), Definition::new(vec!["node".into(), "cli.js".into()])),
        ];
        let out = settings.apply(derived).unwrap();
        let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["web", "cli", "extra"]);
        let mut web = Definition::new(vec!["node".into(), "web.js".into()]);
        web.restart = RestartPolicy::Always;
        web.ready = Readiness::Log("up".into());
        web.cwd = Some("/app/www".into());
        assert_eq!(out[0].1, web);
        assert_eq!(out[1].1.cwd.as_deref(), Some(Path::new("/app")));
        assert_eq!(out[2].1.command, ["sleep", "1"]);
        assert_eq!(out[2].1.restart, RestartPolicy::Always);
    }

    #[test]
    fn wrong_keys_and_values_are_errors_naming_them() {
        let err = |text: &str| {
            let src = src(text);
            let settings = Settings::new(&src, Path::new("/app"), key!["pm"], table(text));
            let derived = vec![("web".to_string(), Definition::new(vec!["x".into()]))];
            settings.and_then(|s| s.apply(derived)).unwrap_err().to_string()
        };
        assert_eq!(
            err("{\"pm\": {\n \"restart\": \"sometimes\"}}"),
            "package.json:2: pm.restart: unknown variant `sometimes`, expected one of `always`, `on-failure`, `never`"
        );
        let unknown = err("{\"pm\": {\n \"web\": {\n  \"restrat\": 1}}}");
        assert!(unknown.starts_with("package.json:2: pm.web: unknown field `restrat`, expected one of"), "{unknown}");
        assert_eq!(
            err("{\"pm\": {\"Web\": {}}}"),
            "package.json:1: pm.Web: invalid name `Web`: names match [a-z0-9][a-z0-9_-]* (lowercase, no dots)"
        );
        assert_eq!(
            err("{\"pm\": {\"nope\": 3}}"),
            "package.json:1: pm.nope: neither a key of a sidecar table (`command`, `ready`, `restart`, …) nor a \
             table named after a sidecar"
        );
        assert_eq!(err("{\"pm\": {\"lone\": {}}}"), "package.json:1: pm.lone: sidecar `lone`: command is empty");
        assert_eq!(
            err("{\"pm\": {\"instances\": 0}}"),
            "package.json:1: pm: sidecar `web`: instances must be at least 1"
        );
    }

    #[test]
    fn odd_files_never_panic_a_translator() {
        use crate::discover::SourceFile;
        let odd = [
            "",
            "\u{feff}",
            "\0\0\0",
            "{}",
            "[]",
            "null",
            "{\"pm\": {\"日本\": {}}, \"bin\": {\"日本\": \"x\"}, \"name\": \"\"}",
            "{\"containers\": {\"日本\": {\"path\": \"a.js\"}}, \"mapping\": {\"x\": {\"container\": \"日本\"}}}",
            "{\"commands\": {\"a\": \"b.json\"}, \"pm\": {\"port\": 99999999999999999999}}",
            "[project.scripts]\na = \"\"\nb = \":\"\nc = \"[\"\n[tool.pm]\nwatch_debounce = \"1000000000y\"\n",
            "[package]\nname = \"\"\n[[bin]]\nname = \"\"\n[workspace]\nmembers = [\"/\", \"\", \"*/*/*\"]\n",
            ":\n::\na:b:c\n\u{0}: x\n",
        ];
        let dir = Path::new("/nonexistent-dir");
        for read in [
            super::super::package_json::read,
            super::super::pyproject::read,
            super::super::cargo::read,
            super::super::procfile::read,
            super::super::akala::read,
        ] {
            for text in odd {
                let _ = read(&SourceFile { path: &dir.join("f"), dir, text });
            }
        }
    }

    #[test]
    fn names_are_made_pm_names_and_reported() {
        let src = src("{\"bin\": {\"My.Tool\": \"x\", \"日本\": \"y\", \"my-tool\": \"z\"}}");
        let mut untranslated = Vec::new();
        let mut names = Names::default();
        let mut claim = |raw: &str| names.claim(&src, raw, &[Seg::from("bin"), Seg::from(raw)], &mut untranslated);
        assert_eq!(claim("My.Tool").as_deref(), Some("my-tool"));
        assert_eq!(claim("日本"), None);
        assert_eq!(claim("my-tool"), None);
        assert_eq!(claim("web").as_deref(), Some("web"));
        assert_eq!(
            untranslated,
            [
                Untranslated::new("bin.My.Tool", Some(1)).because("named `my-tool` in pm"),
                Untranslated::new("bin.日本", Some(1))
                    .because("`日本` has nothing a pm name can be made of ([a-z0-9_-]); skipped"),
                Untranslated::new("bin.my-tool", Some(1))
                    .because("`my-tool` is the pm name of another program already; skipped"),
            ]
        );
    }
}
