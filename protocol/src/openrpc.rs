//! The OpenRPC document of the daemon's API (`rpc.discover`, `pm schema --api`), made from the
//! Rust types the API itself uses, so that clients in any language know every method's params
//! and result. Subscriptions (`pm.logs`, `pm.events`) answer with a subscription id and then send
//! notifications, whose item schema is given as `x-notification`. The daemon's tests check that
//! this list and the methods it serves are the same.

use crate::info::InstanceInfo;
use crate::params::{StartParams, StopParams};
use crate::reload::Reloaded;
use crate::status::{AuthInfo, ConnectInfo, EventItem, LogEvent, LogFilter, RegisterInfo};
use crate::sync::{SyncParams, SyncReport};
use crate::{DaemonInfo, Definition, DefinitionInfo, InstanceStatus};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The method that answers with this document (JSON-RPC reserves the `rpc.` prefix for it).
pub const DISCOVER: &str = "rpc.discover";

/// How a method takes its params.
#[derive(Clone, Copy)]
enum Params {
    ByName,
    ByPosition,
}

struct Methods {
    schemas: SchemaGenerator,
    list: Vec<Value>,
}

impl Methods {
    fn param<T: JsonSchema>(&mut self, name: &str, required: bool) -> Value {
        json!({ "name": name, "required": required, "schema": self.schemas.subschema_for::<T>() })
    }

    fn add<R: JsonSchema>(&mut self, name: &str, summary: &str, structure: Params, params: Vec<Value>) {
        let result = json!({ "name": "result", "schema": self.schemas.subschema_for::<R>() });
        let structure = match structure {
            Params::ByName => "by-name",
            Params::ByPosition => "by-position",
        };
        self.list.push(json!({
            "name": name, "summary": summary, "paramStructure": structure, "params": params, "result": result,
        }));
    }

    /// A subscription: its answer is the subscription's id, then notifications of `Item`, until
    /// `unsubscribe` (with that id) or the stream's own end.
    fn subscription<Item: JsonSchema>(&mut self, name: &str, summary: &str, params: Vec<Value>, unsubscribe: &str) {
        self.add::<String>(name, summary, Params::ByName, params);
        let item = self.schemas.subschema_for::<Item>();
        if let Some(method) = self.list.last_mut() {
            method["x-notification"] = json!({ "method": name, "params": { "subscription": "<id>", "result": item } });
        }
        let id = json!({ "name": "subscription", "required": true, "schema": { "type": "string" } });
        self.add::<bool>(unsubscribe, &format!("Ends a {name} subscription."), Params::ByPosition, vec![id]);
    }
}

