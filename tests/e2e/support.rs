//! The harness: one temporary PM_HOME and work directory per test, commands with deadlines, and
//! teardown that stops the daemon (or kills it) so no test leaves a process behind.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const PM: &str = env!("CARGO_BIN_EXE_pm");
/// Deadline of one CLI call (starts wait for readiness).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Pm {
    pub home: tempfile::TempDir,
    pub dir: tempfile::TempDir,
}

impl Pm {
    pub fn new() -> Pm {
        Pm { home: tempfile::tempdir().unwrap(), dir: tempfile::tempdir().unwrap() }
    }

    /// A `pm` command in the work directory with this PM_HOME.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(PM);
        cmd.args(args).env("PM_HOME", self.home.path()).env_remove("PM_LOG").current_dir(self.dir.path());
        cmd
    }

    /// Runs `pm args…` to completion (killed and failed past the deadline).
    pub fn run(&self, args: &[&str]) -> Output {
        run_with_deadline(self.cmd(args), CALL_TIMEOUT)
    }

    /// Runs and requires success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let (stdout, stderr) = texts(&out);
        assert!(out.status.success(), "pm {args:?} failed ({}):\n{stderr}\n{stdout}", out.status);
        stdout
    }

    /// Runs and requires failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let (stdout, stderr) = texts(&out);
        assert!(!out.status.success(), "pm {args:?} should have failed:\n{stdout}");
        stderr
    }

    /// `pm status --json` as JSON values.
    pub fn status(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.ok(&["status", "--json"])).unwrap()
    }

    /// Status of one instance.
    pub fn instance(&self, name: &str) -> serde_json::Value {
        let all = self.status();
        all.into_iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no instance {name}"))
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn daemon_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.home.path().join("daemon.pid")).ok()?.trim().parse().ok()
    }

    pub fn log_file(&self, instance: &str, stream: &str) -> PathBuf {
        self.home.path().join("logs").join(format!("{instance}.{stream}.log"))
    }
}

impl Drop for Pm {
    fn drop(&mut self) {
        let out = run_with_deadline(self.cmd(&["stop", "pm"]), Duration::from_secs(30));
        // A daemon that is PID 1 of its namespace is stopped with it, never killed from here.
        if !out.status.success()
            && let Some(pid) = self.daemon_pid().filter(|&pid| pid > 1)
        {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

pub fn texts(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

pub fn run_with_deadline(mut cmd: Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn pm");
    // Drain both pipes on threads so a chatty command cannot block on a full pipe.
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

/// Polls `condition` until it holds; fails the test naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether any process's command line contains `text`.
pub fn argv_contains(text: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline")).is_ok_and(|argv| String::from_utf8_lossy(&argv).contains(text))
    })
}

/// Whether a process is alive (a zombie nobody reaped counts as dead).
pub fn alive(pid: i64) -> bool {
    let exists = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok();
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(false);
    exists && !zombie
}

/// Lines of a file (empty when missing).
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect()
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Copies fixture `kind` of `pm discover`'s tests (tests/fixtures/discover/) to `to`: its
/// sidecars write there, never in the repository.
pub fn copy_discover_fixture(kind: &str, to: &Path) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap().flatten() {
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    copy(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/discover").join(kind), to);
}

/// `pm discover ARGS --json` with `env` (the daemon it starts, and so the sidecars, inherit it),
/// which must succeed within `timeout`: what it printed.
pub fn discover_json(pm: &Pm, args: &[&str], env: &[(&str, &str)], timeout: Duration) -> serde_json::Value {
    let mut cmd = pm.cmd(&[&["discover"], args, &["--json"]].concat());
    cmd.envs(env.iter().copied());
    let out = run_with_deadline(cmd, timeout);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "pm discover failed:\n{stderr}\n{stdout}");
    json(&stdout)
}

/// What [`discover_json`] printed: the names found and the keys not translated.
pub fn discovered(pm: &Pm, args: &[&str], env: &[(&str, &str)], timeout: Duration) -> (Vec<String>, Vec<String>) {
    let out = discover_json(pm, args, env, timeout);
    let strings = |list: &serde_json::Value, key: &str| -> Vec<String> {
        list.as_array().unwrap().iter().map(|v| v[key].as_str().unwrap().to_string()).collect()
    };
    (strings(&out["found"], "name"), strings(&out["untranslated"], "key"))
}

/// A shell sidecar that records `start <name>` / `stop <name>` in `record`, says `up`, and runs
/// until stopped.
pub fn recording_sidecar(name: &str, record: &Path) -> String {
    let r = record.display();
    format!(r#"trap 'echo stop {name} >> {r}; exit 0' TERM; echo start {name} >> {r}; echo up; sleep 1000 & wait"#)
}

/// A raw NDJSON client, as any language would write one.
pub struct Raw {
    pub reader: BufReader<Box<dyn Read + Send>>,
    writer: Box<dyn Write + Send>,
}

impl Raw {
    /// On the daemon's Unix socket (the daemon must be running).
    pub fn unix(pm: &Pm) -> Raw {
        Raw::over(UnixStream::connect(pm.home.path().join("pm.sock")).unwrap())
    }

    /// On a TCP listener.
    pub fn tcp(addr: &str) -> Raw {
        let stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Raw { reader: BufReader::new(Box::new(stream.try_clone().unwrap())), writer: Box::new(stream) }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    pub fn send_json(&mut self, value: &serde_json::Value) {
        self.send(format!("{value}\n").as_bytes());
    }

    /// The next message (fails after the read timeout).
    pub fn line(&mut self) -> serde_json::Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("an answer before the read timeout");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
    }

    /// Sends a request with a deadline and returns its answer.
    pub fn call_with_deadline(&mut self, method: &str, params: serde_json::Value, ms: u64) -> serde_json::Value {
        self.send_json(
            &serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params, "deadline_ms": ms}),
        );
        self.line()
    }

    /// Sends a request and returns its answer (no other traffic may be in flight).
    pub fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.send_json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}));
        self.line()
    }
}

