use super::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/discover/pm2");
    std::fs::canonicalize(dir).unwrap()
}

fn read_file(path: &Path) -> Result<Translated, ConfigError> {
    let text = std::fs::read_to_string(path).unwrap();
    read(&SourceFile { path, dir: path.parent().unwrap(), text: &text })
}

/// Translates `text` as an `ecosystem.config.json` in a directory of its own.
fn read_json(text: &str) -> (tempfile::TempDir, Result<Translated, ConfigError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ecosystem.config.json");
    std::fs::write(&path, text).unwrap();
    let read = read_file(&path);
    (dir, read)
}

fn have_node() -> bool {
    let found = std::process::Command::new("node").arg("--version").output().is_ok();
    if !found {
        eprintln!("SKIPPED: node is not on PATH, so ecosystem.config.js cannot be read");
    }
    found
}

/// A definition with PM2's defaults, running `argv` in `cwd`.
fn pm2(argv: &[&str], cwd: &Path) -> Definition {
    let mut def = Definition::new(argv.iter().map(|s| s.to_string()).collect());
    def.cwd = Some(cwd.to_path_buf());
    def.restart = RestartPolicy::Always;
    def.max_restarts = 16;
    def.min_uptime = Duration::from_secs(1);
    def.stop_signal = "SIGINT".into();
    def.stop_timeout = Duration::from_millis(1600);
    def.backoff_initial = Duration::ZERO;
    def.backoff_max = Duration::ZERO;
    def.restart_window = Duration::from_secs(16);
    def.env.insert("NODE_APP_INSTANCE".into(), "${PM_INSTANCE}".into());
    def
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn note(key: &str, line: usize, why: Option<&str>) -> Untranslated {
    Untranslated { key: key.into(), line: Some(line), why: why.map(String::from) }
}

#[test]
fn the_javascript_fixture_translates_app_by_app() {
    if !have_node() {
        return;
    }
    let dir = fixtures();
    let t = read_file(&dir.join("ecosystem.config.js")).unwrap();
    let port = std::env::var("SHOP_API_PORT").unwrap_or_else(|_| "18431".into());

    let mut api = pm2(&["python3", &dir.join("api.py").display().to_string(), "--port", &port], &dir);
    api.env.extend(env(&[("PYTHONUNBUFFERED", "1"), ("SHOP_MODE", "demo"), ("PAGE_SIZE", "20")]));
    api.max_memory = Some(300 << 20);
    api.stop_timeout = Duration::from_secs(3);
    api.backoff_initial = Duration::from_millis(200);
    api.backoff_max = Duration::from_secs(15);

    let jobs = dir.join("jobs");
    let mut worker = pm2(&["sh", &jobs.join("worker.sh").display().to_string()], &jobs);
    worker.instances = 2;
    worker.restart = RestartPolicy::OnFailure;
    worker.success_exit_codes = vec![0];
    worker.max_restarts = 5;
    worker.min_uptime = Duration::from_secs(2);
    worker.backoff_initial = Duration::from_millis(500);
    worker.backoff_max = Duration::from_millis(500);
    worker.restart_window = Duration::from_secs(10);
    worker.watch = vec!["queue".into()];
    worker.watch_ignore = vec!["queue/tmp".into(), "queue/tmp/**".into()];
    worker.watch_debounce = Duration::from_millis(250);

    let mut warmer = pm2(&["sleep", "1000"], &dir);
    warmer.groups = vec!["shop".into()];

    let names: Vec<&str> = t.sidecars.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["api", "worker", "cache-warmer", "cache-warmer-cron-restart"]);
    let cron = &t.sidecars[3].1;
    assert_eq!(cron.runtime, pm_protocol::RuntimeKind::Task);
    assert_eq!(cron.command, ["schedule", "--cron", "0 0 * * * *", "--restart", "cache-warmer"]);
    assert_eq!(t.sidecars[0].1, api);
    assert_eq!(t.sidecars[1].1, worker);
    assert_eq!(t.sidecars[2].1, warmer);
    assert_eq!(
        t.untranslated,
        [
            note("apps[0].env_production", 18, Some("used by `pm2 start --env NAME` only; pm takes `env`")),
            note("apps[2].name", 41, Some("named `cache-warmer` in pm")),
            note("apps[2].log_date_format", 47, Some("pm timestamps every log line itself")),
            note("deploy", 51, Some("pm does not deploy")),
        ]
    );
}

