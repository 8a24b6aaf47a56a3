//! `pm install`, `uninstall`, `update`, `link` and `unlink`, with the real package managers on
//! local artifacts built here (nothing is fetched): an `npm pack` tarball, a wheel, a crate, a
//! Docker image. An update replaces a stateless pool one instance at a time while calls go
//! through the mesh, and a broken version rolls back.

use crate::containers::{IMAGE, docker, engine};
use crate::support::{Pm, Raw, lines, run_with_deadline, texts, wait_until};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/packages");
/// Bound on building an artifact (a crate's build is the slow one).
const BUILD_TIMEOUT: Duration = Duration::from_secs(300);

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Runs a command to its end, requiring success; its stdout.
fn run(mut cmd: Command) -> String {
    let shown = format!("{cmd:?}");
    cmd.env_remove("PM_HOME");
    let out = run_with_deadline(cmd, BUILD_TIMEOUT);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{shown} failed ({}):\n{stderr}\n{stdout}", out.status);
    stdout
}

/// Copies a fixture into `to` (builds write beside their sources: never into the repository).
fn copy(fixture: &str, to: &Path) -> PathBuf {
    let dest = to.join(fixture);
    let mut cmd = Command::new("cp");
    cmd.arg("-r").arg(Path::new(FIXTURES).join(fixture)).arg(&dest);
    run(cmd);
    dest
}