/// The document, for a daemon of `version`.
pub fn document(version: &str) -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    let mut m = Methods { schemas: settings.into_generator(), list: Vec::new() };
    use Params::{ByName, ByPosition};
    let name = |m: &mut Methods| m.param::<String>("name", true);

    let params = vec![m.param::<String>("token", true)];
    m.add::<AuthInfo>(
        "pm.auth",
        "Authenticates the connection: the daemon's token or a sidecar's PM_TOKEN.",
        ByName,
        params,
    );
    let params = vec![
        m.param::<Vec<String>>("methods", true),
        m.param::<Option<String>>("endpoint", false),
        m.param::<bool>("direct", true),
    ];
    m.add::<RegisterInfo>("pm.register", "Makes the calling sidecar commandable.", ByName, params);
    m.add::<DaemonInfo>("pm.ping", "Who and where the daemon is.", ByName, vec![]);
    let params = vec![name(&mut m), m.param::<Definition>("definition", true), m.param::<bool>("replace", true)];
    m.add::<DefinitionInfo>("pm.map", "Adds (or replaces) a definition.", ByName, params);
    let params = vec![m.param::<BTreeMap<String, Definition>>("definitions", true), m.param::<bool>("start", true)];
    m.add::<Vec<InstanceStatus>>("pm.apply", "Adds or replaces a project's definitions.", ByName, params);
    let params = vec![m.param::<SyncParams>("params", true)];
    m.add::<SyncReport>("pm.sync", "Applies definitions as a difference.", ByPosition, params);
    m.add::<Vec<DefinitionInfo>>("pm.ls", "Every definition with its instances.", ByName, vec![]);
    let params = vec![m.param::<StartParams>("params", true)];
    m.add::<Vec<InstanceStatus>>("pm.start", "Starts instances and their dependencies.", ByPosition, params);
    let params = vec![m.param::<StopParams>("params", true)];
    m.add::<Vec<InstanceStatus>>("pm.stop", "Stops instances, their dependents first.", ByPosition, params);
    let params = vec![name(&mut m)];
    m.add::<Vec<InstanceStatus>>("pm.restart", "Stops then starts instances.", ByName, params);
    let params = vec![name(&mut m)];
    m.add::<Reloaded>("pm.reload", "Replaces running instances one at a time.", ByName, params);
    let params = vec![name(&mut m), m.param::<u32>("instances", true)];
    m.add::<Vec<InstanceStatus>>("pm.scale", "Gives a definition this many instances.", ByName, params);
    let params = vec![name(&mut m)];
    m.add::<Vec<String>>("pm.delete", "Stops and forgets a definition or an instance.", ByName, params);
    let params = vec![m.param::<Option<String>>("name", false)];
    m.add::<Vec<InstanceStatus>>(
        "pm.status",
        "Status of every instance, or of those a name stands for.",
        ByName,
        params,
    );
    let params = vec![name(&mut m)];
    m.add::<ConnectInfo>("pm.connect", "How to reach a sidecar.", ByName, params);
    let params = vec![name(&mut m)];
    m.add::<Vec<InstanceInfo>>("pm.info", "Everything about instances.", ByName, params);
    let params = vec![name(&mut m)];
    m.add::<Vec<String>>("pm.flush", "Empties instances' log files.", ByName, params);
    m.add::<()>("pm.shutdown", "Stops every instance, then the daemon.", ByName, vec![]);
    let params = vec![
        name(&mut m),
        m.param::<usize>("lines", true),
        m.param::<bool>("follow", true),
        m.param::<Option<bool>>("chunks", false),
        m.param::<Option<LogFilter>>("filter", false),
    ];
    m.subscription::<LogEvent>("pm.logs", "The last lines of logs, then (follow) live ones.", params, "pm.unlogs");
    let params = vec![m.param::<Option<String>>("name", false)];
    m.subscription::<EventItem>("pm.events", "State changes as they happen.", params, "pm.unevents");
    m.add::<Value>(DISCOVER, "This document.", ByName, vec![]);

    json!({
        "openrpc": "1.3.2",
        "info": {
            "title": "pm daemon",
            "version": version,
            "description": "The pm daemon's own methods. Any other `<sidecar>.<method>` is routed to that sidecar.",
        },
        "methods": m.list,
        "components": { "schemas": m.schemas.take_definitions(true) },
    })
}

/// The names of the methods in the document.
pub fn method_names(document: &Value) -> Vec<&str> {
    document["methods"].as_array().into_iter().flatten().filter_map(|m| m["name"].as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_has_params_and_a_result_and_every_ref_resolves() {
        let doc = document("0.0.0");
        assert_eq!(doc["openrpc"], "1.3.2");
        let names = method_names(&doc);
        assert!(names.contains(&"pm.start") && names.contains(&"pm.unlogs") && names.contains(&DISCOVER));
        let text = doc.to_string();
        // Every `$ref` points into components/schemas, at a schema that is there.
        for (i, _) in text.match_indices("\"$ref\":\"") {
            let rest = &text[i + 8..];
            let target = &rest[..rest.find('"').unwrap()];
            let name = target.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{target}"));
            assert!(doc["components"]["schemas"][name].is_object(), "{target} is missing");
        }
        let start = doc["methods"].as_array().unwrap().iter().find(|m| m["name"] == "pm.start").unwrap();
        assert_eq!(start["paramStructure"], "by-position");
        assert!(start["result"]["schema"].is_object());
    }
}
