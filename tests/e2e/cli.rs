//! The command line as a user meets it: definitions, instances, listings and clear errors.

use crate::support::{PM, Pm, run_with_deadline, texts};
use std::process::Command;
use std::time::Duration;

#[test]
fn map_ls_start_new_and_named_instances_and_delete() {
    let pm = Pm::new();
    let out = pm.ok(&["map", "web", "--instances", "2", "--", "sleep", "1000"]);
    assert!(out.contains("defined web (web-0, web-1)"), "{out}");
    let ls = pm.ok(&["ls"]);
    assert!(ls.contains("web-0,web-1") && ls.contains("sleep 1000"), "{ls}");
    pm.ok(&["start", "web"]);
    let extra: Vec<serde_json::Value> = serde_json::from_str(&pm.ok(&["start", "web", "--new", "--json"])).unwrap();
    let generated = extra[0]["name"].as_str().unwrap().to_string();
    assert!(generated.starts_with("web-") && generated.split('-').count() >= 3, "{generated}");
    pm.ok(&["start", "web", "--name", "w2", "--", "5"]);
    let states: Vec<(String, String)> =
        pm.status().iter().map(|s| (s["name"].as_str().unwrap().into(), s["state"].as_str().unwrap().into())).collect();
    assert_eq!(states.len(), 4, "{states:?}");
    assert!(states.iter().all(|(_, st)| st == "ready"), "{states:?}");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pm.instance("w2")["pid"])).unwrap();
    assert_eq!(String::from_utf8_lossy(&cmdline), "sleep\u{0}1000\u{0}5\u{0}", "extra args appended");

    let restarted = pm.instance("web-0")["pid"].clone();
    pm.ok(&["restart", "web-0"]);
    assert_ne!(pm.instance("web-0")["pid"], restarted);

    let deleted = pm.ok(&["delete", "w2"]);
    assert!(deleted.contains("deleted w2"));
    pm.ok(&["delete", "web"]);
    assert!(pm.status().is_empty());
}

#[test]
fn errors_are_one_clear_line_and_a_failure_code() {
    let pm = Pm::new();
    let err = pm.fails(&["start", "ghost"]);
    assert_eq!(err.trim(), "pm: no sidecar named `ghost` (`pm ls` lists them)");
    pm.ok(&["map", "nope", "--", "/no/such/binary", "arg"]);
    let err = pm.fails(&["start", "nope"]);
    assert!(err.contains("nope: executable `/no/such/binary` not found"), "{err}");
    let err = pm.fails(&["map", "Bad.Name", "--", "true"]);
    assert!(err.contains("invalid name `Bad.Name`"), "{err}");
    let err = pm.fails(&["map", "web", "--ready", "http:x", "--", "true"]);
    assert!(err.contains("--ready `http:x`"), "{err}");
    let err = pm.fails(&["map", "nope", "--", "true"]);
    assert!(err.contains("already defined"), "{err}");
    let err = pm.fails(&["stop"]);
    assert!(err.contains("--all"), "{err}");
}

#[test]
fn exit_codes_tell_failures_apart() {
    let pm = Pm::new();
    let code = |args: &[&str]| pm.run(args).status.code();
    // Looking never starts the daemon: it is not running yet.
    assert_eq!(code(&["status"]), Some(3), "daemon unreachable");
    assert_eq!(code(&["frobnicate"]), Some(2), "usage (clap)");
    assert_eq!(code(&["call", "nodot"]), Some(2), "usage (pm's own check)");
    assert_eq!(code(&["start", "ghost"]), Some(4), "not found");
    pm.ok(&["map", "once", "--", "true"]);
    assert_eq!(code(&["map", "once", "--", "true"]), Some(5), "refused: already defined");
    pm.ok(&["map", "nope", "--", "/no/such/binary"]);
    assert_eq!(code(&["start", "nope"]), Some(6), "an error answer");
    assert_eq!(code(&["status"]), Some(0));
}

#[test]
fn completions_for_each_shell_and_a_man_page() {
    let pm = Pm::new();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = pm.ok(&["completions", shell]);
        for word in ["discover", "status", "completions", "json"] {
            assert!(script.contains(word), "{shell} completions lack `{word}`");
        }
    }
    // bash itself reads the script and completes a subcommand with it.
    let script = pm.path("pm.bash");
    std::fs::write(&script, pm.ok(&["completions", "bash"])).unwrap();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(pm disc); COMP_CWORD=1; COMP_LINE='pm disc'; COMP_POINT=7; _pm pm disc pm; echo \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "discover", "{}", String::from_utf8_lossy(&out.stderr));
    let err = pm.fails(&["completions", "tcsh"]);
    assert!(err.contains("tcsh") && err.contains("bash"), "names the shells it knows: {err}");
    let page = pm.ok(&["man"]);
    assert!(page.starts_with(".ie") && page.contains(".TH pm 1"), "roff: {page}");
    assert!(page.contains("completions") && page.contains("discover"), "lists the subcommands");
    // The pages pm.1 refers to, one per subcommand.
    let dir = pm.path("man1");
    pm.ok(&["man", "--dir", dir.to_str().unwrap()]);
    for page in ["pm.1", "pm-start.1", "pm-discover.1", "pm-completions.1"] {
        assert!(dir.join(page).exists(), "{page} written");
    }
    // groff renders them, where it is installed.
    if std::path::Path::new("/usr/bin/groff").exists() {
        let out = std::process::Command::new("groff")
            .args(["-man", "-Tascii", "-P-cbou"])
            .arg(dir.join("pm-start.1"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("NAME") && text.contains("pm-start"), "{text}");
    }
}

