//! `pm discover`, `pm diff` and `pm start -f` as a difference: new definitions added, changed ones
//! replaced with their running instances restarted, unchanged ones untouched, and `--prune`
//! deleting only what left the same source.

use crate::support::*;

fn pid(pm: &Pm, name: &str) -> serde_json::Value {
    pm.instance(name)["pid"].clone()
}

fn names(list: &serde_json::Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|v| v.as_str().map_or_else(|| v["name"].to_string(), str::to_string)).collect()
}

const V1: &str = "[sidecars.db]\ncommand = \"sleep 1001\"\n\n[sidecars.api]\ncommand = \"sleep 1002\"\n\
                  depends_on = [\"db\"]\n\n[sidecars.old]\ncommand = \"sleep 1003\"\n";
const V2: &str = "[sidecars.db]\ncommand = \"sleep 1001\"\n\n[sidecars.api]\ncommand = \"sleep 1004\"\n\
                  depends_on = [\"db\"]\nenv = { MODE = \"v2\" }\n\n[sidecars.new]\ncommand = \"sleep 1005\"\n";

#[test]
fn a_changed_file_is_applied_as_a_difference_and_prune_deletes_what_left_it() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    std::fs::create_dir(pm.dir.path().join("app")).unwrap();
    pm.write("app/pm.toml", V1);
    let out = json(&pm.ok(&["discover", "app", "--start", "--json"]));
    assert_eq!(names(&out["changes"]["added"]), ["api", "db", "old"], "{out}");
    let file = pm.path("app/pm.toml").display().to_string();
    assert_eq!(out["found"][0]["file"], file.as_str(), "{out}");
    let ls = json(&pm.ok(&["ls", "--json"]));
    assert!(ls.as_array().unwrap().iter().all(|d| d["source"] == file.as_str()), "{ls}");
    let (db, api) = (pid(&pm, "db"), pid(&pm, "api"));
    assert!(api.is_u64() && db.is_u64());

    // Nothing changed: nothing is touched.
    let again = json(&pm.ok(&["discover", "app", "--json"]));
    assert_eq!(names(&again["changes"]["unchanged"]), ["api", "db", "old"]);
    assert_eq!((pid(&pm, "db"), pid(&pm, "api")), (db.clone(), api.clone()));

    pm.write("app/pm.toml", V2);
    let diff = pm.ok(&["diff", "-f", "app/pm.toml"]);
    let rows: Vec<String> = diff.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    for row in ["new add -", "api change command, env", "old delete with --prune -", "1 unchanged"] {
        assert!(rows.iter().any(|r| r == row), "{row:?} in:\n{diff}");
    }
    let dry = json(&pm.ok(&["discover", "app", "--dry-run", "--json"]));
    assert_eq!(names(&dry["changes"]["added"]), ["new"]);
    assert_eq!(pm.instance("api")["pid"], api, "a dry run changes nothing");
    assert!(pm.status().iter().all(|s| s["name"] != "new"));

    let text = pm.ok(&["discover", "app", "--prune"]);
    assert!(text.contains("deleted (no longer in their files): old"), "{text}");
    assert!(text.contains("mapped: 1 added, 1 changed, 1 unchanged"), "{text}");
    assert!(text.contains("restarted one at a time: api"), "{text}");
    assert_eq!(pid(&pm, "db"), db, "unchanged: same run");
    let api2 = pid(&pm, "api");
    assert!(api2.is_u64() && api2 != api, "changed and running: restarted ({api} -> {api2})");
    let cmdline = std::fs::read(format!("/proc/{api2}/cmdline")).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).contains("1004"), "the new definition runs");
    assert!(pm.status().iter().all(|s| s["name"] != "old"), "pruned");
    assert_eq!(pm.instance("new")["state"], "stopped", "added, not started without --start");
}