/// A free TCP port on loopback (bound, then released for the daemon to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `pm daemon ARGS…` in the foreground, as a child that is killed when dropped (after the
/// `Pm` it belongs to has stopped it).
pub struct Foreground(std::process::Child);

impl Drop for Foreground {
    /// SIGTERM stops the sidecars in order; SIGKILL only if that takes too long.
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Pm {
    /// Runs `pm daemon ARGS…` and waits until its socket answers.
    pub fn daemon(&self, args: &[&str]) -> Foreground {
        let mut cmd = self.cmd(&["daemon"]);
        cmd.args(args);
        self.foreground(cmd)
    }

    /// The same, with at most `open_files` open files (soft and hard).
    pub fn daemon_with_open_files(&self, open_files: u32, args: &[&str]) -> Foreground {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!("ulimit -n {open_files} && exec \"$0\" daemon \"$@\"")).arg(PM).args(args);
        cmd.env("PM_HOME", self.home.path()).env_remove("PM_LOG").current_dir(self.dir.path());
        self.foreground(cmd)
    }

    /// Runs `cmd` (a `pm daemon` wrapped some way) and waits until its socket answers.
    pub fn foreground(&self, mut cmd: Command) -> Foreground {
        let log = std::fs::File::create(self.path("daemon.out")).unwrap();
        cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        let mut child = Foreground(cmd.spawn().unwrap());
        let socket = self.home.path().join("pm.sock");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers_ping(&socket) {
            let exited = child.0.try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(self.path("daemon.out")).unwrap_or_default();
                panic!("the daemon did not answer within 10 s (exit: {exited:?}); its output:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    /// The PM_TOKEN of the current run of a sidecar that prints `token=$PM_TOKEN` at start.
    pub fn printed_token(&self, instance: &str) -> String {
        let path = self.log_file(instance, "out");
        let mut token = String::new();
        wait_until(&format!("{instance} prints its token"), Duration::from_secs(10), || {
            let last = lines(&path).into_iter().rev().find_map(|l| l.split_once("token=").map(|(_, t)| t.to_string()));
            token = last.unwrap_or_default();
            !token.is_empty()
        });
        token
    }

    /// The daemon's resident memory, in KiB.
    pub fn daemon_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.daemon_pid().unwrap())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// How many files the daemon has open.
    pub fn daemon_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.daemon_pid().unwrap())).map(|d| d.count()).unwrap_or(0)
    }
}

/// Whether a daemon answers pm.ping on `socket`; a refused or reset connection (a daemon not up
/// yet, or one still going away) is a no.
fn answers_ping(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let ping = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"pm.ping\",\"params\":[]}\n";
    let mut line = String::new();
    stream.write_all(ping.as_bytes()).is_ok()
        && BufReader::new(stream).read_line(&mut line).is_ok()
        && serde_json::from_str::<serde_json::Value>(&line).is_ok_and(|v| v["result"]["pid"].is_number())
}

/// A sidecar command that prints its token and runs until stopped.
pub const TOKEN_PRINTER: &str = "echo token=$PM_TOKEN; exec sleep 1000";

impl Raw {
    fn over(stream: UnixStream) -> Raw {
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Raw { reader: BufReader::new(Box::new(stream.try_clone().unwrap())), writer: Box::new(stream) }
    }

    /// Authenticates with `token`; returns the answer.
    pub fn auth(&mut self, token: &str) -> serde_json::Value {
        self.call("pm.auth", serde_json::json!({ "token": token }))
    }

    /// Whether the daemon closed the connection: end of stream, or a reset, before `within`.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut line = String::new();
        while Instant::now() < deadline {
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => return true,
            }
        }
        false
    }
}

/// Whether a test needing a privilege (mount, unshare, cgroups) may run here: `probe` tries it.
/// Without it the test says SKIPPED loudly and passes, unless `PM_REQUIRE_PRIVILEGED=1` (CI sets it,
/// running as root), where that is a failure.
pub fn privileged(test: &str, what: &str, probe: impl FnOnce() -> Result<(), String>) -> bool {
    match probe() {
        Ok(()) => true,
        Err(why) => {
            assert!(
                std::env::var("PM_REQUIRE_PRIVILEGED").as_deref() != Ok("1"),
                "PM_REQUIRE_PRIVILEGED=1 but {test} cannot {what}: {why}"
            );
            let _ = writeln!(std::io::stderr(), "*** SKIPPED {test}: cannot {what}: {why} ***");
            false
        }
    }
}

/// Whether node is on PATH (PM2's ecosystem.config.js, akala's sidecars, npm packages); without
/// it a test skips loudly, and fails where PM_REQUIRE_NODE=1 (CI).
pub fn have_node(test: &str) -> bool {
    let here = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !here {
        assert!(std::env::var("PM_REQUIRE_NODE").as_deref() != Ok("1"), "PM_REQUIRE_NODE=1 but no node for {test}");
        let _ = writeln!(std::io::stderr(), "*** SKIPPED {test}: node is not on PATH ***");
    }
    here
}