/// `npm pack` of the pool package at `version`; with `broken`, its program exits at once.
fn pool_tarball(pm: &Pm, version: &str, broken: bool) -> PathBuf {
    let build = pm.dir.path().join(format!("build-{version}"));
    std::fs::create_dir_all(&build).unwrap();
    let src = copy("pool", &build);
    let manifest = src.join("package.json");
    let text = std::fs::read_to_string(&manifest).unwrap().replace("\"1.0.0\"", &format!("\"{version}\""));
    std::fs::write(&manifest, text).unwrap();
    if broken {
        std::fs::write(src.join("bin/pool.py"), "#!/bin/sh\necho 'pool: broken release' >&2\nexit 3\n").unwrap();
    }
    let mut cmd = Command::new("npm");
    cmd.args(["pack", "--pack-destination"]).arg(pm.dir.path()).arg(&src);
    run(cmd);
    pm.dir.path().join(format!("pm-pool-{version}.tgz"))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The sources of the daemon's definitions, by name.
fn sources(pm: &Pm) -> Vec<(String, String)> {
    let ls = json(&pm.ok(&["ls", "--json"]));
    ls.as_array().unwrap().iter().map(|d| (d["name"].as_str().unwrap().into(), d["source"].to_string())).collect()
}

fn index(pm: &Pm) -> Value {
    json(&std::fs::read_to_string(pm.home.path().join("packages/index.json")).unwrap_or_else(|_| "{}".into()))
}

/// The directories under PM_HOME/packages (a package's, or a leftover `.staging`).
fn package_dirs(pm: &Pm) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(pm.home.path().join("packages")) else { return Vec::new() };
    let mut dirs: Vec<String> =
        entries.flatten().filter(|e| e.path().is_dir()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    dirs.sort();
    dirs
}

#[test]
fn an_npm_tarball_is_installed_run_and_uninstalled_unless_something_depends_on_it() {
    let pm = Pm::new();
    let tarball = pool_tarball(&pm, "1.0.0", false);
    let out = json(&pm.ok(&["install", path(&tarball), "--start", "--json"]));
    let dir = pm.home.path().join("packages/pm-pool/1.0.0");
    assert_eq!(out["name"], "pm-pool", "{out}");
    assert_eq!(out["package"]["source"], "npm:pm-pool@1.0.0");
    assert_eq!(out["package"]["dir"], path(&dir));
    assert_eq!(out["package"]["definitions"], json!(["pool"]));
    assert_eq!(out["changes"]["added"], json!(["pool"]));
    assert_eq!(out["started"].as_array().map(Vec::len), Some(2), "two instances started: {out}");
    assert_eq!(sources(&pm), [("pool".to_string(), "\"npm:pm-pool@1.0.0\"".to_string())]);
    let ls = pm.ok(&["ls"]);
    assert!(ls.lines().any(|l| l.starts_with("pool ") && l.contains("npm:pm-pool@1.0.0")), "{ls}");
    assert_eq!(json(&pm.ok(&["call", "pool.version"])), "1.0.0");
    assert!(dir.join("install.log").is_file() && dir.join("node_modules/pm-pool/bin/pool.py").is_file());

    let again = pm.fails(&["install", path(&tarball)]);
    assert!(again.contains("`pm-pool` is already installed (pm-pool 1.0.0); `pm update pm-pool [VERSION]`"), "{again}");

    pm.ok(&["map", "web", "--depends-on", "pool", "--", "sleep", "1000"]);
    let refused = pm.fails(&["uninstall", "pm-pool"]);
    assert!(
        refused.contains(
            "`pm-pool` is still needed: web (on pool) depend(s) on its sidecars; delete or change them first"
        ),
        "{refused}"
    );
    assert_eq!(pm.instance("pool-0")["state"], "ready", "a refused uninstall touches nothing");
    assert!(dir.is_dir());

    pm.ok(&["delete", "web"]);
    let out = json(&pm.ok(&["uninstall", "pm-pool", "--json"]));
    assert_eq!(out["deleted"], json!(["pool"]), "{out}");
    assert!(sources(&pm).is_empty());
    assert!(!dir.exists() && package_dirs(&pm).is_empty(), "its files are gone: {:?}", package_dirs(&pm));
    assert_eq!(index(&pm)["packages"], json!({}));
    let err = pm.fails(&["uninstall", "pm-pool"]);
    assert!(err.contains("no package `pm-pool` is installed or linked (there are: none)"), "{err}");
}

#[test]
fn a_wheel_and_a_crate_run_what_their_package_managers_installed() {
    let pm = Pm::new();
    let mut make_wheel = Command::new("python3");
    make_wheel.arg(Path::new(FIXTURES).join("hello-py/make_wheel.py")).arg(pm.dir.path());
    let wheel = run(make_wheel).trim().to_string();
    let checkout = copy("hello-rs", pm.dir.path());

    let out = json(&pm.ok(&["install", &wheel, "--start", "--json"]));
    let py = pm.home.path().join("packages/hello-pm/1.0.0");
    assert_eq!(out["package"]["source"], "pip:hello-pm@1.0.0", "{out}");
    let command = &out["found"][0]["definition"]["command"];
    assert_eq!(command, &json!([path(&py.join("venv/bin/hello-pm"))]), "the console script pip wrote: {out}");
    wait_until("the console script's hello", Duration::from_secs(20), || {
        lines(&pm.log_file("hello-pm", "out")).iter().any(|l| l.ends_with(" hello from python 1.0.0"))
    });

    let out = json(&pm.ok(&["install", path(&checkout), "--start", "--json"]));
    let rs = pm.home.path().join("packages/hello-pm-rs/0.1.0");
    assert_eq!(out["package"]["source"], "cargo:hello-pm-rs@0.1.0", "{out}");
    assert_eq!(out["package"]["from"], path(&checkout));
    let definition = &out["found"][0]["definition"];
    assert_eq!(definition["command"], json!([path(&rs.join("bin/hello-pm-rs"))]), "{out}");
    assert_eq!(definition["ready"], json!({"log": "^hello from rust"}), "its [package.metadata.pm]: {out}");
    assert_eq!(out["started"][0]["state"], "ready", "ready by its log line: {out}");
    assert!(!rs.join("build").exists() && !checkout.join("target").exists(), "no build left behind");

    let ls = pm.ok(&["ls"]);
    for (name, source) in [("hello-pm", "pip:hello-pm@1.0.0"), ("hello-pm-rs", "cargo:hello-pm-rs@0.1.0")] {
        assert!(ls.lines().any(|l| l.starts_with(&format!("{name} ")) && l.contains(source)), "{ls}");
    }
    pm.ok(&["uninstall", "hello-pm"]);
    pm.ok(&["uninstall", "hello-pm-rs"]);
    assert!(package_dirs(&pm).is_empty(), "{:?}", package_dirs(&pm));
}

/// Calls `method` through the daemon every few ms until `stop`; every answer.
fn calls(pm: &Pm, method: &'static str, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<Value>> {
    let mut raw = Raw::unix(pm);
    std::thread::spawn(move || {
        let mut answers = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            answers.push(raw.call(method, json!([])));
            std::thread::sleep(Duration::from_millis(3));
        }
        answers
    })
}

