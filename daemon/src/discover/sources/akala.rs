//! akala's pm config: `.pm.config.json` (the whole file) or the `pm` key of `.akala.json`
//! (akala's CLI config), translated as `pm start -f` imports one (see `config/akala.rs`), with
//! what that refuses reported here instead.

use crate::config::{ConfigError, Format, Seg, Source, key, translate_akala};
use crate::discover::{SourceFile, Translated};

pub fn read(src: &SourceFile<'_>) -> Result<Translated, ConfigError> {
    let source = Source { file: src.path, text: src.text, format: Format::Json };
    let at = match src.path.file_name().and_then(|n| n.to_str()) {
        Some(".akala.json") => key!["pm"],
        _ => key![],
    };
    translate_akala(&source, src.dir, &at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::Untranslated;
    use crate::discover::sources::testing::definitions;
    use pm_protocol::{Definition, Readiness};
    use std::path::Path;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/discover/akala");

    fn translate(dir: &Path, file: &str, text: &str) -> Result<Translated, ConfigError> {
        read(&SourceFile { path: &dir.join(file), dir, text })
    }

    fn node(args: &[&str], dir: &Path) -> Definition {
        let mut def = Definition::new(["node"].iter().chain(args).map(|s| s.to_string()).collect());
        def.cwd = Some(dir.to_path_buf());
        def
    }

    #[test]
    fn the_fixture_maps_its_instances_hands_them_their_config_and_reports_the_rest() {
        let dir = Path::new(FIXTURE);
        let text = std::fs::read_to_string(dir.join(".pm.config.json")).unwrap();
        let out = translate(dir, ".pm.config.json", &text).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = out.sidecars.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["digest", "store", "feed"]);

        let mut digest = node(&["digest.js"], dir);
        digest.stateless = true;
        digest.autostart = false;
        let config = format!("--configFile={FIXTURE}/.pm.config.json#mapping.store.config");
        let mut store = node(&["store.js", &config], dir);
        store.ready = Readiness::Registered;
        let mut feed = node(&["feed.js", "--interval", "1"], dir);
        feed.depends_on = vec!["store".into()];
        feed.stateless = true;
        definitions(&out, &[digest, store, feed]);
        assert_eq!(
            out.untranslated,
            [
                Untranslated::new("containers.digest.type", Some(22)).because(
                    "a `worker` runs in a thread of akala's own node process; pm runs it as a process, `node <path>`"
                ),
                Untranslated::new("mapping.feed.connect", Some(43)).because(
                    "akala's `connect` (where a sidecar listens) has no pm equivalent: a pm sidecar gives its \
                     endpoint to pm.register"
                ),
            ]
        );
    }

    #[test]
    fn the_pm_key_of_akala_json_and_odd_values() {
        let dir = Path::new("/srv");
        let text = r#"{
  "plugins": ["@akala/pm/akala"],
  "commands": {"pm": "@akala/pm/commands.json"},
  "pm": {
    "containers": {"Web.App": {"path": "web.js", "type": "docker", "dependencies": ["nope"]},
                   "bad": {"path": 5}, "other": {"path": "o.js", "x": 1}},
    "mapping": {"w": {"container": "Web.App", "config": "conf/w.json#web", "cli": ["-v"]},
                "lost": {}, "n": {"container": "other", "config": 3}},
    "plugins": ["p"], "setup": {"packages": ["@akala/x"]}, "extra": true
  }
}"#;
        let out = translate(dir, ".akala.json", text).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = out.sidecars.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["w", "n"]);
        let mut w = node(&["web.js", "-v", "--configFile=/srv/conf/w.json#web"], dir);
        w.autostart = false;
        assert_eq!(out.sidecars[0].1, w);
        let keys: Vec<&str> = out.untranslated.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "pm.containers.Web.App.type",
                "pm.containers.Web.App.dependencies[0]",
                "pm.containers.other.x",
                "pm.containers.bad.path",
                "pm.mapping.lost",
                "pm.mapping.n.config",
                "pm.extra",
                "pm.plugins",
                "pm.setup.packages",
            ]
        );
        assert!(translate(dir, ".akala.json", r#"{"plugins": []}"#).unwrap().sidecars.is_empty());
        assert!(translate(dir, ".pm.config.json", "{}").unwrap().sidecars.is_empty());
        let err = |text: &str| translate(dir, ".pm.config.json", text).unwrap_err().to_string();
        assert_eq!(err("[1]"), "/srv/.pm.config.json:1: invalid type: sequence, expected a map");
        assert_eq!(
            err("{\"containers\": {\"a\": {\"path\": \"a.js\", \"commandable\": \"yes\"}}}"),
            "/srv/.pm.config.json:1: containers.a.commandable: invalid type: string \"yes\", expected a boolean"
        );
        assert!(err("").starts_with("/srv/.pm.config.json:1: EOF while parsing"));
    }
}
