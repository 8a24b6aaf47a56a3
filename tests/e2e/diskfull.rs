//! A full disk: PM_HOME on a small tmpfs, filled up with a filler file. The daemon stays up, a
//! sidecar's output keeps flowing (to followers; to its file once there is room again, after a
//! line saying how many lines were lost), and supervision goes on, with an error naming the
//! file and the reason wherever the state cannot be saved.

use crate::support::{Pm, Raw, alive, lines, privileged, recording_sidecar, wait_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `Pm` whose PM_HOME is a tmpfs of its own. On drop: the filler goes, the daemon is stopped
/// (or killed), then the tmpfs is unmounted.
struct SmallHome {
    pm: Option<Pm>,
    mount: PathBuf,
}

impl SmallHome {
    /// None (after a loud SKIPPED) where mounting is not permitted, unless PM_REQUIRE_PRIVILEGED=1.
    fn new(test: &str) -> Option<SmallHome> {
        let pm = Pm::new();
        let mount = pm.home.path().to_path_buf();
        let mounted = privileged(test, "mount a tmpfs", || {
            let out = Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs"])
                .arg(&mount)
                .output()
                .map_err(|e| format!("mount: {e}"))?;
            match out.status.success() {
                true => Ok(()),
                false => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
            }
        });
        mounted.then(|| SmallHome { pm: Some(pm), mount })
    }

    fn pm(&self) -> &Pm {
        self.pm.as_ref().unwrap()
    }

    fn filler(&self) -> PathBuf {
        self.mount.join("filler")
    }

    /// Grows the filler until the file system has no space left.
    fn fill(&self) {
        let mut filler = std::fs::OpenOptions::new().create(true).append(true).open(self.filler()).unwrap();
        let block = vec![0u8; 64 * 1024];
        // Again if the daemon freed some meanwhile (a failed state write truncates its last try).
        for _ in 0..10 {
            loop {
                match filler.write(&block) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
                    Err(e) => panic!("cannot fill {}: {e}", self.mount.display()),
                }
            }
            if nix::sys::statvfs::statvfs(&self.mount).unwrap().blocks_available() == 0 {
                return;
            }
        }
        panic!("{} does not stay full", self.mount.display());
    }

    /// Removes the filler: there is room again.
    fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }
}

impl Drop for SmallHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.filler());
        let pm = self.pm.take().unwrap();
        let daemon = pm.daemon_pid();
        drop(pm);
        if let Some(pid) = daemon.filter(|&pid| alive(pid.into())) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            for _ in 0..500 {
                if !alive(pid.into()) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        let _ = std::fs::remove_dir(&self.mount);
    }
}

/// The number a `[pm] N lines lost: no space left on device` line says.
fn lost(text: &str) -> Option<u64> {
    text.strip_prefix("[pm] ")?.strip_suffix(" lines lost: no space left on device")?.parse().ok()
}

/// The sidecar's progress: the number of its last line, as it wrote it to `progress`.
fn progress(pm: &Pm) -> u64 {
    std::fs::read_to_string(pm.path("progress")).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0)
}

/// Prints `line 1`, `line 2`, …: as fast as it can while `flood` exists in its directory, else
/// about 50 a second. Records how far it is in `progress` (outside PM_HOME).
const CHATTY: &str = r#"i=0
while :; do
  i=$((i+1)); echo "line $i"
  if [ -e flood ]; then
    [ $((i % 1000)) -eq 0 ] && echo $i > progress
  else
    echo $i > progress; sleep 0.02
  fi
done"#;

