//! What a sidecar's token may do. The owner may do everything; a sidecar may, by default,
//! authenticate, register itself, ping, follow its own logs and events, and call the methods of
//! the sidecars it depends on. Anything more is granted by name in its definition:
//! `calls = ["db.*", "cache.get"]` (globs over `<sidecar>.<method>`) and `pm = ["status"]`.

use crate::mesh::RunToken;
use serde_json::value::RawValue;

/// Daemon methods any sidecar may call: cancelling is checked against the connection that
/// subscribed, registering against the token's own instance.
const ALWAYS: &[&str] = &["auth", "register", "ping", "unlogs", "unevents"];

/// Daemon methods a sidecar may call for its own instance (the `name` param).
const OWN: &[&str] = &["logs", "events"];

/// Every daemon method a definition may grant, by name without `pm.`.
const GRANTABLE: &[&str] = &[
    "ping", "map", "apply", "sync", "ls", "start", "stop", "restart", "reload", "scale", "delete", "status", "connect",
    "shutdown", "logs", "events", "info", "flush",
];

/// Checks a definition's `calls` and `pm` grants.
pub fn validate(def: &pm_protocol::Definition) -> Result<(), String> {
    for call in &def.calls {
        if call != "*" && !call.contains('.') {
            return Err(format!(
                "calls: `{call}` is not `<sidecar>.<method>` (globs allowed, e.g. \"db.*\", or \"*\")"
            ));
        }
    }
    for name in &def.pm {
        if name != "*" && !GRANTABLE.contains(&name.as_str()) {
            return Err(format!("pm: unknown daemon method `{name}` (one of: {}, or \"*\")", GRANTABLE.join(", ")));
        }
    }
    Ok(())
}

/// Whether the run behind a sidecar's token may call the daemon method `method` (`pm.x`).
pub fn pm_method(run: &RunToken, method: &str, params: Option<&RawValue>) -> Result<(), String> {
    let name = method.strip_prefix("pm.").unwrap_or(method);
    let granted = |n: &str| run.definition.pm.iter().any(|g| g == "*" || g == n);
    if ALWAYS.contains(&name) || granted(name) {
        return Ok(());
    }
    let instance = &run.instance;
    if OWN.contains(&name) {
        return match named(params) {
            Some(asked) if !asked.is_empty() && asked.iter().all(|a| a == instance) => Ok(()),
            _ => Err(format!(
                "sidecar `{instance}` may follow only its own {name} (name = \"{instance}\"); \
                 more needs pm = [\"{name}\"] in its definition"
            )),
        };
    }
    Err(format!("sidecar `{instance}` may not call pm.{name}: grant it with pm = [\"{name}\"] in its definition"))
}

/// Whether the run may call `target.method`, where `definition` is the target's definition
/// (the target itself when it names a definition).
pub fn call(run: &RunToken, target: &str, definition: &str, method: &str) -> Result<(), String> {
    let def = &run.definition;
    if def.depends_on.iter().any(|d| d == definition) {
        return Ok(());
    }
    let full = |name: &str| format!("{name}.{method}");
    if def.calls.iter().any(|g| glob(g, &full(target)) || glob(g, &full(definition))) {
        return Ok(());
    }
    Err(format!(
        "sidecar `{}` may not call `{target}.{method}`: it does not depend on `{definition}`; \
         grant it with calls = [\"{definition}.{method}\"] (or \"{definition}.*\") in its definition",
        run.instance
    ))
}

/// The instances a call names: its `name`, or for `pm.logs` the `names` of its `filter` when
/// there are some (they replace `name`; an empty list stands for every instance). None when
/// they cannot be read.
fn named(params: Option<&RawValue>) -> Option<Vec<String>> {
    let params: serde_json::Value = serde_json::from_str(params?.get()).ok()?;
    let (name, filter) = match &params {
        serde_json::Value::Array(items) => (items.first(), items.get(4)),
        _ => (params.get("name"), params.get("filter")),
    };
    match filter.and_then(|f| f.get("names")).filter(|names| !names.is_null()) {
        Some(names) => names.as_array()?.iter().map(|n| n.as_str().map(str::to_string)).collect(),
        None => Some(vec![name?.as_str()?.to_string()]),
    }
}