#[test]
fn start_f_restarts_a_changed_running_sidecar_and_prune_keeps_other_sources() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    std::fs::create_dir(pm.dir.path().join("a")).unwrap();
    std::fs::create_dir(pm.dir.path().join("b")).unwrap();
    pm.write("a/pm.toml", "[sidecars.web]\ncommand = \"sleep 2001\"\n[sidecars.extra]\ncommand = \"sleep 2002\"\n");
    pm.write("b/pm.toml", "[sidecars.other]\ncommand = \"sleep 2003\"\n");
    pm.ok(&["start", "-f", "a/pm.toml"]);
    pm.ok(&["start", "-f", "b/pm.toml"]);
    pm.ok(&["map", "byhand", "--", "sleep", "2004"]);
    let web = pid(&pm, "web");

    pm.write("a/pm.toml", "[sidecars.web]\ncommand = \"sleep 2005\"\n");
    let out = pm.run(&["start", "-f", "a/pm.toml"]);
    let (_, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("no longer in") && stderr.contains("extra (`--prune` deletes them)"), "{stderr}");
    let web2 = pid(&pm, "web");
    assert_ne!(web2, web, "a redefined running sidecar runs its new definition at once");
    assert!(String::from_utf8_lossy(&std::fs::read(format!("/proc/{web2}/cmdline")).unwrap()).contains("2005"));

    pm.ok(&["start", "-f", "a/pm.toml", "--prune"]);
    let left: Vec<String> = pm.status().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(left, ["byhand", "other", "web"], "only a/pm.toml's own leftovers are pruned");
}

#[test]
fn a_prune_that_would_break_a_dependency_is_refused_before_anything_changes() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    std::fs::create_dir(pm.dir.path().join("a")).unwrap();
    pm.write("a/pm.toml", "[sidecars.db]\ncommand = \"sleep 3001\"\n");
    pm.ok(&["discover", "a"]);
    pm.ok(&["map", "app", "--depends-on", "db", "--", "sleep", "3002"]);
    pm.write("a/pm.toml", "[sidecars.cache]\ncommand = \"sleep 3003\"\n");
    let err = pm.fails(&["discover", "a", "--prune"]);
    assert!(err.contains("cannot prune `db`: `app` depends on it"), "{err}");
    let left: Vec<String> = pm.status().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(left, ["app", "db"], "nothing was added or deleted");
}

#[test]
fn names_prefixes_and_bad_paths() {
    let pm = Pm::new();
    std::fs::create_dir(pm.dir.path().join("p")).unwrap();
    pm.write(
        "p/pm.toml",
        "[sidecars.db]\ncommand = \"sleep 1\"\n[sidecars.api]\ncommand = \"sleep 1\"\ndepends_on = [\"db\"]\n\
         [sidecars.lone]\ncommand = \"sleep 1\"\n",
    );
    // A dry run with no daemon running starts none.
    let dry = json(&pm.ok(&["discover", "p", "api", "--prefix", "shop-", "--dry-run", "--json"]));
    assert!(pm.daemon_pid().is_none(), "a dry run starts no daemon");
    let found: Vec<&str> = dry["found"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(found, ["shop-api", "shop-db"], "api with what it depends on, prefixed");
    assert_eq!(dry["found"][0]["definition"]["depends_on"][0], "shop-db");

    let err = pm.fails(&["discover", "p", "nope"]);
    assert!(err.contains("no sidecar `nope` found (found: api, db, lone)"), "{err}");
    let err = pm.fails(&["discover", "missing"]);
    assert!(err.contains("cannot read") && err.contains("missing"), "{err}");
    std::fs::create_dir(pm.dir.path().join("empty")).unwrap();
    let err = pm.fails(&["discover", "empty"]);
    assert!(err.contains("no file pm discover reads (it looks for pm.toml"), "{err}");
    pm.write("notes.txt", "hello");
    let err = pm.fails(&["discover", "notes.txt"]);
    assert!(err.contains("not a kind of file pm discover knows by its name; say which with --kind"), "{err}");
    let err = pm.fails(&["discover", "p", "--kind", "nonsense"]);
    assert!(err.contains("unknown kind `nonsense`"), "{err}");
    let err = pm.fails(&["discover", "p", "--prefix", "Bad."]);
    assert!(err.contains("--prefix `Bad.`"), "{err}");
    pm.write("p/pm.toml", "[sidecars.db]\ncomand = \"x\"\n");
    let err = pm.fails(&["discover", "p"]);
    assert!(err.contains("pm.toml:2") && err.contains("comand"), "{err}");
}