#[test]
fn a_sidecar_logging_onto_a_full_disk_keeps_running_and_its_log_says_how_many_lines_were_lost() {
    let Some(home) = SmallHome::new("diskfull::a_sidecar_logging_onto_a_full_disk") else { return };
    let pm = home.pm();
    pm.ok(&["map", "chatty", "--", "sh", "-c", CHATTY]);
    pm.ok(&["start", "chatty"]);
    let (daemon, sidecar) = (pm.daemon_pid().unwrap(), pm.instance("chatty")["pid"].clone());
    let file = pm.log_file("chatty", "out");
    wait_until("chatty's first lines are in its log", Duration::from_secs(10), || !lines(&file).is_empty());

    home.fill();
    pm.write("flood", "");
    // The pipe and the pump's channel hold a few thousand lines: 200,000 more (7 MB of log on a
    // 4 MiB file system) are only printed if the daemon keeps draining them.
    let from = progress(pm);
    wait_until("chatty prints 200,000 lines onto the full disk", Duration::from_secs(60), || {
        progress(pm) > from + 200_000
    });
    std::fs::remove_file(pm.path("flood")).unwrap();
    assert_eq!(pm.instance("chatty")["pid"], sidecar, "never restarted");
    assert_eq!(pm.instance("chatty")["state"], "ready");

    // A follower still gets the lines, from memory, while the disk is full.
    let mut follower = Follower::start(pm, "chatty");
    let line = follower.next().expect("a followed line while the disk is full");
    assert!(line.starts_with("line "), "{line}");
    drop(follower);

    home.free();
    let notice_then_lines = || {
        let got = lines(&file);
        got.iter()
            .rposition(|l| l.split_once(' ').is_some_and(|(_, text)| lost(text).is_some()))
            .is_some_and(|notice| got.len() > notice + 1)
    };
    wait_until("the log says how many lines it lost, then goes on", Duration::from_secs(10), notice_then_lines);
    let shown = pm.ok(&["log", "chatty", "-n", "1000"]);
    let said: Vec<u64> = shown.lines().filter_map(|l| lost(l.split_once(" | ")?.1)).collect();
    assert!(!said.is_empty() && said.iter().all(|&n| n > 0), "`pm log` shows the loss:\n{shown}");

    // The file holds whole lines only, and every gap in the numbers is the count said before it.
    let (mut last, mut said, mut total) = (0, 0, 0);
    for line in lines(&file) {
        let (stamp, text) = line.split_once(' ').unwrap_or_else(|| panic!("a whole line: {line:?}"));
        assert!(stamp.len() == 24 && stamp.ends_with('Z'), "a whole line: {line:?}");
        if let Some(n) = lost(text) {
            said += n;
            continue;
        }
        let number: u64 = text.strip_prefix("line ").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{line:?}"));
        assert_eq!(number - last - 1, said, "lines lost before {line:?}");
        (last, total, said) = (number, total + said, 0);
    }
    assert!(total > 150_000, "{total} lines said lost");
    assert_eq!(pm.daemon_pid(), Some(daemon));
    assert!(alive(daemon.into()), "the daemon is alive");
}