/// Shell-style `*` matching (any run of characters, dots included), iterative.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut i, mut j) = (0, 0);
    // Where the last `*` was, and how much of the text it has taken so far.
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        if i < p.len() && p[i] == b'*' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && p[i] == t[j] {
            i += 1;
            j += 1;
        } else if let Some((s, taken)) = star {
            star = Some((s, taken + 1));
            i = s + 1;
            j = taken + 1;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use pm_protocol::Definition;
    use std::sync::Arc;

    fn run(depends_on: &[&str], calls: &[&str], pm: &[&str]) -> RunToken {
        let mut def = Definition::new(vec!["x".into()]);
        def.depends_on = depends_on.iter().map(|s| s.to_string()).collect();
        def.calls = calls.iter().map(|s| s.to_string()).collect();
        def.pm = pm.iter().map(|s| s.to_string()).collect();
        RunToken::new("me".into(), Arc::new(def))
    }

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.into()).unwrap()
    }

    #[test]
    fn grants_are_checked_when_defined() {
        let mut def = Definition::new(vec!["x".into()]);
        def.calls = vec!["db".into()];
        assert!(validate(&def).unwrap_err().contains("calls: `db` is not `<sidecar>.<method>`"));
        def.calls = vec!["db.*".into(), "*".into()];
        def.pm = vec!["pm.status".into()];
        assert!(validate(&def).unwrap_err().contains("pm: unknown daemon method `pm.status`"));
        def.pm = vec!["status".into(), "*".into()];
        assert!(validate(&def).is_ok());
    }

    #[test]
    fn globs() {
        assert!(glob("*", "a.b"));
        assert!(glob("db.*", "db.get"));
        assert!(glob("db.*", "db.a.b"));
        assert!(!glob("db.*", "dbx.get"));
        assert!(glob("*.get", "cache.get"));
        assert!(glob("c*e.g*t", "cache.get"));
        assert!(!glob("cache.get", "cache.gets"));
        assert!(glob("a*b*c", "aXbYbZc"));
        assert!(!glob("a*b*c", "aXbYbZ"));
    }

    #[test]
    fn daemon_methods_need_a_grant_beyond_the_defaults() {
        let plain = run(&[], &[], &[]);
        for always in ["pm.ping", "pm.register", "pm.unevents"] {
            assert!(pm_method(&plain, always, None).is_ok(), "{always}");
        }
        for owner_only in ["pm.map", "pm.start", "pm.stop", "pm.delete", "pm.shutdown", "pm.ls", "pm.status"] {
            let err = pm_method(&plain, owner_only, None).unwrap_err();
            assert!(err.contains("grant it with pm = "), "{err}");
        }
        assert!(pm_method(&plain, "pm.logs", Some(&raw(r#"{"name":"me","lines":5}"#))).is_ok());
        assert!(pm_method(&plain, "pm.logs", Some(&raw(r#"["me",5,false]"#))).is_ok());
        assert!(pm_method(&plain, "pm.logs", Some(&raw(r#"{"name":"other"}"#))).is_err());
        // Names in the filter replace `name`: each must be its own, and none means every one.
        let logs = |params: &str| pm_method(&plain, "pm.logs", Some(&raw(params)));
        assert!(logs(r#"{"name":"me","filter":{"names":["other"]}}"#).is_err());
        assert!(logs(r#"{"name":"me","filter":{"names":["me","other"]}}"#).is_err());
        assert!(logs(r#"{"name":"me","filter":{"names":[]}}"#).is_err(), "every instance");
        assert!(logs(r#"["me",5,false,null,{"names":["other"]}]"#).is_err());
        assert!(logs(r#"{"name":"","filter":{"names":["me"],"grep":"x"}}"#).is_ok());
        assert!(logs(r#"{"name":"me","filter":{"names":null,"since":"1h"}}"#).is_ok());
        assert!(pm_method(&plain, "pm.events", None).is_err(), "every instance's events need a grant");
        assert!(pm_method(&plain, "pm.events", Some(&raw(r#"{"name":"me"}"#))).is_ok());
        let granted = run(&[], &[], &["status", "logs"]);
        assert!(pm_method(&granted, "pm.status", None).is_ok());
        assert!(pm_method(&granted, "pm.logs", Some(&raw(r#"{"name":"other"}"#))).is_ok());
        assert!(pm_method(&granted, "pm.stop", None).is_err());
        assert!(pm_method(&run(&[], &[], &["*"]), "pm.shutdown", None).is_ok());
    }

    #[test]
    fn calls_go_to_dependencies_and_grants() {
        let r = run(&["db"], &["cache.get", "log*.*"], &[]);
        assert!(call(&r, "db", "db", "anything").is_ok());
        assert!(call(&r, "db-1", "db", "anything").is_ok(), "an instance of a dependency");
        assert!(call(&r, "cache", "cache", "get").is_ok());
        assert!(call(&r, "logger-0", "logger", "write").is_ok());
        let err = call(&r, "cache", "cache", "put").unwrap_err();
        assert!(err.contains("may not call `cache.put`") && err.contains("calls = "), "{err}");
        assert!(call(&run(&[], &["*"], &[]), "x", "x", "y").is_ok());
    }
}
