//! Serving a sidecar's methods: [`serve`] and its builder [`Serve`].
//!
//! A sidecar writes its methods as a jsonrpsee [`RpcModule`] (by hand, or from an
//! `#[rpc(server)]` trait) and hands it to [`serve`], which:
//! 1. connects to the daemon (`PM_DAEMON`) on a connection of its own;
//! 2. calls `pm.auth` with the sidecar's `PM_TOKEN`, then `pm.register` with the module's method
//!    names (a sidecar whose readiness is `registered` is ready from then on);
//! 3. answers every request the daemon routes over that connection (`<sidecar>.<method>` arrives
//!    as `<method>`) by running it through the module, concurrently; notifications run and are
//!    answered nothing; batches get one array of answers;
//! 4. when the connection is lost (the daemon restarted), connects again with exponential
//!    backoff and registers again, until its shutdown future resolves, or forever.
//!
//! Its own calls to other sidecars go through a separate [`Client`](crate::Client) (from
//! [`Client::from_env`](crate::Client::from_env)): a serving connection answers requests, it does
//! not make them.
//!
//! ```no_run
//! use pm_client::jsonrpsee::{RpcModule, types::ErrorObjectOwned};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mut module = RpcModule::new(());
//!     module.register_method("add", |params, _, _| -> Result<i64, ErrorObjectOwned> {
//!         let (a, b): (i64, i64) = params.parse()?;
//!         Ok(a + b)
//!     })?;
//!     pm_client::serve(module).await?;
//!     Ok(())
//! }
//! ```
//!
//! Subscriptions in the module are not served: the daemon does not route a sidecar's
//! notifications back to a caller.

mod direct;
mod dispatch;
mod responder;
mod session;

use crate::env::{DaemonEnv, PM_TOKEN};
use crate::error::Error;
use crate::options::ClientOptions;
use futures::future::BoxFuture;
use jsonrpsee::{Methods, RpcModule};
use pm_protocol::Endpoint;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// First pause before connecting again; it doubles up to [`DEFAULT_BACKOFF_MAX`].
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(100);
/// Longest pause between two attempts to connect.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Requests of one connection run at once, at most; more wait (and so hold back the daemon).
pub const DEFAULT_MAX_CONCURRENT: usize = 1024;

/// Serves `module` as this sidecar, with everything from the environment, until the process
/// ends. Returns only on a fatal error: the token or the registration was refused, or the
/// environment lacks `PM_TOKEN`. See the [module docs](self).
pub async fn serve<Ctx: Send + Sync + 'static>(module: RpcModule<Ctx>) -> Result<(), Error> {
    Serve::new(module).run().await
}

/// What the daemon said to a registration, for [`Serve::on_registered`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Registered {
    /// The instance this sidecar is.
    pub name: String,
    /// `reverse` (requests come over the serving connection) or `direct`.
    pub mode: String,
    /// The daemon's endpoint.
    pub endpoint: Endpoint,
    /// The methods registered.
    pub methods: Vec<String>,
    /// Where direct calls are served, in direct mode.
    pub direct: Option<String>,
}

/// Why serving lost (or could not get) its connection, for [`Serve::on_disconnected`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Disconnected {
    /// The daemon's endpoint.
    pub endpoint: Endpoint,
    /// What happened: `cannot connect: …`, `the daemon closed the connection`, …
    pub why: String,
    /// Whether the sidecar was registered on the connection that ended.
    pub was_registered: bool,
    /// The pause before the next attempt.
    pub retry_in: Duration,
}

type OnRegistered = Arc<dyn Fn(&Registered) + Send + Sync>;
type OnDisconnected = Box<dyn Fn(&Disconnected) + Send + Sync>;