#[test]
fn the_json_fixture_translates_app_by_app() {
    let dir = fixtures().join("json");
    let t = read_file(&dir.join("ecosystem.config.json")).unwrap();

    let python = by_extension(Some(".py")).unwrap();
    let serve = dir.join("serve.py").display().to_string();
    let mut blog = pm2(&[&python, &serve, "--root", "public", "--title", "Field Notes"], &dir);
    blog.env.extend(env(&[("PYTHONUNBUFFERED", "1"), ("PAGE_SIZE", "20"), ("DRAFTS", "false")]));
    blog.port = Some("18432".parse().unwrap());
    blog.restart = RestartPolicy::Never;
    blog.max_memory = Some(256 << 20);

    let shell = if on_path("bash") { "bash" } else { "sh" };
    let mut feeds = pm2(&[shell, "-c", "python3 -m http.server 18433 --bind 127.0.0.1"], &dir);
    feeds.watch = vec!["**".into()];
    feeds.watch_ignore = vec!["**/.*".into(), "**/.*/**".into()];
    feeds.autostart = false;

    let mut sleep = pm2(&["sleep", "600"], &dir);
    sleep.instances = std::thread::available_parallelism().unwrap().get() as u32;

    let names: Vec<&str> = t.sidecars.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["blog", "feeds", "sleep"]);
    assert_eq!(t.sidecars[0].1, blog);
    assert_eq!(t.sidecars[1].1, feeds);
    assert_eq!(t.sidecars[2].1, sleep);
    let wait_ready = "PM2 waits for the app's process.send('ready'); pm has no such message (a readiness probe or \
                      `ready = \"registered\"` does it)";
    let listen = "PM2 waits this long for a `ready` message or a listening worker; pm waits for neither";
    assert_eq!(
        t.untranslated,
        [
            note("apps[0].env_staging", 11, Some("used by `pm2 start --env NAME` only; pm takes `env`")),
            note("apps[0].wait_ready", 17, Some(wait_ready)),
            note("apps[0].listen_timeout", 18, Some(listen)),
            note("apps[0].out_file", 19, Some("pm keeps each instance's logs itself (`pm log`)")),
            note("apps[1].args", 24, Some("PM2 runs a `script` with spaces as `bash -c SCRIPT`, without it")),
            note("apps[2].increment_var", 33, None),
            note("deploy", 36, Some("pm does not deploy")),
        ]
    );
}

#[test]
fn a_list_of_apps_or_one_app_is_a_file_too() {
    let (dir, t) = read_json(r#"[{"name": "a", "script": "sleep", "args": "5"}]"#);
    let t = t.unwrap();
    assert_eq!(t.sidecars, [("a".to_string(), pm2(&["sleep", "5"], dir.path()))]);
    assert!(t.untranslated.is_empty(), "{:?}", t.untranslated);

    let (dir, t) = read_json("{\n  \"script\": \"sleep\",\n  \"args\": [\"5\"],\n  \"vizion\": false\n}\n");
    let t = t.unwrap();
    assert_eq!(t.sidecars, [("sleep".to_string(), pm2(&["sleep", "5"], dir.path()))]);
    assert_eq!(t.untranslated, [note("vizion", 4, None)]);

    let (dir, t) = read_json(r#"{"pm2": {"name": "b", "script": "sleep"}}"#);
    assert_eq!(t.unwrap().sidecars, [("b".to_string(), pm2(&["sleep"], dir.path()))]);
}

#[test]
fn json_with_comments_is_read_as_pm2_reads_it() {
    if !have_node() {
        return;
    }
    let (dir, t) = read_json("{\n  // PM2 evaluates .json files\n  apps: [{ name: 'a', script: 'sleep', },],\n}\n");
    let t = t.unwrap();
    assert_eq!(t.sidecars, [("a".to_string(), pm2(&["sleep"], dir.path()))]);
}

#[test]
fn files_of_another_shape_are_errors_that_say_where() {
    let (dir, t) = read_json("{\"apps\": [\n  {\"name\": \"a\" \"script\": \"b\"}\n]}");
    let e = t.unwrap_err().to_string();
    let at = dir.path().join("ecosystem.config.json");
    // Not JSON, nor JavaScript to node (when it is there): the JSON error is kept.
    assert!(e.starts_with(&format!("{}:2: ", at.display())), "{e}");
    for text in ["5", "\"x\"", "null", "{}", "{\"name\": \"a\"}", "{\"apps\": 5}"] {
        let (_dir, t) = read_json(text);
        let e = t.unwrap_err().to_string();
        assert!(e.contains("an ecosystem file gives `{\"apps\": [...]}`"), "{text}: {e}");
    }
    let (_dir, t) = read_json("");
    assert!(t.is_err());
}

#[test]
fn javascript_errors_name_the_file_and_line() {
    if !have_node() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ecosystem.config.js");
    std::fs::write(&path, "module.exports = {\n  apps: [{ name: 'a', script: missing }],\n};\n").unwrap();
    let e = read_file(&path).unwrap_err().to_string();
    assert_eq!(e, format!("{}:2: node cannot evaluate it: ReferenceError: missing is not defined", path.display()));
}

#[test]
fn interpreters_are_picked_as_pm2_picks_them() {
    let text = r#"{"apps": [
        {"name": "js", "script": "app.js", "node_args": "--max-old-space-size=100", "args": ["a"]},
        {"name": "sh", "script": "run.sh"},
        {"name": "text", "script": "tool"},
        {"name": "bin", "script": "bin/true"},
        {"name": "ts", "script": "app.ts", "interpreter": "node@18"},
        {"name": "none", "script": "app.js", "exec_interpreter": "none", "interpreter_args": ["-x"]}
    ]}"#;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tool"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::create_dir(dir.path().join("bin")).unwrap();
    std::fs::write(dir.path().join("bin/true"), b"\x7fELF\x02\x01\x01\0\0\0\0").unwrap();
    let path = dir.path().join("ecosystem.json");
    std::fs::write(&path, text).unwrap();
    let t = read_file(&path).unwrap();
    let argv: Vec<(&str, Vec<&str>)> =
        t.sidecars.iter().map(|(n, d)| (n.as_str(), d.command.iter().map(String::as_str).collect())).collect();
    let file = |f: &str| dir.path().join(f).display().to_string();
    let (tool, bin) = (file("tool"), file("bin/true"));
    assert_eq!(
        argv,
        [
            ("js", vec!["node", "--max-old-space-size=100", "app.js", "a"]),
            ("sh", vec!["bash", "run.sh"]),
            ("text", vec!["node", tool.as_str()]),
            ("bin", vec![bin.as_str()]),
            ("ts", vec!["node", "app.ts"]),
            ("none", vec!["app.js"]),
        ]
    );
    let keys: Vec<(&str, Option<&str>)> = t.untranslated.iter().map(|u| (u.key.as_str(), u.why.as_deref())).collect();
    assert_eq!(
        keys,
        [
            ("apps[4].interpreter", Some("pm does not pick node versions: it runs `node`")),
            ("apps[5].interpreter_args", Some("the script runs without an interpreter")),
        ]
    );
}

