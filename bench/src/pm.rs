//! The `pm` under test: finding its binary, running its CLI against a private PM_HOME, reaching
//! its daemon, and making sure nothing it started outlives the bench.

use anyhow::{Context, anyhow, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use pm_client::Client;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long `pm stop pm` may take (it stops up to 1,000 sidecars first).
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// A private PM_HOME and the `pm` binary. Dropping it stops the daemon and kills whatever is
/// left of it, so the bench never leaves processes behind, also when it fails half-way.
pub struct Pm {
    bin: PathBuf,
    /// Holds `home/` (PM_HOME) and `project/` (the project file); removed on drop.
    dir: tempfile::TempDir,
    daemon_pid: AtomicU32,
    stopped: AtomicBool,
}

impl Pm {
    /// Finds the binary (`PM_BIN`, else `pm` next to this executable) and makes a fresh PM_HOME.
    pub fn new() -> anyhow::Result<Pm> {
        let bin = match std::env::var_os("PM_BIN") {
            Some(bin) => PathBuf::from(bin),
            None => {
                let exe = std::env::current_exe().context("cannot find the pm-bench executable")?;
                exe.parent().map(|dir| dir.join("pm")).ok_or_else(|| anyhow!("{} has no parent", exe.display()))?
            }
        };
        if !bin.is_file() {
            bail!("no pm binary at {}: run `cargo build --release -p pm-daemon` first (or set PM_BIN)", bin.display());
        }
        let dir = tempfile::Builder::new().prefix("pm-bench-").tempdir().context("cannot make a temporary dir")?;
        std::fs::create_dir(dir.path().join("home"))?;
        std::fs::create_dir(dir.path().join("project"))?;
        Ok(Pm { bin, dir, daemon_pid: AtomicU32::new(0), stopped: AtomicBool::new(false) })
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn project_dir(&self) -> PathBuf {
        self.dir.path().join("project")
    }

    /// Keeps the temporary dir (PM_HOME with daemon.log and the sidecars' logs) after the bench,
    /// to look into a failure; returns its path.
    pub fn keep_files(&mut self) -> PathBuf {
        self.dir.disable_cleanup(true);
        self.dir.path().to_path_buf()
    }

    /// The daemon's pid, once [`Pm::start_daemon`] has run.
    pub fn daemon_pid(&self) -> u32 {
        self.daemon_pid.load(Ordering::SeqCst)
    }

    /// Runs `pm ARGS` to its end (bounded by `limit`), fails unless it exits 0, and returns its
    /// output with the wall time from spawn to exit.
    pub async fn run_timed(&self, args: &[&str], limit: Duration) -> anyhow::Result<(Output, Duration)> {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(args).env("PM_HOME", self.home()).current_dir(self.project_dir());
        timed(cmd, &format!("pm {}", args.join(" ")), limit).await
    }

    pub async fn run(&self, args: &[&str], limit: Duration) -> anyhow::Result<Output> {
        Ok(self.run_timed(args, limit).await?.0)
    }

    /// `pm start pm` (with `--listen URL` for each of `listen`), then the daemon's pid from
    /// `daemon.pid`.
    pub async fn start_daemon(&self, listen: &[&str]) -> anyhow::Result<u32> {
        self.stopped.store(false, Ordering::SeqCst);
        let mut args = vec!["start", "pm"];
        args.extend(listen.iter().flat_map(|url| ["--listen", url]));
        self.run(&args, Duration::from_secs(20)).await?;
        let file = self.home().join("daemon.pid");
        let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let pid: u32 = text.trim().parse().with_context(|| format!("{} holds {text:?}, not a pid", file.display()))?;
        self.daemon_pid.store(pid, Ordering::SeqCst);
        Ok(pid)
    }

    /// An SDK connection to the daemon.
    pub async fn client(&self) -> anyhow::Result<Client> {
        let socket = self.home().join("pm.sock");
        Ok(within(Duration::from_secs(5), "connecting to the daemon", Client::connect_unix(&socket)).await??)
    }

    /// `pm stop pm`, then checks that the daemon and every process of this PM_HOME are gone
    /// (killing and reporting any that are not).
    pub async fn shutdown(&self) -> anyhow::Result<Duration> {
        self.stopped.store(true, Ordering::SeqCst);
        let stopped = self.run_timed(&["stop", "pm"], STOP_TIMEOUT).await;
        let left = self.kill_leftovers();
        let took = stopped?.1;
        if left > 0 {
            bail!("`pm stop pm` answered but left {left} process(es) of this PM_HOME running (killed now)");
        }
        Ok(took)
    }

    /// Kills the daemon if it still runs, and every process whose environment names this
    /// PM_HOME (the daemon passes its own environment to the sidecars). Returns how many.
    fn kill_leftovers(&self) -> usize {
        // `pm stop pm` waits for the daemon to release its pid file; give a zombie-free exit a moment.
        let deadline = Instant::now() + Duration::from_secs(2);
        let daemon = self.daemon_pid();
        while daemon != 0 && alive(daemon) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut pids = processes_with_env(&format!("PM_HOME={}", self.home().display()));
        if daemon != 0 && alive(daemon) && !pids.contains(&daemon) {
            pids.push(daemon);
        }
        for &pid in &pids {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        pids.len()
    }
}

impl Drop for Pm {
    fn drop(&mut self) {
        if !self.stopped.load(Ordering::SeqCst) {
            // Blocking on purpose: this runs while the bench unwinds from an error or Ctrl-C.
            if let Err(e) = stop_blocking(&self.bin, &self.home()) {
                eprintln!("pm-bench: cleaning up: {e:#}");
            }
        }
        let left = self.kill_leftovers();
        if left > 0 {
            eprintln!("pm-bench: cleaning up: killed {left} leftover process(es) of PM_HOME {}", self.home().display());
        }
    }
}

/// `pm stop pm` without a runtime, bounded by [`STOP_TIMEOUT`].
fn stop_blocking(bin: &Path, home: &Path) -> anyhow::Result<()> {
    let mut child = std::process::Command::new(bin)
        .args(["stop", "pm"])
        .env("PM_HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run pm stop pm")?;
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            return if status.success() { Ok(()) } else { Err(anyhow!("`pm stop pm` failed ({status})")) };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("`pm stop pm` did not answer within {STOP_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a process of this pid exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    if kill(Pid::from_raw(pid as i32), None).is_err() {
        return false;
    }
    // The state is the first field after the command name, which is in parentheses.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
}

/// Pids (other than this one) whose environment holds exactly `entry` (`KEY=value`).
fn processes_with_env(entry: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == entry.as_bytes()))
        })
        .collect()
}

