//! [`Client`]: one authenticated connection to the daemon, over any transport.

use crate::encoding::{from_result, to_params};
use crate::env::{DaemonEnv, needs_token};
use crate::error::{Error, RpcError, connect_error, without_endpoint};
use crate::mux::{self, Answer, Failure, Mux};
use crate::options::{ClientOptions, MAX_SUBSCRIPTION_BUFFER};
use crate::sidecar::Sidecar;
use pm_protocol::status::AuthInfo;
use pm_protocol::{Endpoint, ErrorCode, transport};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Extra time the client waits past a call's deadline for the daemon's own "deadline exceeded"
/// answer (the daemon checks deadlines every 50 ms) before giving up itself.
const DEADLINE_GRACE: Duration = Duration::from_secs(1);

/// Who the daemon takes this connection for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Identity {
    /// The daemon's owner: same uid on the Unix socket, or the daemon's token.
    Owner,
    /// A sidecar, by its own PM_TOKEN.
    Sidecar(String),
    /// ws:// or wss:// with a token in the handshake: the daemon did not say whose it is.
    Token,
}

/// A connection to the daemon: its typed `pm.*` API ([`Client::daemon`]), calls to sidecars
/// through it ([`Client::sidecar`]), and raw calls to any method ([`Client::call`]).
///
/// Cheap to clone: clones share the connection, which closes when the last one is dropped.
/// Calls may run concurrently from many tasks. The client does not reconnect by itself: once
/// [`Client::is_connected`] is false, calls fail with [`Error::Closed`]; connect again.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    rpc: jsonrpsee::core::client::Client,
    mux: Mux,
    endpoint: Endpoint,
    identity: Identity,
    request_timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.endpoint.to_string())
            .field("identity", &self.inner.identity)
            .finish()
    }
}

