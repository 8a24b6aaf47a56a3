use super::*;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/discover/supervisord");
    std::fs::canonicalize(dir).unwrap()
}

fn read_file(path: &Path) -> Result<Translated, ConfigError> {
    let text = std::fs::read_to_string(path).unwrap();
    read(&SourceFile { path, dir: path.parent().unwrap(), text: &text })
}

/// Translates `text` as a `supervisord.conf` in a directory of its own.
fn read_text(text: &str) -> (tempfile::TempDir, Result<Translated, ConfigError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("supervisord.conf");
    std::fs::write(&path, text).unwrap();
    let read = read_file(&path);
    (dir, read)
}

/// A definition with supervisord's defaults, running `argv` in `cwd`.
fn program(argv: &[&str], cwd: &Path) -> Definition {
    let mut def = Definition::new(argv.iter().map(|s| s.to_string()).collect());
    def.cwd = Some(cwd.to_path_buf());
    def.priority = 999;
    def.max_restarts = 3;
    def.min_uptime = Duration::from_secs(1);
    def.restart_window = Duration::from_millis(3700);
    def
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn notes(t: &Translated) -> Vec<(&str, Option<usize>, Option<&str>)> {
    t.untranslated.iter().map(|u| (u.key.as_str(), u.line, u.why.as_deref())).collect()
}

#[test]
fn the_fixture_translates_program_by_program() {
    let dir = fixtures();
    let t = read_file(&dir.join("supervisord.conf")).unwrap();
    let h = dir.display();
    let spool = format!("{h}/spool");
    let shop_env = [("SHOP_ENV", "demo"), ("SHOP_SPOOL", spool.as_str())];

    let mut queue = program(&["sh", &format!("{h}/bin/service.sh"), "queue"], &dir);
    queue.env = env(&shop_env);
    queue.priority = 10;
    queue.min_uptime = Duration::from_secs(2);
    queue.restart_window = Duration::from_millis(6700);
    queue.stop_signal = "SIGINT".into();
    queue.stop_timeout = Duration::from_secs(5);

    let mut api = program(&["python3", &format!("{h}/bin/api.py"), "--spool", &spool], &dir.join("bin"));
    api.env = env(&[shop_env[0], shop_env[1], ("API_NAME", "api"), ("LOG_LEVEL", "info")]);
    api.priority = 20;
    api.restart = RestartPolicy::Always;
    api.groups = vec!["shop".into()];

    let mut worker = program(&["sh", &format!("{h}/conf.d/../bin/service.sh"), "worker-${PM_INSTANCE}"], &dir);
    worker.env = env(&shop_env);
    worker.instances = 2;
    worker.priority = 30;
    worker.success_exit_codes = vec![0, 3];
    worker.max_restarts = 5;
    worker.restart_window = Duration::from_millis(8100);
    worker.groups = vec!["shop".into()];

    let names: Vec<&str> = t.sidecars.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["queue", "api", "worker"]);
    assert_eq!(t.sidecars[0].1, queue);
    assert_eq!(t.sidecars[1].1, api);
    assert_eq!(t.sidecars[2].1, worker);
    let logs = "pm keeps each instance's logs itself (`pm log`)";
    assert_eq!(
        notes(&t),
        [
            (
                "group:shop.priority",
                None,
                Some("pm orders sidecars, not groups: each program keeps its own priority (in conf.d/workers.conf:16)")
            ),
            ("unix_http_server", Some(4), Some("pm's daemon listens on its own socket (and `[daemon] listen`)")),
            ("supervisord", Some(8), Some("supervisord's own settings; its environment is given to every program")),
            ("rpcinterface:supervisor", Some(14), Some("pm's API is its own")),
            ("supervisorctl", Some(17), Some("pm's CLI talks to its daemon itself")),
            ("program:queue.stdout_logfile", Some(26), Some(logs)),
            ("program:api.user", Some(34), Some("pm runs sidecars as its own user")),
            ("program:api.umask", Some(35), Some("pm runs sidecars with its own umask")),
            (
                "program:worker.process_name",
                None,
                Some("pm names instances itself: `worker` or `worker-0`, `worker-1`, … (in conf.d/workers.conf:4)")
            ),
            (
                "program:worker.redirect_stderr",
                None,
                Some("pm keeps stdout and stderr apart in its logs (in conf.d/workers.conf:12)")
            ),
            (
                "eventlistener:crashmail",
                None,
                Some("pm has no supervisord events (see `notify`) (in conf.d/workers.conf:18)")
            ),
        ]
    );
}

