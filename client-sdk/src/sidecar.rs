//! [`Sidecar`]: calls to one sidecar's methods through the daemon.
//!
//! `client.sidecar("b").call("add", (1, 2))` sends `b.add` with params `[1,2]`; the daemon routes
//! it to sidecar `b` (or balances it across the instances of a stateless definition `b`) and
//! routes the answer back. Params and results pass through the daemon unchanged. An error
//! keeps the code and message it came with: pm's own (unknown sidecar, not ready, gone
//! mid-call, deadline exceeded, …, see [`ErrorCode`](crate::ErrorCode)) or the sidecar's.

use crate::client::Client;
use crate::error::Error;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use std::time::Duration;

/// A proxy for one sidecar (see the [module docs](self)). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sidecar {
    client: Client,
    name: String,
}

impl Sidecar {
    pub(crate) fn new(client: Client, name: &str) -> Sidecar {
        Sidecar { client, name: name.to_string() }
    }

    /// The sidecar's name (an instance or a definition).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Calls `method` on the sidecar and decodes its result.
    ///
    /// ```no_run
    /// # async fn demo(client: pm_client::Client) -> Result<(), pm_client::Error> {
    /// let b = client.sidecar("b");
    /// let sum: i64 = b.call("add", (1, 2)).await?;
    /// let echoed: serde_json::Value = b.call("echo", serde_json::json!({"any": "thing"})).await?;
    /// # Ok(()) }
    /// ```
    pub async fn call<R: DeserializeOwned>(&self, method: &str, params: impl Serialize) -> Result<R, Error> {
        self.client.call(&self.method(method)?, params).await
    }

    /// Calls `method` with a deadline: past it, the call fails with
    /// [`ErrorCode::DeadlineExceeded`](crate::ErrorCode::DeadlineExceeded).
    ///
    /// ```no_run
    /// # async fn demo(client: pm_client::Client) -> Result<(), pm_client::Error> {
    /// use std::time::Duration;
    /// let slow = client.sidecar("b").call_with_deadline::<u64>("sleep_ms", (5000,), Duration::from_millis(100)).await;
    /// assert_eq!(slow.unwrap_err().error_code(), Some(pm_client::ErrorCode::DeadlineExceeded));
    /// # Ok(()) }
    /// ```
    pub async fn call_with_deadline<R: DeserializeOwned>(
        &self,
        method: &str,
        params: impl Serialize,
        deadline: Duration,
    ) -> Result<R, Error> {
        self.client.call_with_deadline(&self.method(method)?, params, deadline).await
    }

    /// Calls `method` with params and result as raw JSON, passed through untouched.
    pub async fn call_raw(
        &self,
        method: &str,
        params: Option<&RawValue>,
        deadline: Option<Duration>,
    ) -> Result<Box<RawValue>, Error> {
        self.client.call_raw(&self.method(method)?, params, deadline).await
    }

    /// Sends `method` as a notification: the sidecar runs it and answers nothing.
    pub async fn notify(&self, method: &str, params: impl Serialize) -> Result<(), Error> {
        self.client.notify(&self.method(method)?, params).await
    }

    /// The routed method name, `<sidecar>.<method>`.
    fn method(&self, method: &str) -> Result<String, Error> {
        pm_protocol::validate_name(&self.name)
            .map_err(|why| Error::InvalidName(format!("cannot call `{}.{method}`: {why}", self.name)))?;
        Ok(format!("{}.{method}", self.name))
    }
}