impl Client {
    /// Connects to an endpoint URL (`unix:///…/pm.sock`, `tcp://host:port`, `tls://…`, `ws://…`,
    /// `wss://…`). The token comes from the environment: `PM_TOKEN`, else for transports that
    /// need one the daemon's token from `PM_HOME/token` (see [`DaemonEnv`]); use
    /// [`Client::connect_endpoint`] to give it yourself.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), pm_client::Error> {
    /// let client = pm_client::Client::connect("tcp://127.0.0.1:7700").await?;
    /// let sum: i64 = client.sidecar("calc").call("add", (1, 2)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Client, Error> {
        let endpoint: Endpoint =
            url.parse().map_err(|source| Error::Endpoint { origin: "the URL given".into(), source })?;
        let env = DaemonEnv::read_for(&endpoint)?;
        Client::connect_endpoint(&endpoint, env.options()).await
    }

    /// Connects as a process pm spawned: to `PM_DAEMON` with `PM_TOKEN` (so the daemon knows
    /// which sidecar calls). In a developer's shell, where those are unset, to `PM_HOME`'s
    /// socket (see [`DaemonEnv`]).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), pm_client::Error> {
    /// use pm_client::PmApiClient;
    /// let client = pm_client::Client::from_env().await?;
    /// println!("daemon pid {}", client.daemon().ping().await?.pid);
    /// # Ok(()) }
    /// ```
    pub async fn from_env() -> Result<Client, Error> {
        let env = DaemonEnv::read()?;
        Client::connect_endpoint(&env.endpoint, env.options()).await
    }

    /// Connects over the daemon's Unix socket, as its owner (no token).
    pub async fn connect_unix(path: &Path) -> Result<Client, Error> {
        Client::connect_endpoint(&Endpoint::Unix(path.to_path_buf()), ClientOptions::default()).await
    }

    /// Connects to one endpoint and authenticates: tcp:// and tls:// with a `pm.auth` call right
    /// after connecting (a token is required), ws:// and wss:// with the token in the handshake,
    /// unix:// with `pm.auth` only when a token is given (it makes the connection a sidecar's).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), pm_client::Error> {
    /// use pm_client::{Client, ClientOptions, Endpoint};
    /// let endpoint: Endpoint = "tcp://127.0.0.1:7700".parse().expect("a valid URL");
    /// let token = std::fs::read_to_string("/home/me/.local/state/pm/token").unwrap_or_default();
    /// let client = Client::connect_endpoint(&endpoint, ClientOptions::default().token(token.trim())).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_endpoint(endpoint: &Endpoint, opts: ClientOptions) -> Result<Client, Error> {
        let timeout = opts.connect_timeout;
        match tokio::time::timeout(timeout, Client::open(endpoint, opts)).await {
            Ok(result) => result,
            Err(_) => Err(Error::ConnectTimeout { endpoint: endpoint.to_string(), after: timeout }),
        }
    }

    /// Tries endpoints in order of preference (unix, tls, tcp, wss, ws; the given order among
    /// equals) and keeps the first that connects and authenticates. If none does, the error
    /// lists why each failed.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), pm_client::Error> {
    /// use pm_client::{Client, ClientOptions, Endpoint};
    /// let endpoints: Vec<Endpoint> = ["tcp://10.0.0.5:7700", "unix:///run/pm/pm.sock"]
    ///     .iter()
    ///     .filter_map(|url| url.parse().ok())
    ///     .collect();
    /// let client = Client::connect_preferred(&endpoints, ClientOptions::default().token("…")).await?;
    /// println!("connected on {}", client.endpoint());
    /// # Ok(()) }
    /// ```
    pub async fn connect_preferred(endpoints: &[Endpoint], opts: ClientOptions) -> Result<Client, Error> {
        let mut ordered: Vec<&Endpoint> = endpoints.iter().collect();
        ordered.sort_by_key(|e| preference(e));
        let mut attempts = Vec::new();
        for endpoint in ordered {
            match Client::connect_endpoint(endpoint, opts.clone()).await {
                Ok(client) => {
                    if !attempts.is_empty() {
                        tracing::debug!("connected on {endpoint} after {} failed attempt(s)", attempts.len());
                    }
                    return Ok(client);
                }
                Err(e) => attempts.push((endpoint.to_string(), e)),
            }
        }
        if attempts.is_empty() {
            return Err(Error::Environment("no endpoint to connect to: the list given is empty".into()));
        }
        Err(Error::NoEndpoint { attempts })
    }

    async fn open(endpoint: &Endpoint, opts: ClientOptions) -> Result<Client, Error> {
        let is_ws = matches!(endpoint, Endpoint::Ws(_) | Endpoint::Wss(_));
        if needs_token(endpoint) && opts.token.is_none() {
            return Err(Error::TokenRequired { endpoint: endpoint.to_string() });
        }
        let conn = transport::connect(endpoint, &opts.transport()).await.map_err(|source| match is_ws {
            // The WebSocket upgrade was answered 401: the token, like a refused pm.auth.
            true if source.kind() == std::io::ErrorKind::PermissionDenied => Error::Unauthorized {
                endpoint: endpoint.to_string(),
                what: "the token",
                code: ErrorCode::Unauthorized.code(),
                message: without_endpoint(endpoint, &source),
            },
            _ => connect_error(endpoint, source),
        })?;
        let (mux, sender, receiver) = mux::split(conn, opts.max_frame);
        let rpc = jsonrpsee::core::client::ClientBuilder::default()
            .request_timeout(opts.request_timeout)
            .max_buffer_capacity_per_subscription(opts.subscription_buffer.clamp(1, MAX_SUBSCRIPTION_BUFFER))
            .build_with_tokio(sender, receiver);
        let identity = match (&opts.token, is_ws) {
            (Some(_), true) => Identity::Token,
            (Some(token), false) => auth(&mux, endpoint, token).await?,
            (None, _) => Identity::Owner,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                rpc,
                mux,
                endpoint: endpoint.clone(),
                identity,
                request_timeout: opts.request_timeout,
            }),
        })
    }

    /// The daemon's own `pm.*` API, typed: bring [`PmApiClient`](crate::PmApiClient) into scope.
    ///
    /// ```no_run
    /// # async fn demo(client: pm_client::Client) -> Result<(), pm_client::Error> {
    /// use pm_client::PmApiClient;
    /// for instance in client.daemon().status(None).await? {
    ///     println!("{} is {}", instance.name, instance.state);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn daemon(&self) -> &jsonrpsee::core::client::Client {
        &self.inner.rpc
    }

    /// A proxy for calls to the sidecar `name` through the daemon (`name.method`).
    ///
    /// ```no_run
    /// # async fn demo(client: pm_client::Client) -> Result<(), pm_client::Error> {
    /// let b = client.sidecar("b");
    /// let sum: i64 = b.call("add", (1, 2)).await?;
    /// # Ok(()) }
    /// ```
    pub fn sidecar(&self, name: &str) -> Sidecar {
        Sidecar::new(self.clone(), name)
    }

    /// Calls any method (`b.add`, `pm.ping`) and decodes its result. See [`crate::encoding`] for
    /// how `params` are sent.
    pub async fn call<R: DeserializeOwned>(&self, method: &str, params: impl Serialize) -> Result<R, Error> {
        let params = to_params(method, &params)?;
        let result = self.call_raw(method, params.as_deref(), None).await?;
        from_result(method, &result)
    }

    /// Calls a method with a deadline: the daemon answers "deadline exceeded"
    /// ([`ErrorCode::DeadlineExceeded`]) if the sidecar has not answered by then.
    pub async fn call_with_deadline<R: DeserializeOwned>(
        &self,
        method: &str,
        params: impl Serialize,
        deadline: Duration,
    ) -> Result<R, Error> {
        let params = to_params(method, &params)?;
        let result = self.call_raw(method, params.as_deref(), Some(deadline)).await?;
        from_result(method, &result)
    }

    /// Calls a method with params and result as raw JSON, passed through untouched.
    pub async fn call_raw(
        &self,
        method: &str,
        params: Option<&RawValue>,
        deadline: Option<Duration>,
    ) -> Result<Box<RawValue>, Error> {
        let wait = deadline.map_or(self.inner.request_timeout, |d| d + DEADLINE_GRACE);
        let deadline_ms = deadline.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1));
        let request = self.inner.mux.request(method, params, deadline_ms);
        match tokio::time::timeout(wait, request).await {
            Ok(answer) => self.answer(method, answer),
            Err(_) => Err(Error::Timeout {
                method: method.to_string(),
                endpoint: self.inner.endpoint.to_string(),
                after: wait,
            }),
        }
    }

    /// Sends a notification: no answer, and no way to know whether it was delivered.
    pub async fn notify(&self, method: &str, params: impl Serialize) -> Result<(), Error> {
        let params = to_params(method, &params)?;
        self.inner.mux.notify(method, params.as_deref()).await.map_err(|f| self.failure(method, f))
    }

    /// The endpoint this client is connected to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// Who the daemon takes this connection for.
    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// False once the connection has closed (the daemon went away); then connect again.
    pub fn is_connected(&self) -> bool {
        !self.inner.mux.is_closed() && self.inner.rpc.is_connected()
    }

    fn answer(&self, method: &str, answer: Result<Answer, Failure>) -> Result<Box<RawValue>, Error> {
        match answer {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(e)) => {
                Err(Error::Rpc(RpcError { method: method.to_string(), code: e.code, message: e.message, data: e.data }))
            }
            Err(f) => Err(self.failure(method, f)),
        }
    }

    fn failure(&self, method: &str, failure: Failure) -> Error {
        failure_error(&self.inner.mux, &self.inner.endpoint, method, failure)
    }
}

