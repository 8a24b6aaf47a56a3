//! The daemon: `run(config, shutdown)` owns the socket, the state and the supervisor until
//! `shutdown` resolves or a client calls `pm.shutdown`. `main` stays thin; tests drive this.

use crate::api::Api;
use crate::home::Home;
use crate::lock::{LockError, PidLock};
use crate::logs::LogHub;
use crate::mesh::{self, Mesh};
use crate::runtimes::Runtimes;
use crate::server::{self, Shared};
use crate::store::{self, Loaded, StoreError};
use crate::supervisor::{Context, Supervisor};
use pm_protocol::status::now_ms;
use pm_protocol::{DaemonInfo, Endpoint, PmApiServer};
use pm_runtimes::Runtime;
use pm_runtimes::process::{Containment, ProcessRuntime};
use pm_runtimes::task::{Task, TaskRuntime};
use std::collections::BTreeMap;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub struct DaemonConfig {
    pub home: Home,
    /// Replaces the daemon's runtimes (tests use a recording fake); none: processes, the tasks
    /// below, and containers when a Docker engine is reachable.
    pub runtime: Option<Arc<dyn Runtime>>,
    /// In-process tasks by name (`runtime = "task"`, `command = ["<name>", …]`); the built-in
    /// `echo` is there from the start.
    pub tasks: BTreeMap<String, Arc<dyn Task>>,
    /// The bounds every connection is held to (frame sizes, timeouts, caps).
    pub limits: server::Limits,
    /// How long to wait for connections and log writers to finish at shutdown.
    pub grace: Duration,
    /// Listeners besides the Unix socket (which is always on).
    pub listen: Vec<Endpoint>,
    /// Certificate chain and key (PEM) for tls:// and wss:// listeners (`pm tls-cert` makes them).
    pub tls_cert: std::path::PathBuf,
    pub tls_key: std::path::PathBuf,
    /// Whether each native instance gets its own cgroup v2 where one can be created; without, its
    /// escaped processes are found by their `PM_RUN_ID` marker alone.
    pub cgroups: bool,
    /// When sidecars' log files are rotated, and how many older ones are kept.
    pub log_rotation: crate::logs::Rotation,
    /// Whether to be a child subreaper that reaps every orphan it adopts. Only for a process that
    /// is nothing but the daemon (`pm daemon`, `pm run`): an application embedding the daemon
    /// would have the exit statuses of its own children taken.
    pub reap: bool,
    /// Also prints every sidecar's output, prefixed with its name (`pm run`).
    pub echo: Option<crate::logs::Echo>,
    /// Signals to send to every running sidecar (`pm run` forwards what it receives).
    pub forward: Option<tokio::sync::mpsc::Receiver<nix::sys::signal::Signal>>,
}

/// The daemon as a library: `Daemon::builder().task("indexer", Indexer).run(shutdown)`.
pub struct Daemon;

impl Daemon {
    /// A daemon for `PM_HOME` (or its default), with the built-in tasks.
    pub fn builder() -> DaemonConfig {
        DaemonConfig::new(Home::from_env())
    }
}

impl DaemonConfig {
    /// Adds an in-process task, run by definitions with `runtime = "task"` and `command = [name]`.
    pub fn task(mut self, name: &str, task: impl Task) -> Self {
        self.tasks.insert(name.to_string(), Arc::new(task));
        self
    }

    /// Also listens on `endpoint`.
    pub fn listen(mut self, endpoint: Endpoint) -> Self {
        self.listen.push(endpoint);
        self
    }

    /// Runs the daemon until `shutdown` resolves or a client calls `pm.shutdown`.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
        run(self, shutdown).await
    }

    pub fn new(home: Home) -> Self {
        let (tls_cert, tls_key) = server::secure::default_cert_paths(&home);
        DaemonConfig {
            home,
            runtime: None,
            tasks: crate::tasks::builtin(),
            limits: server::Limits::default(),
            grace: Duration::from_secs(5),
            listen: Vec::new(),
            tls_cert,
            tls_key,
            cgroups: true,
            log_rotation: Default::default(),
            reap: false,
            echo: None,
            forward: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    State(#[from] StoreError),
    #[error(
        "cannot serve tls:// or wss://: {0} (make a certificate with `pm tls-cert`, or give --tls-cert and --tls-key)"
    )]
    Tls(#[from] pm_protocol::tls::TlsError),
    #[error("{0}: this transport is not supported yet")]
    Unsupported(String),
    #[error("cannot {action} {path}: {source}")]
    Io { action: &'static str, path: String, source: std::io::Error },
}

/// Raises the limit on open files as far as it may go: to the kernel's ceiling (`fs.nr_open`)
/// where the daemon may raise its hard limit (root), else the soft limit to the hard one. Every
/// sidecar's pipes and every connection cost descriptors (10,000 sidecars take some 30,000), and
/// running out would lock even the owner out. Returns the limit.
fn raise_fd_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            tracing::warn!("cannot read the open-file limit: {e}");
            return None;
        }
    };
    let ceiling = std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|n| n.trim().parse::<u64>().ok());
    if let Some(ceiling) = ceiling.filter(|&c| c > hard)
        && setrlimit(Resource::RLIMIT_NOFILE, ceiling, ceiling).is_ok()
    {
        return Some(ceiling);
    }
    if soft >= hard {
        return Some(soft);
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => Some(hard),
        Err(e) => {
            tracing::warn!("cannot raise the open-file limit from {soft} to {hard}: {e}");
            Some(soft)
        }
    }
}