/// Runs `pm args…` while calling `pool.version`; its output and the answers.
fn while_calling(pm: &Pm, args: &[&str]) -> (std::process::Output, Vec<Value>) {
    let stop = Arc::new(AtomicBool::new(false));
    let caller = calls(pm, "pool.version", stop.clone());
    let out = pm.run(args);
    stop.store(true, Ordering::SeqCst);
    (out, caller.join().unwrap())
}

fn failed(answers: &[Value]) -> Vec<&Value> {
    answers.iter().filter(|a| a.get("result").is_none()).collect()
}

#[test]
fn an_update_replaces_the_pool_one_at_a_time_and_a_broken_one_rolls_back() {
    let pm = Pm::new();
    let v1 = pool_tarball(&pm, "1.0.0", false);
    let (v2, v3) = (pool_tarball(&pm, "2.0.0", false), pool_tarball(&pm, "3.0.0", true));
    pm.ok(&["install", path(&v1), "--start"]);
    let packages = pm.home.path().join("packages/pm-pool");

    let (out, answers) = while_calling(&pm, &["update", "pm-pool", path(&v2), "--json"]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    let report = json(&stdout);
    assert_eq!(
        (&report["package"]["source"], &report["from"]),
        (&json!("npm:pm-pool@2.0.0"), &json!("1.0.0")),
        "{report}"
    );
    assert_eq!(report["changes"]["restarted"], json!(["pool-0", "pool-1"]), "{report}");
    assert_eq!(failed(&answers), Vec::<&Value>::new(), "no call lost during the update");
    let versions: Vec<&Value> = answers.iter().map(|a| &a["result"]).collect();
    assert!(versions.len() >= 20, "calls went on all along: {}", versions.len());
    assert_eq!(versions.first(), Some(&&json!("1.0.0")), "the old version served until replaced");
    assert_eq!(json(&pm.ok(&["call", "pool.version"])), "2.0.0");
    assert!(!packages.join("1.0.0").exists(), "the old version goes once all are replaced");
    assert_eq!(sources(&pm), [("pool".to_string(), "\"npm:pm-pool@2.0.0\"".to_string())]);

    let before: Vec<Value> = ["pool-0", "pool-1"].iter().map(|n| pm.instance(n)["pid"].clone()).collect();
    let (out, answers) = while_calling(&pm, &["update", "pm-pool", path(&v3)]);
    let (_, stderr) = texts(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("pm: update of pm-pool to 3.0.0 failed: reload stopped at pool-0 (1/2): "), "{stderr}");
    assert!(stderr.contains("code 3"), "why: {stderr}");
    assert!(stderr.trim_end().ends_with("; rolled back to 2.0.0"), "{stderr}");
    assert_eq!(failed(&answers), Vec::<&Value>::new(), "no call lost during the failed update and its rollback");
    assert!(answers.iter().all(|a| a["result"] == "2.0.0"), "the broken version never served");
    for name in ["pool-0", "pool-1"] {
        wait_until(&format!("{name} ready again"), Duration::from_secs(20), || pm.instance(name)["state"] == "ready");
    }
    assert_eq!(pm.instance("pool-1")["pid"], before[1], "an instance still on its old run is not touched");
    assert_eq!(json(&pm.ok(&["call", "pool.version"])), "2.0.0");
    assert!(!packages.join("3.0.0").exists() && packages.join("2.0.0").is_dir());
    assert_eq!(sources(&pm), [("pool".to_string(), "\"npm:pm-pool@2.0.0\"".to_string())]);
    assert_eq!(index(&pm)["packages"]["pm-pool"]["version"], "2.0.0");

    let same = pm.ok(&["update", "pm-pool", path(&v2)]);
    assert!(same.contains("pm-pool is already at 2.0.0; nothing to update"), "{same}");
    let err = pm.fails(&["update", "pm-pool", "4.0.0"]);
    assert!(err.contains("it was installed from ") && err.contains("give the new file or directory"), "{err}");
}

#[test]
fn unknown_forms_missing_tools_and_failed_installs_leave_nothing_mapped() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    pm.write("notes.txt", "");
    let err = pm.fails(&["install", "gem:rails"]);
    assert!(err.contains("unknown registry `gem:` in `gem:rails`; pm install takes npm:NAME[@VERSION], pip:"), "{err}");
    let err = pm.fails(&["install", "notes.txt"]);
    assert!(err.contains("`notes.txt`: not a package pm install knows; it takes npm:NAME"), "{err}");
    let err = pm.fails(&["install", "npm:--global"]);
    assert!(err.contains("`--global` is not a package name"), "{err}");

    let tarball = pool_tarball(&pm, "1.0.0", false);
    let mut no_npm = pm.cmd(&["install", "npm:left-pad"]);
    no_npm.env("PATH", pm.dir.path().join("empty-path"));
    let (_, err) = texts(&run_with_deadline(no_npm, Duration::from_secs(30)));
    assert_eq!(err.trim(), "pm: install npm:left-pad: npm is not on PATH (install Node.js and npm)");

    pm.write("broken-1.0.0.tgz", "not a tarball");
    let err = pm.fails(&["install", "broken-1.0.0.tgz"]);
    let log = pm.home.path().join("packages/install.log");
    let line = err.lines().last().unwrap();
    assert!(line.starts_with("pm: install broken-1.0.0.tgz: npm failed (exit "), "{err}");
    assert!(line.ends_with(&format!("; see {}", log.display())), "{err}");
    assert!(std::fs::read_to_string(&log).unwrap().contains("$ npm install"), "the log keeps what npm said");

    // A package with nothing to run is no package for pm.
    let empty = pm.dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("package.json"), r#"{"name": "empty-lib", "version": "0.1.0"}"#).unwrap();
    let err = pm.fails(&["install", path(&empty)]);
    assert!(err.contains("empty-lib 0.1.0 gives no sidecar: its package.json has no bin, commands, main"), "{err}");

    // A name another source has is not taken over.
    pm.ok(&["map", "pool", "--", "sleep", "1000"]);
    let err = pm.fails(&["install", path(&tarball)]);
    assert!(err.contains("already defined from elsewhere: `pool` (pm map); `--prefix` gives"), "{err}");

    assert_eq!(sources(&pm), [("pool".to_string(), "null".to_string())], "nothing was mapped");
    assert!(package_dirs(&pm).is_empty(), "nothing was left: {:?}", package_dirs(&pm));
    assert_eq!(index(&pm).get("packages"), None, "nothing was recorded");

    let out = json(&pm.ok(&["install", path(&tarball), "--prefix", "v1-", "--name", "legacy", "--json"]));
    assert_eq!((&out["name"], &out["package"]["definitions"]), (&json!("legacy"), &json!(["v1-pool"])), "{out}");
    assert!(pm.home.path().join("packages/legacy/1.0.0").is_dir());
}