#[test]
fn the_supervisor_keeps_supervising_on_a_full_disk_and_says_what_it_could_not_save() {
    let Some(home) = SmallHome::new("diskfull::the_supervisor_keeps_supervising") else { return };
    let pm = home.pm();
    let record = pm.path("record");
    pm.ok(&["map", "w", "--ready", "log:^up$", "--", "sh", "-c", &recording_sidecar("w", &record)]);
    pm.ok(&["map", "c", "--", "sleep", "1000"]);
    pm.ok(&["map", "x", "--restart", "always", "--", "sleep", "1000"]);
    pm.ok(&["start", "w"]);
    pm.ok(&["start", "x"]);
    let daemon = pm.daemon_pid().unwrap();
    let w = pm.instance("w")["pid"].as_i64().unwrap();
    home.fill();

    let not_saved =
        format!("cannot write {}: No space left on device (os error 28)", pm.home.path().join("state.json").display());
    // A crash is restarted (that does not wait for the disk).
    let x = pm.instance("x")["pid"].as_i64().unwrap();
    kill(Pid::from_raw(x as i32), Signal::SIGKILL).unwrap();
    wait_until("x is restarted", Duration::from_secs(15), || {
        let x2 = pm.instance("x");
        x2["state"] == "ready" && x2["pid"].as_i64().is_some_and(|pid| pid != x)
    });
    // A stop stops, and says the state could not be saved.
    let err = pm.fails(&["stop", "w"]);
    assert!(err.contains(&not_saved), "{err}");
    assert!(lines(&record).contains(&"stop w".to_string()), "w was stopped gracefully");
    assert!(!alive(w), "w is gone");
    assert_eq!(pm.instance("w")["state"], "stopped");
    // A start starts, and says the same.
    let err = pm.fails(&["start", "c"]);
    assert!(err.contains(&not_saved), "{err}");
    assert_eq!(pm.instance("c")["state"], "ready");
    // As JSON-RPC: -32014, the file and the reason.
    let answer = Raw::unix(pm).call("pm.stop", serde_json::json!([{"name": "c"}]));
    assert_eq!(answer["error"]["code"], -32014, "{answer}");
    assert!(answer["error"]["message"].as_str().is_some_and(|m| m.contains(&not_saved)), "{answer}");
    // Enough failures, each logged, to overflow what daemon.log has left of its last page.
    for i in 0..40 {
        let err = pm.fails(&["map", &format!("d{i}"), "--", "sleep", "1000"]);
        assert!(err.contains(&not_saved), "{err}");
    }
    assert!(alive(daemon.into()) && pm.daemon_pid() == Some(daemon), "the daemon is alive");

    home.free();
    pm.ok(&["map", "e", "--", "sleep", "1000"]);
    pm.ok(&["start", "w"]);
    wait_until("w started again", Duration::from_secs(10), || lines(&record).len() == 3);
    // daemon.log dropped and counted its lines, and says so on a line of its own.
    let log = pm.home.path().join("daemon.log");
    let says_lost = |line: &String| {
        line.split_once(" daemon log lines lost: No space left on device (os error 28)")
            .is_some_and(|(n, rest)| rest.is_empty() && n.parse::<u64>().is_ok_and(|n| n > 0))
    };
    wait_until("daemon.log says how many lines it lost", Duration::from_secs(10), || lines(&log).iter().any(says_lost));
    assert_eq!(pm.daemon_pid(), Some(daemon));
}

/// The daemon with stderr on /dev/full (`pm daemon 2>/dev/full`): every log line fails.
#[test]
fn a_daemon_whose_stderr_is_dev_full_keeps_running() {
    let pm = Pm::new();
    let full = || std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let mut cmd = pm.cmd(&["daemon"]);
    cmd.stdin(Stdio::null()).stdout(full()).stderr(full());
    let mut daemon = Killed(cmd.spawn().unwrap());
    wait_until("the daemon answers", Duration::from_secs(10), || {
        let exited = daemon.0.try_wait().unwrap();
        assert!(exited.is_none(), "the daemon exited at start: {exited:?}");
        std::os::unix::net::UnixStream::connect(pm.home.path().join("pm.sock")).is_ok()
    });
    // Logged: state changes, a crash loop, a stop.
    pm.ok(&["map", "crashy", "--restart", "on-failure", "--max-restarts", "3", "--", "sh", "-c", "exit 1"]);
    pm.ok(&["map", "w", "--", "sleep", "1000"]);
    let _ = pm.run(&["start", "crashy"]);
    pm.ok(&["start", "w"]);
    wait_until("crashy failed", Duration::from_secs(15), || pm.instance("crashy")["state"] == "failed");
    pm.ok(&["stop", "w"]);
    assert!(daemon.0.try_wait().unwrap().is_none(), "the daemon is still running");
    pm.ok(&["stop", "pm"]);
    let mut status = None;
    wait_until("the daemon exits", Duration::from_secs(15), || {
        status = daemon.0.try_wait().unwrap();
        status.is_some()
    });
    assert!(status.unwrap().success(), "{status:?}");
}

/// A child killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `pm log NAME -n 0 -f --json`: the lines that come next.
struct Follower {
    _child: Killed,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Follower {
    fn start(pm: &Pm, name: &str) -> Follower {
        let mut child = pm.cmd(&["log", name, "-n", "0", "-f", "--json"]).stdout(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Follower { _child: Killed(child), lines }
    }

    /// The text of the next line, within 10 s.
    fn next(&mut self) -> Option<String> {
        let line = self.lines.recv_timeout(Duration::from_secs(10)).ok()?;
        let value: serde_json::Value = serde_json::from_str(&line).ok()?;
        value["line"].as_str().map(str::to_string)
    }
}
