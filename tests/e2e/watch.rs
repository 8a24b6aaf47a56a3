//! `watch`: a change to a matching file restarts the running instances once per burst, naming
//! the file; ignored and unmatched files, stopped instances and deleted definitions stay quiet.

use crate::support::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

/// A project whose sidecar `app` watches `src/**/*.py` but `src/tmp/**`, into which it writes at
/// each start (so a watch that took its own writes for a change would loop).
fn watched(pm: &Pm) {
    std::fs::create_dir_all(pm.path("src")).unwrap();
    pm.write("src/app.py", "print('v1')\n");
    let project = "[sidecars.app]\n\
                   command = \"sh -c 'mkdir -p src/tmp && echo $$ > src/tmp/started.py; exec sleep 1000'\"\n\
                   watch = [\"src/**/*.py\"]\n\
                   watch_ignore = [\"src/tmp/**\"]\n\
                   watch_debounce = \"200ms\"\n";
    pm.write("pm.toml", project);
    pm.ok(&["start", "-f", &pm.path("pm.toml").display().to_string()]);
}

/// The pid and restart count of `app`.
fn run_of(pm: &Pm) -> (i64, i64) {
    let app = pm.instance("app");
    (app["pid"].as_i64().unwrap_or(0), app["restarts"].as_i64().unwrap())
}

/// Waits for `app` to run again after `before`, and returns its new run.
fn next_run(pm: &Pm, before: (i64, i64)) -> (i64, i64) {
    let mut now = before;
    wait_until("app restarted", WAIT, || {
        now = run_of(pm);
        now.0 != before.0 && now.0 != 0 && pm.instance("app")["state"] == "ready"
    });
    now
}

/// The restart lines pm wrote into `app`'s log.
fn restart_lines(pm: &Pm) -> Vec<String> {
    let log = std::fs::read_to_string(pm.log_file("app", "out")).unwrap_or_default();
    log.lines().filter_map(|l| l.split_once(" [pm] restarting: ").map(|(_, why)| why.to_string())).collect()
}

fn append(pm: &Pm, name: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(pm.path(name)).unwrap();
    writeln!(file, "# changed").unwrap();
}

#[test]
fn a_matching_change_restarts_once_naming_the_file_and_others_do_not() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    watched(&pm);
    let first = run_of(&pm);

    append(&pm, "src/app.py");
    let second = next_run(&pm, first);
    assert_eq!(second.1, first.1 + 1, "one restart");
    assert_eq!(restart_lines(&pm), ["src/app.py changed"]);
    let daemon = std::fs::read_to_string(pm.path("daemon.out")).unwrap();
    assert!(daemon.contains("app: stopping (restarting: src/app.py changed)"), "{daemon}");

    // Ignored and unmatched files, then a matching one: only the last restarts, and names itself.
    append(&pm, "src/tmp/x.py");
    append(&pm, "notes.txt");
    append(&pm, "src/readme.md");
    std::fs::create_dir_all(pm.path("src/node_modules")).unwrap();
    append(&pm, "src/node_modules/dep.py");
    append(&pm, "src/lib.py");
    let third = next_run(&pm, second);
    assert_eq!(third.1, second.1 + 1, "one restart");
    assert_eq!(restart_lines(&pm), ["src/app.py changed", "src/lib.py changed"]);
}

#[test]
fn a_burst_of_writes_restarts_once() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    watched(&pm);
    let first = run_of(&pm);

    // Spread over 200ms, each write well within the 200ms debounce of the one before.
    for i in 0..20 {
        append(&pm, &format!("src/m{}.py", i % 4));
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = next_run(&pm, first);
    // A second restart from the burst would come before the one this touch causes.
    append(&pm, "src/app.py");
    let third = next_run(&pm, second);
    assert_eq!(third.1, first.1 + 2, "one restart for the burst, one for the touch");
    assert_eq!(restart_lines(&pm), ["src/m0.py changed", "src/app.py changed"]);
}