#[test]
fn startup_writes_a_systemd_unit_and_unstartup_removes_it() {
    let pm = Pm::new();
    let user_home = pm.path("user");
    let as_user = |args: &[&str]| {
        let mut cmd = pm.cmd(args);
        cmd.env("HOME", &user_home).env_remove("XDG_CONFIG_HOME");
        let out = run_with_deadline(cmd, Duration::from_secs(30));
        assert!(out.status.success(), "pm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Not enabled here: on a machine that runs systemd, enabling would reach the real user's
    // manager, whatever HOME says.
    let said = as_user(&["startup", "--user", "--no-enable"]);
    assert!(said.contains("not enabled; to enable it: systemctl --user enable --now pm.service"), "{said}");
    let unit = user_home.join(".config/systemd/user/pm.service");
    let text = std::fs::read_to_string(&unit).expect("the unit is written");
    assert!(text.contains(&format!("ExecStart=\"{}\" daemon\n", PM)), "{text}");
    assert!(text.contains(&format!("Environment=\"PM_HOME={}\"\n", pm.home.path().display())), "{text}");
    assert!(text.contains("WantedBy=default.target") && text.contains("Restart=on-failure"), "{text}");
    // Enabling is best effort: without systemd, the unit is written and that is said.
    let systemd = std::path::Path::new("/run/systemd/system").exists();
    if !systemd {
        let said = as_user(&["startup", "--user"]);
        assert!(said.starts_with("unchanged "), "a second startup changes nothing: {said}");
        assert!(said.contains("not enabled (systemd is not running on this machine)"), "{said}");
    }
    assert!(as_user(&["startup", "--user", "--no-enable"]).starts_with("unchanged "), "nothing changed");
    // With systemd running, `--user` would disable the real user's unit: removed by its directory.
    let unit_dir = unit.parent().unwrap().to_str().unwrap();
    let unstartup: &[&str] = if systemd { &["unstartup", "--unit-dir", unit_dir] } else { &["unstartup", "--user"] };
    assert!(as_user(unstartup).contains("removed"));
    assert!(!unit.exists());
    assert!(as_user(unstartup).starts_with("no "), "nothing left to remove");
    // A system unit into a packaging directory, never enabled.
    let dir = pm.path("units");
    let said = pm.ok(&["startup", "--unit-dir", dir.to_str().unwrap()]);
    assert!(said.contains("not enabled"), "{said}");
    assert!(std::fs::read_to_string(dir.join("pm.service")).unwrap().contains("WantedBy=multi-user.target"));
}

#[test]
fn an_unusable_pm_home_is_a_clear_error() {
    let mut cmd = std::process::Command::new(PM);
    cmd.args(["start", "pm"]).env("PM_HOME", "/proc/no-such-dir/pm");
    let out = run_with_deadline(cmd, Duration::from_secs(30));
    let (_, err) = texts(&out);
    assert!(!out.status.success());
    assert!(err.starts_with("pm: cannot create PM_HOME /proc/no-such-dir/pm"), "{err}");
}

#[test]
fn an_invalid_project_file_names_file_key_and_line() {
    let pm = Pm::new();
    pm.write("pm.toml", "[sidecars.web]\ncommand = \"sleep 1\"\nrestart = \"sometimes\"\n");
    let err = pm.fails(&["start"]);
    assert!(err.contains("pm.toml:3") && err.contains("sidecars.web.restart") && err.contains("sometimes"), "{err}");
    pm.write("pm.toml", "[sidecars.web]\ncomand = \"sleep 1\"\n");
    let err = pm.fails(&["start"]);
    assert!(err.contains("pm.toml:2") && err.contains("comand"), "{err}");
}

#[test]
fn schema_describes_the_project_file() {
    let pm = Pm::new();
    let schema: serde_json::Value = serde_json::from_str(&pm.ok(&["schema"])).unwrap();
    let text = schema.to_string();
    assert!(text.contains("sidecars") && text.contains("depends_on") && text.contains("ready_timeout"), "{text}");
}

#[test]
fn env_env_files_and_pm_variables_reach_the_sidecar() {
    let pm = Pm::new();
    pm.write("app.env", "# settings\nFROM_FILE=file\nBOTH=file\n");
    let script = r#"echo "$FROM_FILE $BOTH $PM_NAME $PM_DAEMON $(pwd)""#;
    pm.ok(&[
        "map",
        "envy",
        "--env-file",
        "app.env",
        "--env",
        "BOTH=flag",
        "--ready",
        "exited",
        "--restart",
        "never",
        "--",
        "sh",
        "-c",
        script,
    ]);
    pm.ok(&["start", "envy"]);
    let line = crate::support::lines(&pm.log_file("envy", "out")).remove(0);
    let socket = pm.home.path().join("pm.sock");
    let dir = std::fs::canonicalize(pm.dir.path()).unwrap();
    let want = format!("file flag envy unix://{} {}", socket.display(), dir.display());
    assert!(line.ends_with(&want), "{line} vs {want}");
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    for i in 0..50 {
        pm.ok(&["map", &format!("s{i}"), "--", "sleep", "1000"]);
    }
    // `head -c 1` closes the pipe after one byte: the rest of the table cannot be written.
    pm.ok(&["start", "s0"]);
    let script = format!(
        "\"{PM}\" ls | head -c 1 >/dev/null; \"{PM}\" status | head -c 1 >/dev/null; \
         \"{PM}\" schema | head -c 1 >/dev/null; \"{PM}\" ls --json | head -c 1 >/dev/null"
    );
    let out = Command::new("sh").arg("-c").arg(&script).env("PM_HOME", pm.home.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
}