/// [`serve`] with options:
///
/// ```no_run
/// # async fn demo(module: pm_client::jsonrpsee::RpcModule<()>) -> Result<(), pm_client::Error> {
/// use std::time::Duration;
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// pm_client::Serve::new(module)
///     .backoff(Duration::from_millis(50), Duration::from_secs(2))
///     .on_registered(|r| println!("serving as {}", r.name))
///     .shutdown(async move { let _ = stopped.await; })
///     .run()
///     .await?;
/// # drop(stop); Ok(()) }
/// ```
#[must_use = "a Serve does nothing until .run().await"]
pub struct Serve {
    methods: Methods,
    endpoint: Option<Endpoint>,
    options: Option<ClientOptions>,
    token: Option<String>,
    direct: Option<Endpoint>,
    backoff: (Duration, Duration),
    max_concurrent: usize,
    shutdown: Option<BoxFuture<'static, ()>>,
    on_registered: Option<OnRegistered>,
    on_disconnected: Option<OnDisconnected>,
}

impl std::fmt::Debug for Serve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve")
            .field("methods", &self.methods.method_names().collect::<Vec<_>>())
            .field("endpoint", &self.endpoint)
            .field("direct", &self.direct)
            .finish_non_exhaustive()
    }
}

/// Everything a session needs, resolved once.
pub(crate) struct Setup {
    pub endpoint: Endpoint,
    pub options: ClientOptions,
    pub token: String,
    pub methods: Methods,
    pub names: Vec<String>,
    pub direct: Option<String>,
    pub max_concurrent: usize,
    pub on_registered: Option<OnRegistered>,
}

impl Serve {
    /// Serves these methods (an [`RpcModule`], or [`Methods`] merged from several).
    pub fn new(methods: impl Into<Methods>) -> Serve {
        Serve {
            methods: methods.into(),
            endpoint: None,
            options: None,
            token: None,
            direct: None,
            backoff: (DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_MAX),
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            shutdown: None,
            on_registered: None,
            on_disconnected: None,
        }
    }

    /// The daemon to serve for (default: `PM_DAEMON`, else `PM_HOME`'s socket).
    pub fn endpoint(mut self, endpoint: Endpoint) -> Serve {
        self.endpoint = Some(endpoint);
        self
    }

    /// The sidecar's token (default: `PM_TOKEN`).
    pub fn token(mut self, token: impl Into<String>) -> Serve {
        self.token = Some(token.into());
        self
    }

    /// Connection options: TLS trust, frame limit, connect timeout (default: from the
    /// environment). Their token is used if [`Serve::token`] was not given.
    pub fn options(mut self, options: ClientOptions) -> Serve {
        self.options = Some(options);
        self
    }

    /// Direct mode: also listen on `endpoint` (unix:// or tcp://; port 0 picks a free one) and
    /// register it, so that the daemon sends calls there instead of over the serving
    /// connection. Anyone who can connect to it may call.
    pub fn direct(mut self, endpoint: Endpoint) -> Serve {
        self.direct = Some(endpoint);
        self
    }