/// Runs `cmd` (no stdin, output read) to its end, bounded by `limit`; fails unless it exits 0.
/// Returns its output and the wall time from spawn to exit. `what` names it in errors.
pub async fn timed(
    mut cmd: tokio::process::Command,
    what: &str,
    limit: Duration,
) -> anyhow::Result<(Output, Duration)> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let started = Instant::now();
    let output = within(limit, what, cmd.output()).await?.with_context(|| format!("cannot run {what}"))?;
    let took = started.elapsed();
    if !output.status.success() {
        // The first lines say why; a failure per sidecar may give thousands.
        const SHOWN: usize = 5;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let mut why = stderr.trim().lines().take(SHOWN).collect::<Vec<_>>().join("\n");
        let more = stderr.trim().lines().count().saturating_sub(SHOWN);
        if more > 0 {
            why.push_str(&format!("\n… and {more} more lines"));
        }
        bail!("`{what}` failed ({}): {why}", output.status);
    }
    Ok((output, took))
}

/// `fut`, or an error naming `what` once `limit` has passed.
pub async fn within<F: Future>(limit: Duration, what: &str, fut: F) -> anyhow::Result<F::Output> {
    tokio::time::timeout(limit, fut).await.map_err(|_| anyhow!("{what}: no answer within {limit:?}"))
}

/// How many files a process has open.
pub fn open_files(pid: u32) -> anyhow::Result<usize> {
    let dir = format!("/proc/{pid}/fd");
    Ok(std::fs::read_dir(&dir).with_context(|| format!("cannot read {dir}"))?.count())
}

/// The sum of the numbers after each of `keys` at the start of a line (of /proc/PID/status).
pub fn field_sum(text: &str, keys: &[&str]) -> u64 {
    text.lines()
        .filter_map(|l| keys.iter().find_map(|k| l.strip_prefix(k)))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .sum()
}

/// Processes the harness spawns itself for the references; killed and reaped on drop.
#[derive(Default)]
pub struct Children(Vec<std::process::Child>);

impl Children {
    pub fn push(&mut self, child: std::process::Child) {
        self.0.push(child);
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

/// `sleep 1000` as the references spawn it: own process group like a pm sidecar, no output.
pub fn spawn_sleep() -> anyhow::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    std::process::Command::new("sleep")
        .arg("1000")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot spawn sleep")
}
