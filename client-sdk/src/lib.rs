//! Rust client SDK for pm: the daemon's typed `pm.*` API, calls to sidecars through the mesh,
//! and serving a sidecar's own methods.
//!
//! - [`Client`]: one connection to the daemon over any transport (unix, tcp, tls, ws, wss),
//!   authenticated as the transport requires: [`Client::from_env`] in a sidecar (or a developer's
//!   shell), [`Client::connect`] for a URL, [`Client::connect_preferred`] for the best of several
//!   endpoints.
//! - [`Client::daemon`]: the typed `pm.*` API ([`PmApiClient`]).
//! - [`Client::sidecar`]: a [`Sidecar`] proxy: `b.call("add", (1, 2))`, `b.notify(…)`, with
//!   deadlines; errors keep the daemon's code and message ([`Error::Rpc`]).
//! - [`serve`] / [`Serve`]: register a jsonrpsee [`RpcModule`](jsonrpsee::RpcModule) as this
//!   sidecar's methods and answer the calls the daemon routes to it, reconnecting when the
//!   daemon restarts.
//!
//! ```no_run
//! # async fn demo() -> Result<(), pm_client::Error> {
//! use pm_client::{Client, PmApiClient};
//! let client = Client::from_env().await?;
//! for instance in client.daemon().status(None).await? {
//!     println!("{} is {}", instance.name, instance.state);
//! }
//! let sum: i64 = client.sidecar("adder").call("add", (1, 2)).await?;
//! # Ok(()) }
//! ```

mod client;
pub mod encoding;
pub mod env;
mod error;
mod mux;
mod options;
mod serve;
mod sidecar;

pub use client::{Client, Identity};
pub use env::DaemonEnv;
pub use error::{Error, RpcError, known_code};
pub use options::{
    ClientOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, DEFAULT_SUBSCRIPTION_BUFFER,
    MAX_SUBSCRIPTION_BUFFER,
};
pub use serve::{
    DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_MAX, DEFAULT_MAX_CONCURRENT, Disconnected, Registered, Serve, serve,
};
pub use sidecar::Sidecar;

/// The jsonrpsee this SDK is built with, for writing modules to [`serve`].
pub use jsonrpsee;
pub use pm_protocol::{Endpoint, ErrorCode, PmApiClient, params, status};