#[test]
fn a_link_maps_a_checkout_in_place_and_unlink_leaves_it() {
    let pm = Pm::new();
    let app = pm.dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    let procfile = app.join("Procfile");
    std::fs::write(&procfile, "web: sleep 1001\n").unwrap();
    let out = json(&pm.ok(&["link", "dev", "app", "--start", "--json"]));
    let source = format!("link:{}", app.canonicalize().unwrap().display());
    assert_eq!(out["package"]["source"], source.as_str(), "{out}");
    assert_eq!(out["changes"]["added"], json!(["web"]));
    assert_eq!(pm.instance("web")["state"], "ready");
    let ls = pm.ok(&["ls"]);
    assert!(ls.lines().any(|l| l.starts_with("web ") && l.contains(&source)), "{ls}");

    // Linking again reads the checkout again: what it no longer has goes.
    std::fs::write(&procfile, "worker: sleep 1002\n").unwrap();
    let out = json(&pm.ok(&["link", "dev", "app", "--json"]));
    assert_eq!((&out["changes"]["added"], &out["changes"]["removed"]), (&json!(["worker"]), &json!(["web"])), "{out}");
    let err = pm.fails(&["uninstall", "dev"]);
    assert!(err.contains("`dev` is a link to ") && err.contains(": `pm unlink dev`"), "{err}");
    let err = pm.fails(&["link", "dev", "."]);
    assert!(err.contains("`dev` is linked to ") && err.contains("; `pm unlink dev` first"), "{err}");

    let out = pm.ok(&["unlink", "dev"]);
    assert!(out.contains("unlinked dev (") && out.contains("): deleted worker"), "{out}");
    assert!(sources(&pm).is_empty());
    assert!(procfile.is_file(), "the checkout stays");
    let err = pm.fails(&["link", "dev", "nowhere"]);
    assert!(err.contains("pm link: nowhere: No such file or directory"), "{err}");
}

