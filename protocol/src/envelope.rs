//! One JSON-RPC 2.0 message seen without decoding its payload: the members that say what it is,
//! and `params` / `result` / `error` left as raw JSON, to forward or decode later. Requests,
//! notifications and responses all parse into it.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    /// Present (even as `null`) on requests and responses; absent on notifications.
    #[serde(borrow, default, deserialize_with = "present")]
    pub id: Option<&'a RawValue>,
    /// Present on requests and notifications.
    #[serde(borrow, default)]
    pub method: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "present")]
    pub params: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    pub result: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    pub error: Option<&'a RawValue>,
    /// pm's extension: this call's deadline when the daemon routes it to a sidecar.
    #[serde(default)]
    pub deadline_ms: Option<u64>,
}

impl<'a> Envelope<'a> {
    pub fn parse(text: &'a str) -> serde_json::Result<Envelope<'a>> {
        serde_json::from_str(text)
    }
}

/// A member that is present, even as `null`: `"result": null` is a result and `"id": null` an
/// id (serde would read both as absent).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::Envelope;

    #[test]
    fn null_members_are_present_and_missing_ones_absent() {
        let e = Envelope::parse(r#"{"jsonrpc":"2.0","id":null,"result":null}"#).unwrap();
        assert_eq!((e.id.map(|r| r.get()), e.result.map(|r| r.get())), (Some("null"), Some("null")));
        assert!(e.method.is_none() && e.error.is_none() && e.params.is_none());
        let n = Envelope::parse(r#"{"jsonrpc":"2.0","method":"a.b","params":[1],"deadline_ms":5}"#).unwrap();
        assert!(n.id.is_none());
        assert_eq!((n.method.as_deref(), n.deadline_ms), (Some("a.b"), Some(5)));
    }
}