fn failure_error(mux: &Mux, endpoint: &Endpoint, method: &str, failure: Failure) -> Error {
    match failure {
        Failure::Closed(why) => Error::Closed { method: method.to_string(), endpoint: endpoint.to_string(), why },
        Failure::TooLarge(size) => Error::TooLarge { method: method.to_string(), size, max: mux.max_frame },
    }
}

/// `pm.auth` on a fresh connection; who the daemon says we are.
async fn auth(mux: &Mux, endpoint: &Endpoint, token: &str) -> Result<Identity, Error> {
    let params = serde_json::value::to_raw_value(&serde_json::json!({ "token": token }))
        .map_err(|source| Error::Params { method: "pm.auth".into(), source })?;
    match mux.request("pm.auth", Some(&params), None).await {
        Ok(Ok(result)) => Ok(match from_result::<AuthInfo>("pm.auth", &result)? {
            AuthInfo::Sidecar { name } => Identity::Sidecar(name),
            AuthInfo::Owner => Identity::Owner,
        }),
        Ok(Err(e)) if e.code == ErrorCode::Unauthorized.code() => Err(Error::Unauthorized {
            endpoint: endpoint.to_string(),
            what: "the token",
            code: e.code,
            message: e.message,
        }),
        Ok(Err(e)) => {
            Err(Error::Rpc(RpcError { method: "pm.auth".into(), code: e.code, message: e.message, data: e.data }))
        }
        Err(f) => Err(failure_error(mux, endpoint, "pm.auth", f)),
    }
}

/// Rank of a transport in [`Client::connect_preferred`]: lower first.
fn preference(endpoint: &Endpoint) -> u8 {
    match endpoint {
        Endpoint::Unix(_) | Endpoint::Memory(_) => 0,
        Endpoint::Tls(_) => 1,
        Endpoint::Tcp(_) => 2,
        Endpoint::Wss(_) => 3,
        Endpoint::Ws(_) => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_are_preferred_unix_tls_tcp_wss_ws() {
        let mut endpoints: Vec<Endpoint> =
            ["ws://h:1/", "tcp://h:2", "wss://h:3/", "unix:///s", "tls://h:4", "tcp://h:5"]
                .iter()
                .map(|u| u.parse().unwrap())
                .collect();
        endpoints.sort_by_key(preference);
        let order: Vec<String> = endpoints.iter().map(ToString::to_string).collect();
        assert_eq!(order, ["unix:///s", "tls://h:4", "tcp://h:2", "tcp://h:5", "wss://h:3/", "ws://h:1/"]);
    }

    #[tokio::test]
    async fn a_transport_that_needs_a_token_is_refused_before_connecting() {
        let endpoint: Endpoint = "tcp://127.0.0.1:9".parse().unwrap();
        let err = Client::connect_endpoint(&endpoint, ClientOptions::default()).await.unwrap_err();
        assert!(matches!(err, Error::TokenRequired { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_missing_socket_says_to_start_the_daemon() {
        let err = Client::connect_unix(Path::new("/nonexistent/pm.sock")).await.unwrap_err().to_string();
        assert!(err.starts_with("cannot reach the pm daemon at unix:///nonexistent/pm.sock:"), "{err}");
        assert!(err.contains("`pm start pm`"), "{err}");
    }
}