#[test]
fn expansions_resolve_what_supervisord_knows() {
    let text = "[supervisord]\nenvironment=A=\"from daemon\",B=b\n\n\
                [program:web]\ncommand=echo %(program_name)s %(group_name)s %(ENV_A)s %(ENV_C)s %(numprocs)d %(process_num)02d\n\
                environment=C=\"%(ENV_B)s-c\",A=own\nnumprocs_start=7\n\n\
                [program:bad]\ncommand=echo %(ENV_PM_TEST_SURELY_UNSET)s\n\n\
                [program:pool]\ncommand=echo %(process_num)d\nnumprocs=3\nnumprocs_start=1\n\n\
                [group:g]\nprograms=web\n";
    let (dir, t) = read_text(text);
    let t = t.unwrap();
    let names: Vec<&str> = t.sidecars.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["web"]);
    let web = &t.sidecars[0].1;
    // The program's own environment comes before its other keys, and wins over the daemon's.
    assert_eq!(web.command, ["echo", "web", "g", "own", "b-c", "1", "07"]);
    assert_eq!(web.env, env(&[("A", "own"), ("B", "b"), ("C", "b-c")]));
    assert_eq!(web.cwd.as_deref(), Some(dir.path()));
    assert_eq!(
        notes(&t),
        [
            ("supervisord", Some(1), Some("supervisord's own settings; its environment is given to every program")),
            (
                "program:bad.command",
                Some(10),
                Some("`%(ENV_PM_TEST_SURELY_UNSET)s`: the environment variable PM_TEST_SURELY_UNSET is not set")
            ),
            (
                "program:pool.command",
                Some(13),
                Some("`%(process_num)d`: pm numbers instances from 0 (numprocs_start = 1)")
            ),
        ]
    );
}

#[test]
fn restart_settings_read_as_supervisord_reads_them() {
    let text = "[program:a]\ncommand=sleep 1\nautorestart=false\nexitcodes=2\nstartsecs=0\nstartretries=9\n\
                stopsignal=hup\nstopwaitsecs=1\nautostart=no\npriority=-5\n\
                [program:b]\ncommand=sleep 1\nautorestart=TRUE\nstopsignal=15\nstopasgroup=false\nkillasgroup=false\n";
    let (dir, t) = read_text(text);
    let t = t.unwrap();
    let mut a = program(&["sleep", "1"], dir.path());
    a.restart = RestartPolicy::Never;
    a.success_exit_codes = vec![2];
    a.min_uptime = Duration::ZERO;
    a.restart_window = Duration::ZERO;
    a.max_restarts = 9;
    a.stop_signal = "SIGHUP".into();
    a.stop_timeout = Duration::from_secs(1);
    a.autostart = false;
    a.priority = -5;
    let mut b = program(&["sleep", "1"], dir.path());
    b.restart = RestartPolicy::Always;
    b.stop_signal = "SIGTERM".into();
    assert_eq!(t.sidecars, [("a".to_string(), a), ("b".to_string(), b)]);
    let group = Some("pm always signals the whole process group");
    assert_eq!(notes(&t), [("program:b.stopasgroup", Some(15), group), ("program:b.killasgroup", Some(16), group)]);
}