    /// Pauses between attempts to connect: `initial`, doubling up to `max`. A connection that
    /// got registered starts the backoff over.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Serve {
        self.backoff = (initial, max.max(initial));
        self
    }

    /// At most this many requests run at once (default [`DEFAULT_MAX_CONCURRENT`]).
    pub fn max_concurrent(mut self, requests: usize) -> Serve {
        self.max_concurrent = requests.max(1);
        self
    }

    /// Stops serving (and returns `Ok`) when `signal` resolves.
    pub fn shutdown(mut self, signal: impl Future<Output = ()> + Send + 'static) -> Serve {
        self.shutdown = Some(Box::pin(signal));
        self
    }

    /// Called after every successful registration (the first, and each after a reconnect).
    pub fn on_registered(mut self, callback: impl Fn(&Registered) + Send + Sync + 'static) -> Serve {
        self.on_registered = Some(Arc::new(callback));
        self
    }

    /// Called each time the connection is lost or an attempt to connect fails, before the
    /// pause (e.g. to report that the sidecar is not reachable through pm for now).
    pub fn on_disconnected(mut self, callback: impl Fn(&Disconnected) + Send + Sync + 'static) -> Serve {
        self.on_disconnected = Some(Box::new(callback));
        self
    }

    /// Serves until the shutdown signal (then `Ok`) or a fatal error: the environment lacks
    /// what it needs, the token or the registration is refused, the direct endpoint cannot be
    /// served, or the transport is not available.
    pub async fn run(self) -> Result<(), Error> {
        let mut shutdown = self.shutdown.unwrap_or_else(|| Box::pin(futures::future::pending()));
        let setup = tokio::select! {
            setup = Setup::resolve(
                self.methods, self.endpoint, self.options, self.token, self.direct.as_ref(), self.max_concurrent
            ) => setup,
            _ = &mut shutdown => return Ok(()),
        };
        let (mut setup, direct) = setup?;
        setup.on_registered = self.on_registered;
        let (initial, max) = self.backoff;
        let mut pause = initial;
        let mut ever_registered = false;
        loop {
            let lost = tokio::select! {
                lost = session::run(&setup) => lost,
                _ = &mut shutdown => break,
            };
            let lost = match lost {
                Ok(lost) => lost,
                Err(e @ Error::Unauthorized { .. }) if ever_registered => {
                    // Sidecar tokens live as long as the daemon that issued them.
                    tracing::error!(
                        "the pm daemon at {} no longer knows this sidecar's token: it was restarted, and a new \
                         daemon restarts its sidecars itself; giving up",
                        setup.endpoint
                    );
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            if lost.registered {
                pause = initial;
                ever_registered = true;
            }
            tracing::warn!("pm daemon at {}: {}; connecting again in {pause:?}", setup.endpoint, lost.why);
            if let Some(callback) = &self.on_disconnected {
                callback(&Disconnected {
                    endpoint: setup.endpoint.clone(),
                    why: lost.why,
                    was_registered: lost.registered,
                    retry_in: pause,
                });
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = &mut shutdown => break,
            }
            pause = (pause * 2).min(max);
        }
        drop(direct);
        tracing::info!("stopped serving");
        Ok(())
    }
}

impl Setup {
    /// Fills in what was not given from the environment, and starts the direct listener.
    async fn resolve(
        methods: Methods,
        endpoint: Option<Endpoint>,
        options: Option<ClientOptions>,
        token: Option<String>,
        direct: Option<&Endpoint>,
        max_concurrent: usize,
    ) -> Result<(Setup, Option<direct::Direct>), Error> {
        let env = match &endpoint {
            Some(endpoint) => DaemonEnv::read_for(endpoint)?,
            None => DaemonEnv::read()?,
        };
        let endpoint = endpoint.unwrap_or_else(|| env.endpoint.clone());
        // Given options' token, else PM_TOKEN: not the environment's fallback to the daemon's
        // token, which authenticates as the owner, who cannot register.
        let given_token = options.as_ref().and_then(|o| o.token.clone());
        let options = options.unwrap_or_else(|| env.options());
        let pm_token = std::env::var(PM_TOKEN).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        let token = token.or(given_token).or(pm_token).ok_or_else(|| {
            Error::Environment(
                "serving needs this sidecar's own token and PM_TOKEN is not set: run the program as a pm sidecar \
                 (`pm map NAME --ready registered -- PROGRAM`), or give the token with Serve::token"
                    .into(),
            )
        })?;
        // ws:// and wss:// send it in the handshake.
        let options = ClientOptions { token: Some(token.clone()), ..options };
        let mut names: Vec<String> = methods.method_names().map(str::to_string).collect();
        names.sort();
        let serving = direct::Serving { methods: methods.clone(), max_concurrent, max_frame: options.max_frame };
        let direct = match direct {
            Some(endpoint) => Some(direct::listen(endpoint, serving).await?),
            None => None,
        };
        let setup = Setup {
            endpoint,
            options,
            token,
            methods,
            names,
            direct: direct.as_ref().map(|d| d.url.clone()),
            max_concurrent,
            on_registered: None,
        };
        Ok((setup, direct))
    }
}
