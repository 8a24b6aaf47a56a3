//! `rpc`: the sidecar answers a call to one of its own methods, routed through the mesh like any
//! other call (so a sidecar whose connection is stuck fails the check). Any result is healthy;
//! an error, or no registration, is not.

use super::Target;
use crate::mesh::{Call, InFlight, Reply, RouteError};
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Duration;

pub async fn check(method: &str, target: &Target, timeout: Duration) -> Result<(), String> {
    let instance = &target.instance;
    let id = RawValue::from_string("1".into()).expect("a JSON number");
    let (tx, rx) = tokio::sync::oneshot::channel();
    let flight = InFlight::take(&Arc::default(), 1).expect("the first of one");
    // A caller of its own, which no disconnection of a real one takes along.
    let caller = target.mesh.next_conn_id();
    let call = Call { target: instance, method, id: Some(&id), params: None, deadline: timeout, caller };
    match target.mesh.forward(call, Some((Reply::Once(tx), flight))) {
        Ok(()) => {}
        Err(RouteError::NotRegistered) => return Err(format!("`{instance}` has not registered with the mesh")),
        Err(RouteError::Refused(_, why)) => return Err(why),
    }
    let answer = rx.await.map_err(|_| format!("`{instance}` went away before answering {method}"))?;
    let answer: serde_json::Value = serde_json::from_str(&answer).map_err(|e| format!("{method}: {e}"))?;
    match answer.get("error") {
        None => Ok(()),
        Some(error) => {
            let message = error.get("message").and_then(|m| m.as_str()).unwrap_or("an error");
            Err(format!("{method} answered: {message}"))
        }
    }
}