/// Keeps each pool of connections within a quarter of the open-file limit, so that connections
/// alone can never use up the descriptors sidecars and the owner need.
fn fit_connections(limits: &mut server::Limits, open_files: Option<u64>) {
    let Some(open_files) = open_files else { return };
    let fits = usize::try_from(open_files / 4).unwrap_or(usize::MAX).max(1);
    if limits.max_connections > fits {
        tracing::warn!(
            "at most {fits} connections per pool, not {}: the open-file limit is {open_files}",
            limits.max_connections
        );
        limits.max_connections = fits;
    }
}

/// A listener on a non-loopback address without TLS sends tokens and calls in the clear.
fn warn_if_exposed(endpoint: &Endpoint) {
    use server::secure::{bind_addr, host_of, is_loopback};
    let plain = matches!(endpoint, Endpoint::Tcp(_) | Endpoint::Ws(_));
    if plain && bind_addr(endpoint).is_some_and(|addr| !is_loopback(host_of(addr))) {
        tracing::warn!(
            "{endpoint} listens beyond this host without TLS: tokens and calls cross the network in the clear (use tls:// or wss://)"
        );
    }
}

pub async fn run(config: DaemonConfig, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    let home = config.home.clone();
    let io = |action, path: &dyn std::fmt::Display| {
        let path = path.to_string();
        move |source| DaemonError::Io { action, path, source }
    };
    home.create().map_err(io("create", &home.root().display()))?;
    let _lock = PidLock::acquire(&home.pid_file())?;
    match home.secure() {
        Ok(Some(warning)) => tracing::warn!("{warning}"),
        Ok(None) => {}
        Err(e) => tracing::warn!("cannot make the files in {} private: {e}", home.root().display()),
    }
    let open_files = raise_fd_limit();

    // We hold the lock, so a socket file here was left by a daemon that died: replace it.
    let socket = home.socket();
    if socket.exists() {
        tracing::info!("removing stale socket {}", socket.display());
        std::fs::remove_file(&socket).map_err(io("remove", &socket.display()))?;
    }
    let listener = tokio::net::UnixListener::bind(&socket).map_err(io("listen on", &socket.display()))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
        .map_err(io("secure", &socket.display()))?;
    let (mut tcp, mut tls, mut ws) = (Vec::new(), Vec::new(), Vec::new());
    // Where clients reach us, with the port actually bound where the URL asked for port 0.
    let mut endpoints = vec![format!("unix://{}", socket.display())];
    // The certificate is read only when a tls:// or wss:// listener needs it.
    let acceptor = match config.listen.iter().any(|e| matches!(e, Endpoint::Tls(_) | Endpoint::Wss(_))) {
        true => Some(server::secure::acceptor(&config.tls_cert, &config.tls_key)?),
        false => None,
    };
    for endpoint in &config.listen {
        warn_if_exposed(endpoint);
        let addr = server::secure::bind_addr(endpoint).ok_or_else(|| DaemonError::Unsupported(endpoint.to_string()))?;
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(io("listen on", endpoint))?;
        let url = endpoint.to_string();
        endpoints.push(match (addr.strip_suffix(":0"), listener.local_addr()) {
            (Some(host), Ok(bound)) => url.replacen(addr, &format!("{host}:{}", bound.port()), 1),
            _ => url,
        });
        match (endpoint, &acceptor) {
            (Endpoint::Tls(_), Some(acceptor)) => tls.push((listener, acceptor.clone())),
            (Endpoint::Ws(_), _) => ws.push((listener, None)),
            (Endpoint::Wss(_), Some(acceptor)) => ws.push((listener, Some(acceptor.clone()))),
            (Endpoint::Tcp(_), _) => tcp.push(listener),
            _ => return Err(DaemonError::Unsupported(endpoint.to_string())),
        }
    }
    // Tasks reach the daemon in memory, through the same dispatch as any socket.
    let memory_name = home.root().display().to_string();
    let memory =
        pm_protocol::memory::bind(&memory_name).map_err(io("listen on", &format!("memory://{memory_name}")))?;
    let daemon_token = mesh::kept_random(&home.token()).map_err(io("create", &home.token().display()))?;
    let daemon_id = mesh::kept_random(&home.id_file()).map_err(io("create", &home.id_file().display()))?;

    // Orphans of the sidecars' descendants become ours to reap; and whatever an earlier daemon of
    // this PM_HOME left (after a kill -9) dies before anything starts.
    if config.reap
        && let Err(e) = pm_runtimes::process::reaper::start()
    {
        tracing::warn!("cannot become a child subreaper: {e}; orphans of sidecars go to init");
    }
    let containment = Arc::new(Containment::new(&daemon_id, config.cgroups));
    let swept = containment.sweep_leftovers();
    if swept > 0 {
        tracing::warn!("killed {swept} processes left by the previous daemon");
    }

    let (state, loaded) = store::load(&home.state(), &home.state_backup())?;
    // Logged, and said by the CLI to whoever looks at the status: the last change may be lost.
    let notice = match loaded {
        Loaded::FromBackup(notice) => {
            tracing::error!("{notice}");
            Some(notice)
        }
        Loaded::Fresh | Loaded::Primary => None,
    };

    let tasks = TaskRuntime::new(config.tasks, Endpoint::Memory(memory_name));
    let mut runtimes = Runtimes::new(Some(Arc::new(tasks)), daemon_id.clone(), home.root().to_path_buf());
    runtimes.process = Arc::new(ProcessRuntime::new(containment.clone()));
    let runtimes = Arc::new(runtimes);
    let tracker = TaskTracker::new();
    let token = CancellationToken::new();
    let mesh = Mesh::default();
    let ctx = Context {
        mesh: mesh.clone(),
        runtime: match config.runtime {
            Some(runtime) => runtime,
            None => runtimes.clone(),
        },
        logs: LogHub::new(home.clone()).rotating(config.log_rotation).echoing(config.echo),
        events: tokio::sync::broadcast::channel(1024).0,
        dirty: Default::default(),
        tracker: tracker.clone(),
        daemon_endpoint: format!("unix://{}", socket.display()),
        notifier: Default::default(),
        meter: Default::default(),
        ports: Default::default(),
    };
    let sup = Supervisor::new(ctx, home.state(), home.state_backup());
    // The registry is complete before any client can ask; only starting waits for later.
    let wanted = sup.load(state);
    if let Some(mut signals) = config.forward {
        let sup = sup.clone();
        tokio::spawn(async move {
            while let Some(signal) = signals.recv().await {
                sup.signal_all(signal).await;
            }
        });
    }
    let info = DaemonInfo {
        endpoints: endpoints.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
        home: home.root().to_path_buf(),
        started_at_ms: now_ms(),
        notice,
    };
    let methods = Api { sup: sup.clone(), mesh: mesh.clone(), info, shutdown: token.clone() }.into_rpc();
    let mut limits = config.limits;
    fit_connections(&mut limits, open_files);
    let shared = Arc::new(Shared::new(methods.into(), mesh.clone(), sup.clone(), daemon_token, limits));
    let mut servers = vec![tokio::spawn(server::serve_unix(listener, shared.clone(), token.clone(), tracker.clone()))];
    servers.push(tokio::spawn(server::serve_memory(memory, shared.clone(), token.clone(), tracker.clone())));
    for listener in tcp {
        servers.push(tokio::spawn(server::serve_tcp(listener, shared.clone(), token.clone(), tracker.clone())));
    }
    for (listener, acceptor) in tls {
        let serve = server::secure::serve_tls(listener, acceptor, shared.clone(), token.clone(), tracker.clone());
        servers.push(tokio::spawn(serve));
    }
    for (listener, acceptor) in ws {
        let serve = server::secure::serve_ws(listener, acceptor, shared.clone(), token.clone(), tracker.clone());
        servers.push(tokio::spawn(serve));
    }
    let deadlines = tokio::spawn(async move { mesh.expire_deadlines().await });
    let listening: Vec<String> = std::iter::once(format!("unix://{}", socket.display()))
        .chain(config.listen.iter().map(|e| e.to_string()))
        .collect();
    tracing::info!("pm daemon {} listening on {}", std::process::id(), listening.join(", "));

    // Bring back what was running; the socket answers meanwhile.
    let restoring = tokio::spawn({
        let sup = sup.clone();
        let has_containers = sup.has_containers();
        async move {
            // Containers a crashed daemon left are removed before their instances start again
            // (through the engine alone; with the engine away, as soon as it answers).
            if has_containers && let Err(e) = runtimes.remove_leftover_containers().await {
                tracing::warn!("containers left by the previous daemon are removed once the engine answers: {e}");
            }
            if let Err(e) = sup.resume(wanted).await {
                tracing::error!("restoring instances: {e}");
            }
        }
    });

    tokio::select! {
        _ = shutdown => tracing::info!("shutting down"),
        _ = token.cancelled() => tracing::info!("shutting down on request"),
    }
    restoring.abort();
    sup.close().await;
    token.cancel();
    for server in servers {
        let _ = server.await;
    }
    deadlines.abort();
    tracker.close();
    if tokio::time::timeout(config.grace, tracker.wait()).await.is_err() {
        tracing::warn!("some connections or log writers did not finish within {:?}", config.grace);
    }
    containment.close();
    let _ = std::fs::remove_file(&socket);
    tracing::info!("pm daemon stopped");
    Ok(())
}
