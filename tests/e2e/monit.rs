//! `pm monit` in a real terminal: tmux runs it, `send-keys` types, `capture-pane` reads the
//! screen. Every wait is on what the screen (or `pm status`) shows, with a deadline.

use crate::support::*;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long the screen may take to show what a step expects.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(20);

/// A tmux server of its own (`-L`), killed when dropped so no test leaves one behind.
struct Tmux {
    socket: String,
    /// The server's socket file, which `kill-server` leaves behind.
    path: Option<String>,
}

impl Tmux {
    /// Whether tmux is installed; when it is not, a loud note, and a failure where CI or
    /// PM_REQUIRE_PRIVILEGED=1 requires it.
    fn present(test: &str) -> bool {
        if Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success()) {
            return true;
        }
        let required = std::env::var("PM_REQUIRE_PRIVILEGED").as_deref() == Ok("1")
            || std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        assert!(!required, "{test} needs tmux (.ci/run installs it: apt-get install -y tmux)");
        eprintln!("*** SKIPPED {test}: tmux is not installed (apt-get install -y tmux) ***");
        false
    }

    /// Runs `command` in a 160x40 pane of a new session.
    fn start(test: &str, command: &str) -> Tmux {
        let mut tmux = Tmux { socket: format!("pm-monit-{}-{test}", std::process::id()), path: None };
        // No user config; the pane stays once its process ends, to be seen dead.
        let new = ["-f", "/dev/null", "new-session", "-d", "-x", "160", "-y", "40", "-s", "monit", command];
        let out = tmux.run(&[&new[..], &[";", "set-option", "-t", "monit", "remain-on-exit", "on"]].concat());
        assert!(out.status.success(), "tmux new-session: {}", texts(&out).1);
        tmux.path = Some(texts(&tmux.run(&["display-message", "-p", "#{socket_path}"])).0.trim().to_string());
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("tmux");
        cmd.arg("-L").arg(&self.socket).args(args);
        run_with_deadline(cmd, Duration::from_secs(10))
    }

    fn screen(&self) -> String {
        texts(&self.run(&["capture-pane", "-p", "-t", "monit"])).0
    }

    fn keys(&self, keys: &str) {
        let out = self.run(&["send-keys", "-t", "monit", keys]);
        assert!(out.status.success(), "tmux send-keys {keys}: {}", texts(&out).1);
    }

    /// Waits until the screen satisfies `condition`; fails showing the last screen.
    fn wait_for(&self, what: &str, condition: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            let screen = self.screen();
            if condition(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pane_dead(&self) -> bool {
        texts(&self.run(&["list-panes", "-t", "monit", "-F", "#{pane_dead}"])).0.trim() == "1"
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        if let Some(path) = self.path.as_deref().filter(|p| !p.is_empty()) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The table row of `instance`: its line, and where it is on the screen.
fn row<'a>(screen: &'a str, instance: &str) -> Option<(usize, &'a str)> {
    let cells = |line: &'a str| line.strip_prefix("› ").or_else(|| line.strip_prefix("  "));
    screen.lines().enumerate().find(|(_, line)| cells(line).is_some_and(|l| l.starts_with(&format!("{instance} "))))
}

/// Whether the row of `instance` has a cell that reads `cell`.
fn shows(screen: &str, instance: &str, cell: &str) -> bool {
    row(screen, instance).is_some_and(|(_, line)| line.split_whitespace().any(|c| c == cell))
}

fn pid(pm: &Pm, instance: &str) -> serde_json::Value {
    pm.instance(instance)["pid"].clone()
}

#[test]
fn monit_shows_sorts_restarts_stops_and_shows_logs_in_a_terminal() {
    if !Tmux::present("monit") {
        return;
    }
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    // `calm` comes first by name, `hot` (a busy loop) first by CPU.
    pm.ok(&["map", "calm", "--", "sh", "-c", "echo calm-says-hi; exec sleep 1000"]);
    pm.ok(&["map", "hot", "--", "sh", "-c", "echo hot-says-hi; while :; do :; done"]);
    pm.ok(&["start", "calm", "hot"]);
    let calm_pid = pid(&pm, "calm");

    // What the pane's shell finds once pm monit ends: its exit code, and whether the terminal
    // settings are back as they were before it.
    let ended = pm.path("monit-ended");
    let command = format!(
        "before=$(stty -g); env PM_HOME='{home}' '{PM}' monit --interval 200ms; code=$?; \
         if [ \"$(stty -g)\" = \"$before\" ]; then t=restored; else t=changed; fi; echo \"$code $t\" > '{ended}'",
        home = pm.home.path().display(),
        ended = ended.display()
    );
    let tmux = Tmux::start("monit", &command);

    let screen = tmux
        .wait_for("both rows with their pids", |s| shows(s, "calm", &calm_pid.to_string()) && row(s, "hot").is_some());
    assert!(row(&screen, "calm").unwrap().0 < row(&screen, "hot").unwrap().0, "by name:\n{screen}");
    assert!(row(&screen, "calm").unwrap().1.starts_with('›'), "the first row is selected:\n{screen}");
    assert!(screen.contains("NAME▲"), "{screen}");

    tmux.keys("s");
    let screen = tmux.wait_for("hot first, sorted by CPU", |s| {
        s.contains("CPU%▼") && row(s, "hot").zip(row(s, "calm")).is_some_and(|(hot, calm)| hot.0 < calm.0)
    });
    assert!(row(&screen, "calm").unwrap().1.starts_with('›'), "the selection stays on calm:\n{screen}");

    tmux.keys("r");
    wait_until("calm restarted with a new pid", SCREEN_TIMEOUT, || {
        let s = pm.instance("calm");
        s["state"] == "ready" && s["pid"] != calm_pid
    });
    let new_pid = pid(&pm, "calm");
    tmux.wait_for("the new pid and the message", |s| {
        shows(s, "calm", &new_pid.to_string()) && s.contains("calm restarted")
    });

    tmux.keys("l");
    tmux.wait_for("calm's log lines", |s| s.contains(" logs: calm ") && s.contains("calm-says-hi"));

    tmux.keys("x");
    wait_until("calm stopped", SCREEN_TIMEOUT, || pm.instance("calm")["state"] == "stopped");
    tmux.wait_for("calm shown stopped", |s| shows(s, "calm", "stopped"));
    assert_eq!(pm.instance("hot")["state"], "ready", "only the selected instance stopped");

    tmux.keys("k");
    tmux.wait_for("the log pane following the selection to hot", |s| {
        s.contains(" logs: hot ") && s.contains("hot-says-hi") && row(s, "hot").is_some_and(|(_, l)| l.starts_with('›'))
    });

    pm.ok(&["stop", "pm"]);
    tmux.wait_for("the daemon shown gone", |s| s.contains("the daemon is not running"));
    assert!(!tmux.pane_dead(), "pm monit outlives the daemon");

    tmux.keys("q");
    wait_until("pm monit to end", SCREEN_TIMEOUT, || tmux.pane_dead());
    assert_eq!(std::fs::read_to_string(&ended).unwrap().trim(), "0 restored", "exit code, terminal settings");
}

#[test]
fn monit_needs_a_terminal_and_a_sane_interval() {
    let pm = Pm::new();
    let err = pm.fails(&["monit"]);
    assert!(err.contains("pm monit needs a terminal; use pm status --json"), "{err}");
    let err = pm.fails(&["monit", "--interval", "10ms"]);
    assert!(err.contains("10ms is out of range: from 100ms to 1h"), "{err}");
    assert!(pm.daemon_pid().is_none(), "a look started no daemon");
}

#[test]
fn the_daemon_and_pm_log_colour_on_a_terminal_unless_no_color_is_set() {
    if !Tmux::present("the_daemon_and_pm_log_colour_on_a_terminal_unless_no_color_is_set") {
        return;
    }
    for (test, no_color) in [("colour", ""), ("nocolour", "1")] {
        let pm = Pm::new();
        let command = format!("env PM_HOME={} NO_COLOR={no_color} {PM} daemon", pm.home.path().display());
        let tmux = Tmux::start(test, &command);
        tmux.wait_for("the daemon listening", |screen| screen.contains("listening on"));
        // With its escape sequences this time.
        let screen = texts(&tmux.run(&["capture-pane", "-e", "-p", "-t", "monit"])).0;
        // And `pm log`'s instance names.
        pm.ok(&["map", "hello", "--ready", "exited", "--restart", "never", "--", "echo", "hello there"]);
        pm.ok(&["start", "hello"]);
        let command = format!("env PM_HOME={} NO_COLOR={no_color} {PM} log hello; sleep 30", pm.home.path().display());
        let log = Tmux::start(&format!("{test}-log"), &command);
        log.wait_for("the line", |screen| screen.contains("hello there"));
        let log_screen = texts(&log.run(&["capture-pane", "-e", "-p", "-t", "monit"])).0;
        for screen in [screen, log_screen] {
            match no_color {
                "" => assert!(screen.contains('\x1b'), "coloured on a terminal: {screen:?}"),
                _ => assert!(!screen.contains('\x1b'), "NO_COLOR={no_color}: {screen:?}"),
            }
        }
        pm.ok(&["stop", "pm"]);
    }
}