#[test]
fn odd_values_are_reported_and_never_panic() {
    let text = "[program:Web App]\ncommand=sleep 1\npriority=99999\nautostart=maybe\nautorestart=sometimes\n\
                exitcodes=0,256\nstartsecs=-1\nstartretries=x\nstopsignal=NOPE\nstopwaitsecs=1e9\nnumprocs=20000\n\
                [program:none]\ncommand=sleep 1\nnumprocs=0\n\
                [program:empty]\ncommand=\n\
                [program:quote]\ncommand=echo 'open\n\
                [program:nocmd]\ndirectory=/tmp\n\
                [program:日本]\ncommand=sleep 1\n\
                [program:env]\ncommand=sleep 1\nenvironment=A=\"open,B\nbogus=1\n\
                [program:web-app]\ncommand=sleep 1\n\
                [group:g]\nprograms=missing,env\ncolor=blue\n\
                [fcgi-program:f]\ncommand=x\n[mystery]\nk=v\n";
    let (_dir, t) = read_text(text);
    let t = t.unwrap();
    let names: Vec<&str> = t.sidecars.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["env", "web-app"]);
    for (name, def) in &t.sidecars {
        crate::supervisor::validate(name, def).unwrap();
    }
    let keys: Vec<&str> = t.untranslated.iter().map(|u| u.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "group:g.programs",
            "group:g.color",
            "program:Web App.numprocs",
            "program:none.numprocs",
            "program:empty.command",
            "program:quote.command",
            "program:nocmd",
            "program:日本",
            "program:env.environment",
            "program:env.bogus",
            "fcgi-program:f",
            "mystery",
        ],
        "{:#?}",
        t.untranslated
    );
    // The first program's other values, on their own.
    let (_dir, t) = read_text(&text.replace("numprocs=20000\n", ""));
    let t = t.unwrap();
    let web = &t.sidecars[0];
    assert_eq!(web.0, "web-app");
    assert_eq!(t.sidecars.len(), 2);
    assert_eq!(
        notes(&t)[2..11],
        [
            ("program:Web App.priority", Some(3), Some("99999 is out of range (-10000 to 10000)")),
            ("program:Web App.autostart", Some(4), Some("`maybe` is not true or false")),
            ("program:Web App.autorestart", Some(5), Some("`sometimes` is not true, false or unexpected")),
            (
                "program:Web App.exitcodes",
                Some(6),
                Some("exit codes are from 0 to 255: 256 is out of range (0 to 255)")
            ),
            ("program:Web App.startsecs", Some(7), Some("-1 is out of range (0 to 3155760000)")),
            ("program:Web App.startretries", Some(8), Some("`x` is not a whole number")),
            (
                "program:Web App.stopsignal",
                Some(9),
                Some("unknown signal `NOPE` (expected a name or number such as SIGTERM, TERM, INT, 15)")
            ),
            ("program:Web App.stopwaitsecs", Some(10), Some("`1e9` is not a whole number")),
            ("program:Web App", Some(1), Some("named `web-app` in pm")),
        ]
    );
    let clash = t.untranslated.iter().find(|u| u.key == "program:web-app").unwrap();
    assert_eq!(clash.why.as_deref(), Some("a sidecar named `web-app` comes first in this file"));
}

#[test]
fn environment_pairs_read_as_supervisord_writes_them() {
    let p = |text: &str| pairs(text);
    let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    assert_eq!(p("A=1,B=\"two, three\", C='x\"y'"), Ok(owned(&[("A", "1"), ("B", "two, three"), ("C", "x\"y")])));
    assert_eq!(p("\nA=\"1\",\n\nB=2"), Ok(owned(&[("A", "1"), ("B", "2")])));
    assert_eq!(
        p("PATH=/usr/bin:/bin,URL=http://a/b?c=d"),
        Ok(owned(&[("PATH", "/usr/bin:/bin"), ("URL", "http://a/b?c=d")]))
    );
    assert_eq!(p(""), Ok(vec![]));
    assert!(p("A=\"open").unwrap_err().contains("unclosed quote"));
    assert!(p("=1").unwrap_err().contains("not a variable name"));
    assert!(p("A B=1").unwrap_err().contains("not a variable name"));
}

#[test]
fn a_file_that_is_not_ini_is_an_error() {
    let (dir, t) = read_text("command=sleep 1\n");
    let e = t.unwrap_err().to_string();
    assert_eq!(
        e,
        format!("{}:1: `command=sleep 1` comes before any [section]", dir.path().join("supervisord.conf").display())
    );
    let (_dir, t) = read_text("");
    assert!(t.unwrap().sidecars.is_empty());
}