/// An image tagged for this test, removed at the end.
struct Tagged(String);

impl Drop for Tagged {
    fn drop(&mut self) {
        let mut cmd = Command::new("docker");
        cmd.args(["rmi", "-f", &self.0]);
        let _ = run_with_deadline(cmd, Duration::from_secs(30));
    }
}

#[test]
fn a_docker_image_is_installed_as_a_sidecar_running_it() {
    if !engine("a_docker_image_is_installed_as_a_sidecar_running_it") {
        return;
    }
    let pm = Pm::new();
    let context = pm.dir.path().join("image");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        format!("FROM {IMAGE}\nCMD [\"sh\", \"-c\", \"echo serving; exec sleep 1000\"]\n"),
    )
    .unwrap();
    let image = Tagged(format!("pm-test-pkg-{}:v1", std::process::id()));
    docker(None, &["build", "-q", "-t", &image.0, path(&context)]);

    let out = json(&pm.ok(&["install", &format!("docker:{}", image.0), "--start", "--json"]));
    let name = format!("pm-test-pkg-{}", std::process::id());
    assert_eq!(out["package"]["source"], format!("docker:{}", image.0).as_str(), "{out}");
    assert_eq!(out["found"][0]["definition"]["docker"]["image"], image.0.as_str());
    wait_until("the image's own command", Duration::from_secs(30), || {
        lines(&pm.log_file(&name, "out")).iter().any(|l| l.ends_with(" serving"))
    });
    let log = std::fs::read_to_string(pm.home.path().join(format!("packages/{name}/v1/install.log"))).unwrap();
    assert!(log.contains("the engine has it: not pulled"), "{log}");
    pm.ok(&["uninstall", &name]);
    assert!(package_dirs(&pm).is_empty());
}

/// Real registries, only when asked: `PM_TEST_REGISTRIES=1` (the rest of the suite needs no
/// network).
#[test]
fn registry_packages_are_installed_and_updated_when_asked_to() {
    if std::env::var("PM_TEST_REGISTRIES").as_deref() != Ok("1") {
        let _ = writeln!(
            std::io::stderr(),
            "*** SKIPPED registry_packages…: set PM_TEST_REGISTRIES=1 to reach npm and PyPI ***"
        );
        return;
    }
    let pm = Pm::new();
    let out = json(&pm.ok(&["install", "npm:http-server@14.1.1", "--json"]));
    assert_eq!(out["package"]["source"], "npm:http-server@14.1.1", "{out}");
    assert_eq!(out["package"]["definitions"], json!(["http-server"]));
    let out = json(&pm.ok(&["install", "pip:pyjokes==0.6.0", "--json"]));
    assert_eq!(out["package"]["definitions"], json!(["pyjoke", "pyjokes"]), "{out}");
    let out = json(&pm.ok(&["update", "pyjokes", "0.8.3", "--json"]));
    assert_eq!((&out["from"], &out["package"]["source"]), (&json!("0.6.0"), &json!("pip:pyjokes@0.8.3")), "{out}");
    assert_eq!(out["changes"]["changed"][0]["keys"], json!(["command", "cwd"]), "{out}");
    pm.ok(&["uninstall", "http-server"]);
    pm.ok(&["uninstall", "pyjokes"]);
    assert!(package_dirs(&pm).is_empty());
}
