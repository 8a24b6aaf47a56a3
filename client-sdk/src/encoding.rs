//! Params in, results out: any `Serialize` becomes JSON-RPC params, a result decodes into any
//! `DeserializeOwned`.
//!
//! How a value becomes params:
//! - a tuple, array or `Vec` is sent by position: `(1, 2)` → `[1,2]`;
//! - a struct or map is sent by name: `Point { x: 1 }` → `{"x":1}`;
//! - `()` or `None` sends no params at all;
//! - any other single value is one positional param: `"hi"` → `["hi"]`.
//!
//! ```
//! use pm_client::encoding::{from_result, to_params};
//! let params = to_params("b.add", &(1, 2))?.expect("params");
//! assert_eq!(params.get(), "[1,2]");
//! assert_eq!(to_params("b.greet", &"you")?.expect("params").get(), r#"["you"]"#);
//! assert!(to_params("b.tick", &())?.is_none());
//!
//! let result = serde_json::value::RawValue::from_string("3".into())?;
//! let sum: i64 = from_result("b.add", &result)?;
//! assert_eq!(sum, 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::error::Error;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

/// A value as the `params` member of a request (none when it is `null`).
pub fn to_params(method: &str, params: &impl Serialize) -> Result<Option<Box<RawValue>>, Error> {
    let raw = serde_json::value::to_raw_value(params)
        .map_err(|source| Error::Params { method: method.to_string(), source })?;
    let text = raw.get();
    Ok(match text.as_bytes().first() {
        Some(b'[' | b'{') => Some(raw),
        _ if text == "null" => None,
        _ => Some(
            RawValue::from_string(format!("[{text}]"))
                .map_err(|source| Error::Params { method: method.to_string(), source })?,
        ),
    })
}

/// Decodes a result; on failure the error quotes (the start of) the result.
pub fn from_result<R: DeserializeOwned>(method: &str, result: &RawValue) -> Result<R, Error> {
    serde_json::from_str(result.get()).map_err(|source| {
        let text = result.get();
        let shown = match text.char_indices().nth(200) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.to_string(),
        };
        Error::Decode { method: method.to_string(), result: shown, source }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn shown(v: &impl Serialize) -> Option<String> {
        to_params("m", v).unwrap().map(|r| r.get().to_string())
    }

    #[test]
    fn values_become_positional_or_named_params() {
        #[derive(Serialize)]
        struct Point {
            x: i32,
        }
        assert_eq!(shown(&(1, 2)).as_deref(), Some("[1,2]"));
        assert_eq!(shown(&vec![1, 2, 3]).as_deref(), Some("[1,2,3]"));
        assert_eq!(shown(&Point { x: 1 }).as_deref(), Some(r#"{"x":1}"#));
        assert_eq!(shown(&BTreeMap::from([("a", 1)])).as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(shown(&"hi").as_deref(), Some(r#"["hi"]"#));
        assert_eq!(shown(&7).as_deref(), Some("[7]"));
        assert_eq!(shown(&()), None);
        assert_eq!(shown(&None::<i32>), None);
    }

    #[test]
    fn a_result_of_the_wrong_type_says_what_came() {
        let raw = RawValue::from_string(r#""not a number""#.into()).unwrap();
        let err = from_result::<i64>("b.add", &raw).unwrap_err().to_string();
        assert!(err.starts_with(r#"`b.add`: the result "not a number" does not decode"#), "{err}");
    }
}
