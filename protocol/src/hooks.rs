//! Lifecycle hooks: commands run around an instance's runs. In a project file, each is a command
//! (a string or an argv array) or a table with its own timeout and environment:
//!
//! ```toml
//! [sidecars.api.hooks]
//! pre_start = "./migrate.sh"
//! pre_stop = { command = ["curl", "-X", "POST", "http://127.0.0.1:8080/drain"], timeout = "10s" }
//! ```

use crate::definition::command;
use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The hooks of a definition, each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// Before every start of a run (restarts too); a failure fails the start, with its reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_start: Option<Hook>,
    /// Once a run is ready (beside it: a failure is logged, the run goes on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_start: Option<Hook>,
    /// Before the stop signal, when a run is stopped (not when it exits on its own); whether it
    /// fails or times out, the stop goes on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_stop: Option<Hook>,
    /// After every run ends, stopped or exited (`PM_EXIT_CODE` / `PM_EXIT_SIGNAL` say how).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_stop: Option<Hook>,
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        self == &Hooks::default()
    }
}

/// One hook: a command, how long it may run, and variables added to its environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(with = "HookSchema")]
pub struct Hook {
    pub command: Vec<String>,
    #[serde(with = "crate::duration")]
    pub timeout: Duration,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// How long a hook may run unless it says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A hook as a table.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HookTable {
    /// The command (argv or a string split like a shell).
    #[serde(deserialize_with = "command::deserialize")]
    #[schemars(with = "command::Schema")]
    command: Vec<String>,
    /// How long it may run before it is killed (with everything it started); default 30s.
    #[serde(default, with = "crate::duration::option")]
    #[schemars(with = "Option<String>")]
    timeout: Option<Duration>,
    /// Variables added to its environment.
    #[serde(default)]
    env: BTreeMap<String, String>,
}

/// The accepted shapes, for the JSON Schema.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // only its shape matters
enum HookSchema {
    Command(command::Schema),
    Table(HookTable),
}

impl<'de> Deserialize<'de> for Hook {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Hook, D::Error> {
        d.deserialize_any(HookVisitor)
    }
}

struct HookVisitor;

impl HookVisitor {
    fn command<E: de::Error>(argv: Vec<String>) -> Result<Hook, E> {
        if argv.first().is_none_or(|p| p.is_empty()) {
            return Err(E::custom("command is empty"));
        }
        Ok(Hook { command: argv, timeout: DEFAULT_TIMEOUT, env: BTreeMap::new() })
    }
}

impl<'de> Visitor<'de> for HookVisitor {
    type Value = Hook;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a command (a string or an argv array) or a table with `command`, `timeout` and `env`")
    }

    fn visit_str<E: de::Error>(self, line: &str) -> Result<Hook, E> {
        let argv = shell_words::split(line).map_err(|e| E::custom(format!("command `{line}`: {e}")))?;
        HookVisitor::command(argv)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Hook, A::Error> {
        let mut argv = Vec::new();
        while let Some(word) = seq.next_element::<String>()? {
            argv.push(word);
        }
        HookVisitor::command(argv)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Hook, A::Error> {
        let t = HookTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Hook { command: t.command, timeout: t.timeout.unwrap_or(DEFAULT_TIMEOUT), env: t.env })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_is_a_command_or_a_table() {
        let hooks: Hooks = serde_json::from_str(
            r#"{"pre_start": "./migrate.sh --fast", "pre_stop": {"command": ["curl", "x"], "timeout": "5s", "env": {"A": "1"}}}"#,
        )
        .unwrap();
        let pre_start = hooks.pre_start.clone().unwrap();
        assert_eq!(
            (pre_start.command, pre_start.timeout),
            (vec!["./migrate.sh".into(), "--fast".into()], DEFAULT_TIMEOUT)
        );
        let pre_stop = hooks.pre_stop.clone().unwrap();
        assert_eq!((pre_stop.timeout, pre_stop.env["A"].as_str()), (Duration::from_secs(5), "1"));
        let again: Hooks = serde_json::from_value(serde_json::to_value(&hooks).unwrap()).unwrap();
        assert_eq!(again, hooks);
    }

    #[test]
    fn bad_hooks_say_why() {
        for (json, want) in [
            (r#"{"pre_start": ""}"#, "command is empty"),
            (r#"{"pre_start": []}"#, "command is empty"),
            (r#"{"pre_start": 5}"#, "a command (a string or an argv array) or a table"),
            (r#"{"pre_start": {"command": "x", "timout": "1s"}}"#, "unknown field `timout`"),
            (r#"{"pre_start": {"command": "x", "timeout": "500000000000y"}}"#, "too long"),
            (r#"{"post_boot": "x"}"#, "unknown field `post_boot`"),
        ] {
            let err = serde_json::from_str::<Hooks>(json).unwrap_err().to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
    }
}
