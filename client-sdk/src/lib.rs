//! Rust client SDK for pm.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use pm_client::{Client, PmApiClient};
//! let client = Client::connect_unix("/run/user/1000/pm/pm.sock".as_ref()).await?;
//! for instance in client.daemon().status(None).await? {
//!     println!("{} is {}", instance.name, instance.state);
//! }
//! # Ok(()) }
//! ```

pub use pm_protocol::{PmApiClient, params, status};

use pm_protocol::transport;
use std::path::Path;
use std::time::Duration;

/// How long a call may take by default. `pm.start` waits for readiness, which can be long.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach the pm daemon at {endpoint}: {source}")]
    Connect { endpoint: String, source: std::io::Error },
}

/// A connection to the daemon.
pub struct Client {
    rpc: jsonrpsee::core::client::Client,
}

impl Client {
    /// Connects over the daemon's Unix socket.
    pub async fn connect_unix(path: &Path) -> Result<Client, Error> {
        let endpoint = pm_protocol::Endpoint::Unix(path.to_path_buf());
        let conn = transport::connect(&endpoint, &Default::default())
            .await
            .map_err(|source| Error::Connect { endpoint: endpoint.to_string(), source })?;
        Ok(Client { rpc: transport::client_over(conn, DEFAULT_REQUEST_TIMEOUT) })
    }

    /// The daemon's own `pm.*` API (see [`PmApiClient`]).
    pub fn daemon(&self) -> &jsonrpsee::core::client::Client {
        &self.rpc
    }
}
