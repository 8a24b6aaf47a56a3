//! Errors of the SDK: what failed, on which endpoint or method, and what to do about it.
//!
//! An error the daemon (or a sidecar) answered keeps its JSON-RPC code and message: see
//! [`Error::Rpc`] and [`RpcError`]. The codes are pm's stable ones ([`ErrorCode`]).

use pm_protocol::ErrorCode;
use pm_protocol::endpoint::EndpointError;
use serde_json::value::RawValue;
use std::time::Duration;

/// Everything that can go wrong connecting, calling or serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An endpoint URL (given, or read from the environment) does not parse.
    #[error("{origin}: {source}")]
    Endpoint {
        /// Where the URL came from: `PM_DAEMON`, `the URL given`, …
        origin: String,
        source: EndpointError,
    },

    /// The transport could not connect (or its TLS/WebSocket handshake failed).
    #[error("cannot reach the pm daemon at {endpoint}: {reason}; {hint}")]
    Connect {
        endpoint: String,
        /// What the transport said, without repeating the endpoint.
        reason: String,
        hint: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// Connecting (with authentication) took longer than the connect timeout.
    #[error(
        "no answer from the pm daemon at {endpoint} within {after:?} while connecting; is something else listening there?"
    )]
    ConnectTimeout { endpoint: String, after: Duration },

    /// The transport needs a token and none was given.
    #[error(
        "the pm daemon at {endpoint} needs a token: pass one with ClientOptions::token, or set PM_TOKEN (a sidecar's own), or give the daemon's token (`PM_HOME/token`, `pm token`)"
    )]
    TokenRequired { endpoint: String },

    /// The daemon refused the token (`pm.auth` answered "unauthorized"), or refused this
    /// connection's identity for what it asked.
    #[error(
        "the pm daemon at {endpoint} refused {what}: {message} (code {code}); use the daemon's token (`PM_HOME/token`) or the PM_TOKEN pm gave this sidecar"
    )]
    Unauthorized { endpoint: String, what: &'static str, code: i32, message: String },

    /// Every endpoint tried by [`Client::connect_preferred`](crate::Client::connect_preferred) failed.
    #[error("could not connect to the pm daemon on any endpoint:{}", list(attempts))]
    NoEndpoint { attempts: Vec<(String, Error)> },

    /// What to connect to (or with) is missing from the environment.
    #[error("{0}")]
    Environment(String),

    /// The daemon or a sidecar answered with a JSON-RPC error.
    #[error(transparent)]
    Rpc(#[from] RpcError),

    /// The connection closed before the answer came.
    #[error(
        "`{method}`: the connection to the pm daemon at {endpoint} closed before the answer ({why}); connect again"
    )]
    Closed { method: String, endpoint: String, why: String },

    /// No answer within the client's own timeout (the daemon normally answers first, with
    /// "deadline exceeded").
    #[error("`{method}`: no answer from the pm daemon at {endpoint} within {after:?}")]
    Timeout { method: String, endpoint: String, after: Duration },

    /// The params could not be turned into JSON.
    #[error("`{method}`: cannot encode the params as JSON: {source}")]
    Params { method: String, source: serde_json::Error },

    /// The result is not of the type asked for.
    #[error("`{method}`: the result {result} does not decode as the type asked for: {source}")]
    Decode { method: String, result: String, source: serde_json::Error },

    /// The request would exceed the connection's frame limit (the daemon would close the
    /// connection on it).
    #[error(
        "`{method}`: the request is {size} bytes, over the frame limit of {max} bytes; send less or raise the limit"
    )]
    TooLarge { method: String, size: usize, max: usize },

    /// A sidecar name that cannot be routed.
    #[error("{0}")]
    InvalidName(String),

    /// `pm.register` was refused (serve).
    #[error("the pm daemon at {endpoint} refused to register this sidecar: {message} (code {code})")]
    Register { endpoint: String, code: i32, message: String },

    /// The direct endpoint of [`Serve::direct`](crate::Serve::direct) cannot be served.
    #[error("cannot serve direct calls on {endpoint}: {why}")]
    Listen { endpoint: String, why: String },

    /// An error of the typed daemon API ([`Client::daemon`](crate::Client::daemon)), for `?`
    /// in code that mixes both.
    #[error("pm daemon API: {0}")]
    Daemon(#[from] jsonrpsee::core::ClientError),
}

