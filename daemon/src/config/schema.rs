//! The project file's shape, as serde reads it and as its JSON Schema describes it.

use super::DaemonSection;
use pm_protocol::Definition;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// A pm project file: an optional `[daemon]` table and one `[sidecars.<name>]` table per
/// sidecar definition.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table with `sidecars` (and optionally `daemon`)")]
#[schemars(title = "pm project file")]
pub(crate) struct ProjectFile {
    /// Settings for the daemon.
    #[serde(default)]
    pub daemon: DaemonSection,
    /// Sidecar definitions by name (`[a-z0-9][a-z0-9_-]*`, not `pm`).
    #[serde(default)]
    pub sidecars: BTreeMap<SidecarName, Definition>,
}

/// A sidecar name, checked with [`pm_protocol::validate_name`] as it is read (so the error has
/// the format's own line).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SidecarName(pub String);

impl<'de> Deserialize<'de> for SidecarName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        pm_protocol::validate_name(&name).map_err(serde::de::Error::custom)?;
        Ok(SidecarName(name))
    }
}

impl JsonSchema for SidecarName {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "SidecarName".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$" })
    }
}

/// Just enough of a document to tell a pm project file from an akala config (which has a
/// top-level `containers`). Only a map is accepted (a derived struct would take a sequence).
pub(crate) struct Probe {
    pub akala: bool,
}

impl<'de> Deserialize<'de> for Probe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = Probe;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table with `sidecars` (and optionally `daemon`)")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Probe, A::Error> {
                let mut akala = false;
                while let Some(key) = map.next_key::<String>()? {
                    akala |= key == "containers";
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(Probe { akala })
            }

            /// An empty YAML document.
            fn visit_unit<E: serde::de::Error>(self) -> Result<Probe, E> {
                Ok(Probe { akala: false })
            }
        }
        d.deserialize_map(Keys)
    }
}

/// The JSON Schema (draft 2020-12) of a project file, generated from the Rust types.
pub fn json_schema() -> serde_json::Value {
    schemars::schema_for!(ProjectFile).to_value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_describes_daemon_and_sidecars() {
        let schema = json_schema();
        let props = &schema["properties"];
        assert_eq!(schema["title"], "pm project file");
        assert_eq!(schema["additionalProperties"], false, "unknown top-level keys are errors");
        assert!(props["daemon"].is_object(), "{schema:#}");
        let sidecars = &props["sidecars"];
        let pattern = &sidecars["patternProperties"]["^[a-z0-9][a-z0-9_-]*$"];
        assert_eq!(pattern["$ref"], "#/$defs/Definition", "{schema:#}");
        assert_eq!(sidecars["additionalProperties"], false);
        let definition = &schema["$defs"]["Definition"];
        assert!(definition["properties"]["command"].is_object(), "{definition:#}");
        assert!(definition["properties"]["docker"].is_object(), "a container's table: {definition:#}");
        let daemon = &schema["$defs"]["DaemonSection"];
        assert!(daemon["properties"]["listen"].is_object(), "{schema:#}");
        assert_eq!(daemon["additionalProperties"], false);
    }

    /// A project file as the JSON value an editor validates.
    fn as_json(path: &std::path::Path) -> serde_json::Value {
        let text = std::fs::read_to_string(path).unwrap();
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => toml::from_str(&text).unwrap(),
            Some("yaml" | "yml") => serde_yaml::from_str(&text).unwrap(),
            _ => serde_json::from_str(&text).unwrap(),
        }
    }

    #[test]
    fn every_bundled_example_validates_against_the_schema_and_loads() {
        let validator = jsonschema::validator_for(&json_schema()).expect("the schema is a valid JSON Schema");
        let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let mut checked = Vec::new();
        for dir in std::fs::read_dir(&examples).unwrap() {
            for name in ["pm.toml", "pm.yaml", "pm.yml", "pm.json"] {
                let path = dir.as_ref().unwrap().path().join(name);
                if !path.exists() {
                    continue;
                }
                let errors: Vec<String> = validator.iter_errors(&as_json(&path)).map(|e| e.to_string()).collect();
                assert!(errors.is_empty(), "{} does not validate: {errors:#?}", path.display());
                if let Err(e) = crate::config::load(&path, &|_| Some("1".into())) {
                    panic!("{} does not load: {e}", path.display());
                }
                checked.push(path);
            }
        }
        assert!(checked.len() >= 4, "examples found: {checked:?}");
        // The check can fail: a command given as the Rust enum's shape is not a project file.
        let wrong = serde_json::json!({"sidecars": {"web": {"command": {"Line": "sleep 1"}}}});
        assert!(!validator.is_valid(&wrong));
        let right = serde_json::json!({"sidecars": {"web": {"command": "sleep 1"}, "db": {"command": ["sleep", "1"]}}});
        assert!(
            validator.is_valid(&right),
            "{:?}",
            validator.iter_errors(&right).map(|e| e.to_string()).collect::<Vec<_>>()
        );
    }
}