#[test]
fn odd_values_are_reported_and_never_panic() {
    let text = r#"{"apps": [
        {"name": "日本", "script": "sleep"},
        {"name": "x", "script": 5},
        {"name": "y"},
        7,
        {"name": "z", "script": "sleep", "instances": 1e30, "max_memory_restart": "1K", "min_uptime": "-5s",
         "kill_timeout": -1, "restart_delay": "soon", "max_restarts": -2, "stop_exit_codes": ["a"],
         "autorestart": "sometimes", "autostart": 1, "env": {"": "a", "A": null, "B": {"c": [1]}, "C": 1.5},
         "watch": ["/elsewhere", 5, "../up"], "ignore_watch": [{}], "watch_delay": 0, "port": 70000,
         "namespace": "日本", "exec_mode": "swarm", "cwd": 3, "name_prefix": "p", "bogus": true},
        {"name": "z", "script": "sleep"},
        {"name": "w", "script": "sleep", "instances": -100, "port": "8080", "namespace": "Team A"},
        {"name": "v", "script": "sleep", "instances": "4", "port": 9000, "env": {"PORT": "1"}}
    ]}"#;
    let (dir, t) = read_json(text);
    let t = t.unwrap();
    let names: Vec<&str> = t.sidecars.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["z", "w", "v"]);
    for (name, def) in &t.sidecars {
        crate::supervisor::validate(name, def).unwrap();
    }
    let z = &t.sidecars[0].1;
    assert_eq!(z.instances, 1);
    assert_eq!(z.env, env(&[("B", "{\"c\":[1]}"), ("C", "1.5"), ("NODE_APP_INSTANCE", "${PM_INSTANCE}")]));
    assert_eq!(z.cwd.as_deref(), Some(dir.path()));
    let w = &t.sidecars[1].1;
    assert_eq!((w.instances, w.port, w.groups.clone()), (1, Some("8080".parse().unwrap()), vec!["team-a".to_string()]));
    let v = &t.sidecars[2].1;
    assert_eq!((v.instances, v.port, v.env.get("PORT").map(String::as_str)), (4, None, Some("9000")));

    let keys: Vec<(&str, Option<&str>)> = t.untranslated.iter().map(|u| (u.key.as_str(), u.why.as_deref())).collect();
    let expect = [
        ("apps[0].name", Some("no pm name can be made of `日本`")),
        ("apps[1].script", Some("expected a string")),
        ("apps[1]", Some("no `script` to run")),
        ("apps[2]", Some("no `script` to run")),
        ("apps[3]", Some("an app is an object")),
    ];
    assert_eq!(keys[..expect.len()], expect);
    for key in [
        "apps[4].cwd",
        "apps[4].env.",
        "apps[4].env.A",
        "apps[4].instances",
        "apps[4].max_memory_restart",
        "apps[4].min_uptime",
        "apps[4].kill_timeout",
        "apps[4].restart_delay",
        "apps[4].max_restarts",
        "apps[4].stop_exit_codes",
        "apps[4].autorestart",
        "apps[4].autostart",
        "apps[4].watch[0]",
        "apps[4].watch[1]",
        "apps[4].watch[2]",
        "apps[4].ignore_watch[0]",
        "apps[4].watch_delay",
        "apps[4].port",
        "apps[4].namespace",
        "apps[4].exec_mode",
        "apps[4].name_prefix",
        "apps[4].bogus",
        "apps[5]",
        "apps[6].namespace",
    ] {
        assert!(keys.iter().any(|(k, _)| *k == key), "{key} not reported: {keys:#?}");
    }
    assert!(t.untranslated.iter().all(|u| u.line.is_some()), "{:#?}", t.untranslated);
}