impl Error {
    /// The JSON-RPC error code, when the daemon or a sidecar answered with an error.
    pub fn code(&self) -> Option<i32> {
        match self {
            Error::Rpc(e) => Some(e.code),
            Error::Unauthorized { code, .. } | Error::Register { code, .. } => Some(*code),
            Error::Daemon(jsonrpsee::core::ClientError::Call(e)) => Some(e.code()),
            _ => None,
        }
    }

    /// The code as one of pm's own ([`ErrorCode`]), when it is one.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.code().and_then(known_code)
    }
}

fn list(attempts: &[(String, Error)]) -> String {
    attempts.iter().map(|(endpoint, e)| format!("\n  - {endpoint}: {e}")).collect()
}

/// A JSON-RPC error answered by the daemon or by a sidecar, as it came.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{method}` failed: {message} (code {code})")]
pub struct RpcError {
    /// The method called (`b.add`, `pm.start`).
    pub method: String,
    pub code: i32,
    pub message: String,
    /// The error's `data` member, if any.
    pub data: Option<Box<RawValue>>,
}

impl RpcError {
    /// The code as one of pm's own, when it is one.
    pub fn error_code(&self) -> Option<ErrorCode> {
        known_code(self.code)
    }
}

/// pm's [`ErrorCode`] for a number, if it is one of them.
///
/// ```
/// use pm_client::{ErrorCode, known_code};
/// assert_eq!(known_code(-32004), Some(ErrorCode::DeadlineExceeded));
/// assert_eq!(known_code(-32000), None); // a sidecar's own code
/// ```
pub fn known_code(code: i32) -> Option<ErrorCode> {
    use ErrorCode::*;
    [
        ParseError,
        MethodNotFound,
        InvalidParams,
        InvalidRequest,
        UnknownName,
        NotReady,
        NotCommandable,
        DeadlineExceeded,
        Unauthorized,
        SidecarGone,
        FrameTooLarge,
        InvalidDefinition,
        StartFailed,
        AlreadyExists,
        ShuttingDown,
    ]
    .into_iter()
    .find(|c| c.code() == code)
}

/// The error of a transport that could not connect to `endpoint`.
pub(crate) fn connect_error(endpoint: &pm_protocol::Endpoint, source: std::io::Error) -> Error {
    Error::Connect {
        endpoint: endpoint.to_string(),
        reason: without_endpoint(endpoint, &source),
        hint: connect_hint(endpoint, &source),
        source,
    }
}

/// A transport error's message, without the `<endpoint>: ` it may start with (the SDK's own
/// message names the endpoint already).
pub(crate) fn without_endpoint(endpoint: &pm_protocol::Endpoint, e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.strip_prefix(&format!("{endpoint}: ")) {
        Some(rest) => rest.to_string(),
        None => text,
    }
}

/// What to try when a transport cannot connect.
fn connect_hint(endpoint: &pm_protocol::Endpoint, e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind::*;
    match (endpoint, e.kind()) {
        (pm_protocol::Endpoint::Unix(_), NotFound | ConnectionRefused) => {
            "is the daemon running? start it with `pm start pm` (and check PM_HOME)"
        }
        (pm_protocol::Endpoint::Unix(_), PermissionDenied) => "the socket belongs to another user's daemon",
        (_, ConnectionRefused) => "is the daemon running and listening there? (`pm daemon --listen URL`)",
        (_, Unsupported) => "this build of pm cannot use that transport; use another endpoint",
        (_, InvalidData) => {
            "the handshake failed: check the certificate to trust (ClientOptions::tls_ca, PM_TLS_CA) and the URL"
        }
        _ => "check the endpoint and that the daemon is running",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pm_code_is_known_and_others_are_not() {
        assert_eq!(known_code(-32004), Some(ErrorCode::DeadlineExceeded));
        assert_eq!(known_code(-32601), Some(ErrorCode::MethodNotFound));
        assert_eq!(known_code(-32000), None);
    }

    #[test]
    fn messages_say_where_and_what_to_do() {
        let e = Error::NoEndpoint {
            attempts: vec![
                ("unix:///x/pm.sock".into(), Error::TokenRequired { endpoint: "tcp://h:1".into() }),
                ("tcp://h:1".into(), Error::Environment("nope".into())),
            ],
        };
        let text = e.to_string();
        assert!(text.contains("\n  - unix:///x/pm.sock: the pm daemon at tcp://h:1 needs a token"), "{text}");
        assert!(text.contains("\n  - tcp://h:1: nope"), "{text}");
    }
}
