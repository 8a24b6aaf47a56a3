//! The harness: the real `pm` binary as a daemon with a temporary PM_HOME and a TCP listener,
//! stopped (or killed) when the test ends; waits on conditions with a deadline, never on time.

use pm_client::{Client, Endpoint, PmApiClient};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Deadline of any one wait in a test.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// `target/debug` (or whichever profile built this test): the test runs as
/// `target/debug/deps/sdk-<hash>`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    exe.parent().and_then(Path::parent).expect("the test runs from target/<profile>/deps").to_path_buf()
}

/// The `pm` binary next to the tests. `cargo test -p pm-client` does not build it.
pub fn pm_binary() -> PathBuf {
    let path = profile_dir().join("pm");
    assert!(
        path.is_file(),
        "{} is missing: build the daemon first with `cargo build -p pm-daemon` \
         (`cargo test -p pm-client` builds only this package; `cargo test --workspace` builds it too)",
        path.display()
    );
    path
}

/// One of this package's examples (built by `cargo test` with the tests).
pub fn example(name: &str) -> PathBuf {
    let path = profile_dir().join("examples").join(name);
    assert!(path.is_file(), "{} is missing: `cargo build -p pm-client --examples`", path.display());
    path
}

/// Awaits `fut`, failing the test after [`TIMEOUT`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {TIMEOUT:?}: {what}"),
    }
}

/// Polls `check` until it gives a value; fails the test naming `what` after [`TIMEOUT`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {TIMEOUT:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A free TCP address on the loopback (the daemon cannot report a port 0 it was given).
fn free_tcp_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("its address").to_string()
}

/// A running daemon of our own.
pub struct Daemon {
    pub home: tempfile::TempDir,
    /// `host:port` of its TCP listener.
    pub tcp: String,
    /// Its other listeners (tls, ws, wss), if any.
    pub secure: Vec<Endpoint>,
    child: Option<Child>,
}

impl Daemon {
    /// Starts `pm daemon --listen tcp://…` in a fresh PM_HOME and waits until it answers.
    pub async fn start() -> Daemon {
        let home = tempfile::tempdir().expect("a temporary PM_HOME");
        let mut daemon = Daemon { home, tcp: free_tcp_address(), secure: Vec::new(), child: None };
        daemon.spawn().await;
        daemon
    }

    /// The same, also on tls://, ws:// and wss:// with a certificate from `pm tls-cert`.
    pub async fn start_on_every_transport() -> Daemon {
        let home = tempfile::tempdir().expect("a temporary PM_HOME");
        let secure = [
            format!("tls://{}", free_tcp_address()),
            format!("ws://{}/", free_tcp_address()),
            format!("wss://localhost:{}/", free_tcp_address().rsplit_once(':').map_or("0", |(_, p)| p)),
        ];
        let secure = secure.iter().map(|url| url.parse().expect("a valid URL")).collect();
        let mut daemon = Daemon { home, tcp: free_tcp_address(), secure, child: None };
        daemon.cli_offline(&["tls-cert"]);
        daemon.spawn().await;
        daemon
    }

    /// The self-signed certificate of `pm tls-cert`, to trust.
    pub fn cert(&self) -> PathBuf {
        self.home.path().join("tls/cert.pem")
    }

    /// Runs a `pm` command that needs no daemon.
    fn cli_offline(&self, args: &[&str]) {
        let out = Command::new(pm_binary()).args(args).env("PM_HOME", self.home.path()).output().expect("run pm");
        assert!(out.status.success(), "pm {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.home.path().join("daemon.test.log"))
            .expect("the daemon's log file");
        let mut listen = vec!["--listen".to_string(), format!("tcp://{}", self.tcp)];
        for endpoint in &self.secure {
            listen.extend(["--listen".to_string(), endpoint.to_string()]);
        }
        let child = Command::new(pm_binary())
            .arg("daemon")
            .args(listen)
            .env("PM_HOME", self.home.path())
            .env("PM_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file handle"))
            .stderr(log)
            .spawn()
            .expect("spawn pm daemon");
        self.child = Some(child);
        let socket = self.socket();
        eventually("the daemon to answer on its socket", || {
            let socket = socket.clone();
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!("the daemon exited at start ({status}):\n{}", self.log());
            }
            async move {
                let client = Client::connect_unix(&socket).await.ok()?;
                client.daemon().ping().await.ok()
            }
        })
        .await;
    }

    pub fn socket(&self) -> PathBuf {
        self.home.path().join("pm.sock")
    }

    pub fn unix(&self) -> Endpoint {
        Endpoint::Unix(self.socket())
    }

    pub fn tcp(&self) -> Endpoint {
        Endpoint::Tcp(self.tcp.clone())
    }

    /// The daemon's token (PM_HOME/token).
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.home.path().join("token")).expect("PM_HOME/token").trim().to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("a running daemon")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.home.path().join("daemon.test.log")).unwrap_or_default()
    }

    /// Runs the `pm` CLI against this daemon; returns stdout, failing the test on an error.
    pub async fn pm(&self, args: &[&str]) -> String {
        let out = within(
            &format!("pm {args:?}"),
            tokio::process::Command::new(pm_binary())
                .args(args)
                .env("PM_HOME", self.home.path())
                .env_remove("PM_LOG")
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("run pm");
        let (stdout, stderr) =
            (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
        assert!(out.status.success(), "pm {args:?} failed ({}):\n{stderr}\n{stdout}", out.status);
        stdout
    }

    /// Defines a sidecar that prints its PM_TOKEN and idles, starts it and returns the token:
    /// how a test process gets a real sidecar identity to serve as.
    pub async fn sidecar_token(&self, name: &str) -> String {
        self.pm(&["map", name, "--", "sh", "-c", "echo \"token=$PM_TOKEN\"; exec sleep 1000"]).await;
        self.pm(&["start", name]).await;
        let log = self.home.path().join("logs").join(format!("{name}.out.log"));
        eventually(&format!("{name} to print its token"), || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let token = text.lines().rev().find_map(|l| l.split_once("token=").map(|(_, t)| t.trim().to_string()));
            async move { token.filter(|t| !t.is_empty()) }
        })
        .await
    }

    /// `kill -9` the daemon (its sidecars live on until the next daemon cleans them up).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a new daemon on the same PM_HOME and TCP address, as after a crash.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }
}

impl Drop for Daemon {
    /// SIGTERM, which stops every sidecar and then the daemon; SIGKILL if that takes too long.
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