#[test]
fn unusual_json_never_panics() {
    for text in [
        "[]",
        "[[]]",
        "[{}]",
        "{\"apps\": []}",
        "{\"apps\": [null, true, \"x\"]}",
        "{\"apps\": {\"script\": \"sleep\", \"env\": [1]}}",
        "[{\"script\": \"\"}]",
        "[{\"script\": \"   \"}]",
        "[{\"script\": \"a b\", \"name\": \"\"}]",
        "[{\"script\": \"sleep\", \"watch\": \"\", \"ignore_watch\": \"\"}]",
        "[{\"script\": \"sleep\", \"args\": [null], \"node_args\": {}}]",
        "[{\"script\": \"sleep\", \"instances\": \"max\", \"watch\": true, \"ignore_watch\": [\"a\", \"b/**\"]}]",
    ] {
        let (_dir, t) = read_json(text);
        let t = t.unwrap();
        for (name, def) in &t.sidecars {
            crate::supervisor::validate(name, def).unwrap();
        }
    }
    let long = format!("[{{\"name\": \"{}\", \"script\": \"sleep\"}}]", "a".repeat(100_000));
    let (_dir, t) = read_json(&long);
    assert_eq!(t.unwrap().sidecars[0].0.len(), 64);
}

#[test]
fn pm2_splits_argument_strings_its_own_way() {
    assert_eq!(split("  -a 13 -b  12 "), ["-a", "13", "-b", "12"]);
    assert_eq!(split(r#"--title "Field Notes" 'x y'"#), ["--title", "Field Notes", "x y"]);
    assert_eq!(split(r#"--name="a b" k='c'"#), [r#"--name="a b""#, "k='c'"]);
    assert_eq!(split(r#"a"b c" "" ''"#), [r#"a"b"#, r#"c""#]);
    assert_eq!(split(r#""open"#), [r#""open"#]);
    assert!(split("").is_empty());
}

#[test]
fn durations_sizes_and_counts_read_as_pm2_reads_them() {
    use serde_json::json;
    assert_eq!(stime(&json!("30s")), Ok(Duration::from_secs(30)));
    assert_eq!(stime(&json!("2m")), Ok(Duration::from_secs(120)));
    assert_eq!(stime(&json!("1h")), Ok(Duration::from_secs(3600)));
    assert_eq!(stime(&json!(1500)), Ok(Duration::from_millis(1500)));
    assert_eq!(stime(&json!("1500")), Ok(Duration::from_millis(1500)));
    assert!(stime(&json!("xs")).is_err());
    assert!(millis(&json!(1e300)).is_err());
    assert_eq!(memory(&json!("300M")), Ok(300 << 20));
    assert_eq!(memory(&json!("1G")), Ok(1 << 30));
    assert_eq!(memory(&json!(2_000_000)), Ok(2_000_000));
    assert!(memory(&json!("512K")).is_err());
    let cpus = std::thread::available_parallelism().unwrap().get() as u32;
    assert_eq!(instances(&json!("max")), Ok(cpus));
    assert_eq!(instances(&json!(0)), Ok(cpus));
    assert_eq!(instances(&json!(-1)), Ok((cpus - 1).max(1)));
    assert_eq!(instances(&json!("3")), Ok(3));
    assert!(instances(&json!(2.5)).is_err());
    assert!(instances(&json!(true)).is_err());
}
