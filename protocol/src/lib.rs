//! The pm wire contract, shared by the daemon, the CLI and the client SDK.
//!
//! Everything that crosses a socket is defined here once: the definition and status types, the
//! stable error codes, endpoint URLs, newline-delimited JSON framing and the `pm.*` JSON-RPC API
//! (a jsonrpsee `#[rpc]` trait, which gives the server trait and the typed client).

pub mod api;
pub mod connection;
pub mod definition;
pub mod duration;
pub mod endpoint;
pub mod envelope;
pub mod error;
pub mod health;
pub mod hooks;
pub mod info;
pub mod memory;
pub mod ndjson;
pub mod notify;
pub mod openrpc;
pub mod params;
pub mod port;
pub mod reload;
pub mod size;
pub mod status;
pub mod sync;
pub mod tls;
pub mod transport;
pub mod vars;
pub mod wire;
pub mod ws;

pub use api::{PmApiClient, PmApiServer};
pub use connection::{Connection, FrameError};
pub use definition::{Definition, DockerSpec, PullPolicy, Readiness, RestartPolicy, RuntimeKind};
pub use endpoint::Endpoint;
pub use error::ErrorCode;
pub use health::{Health, HttpProbe, OnUnhealthy, Probe};
pub use hooks::{Hook, Hooks};
pub use notify::{Notification, Notify, NotifyEvent};
pub use port::PortSpec;
pub use status::{
    DaemonInfo, DefinitionInfo, ExitInfo, HealthInfo, HealthStatus, InstanceStatus, LogLine, LogRun, LogStream, State,
};

/// Name of the daemon itself on the command line (`pm start pm`, `pm stop pm`); no sidecar may use it.
pub const DAEMON_NAME: &str = "pm";

/// The longest sidecar or instance name, in bytes: `<name>.out.log` must fit a file name (255).
pub const MAX_NAME_LEN: usize = 128;

/// Checks a sidecar or instance name: `[a-z0-9][a-z0-9_-]*`, no dots (dots route mesh calls), at
/// most [`MAX_NAME_LEN`] bytes.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.len() > MAX_NAME_LEN {
        let head: String = name.chars().take(16).collect();
        return Err(format!("invalid name `{head}…`: {} bytes long; names are at most {MAX_NAME_LEN}", name.len()));
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !first_ok || !rest_ok {
        return Err(format!("invalid name `{name}`: names match [a-z0-9][a-z0-9_-]* (lowercase, no dots)"));
    }
    if name == DAEMON_NAME {
        return Err(format!("invalid name `{name}`: `pm` is reserved for the daemon itself"));
    }
    if name == "rpc" {
        return Err(format!("invalid name `{name}`: JSON-RPC reserves `rpc.*` methods for the server (rpc.discover)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate_name;

    #[test]
    fn names_follow_the_mesh_rules() {
        for ok in ["web", "db-1", "a_b", "0x"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Web", "a.b", "-a", "_a", "pm", "rpc", "a b"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert!(validate_name(&"a".repeat(super::MAX_NAME_LEN)).is_ok());
        let long = "a".repeat(1024);
        assert_eq!(
            validate_name(&long).unwrap_err(),
            "invalid name `aaaaaaaaaaaaaaaa…`: 1024 bytes long; names are at most 128"
        );
    }
}