#[test]
fn new_files_in_new_directories_restart() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    watched(&pm);
    let first = run_of(&pm);

    // Made at once: the file is there before pm can watch its directories.
    std::fs::create_dir_all(pm.path("src/a/b")).unwrap();
    pm.write("src/a/b/c.py", "x = 1\n");
    let second = next_run(&pm, first);
    assert_eq!(restart_lines(&pm), ["src/a/b/c.py changed"]);

    // And the directories are watched from then on.
    append(&pm, "src/a/b/c.py");
    let third = next_run(&pm, second);
    assert_eq!(third.1, first.1 + 2);

    // A tree moved in: no event is ever made for the files in it, they are found by looking.
    std::fs::create_dir_all(pm.path("elsewhere/d/e")).unwrap();
    pm.write("elsewhere/d/e/f.py", "x = 1\n");
    std::fs::rename(pm.path("elsewhere/d"), pm.path("src/d")).unwrap();
    next_run(&pm, third);
    assert_eq!(restart_lines(&pm), ["src/a/b/c.py changed", "src/a/b/c.py changed", "src/d/e/f.py changed"]);
}

#[test]
fn a_stopped_sidecar_is_not_started_by_a_change() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    watched(&pm);
    pm.ok(&["stop", "app"]);

    append(&pm, "src/app.py");
    wait_until("the watch saw the change", WAIT, || {
        let daemon = std::fs::read_to_string(pm.path("daemon.out")).unwrap_or_default();
        daemon.contains("app: src/app.py changed; nothing running to restart")
    });
    let app = pm.instance("app");
    assert_eq!((app["state"].as_str(), app["pid"].as_i64()), (Some("stopped"), None), "{app}");
    assert!(restart_lines(&pm).is_empty());
}

#[test]
fn bad_watch_keys_are_errors_naming_file_line_and_key() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    let file = pm.path("pm.toml").display().to_string();
    pm.write("pm.toml", "[sidecars.app]\ncommand = \"sleep 1000\"\nwatch = [\"src/*.py\", \"src/[\"]\n");
    let err = pm.fails(&["start", "-f", &file]);
    assert!(err.contains("pm.toml:3: sidecars.app.watch[1]: invalid glob `src/[`: unclosed character class"), "{err}");

    pm.write("pm.toml", "[sidecars.app]\ncommand = \"sleep 1000\"\nwatch = [\"src\"]\nwatch_ignore = [\"../x\"]\n");
    let err = pm.fails(&["start", "-f", &file]);
    assert!(err.contains("pm.toml:4: sidecars.app.watch_ignore[0]: `../x`: globs stay under cwd"), "{err}");

    pm.write("pm.toml", "[sidecars.app]\ncommand = \"sleep 1000\"\nwatch = [\"src\"]\nwatch_debounce = \"2h\"\n");
    let err = pm.fails(&["start", "-f", &file]);
    assert!(err.contains("pm.toml:4: sidecars.app.watch_debounce: must be from 10ms to 1h (got 2h)"), "{err}");

    let err = pm.fails(&["map", "w", "--watch", "/etc/*", "--", "sleep", "1000"]);
    assert!(err.contains("sidecar `w`: watch[0]: `/etc/*`: globs are relative to cwd"), "{err}");
}

/// The daemon's inotify descriptors.
fn inotify_fds(pm: &Pm) -> usize {
    let fds = std::fs::read_dir(format!("/proc/{}/fd", pm.daemon_pid().unwrap())).unwrap();
    fds.flatten()
        .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy().contains("inotify")))
        .count()
}

#[test]
fn a_watch_lives_as_long_as_its_definition_watches() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    assert_eq!(inotify_fds(&pm), 0);
    pm.ok(&["map", "w", "--watch", "*.py", "--", "sleep", "1000"]);
    assert_eq!(inotify_fds(&pm), 1);
    // Redefined with the same watch keys: the same watch.
    pm.ok(&["map", "w", "--force", "--watch", "*.py", "--", "sleep", "2000"]);
    assert_eq!(inotify_fds(&pm), 1);
    pm.ok(&["map", "w", "--force", "--", "sleep", "1000"]);
    wait_until("the watch is dropped with the key", WAIT, || inotify_fds(&pm) == 0);
    pm.ok(&["map", "w", "--force", "--watch", "*.py", "--", "sleep", "1000"]);
    assert_eq!(inotify_fds(&pm), 1);
    pm.ok(&["delete", "w"]);
    wait_until("the watch is dropped with the definition", WAIT, || inotify_fds(&pm) == 0);
}
