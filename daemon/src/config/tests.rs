//! Loading whole project files: formats, errors with file/key/line, interpolation, paths, find.

use super::*;
use pm_protocol::{Readiness, RestartPolicy};
use std::path::Path;
use std::time::Duration;

/// The environment every config test sees.
pub(super) fn env(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/home/ada".into()),
        "PORT" => Some("8080".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

/// Writes `text` as `name` in a fresh directory and loads it.
fn load_file(name: &str, text: &str) -> (tempfile::TempDir, Result<Project, ConfigError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let project = load(&path, &env);
    (dir, project)
}

/// The Display of the error `text` gives as a file called `name`.
fn error(name: &str, text: &str) -> String {
    match parse(Path::new(name), text, &env) {
        Ok(project) => panic!("{name} loaded: {project:?}"),
        Err(e) => e.to_string(),
    }
}

const FULL_TOML: &str = r#"# everything a sidecar can say
[daemon]
listen = ["tcp://127.0.0.1:7700", "unix:///tmp/pm-test.sock"]

[sidecars.db]
command = ["postgres", "-D", "data"]
ready = { tcp = "127.0.0.1:5432" }
ready_timeout = "1m"
restart = "always"
stop_signal = "SIGINT"
stop_timeout = "30s"

[sidecars.web]
runtime = "process"
command = "python3 -m http.server ${PORT}"
cwd = "./site"
env = { GREETING = "hello ${USER:-world}", HOME_DIR = "${HOME}", TAG = "${EMPTY:-latest}" }
env_file = [".env", "/etc/web.env"]
depends_on = ["db"]
autostart = false
instances = 2
stateless = true
restart = "on-failure"
backoff_initial = "250ms"
backoff_max = "1m"
max_restarts = 3
restart_window = "2m"
min_uptime = "1s"
success_exit_codes = [0, 3]
ready = { log = "Serving HTTP on .* port ${PORT}$" }

[sidecars.migrate]
command = "sh -c 'echo $$HOME && exit 0'"
ready = "exited"
restart = "never"
"#;

const FULL_YAML: &str = r#"# everything a sidecar can say
daemon:
  listen: ["tcp://127.0.0.1:7700", "unix:///tmp/pm-test.sock"]
sidecars:
  db:
    command: [postgres, -D, data]
    ready: {tcp: "127.0.0.1:5432"}
    ready_timeout: 1m
    restart: always
    stop_signal: SIGINT
    stop_timeout: 30s
  web:
    runtime: process
    command: python3 -m http.server ${PORT}
    cwd: ./site
    env:
      GREETING: hello ${USER:-world}
      HOME_DIR: ${HOME}
      TAG: ${EMPTY:-latest}
    env_file: [.env, /etc/web.env]
    depends_on: [db]
    autostart: false
    instances: 2
    stateless: true
    restart: on-failure
    backoff_initial: 250ms
    backoff_max: 1m
    max_restarts: 3
    restart_window: 2m
    min_uptime: 1s
    success_exit_codes: [0, 3]
    ready:
      log: "Serving HTTP on .* port ${PORT}$"
  migrate:
    command: "sh -c 'echo $$HOME && exit 0'"
    ready: exited
    restart: never
"#;

const FULL_JSON: &str = r#"{
  "daemon": {"listen": ["tcp://127.0.0.1:7700", "unix:///tmp/pm-test.sock"]},
  "sidecars": {
    "db": {
      "command": ["postgres", "-D", "data"],
      "ready": {"tcp": "127.0.0.1:5432"},
      "ready_timeout": "1m",
      "restart": "always",
      "stop_signal": "SIGINT",
      "stop_timeout": "30s"
    },
    "web": {
      "runtime": "process",
      "command": "python3 -m http.server ${PORT}",
      "cwd": "./site",
      "env": {"GREETING": "hello ${USER:-world}", "HOME_DIR": "${HOME}", "TAG": "${EMPTY:-latest}"},
      "env_file": [".env", "/etc/web.env"],
      "depends_on": ["db"],
      "autostart": false,
      "instances": 2,
      "stateless": true,
      "restart": "on-failure",
      "backoff_initial": "250ms",
      "backoff_max": "1m",
      "max_restarts": 3,
      "restart_window": "2m",
      "min_uptime": "1s",
      "success_exit_codes": [0, 3],
      "ready": {"log": "Serving HTTP on .* port ${PORT}$"}
    },
    "migrate": {
      "command": "sh -c 'echo $$HOME && exit 0'",
      "ready": "exited",
      "restart": "never"
    }
  }
}
"#;

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// What FULL_* load to, in directory `dir`.
fn full_expected(dir: &Path) -> BTreeMap<String, Definition> {
    let mut db = Definition::new(argv(&["postgres", "-D", "data"]));
    db.cwd = Some(dir.to_path_buf());
    db.ready = Readiness::Tcp("127.0.0.1:5432".into());
    db.ready_timeout = Duration::from_secs(60);
    db.restart = RestartPolicy::Always;
    db.stop_signal = "SIGINT".into();
    db.stop_timeout = Duration::from_secs(30);

    let mut web = Definition::new(argv(&["python3", "-m", "http.server", "8080"]));
    web.cwd = Some(dir.join("site"));
    web.env = [("GREETING", "hello world"), ("HOME_DIR", "/home/ada"), ("TAG", "latest")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    web.env_file = vec![dir.join(".env"), "/etc/web.env".into()];
    web.depends_on = vec!["db".into()];
    web.autostart = false;
    web.instances = 2;
    web.stateless = true;
    web.restart = RestartPolicy::OnFailure;
    web.backoff_initial = Duration::from_millis(250);
    web.backoff_max = Duration::from_secs(60);
    web.max_restarts = 3;
    web.restart_window = Duration::from_secs(120);
    web.min_uptime = Duration::from_secs(1);
    web.success_exit_codes = vec![0, 3];
    web.ready = Readiness::Log("Serving HTTP on .* port 8080$".into());

    let mut migrate = Definition::new(argv(&["sh", "-c", "echo $HOME && exit 0"]));
    migrate.cwd = Some(dir.to_path_buf());
    migrate.ready = Readiness::Exited;
    migrate.restart = RestartPolicy::Never;

    [("db", db), ("web", web), ("migrate", migrate)].into_iter().map(|(name, def)| (name.to_string(), def)).collect()
}

fn assert_full(name: &str, text: &str) {
    let (dir, project) = load_file(name, text);
    let project = project.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(project.path, dir.path().join(name));
    let listen = argv(&["tcp://127.0.0.1:7700", "unix:///tmp/pm-test.sock"]);
    assert_eq!(project.daemon, DaemonSection { listen });
    let expected = full_expected(dir.path());
    for (name, def) in &expected {
        assert_eq!(project.sidecars.get(name), Some(def), "sidecar {name}");
    }
    assert_eq!(project.sidecars.len(), expected.len());
}

#[test]
fn full_toml_loads_every_field() {
    assert_full("pm.toml", FULL_TOML);
}

#[test]
fn full_yaml_loads_every_field() {
    assert_full("pm.yaml", FULL_YAML);
    assert_full("pm.yml", FULL_YAML);
}

#[test]
fn full_json_loads_every_field() {
    assert_full("pm.json", FULL_JSON);
}

#[test]
fn minimal_files_get_defaults_and_the_project_directory_as_cwd() {
    let (dir, project) = load_file("pm.toml", "[sidecars.web]\ncommand = 'sleep 10'\n");
    let project = project.unwrap();
    let mut want = Definition::new(argv(&["sleep", "10"]));
    want.cwd = Some(dir.path().to_path_buf());
    assert_eq!(project.sidecars["web"], want);
    assert_eq!(project.daemon, DaemonSection::default());

    let (_dir, empty) = load_file("pm.yaml", "");
    assert!(empty.unwrap().sidecars.is_empty(), "an empty YAML file is an empty project");
}

const COMMAND_FIELDS: &str = "expected one of `runtime`, `command`, ";

#[test]
fn unknown_keys_name_file_key_and_line() {
    let toml = "[sidecars.web]\ncommand = 'x'\n\ncomand = 'y'\n";
    let e = error("pm.toml", toml);
    let want = format!("pm.toml:4: sidecars.web: unknown field `comand`, {COMMAND_FIELDS}");
    assert!(e.starts_with(&want), "{e}");

    let yaml = "sidecars:\n  web:\n    command: x\n\n    comand: y\n";
    let e = error("pm.yaml", yaml);
    let want = format!("pm.yaml:5: sidecars.web: unknown field `comand`, {COMMAND_FIELDS}");
    assert!(e.starts_with(&want), "{e}");

    let json = "{\"sidecars\": {\"web\": {\n  \"command\": \"x\",\n  \"comand\": \"y\"}}}";
    let e = error("pm.json", json);
    let want = format!("pm.json:3: sidecars.web: unknown field `comand`, {COMMAND_FIELDS}");
    assert!(e.starts_with(&want), "{e}");
}

#[test]
fn unknown_top_level_and_daemon_keys_are_errors() {
    assert_eq!(
        error("pm.toml", "[sidecars.web]\ncommand = 'x'\n[sidecar.db]\ncommand = 'y'\n"),
        "pm.toml:3: unknown field `sidecar`, expected `daemon` or `sidecars`"
    );
    assert_eq!(
        error("pm.toml", "[daemon]\nlisten = []\nlisen = ['tcp://h:1']\n"),
        "pm.toml:3: daemon: unknown field `lisen`, expected `listen`"
    );
    assert_eq!(
        error("pm.yaml", "daemon:\n  listen: [\"tcp://a:1\", \"nope\"]\n"),
        "pm.yaml:2: daemon.listen[1]: invalid endpoint `nope`: no scheme (use unix:///path, \
         tcp://host:port, tls://host:port, ws://host:port/ or wss://host:port/)"
    );
}

#[test]
fn bad_enum_values_name_the_line() {
    let toml = "[sidecars.web]\ncommand = 'x'\n\n\n\n\nrestart = 'sometimes'\n";
    assert_eq!(
        error("pm.toml", toml),
        "pm.toml:7: sidecars.web.restart: unknown variant `sometimes`, expected one of \
         `always`, `on-failure`, `never`"
    );
    let yaml = "sidecars:\n  web:\n    command: x\n    restart: sometimes\n";
    assert_eq!(
        error("pm.yaml", yaml),
        "pm.yaml:4: sidecars.web.restart: unknown variant `sometimes`, expected one of \
         `always`, `on-failure`, `never`"
    );
    let json = "{\"sidecars\": {\"web\": {\"command\": \"x\",\n\"restart\": \"sometimes\"}}}";
    assert_eq!(
        error("pm.json", json),
        "pm.json:2: sidecars.web.restart: unknown variant `sometimes`, expected one of \
         `always`, `on-failure`, `never`"
    );
}

#[test]
fn bad_durations_name_key_and_line() {
    let toml = "[sidecars.web]\ncommand = 'x'\nstop_timeout = 'soon'\n";
    let e = error("pm.toml", toml);
    let want = "pm.toml:3: sidecars.web.stop_timeout: invalid duration `soon` (";
    assert!(e.starts_with(want) && e.ends_with("use e.g. `100ms`, `10s`, `2m`"), "{e}");

    // serde_yaml would point at the start of `web`'s mapping (line 3); the key is on line 5.
    let yaml = "sidecars:\n  web:\n    command: x\n    restart: always\n    stop_timeout: soon\n";
    let e = error("pm.yaml", yaml);
    let want = "pm.yaml:5: sidecars.web.stop_timeout: invalid duration `soon` (";
    assert!(e.starts_with(want) && e.ends_with("use e.g. `100ms`, `10s`, `2m`"), "{e}");

    let json = "{\"sidecars\": {\"web\": {\"command\": \"x\",\n\"stop_timeout\": \"soon\"}}}";
    let e = error("pm.json", json);
    let want = "pm.json:2: sidecars.web.stop_timeout: invalid duration `soon` (";
    assert!(e.starts_with(want), "{e}");
}

#[test]
fn errors_inside_nested_values_have_the_full_key_path() {
    assert_eq!(
        error("pm.toml", "[sidecars.web]\ncommand = 'x'\n[sidecars.web.env]\nA = 'a'\nB = 2\n"),
        "pm.toml:5: sidecars.web.env.B: invalid type: integer `2`, expected a string"
    );
    assert_eq!(
        error("pm.yaml", "sidecars:\n  web:\n    command: x\n    env:\n      B: [1]\n"),
        "pm.yaml:5: sidecars.web.env.B: invalid type: sequence, expected a string"
    );
    assert_eq!(
        error("pm.toml", "[sidecars.web]\ncommand = 'x'\nready = { lgo = 'up' }\n"),
        "pm.toml:3: sidecars.web.ready: unknown variant `lgo`, expected one of `started`, \
         `log`, `tcp`, `http`, `exec`, `registered`, `exited`"
    );
    assert_eq!(
        error("pm.yaml", "sidecars:\n  web:\n    command: x\n    ready:\n      lgo: up\n"),
        "pm.yaml:5: sidecars.web.ready: unknown variant `lgo`, expected one of `started`, \
         `log`, `tcp`, `http`, `exec`, `registered`, `exited`"
    );
    assert_eq!(
        error("pm.json", "{\"sidecars\": {\"web\": {\"command\": \"x\",\n\"ready\": {\"log\": 1}}}}"),
        "pm.json:2: sidecars.web.ready.log: invalid type: integer `1`, expected a string"
    );
    assert_eq!(
        error("pm.toml", "[sidecars.web]\ncommand = 5\n"),
        "pm.toml:2: sidecars.web.command: invalid type: integer `5`, expected a command line (a \
         string) or an argv array of strings"
    );
    assert_eq!(
        error("pm.yaml", "sidecars:\n  web:\n    autostart: true\n    command: \"echo 'x\"\n"),
        "pm.yaml:4: sidecars.web.command: command `echo 'x`: missing closing quote"
    );
    assert_eq!(
        error("pm.toml", "[sidecars.web]\n"),
        "pm.toml:1: sidecars.web: missing `command` (what to run; a container gives `[docker] image` instead)"
    );
}

#[test]
fn a_key_given_twice_is_an_error_with_its_line_in_every_format() {
    let e = error("pm.json", "{\"sidecars\": {\"web\": {\"command\": \"x\",\n\"command\": \"y\"}}}");
    assert!(e.starts_with("pm.json:2: ") && e.contains("the key `command` is given twice"), "{e}");
    let e = error("pm.yaml", "sidecars:\n  web:\n    command: x\n    command: y\n");
    assert!(e.starts_with("pm.yaml:") && e.contains("`command`"), "{e}");
    let e = error("pm.toml", "[sidecars.web]\ncommand = 'x'\ncommand = 'y'\n");
    assert!(e.starts_with("pm.toml:3: "), "{e}");
}

#[test]
fn syntax_errors_have_a_line() {
    let e = error("pm.toml", "[sidecars.web]\ncommand = 'x'\nrestart = \n");
    assert!(e.starts_with("pm.toml:3: "), "{e}");
    let e = error("pm.yaml", "sidecars:\n  web:\n    command: x\n   bad: [\n");
    assert!(e.starts_with("pm.yaml:4: "), "{e}");
    let e = error("pm.json", "{\"sidecars\": {\n\"web\": {\"command\": \"x\",}}}");
    assert!(e.starts_with("pm.json:2: "), "{e}");
    assert_eq!(error("pm.json", "{\"sidecars\": {}} {}"), "pm.json:1: trailing characters");
    assert_eq!(
        error("pm.json", "[1]"),
        "pm.json:1: invalid type: sequence, expected a table with `sidecars` (and optionally \
         `daemon`)"
    );
}

#[test]
fn bad_names_are_errors_naming_file_and_key() {
    let want = "invalid name `Web`: names match [a-z0-9][a-z0-9_-]* (lowercase, no dots)";
    assert_eq!(
        error("pm.toml", "[sidecars.web]\ncommand = 'x'\n\n[sidecars.Web]\ncommand = 'y'\n"),
        format!("pm.toml:4: sidecars.Web: {want}")
    );
    assert_eq!(
        error("pm.yaml", "sidecars:\n  web:\n    command: x\n  Web:\n    command: y\n"),
        format!("pm.yaml:4: sidecars.Web: {want}")
    );
    assert_eq!(
        error("pm.json", "{\"sidecars\": {\n\"Web\": {\"command\": \"x\"}}}"),
        format!("pm.json:2: sidecars.Web: {want}")
    );
    assert_eq!(
        error("pm.toml", "[sidecars.pm]\ncommand = 'x'\n"),
        "pm.toml:1: sidecars.pm: invalid name `pm`: `pm` is reserved for the daemon itself"
    );
    assert_eq!(
        error("pm.toml", "[sidecars.\"a.b\"]\ncommand = 'x'\n"),
        "pm.toml:1: sidecars.a.b: invalid name `a.b`: names match [a-z0-9][a-z0-9_-]* \
         (lowercase, no dots)"
    );
}

#[test]
fn instances_must_be_from_one_to_the_limit() {
    assert_eq!(
        error("pm.toml", "[sidecars.web]\ncommand = 'x'\ninstances = 100000\n"),
        "pm.toml:3: sidecars.web.instances: must be from 1 to 10000 (got 100000)"
    );
    assert_eq!(
        error("pm.toml", "[sidecars.web]\ncommand = 'x'\ninstances = 0\n"),
        "pm.toml:3: sidecars.web.instances: must be from 1 to 10000 (got 0)"
    );
    assert_eq!(
        error("pm.yaml", "sidecars:\n  web:\n    command: x\n    instances: 0\n"),
        "pm.yaml:4: sidecars.web.instances: must be from 1 to 10000 (got 0)"
    );
    assert_eq!(
        error("pm.json", "{\"sidecars\": {\"web\": {\"command\": \"x\",\n\"instances\": 0}}}"),
        "pm.json:2: sidecars.web.instances: must be from 1 to 10000 (got 0)"
    );
}

#[test]
fn interpolation_reaches_every_string_of_a_sidecar() {
    let toml = r#"
[daemon]
listen = ["tcp://127.0.0.1:${PM_PORT:-7700}"]
[sidecars.web]
command = ["${NOPE:-node}", "${HOME}/app.js", "--tag=${EMPTY:-none}", "$$1"]
cwd = "${HOME}/site"
env = { URL = "http://${HOST:-localhost}:${PORT}", PRICE = "$$5", RAW = "$HOME" }
env_file = ["${HOME}/.env"]
ready = { tcp = "${HOST:-127.0.0.1}:${PORT}" }
stop_signal = "${STOP:-SIGINT}"
[sidecars.log]
command = "tail -f x"
ready = { log = "^up on ${PORT}$" }
"#;
    let project = parse(Path::new("/p/pm.toml"), toml, &env).unwrap();
    assert_eq!(project.daemon.listen, ["tcp://127.0.0.1:7700"]);
    let web = &project.sidecars["web"];
    assert_eq!(web.command, ["node", "/home/ada/app.js", "--tag=none", "$1"]);
    assert_eq!(web.cwd.as_deref(), Some(Path::new("/home/ada/site")));
    assert_eq!(web.env["URL"], "http://localhost:8080");
    assert_eq!(web.env["PRICE"], "$5");
    assert_eq!(web.env["RAW"], "$HOME", "a bare $NAME is not interpolated");
    assert_eq!(web.env_file, [Path::new("/home/ada/.env")]);
    assert_eq!(web.ready, Readiness::Tcp("127.0.0.1:8080".into()));
    assert_eq!(web.stop_signal, "SIGINT");
    assert_eq!(project.sidecars["log"].ready, Readiness::Log("^up on 8080$".into()));
}

#[test]
fn per_instance_variables_are_kept_for_each_start() {
    let toml = r#"
[sidecars.web]
command = "serve --port ${PORT} --id ${PM_INSTANCE} --name ${PM_NAME} --home ${HOME}"
port = "4000-4001"
instances = 2
ready = { log = "^up on ${PORT}$" }
[sidecars.plain]
command = "serve --port ${PORT} --id ${PM_INSTANCE}"
"#;
    let project = parse(Path::new("/p/pm.toml"), toml, &env).unwrap();
    let web = &project.sidecars["web"];
    assert_eq!(
        web.command,
        ["serve", "--port", "${PORT}", "--id", "${PM_INSTANCE}", "--name", "${PM_NAME}", "--home", "/home/ada"]
    );
    assert_eq!(web.ready, Readiness::Log("^up on ${PORT}$".into()));
    let plain = &project.sidecars["plain"];
    assert_eq!(
        plain.command,
        ["serve", "--port", "8080", "--id", "${PM_INSTANCE}"],
        "no `port`: PORT is the environment's"
    );
    let err = error("pm.toml", "[sidecars.web]\ncommand = \"x\"\ninstances = 3\nport = \"4000-4001\"\n");
    assert_eq!(err, "pm.toml:4: sidecars.web.port: port range 4000-4001 has 2 ports for 3 instances");
}

#[test]
fn unset_variables_without_default_name_file_key_line_and_variable() {
    let toml = "[sidecars.web]\ncommand = 'x'\n\n[sidecars.web.env]\nDB_URL = '${DB_URL}'\n";
    assert_eq!(
        error("pm.toml", toml),
        "pm.toml:5: sidecars.web.env.DB_URL: variable `DB_URL` is not set; set it, or give a \
         default with `${DB_URL:-default}`"
    );
    let yaml = "sidecars:\n  web:\n    command: [run, \"--db=${DB_URL}\"]\n";
    assert_eq!(
        error("pm.yaml", yaml),
        "pm.yaml:3: sidecars.web.command[1]: variable `DB_URL` is not set; set it, or give a \
         default with `${DB_URL:-default}`"
    );
    let json = "{\"sidecars\": {\"web\": {\"command\": \"x\",\n \"ready\": {\"tcp\": \"${H}:1\"}}}}";
    assert_eq!(
        error("pm.json", json),
        "pm.json:2: sidecars.web.ready.tcp: variable `H` is not set; set it, or give a default \
         with `${H:-default}`"
    );
    assert_eq!(
        error("pm.toml", "[daemon]\nlisten = ['tcp://h:${P}']\n"),
        "pm.toml:2: daemon.listen[0]: variable `P` is not set; set it, or give a default with \
         `${P:-default}`"
    );
}

#[test]
fn unterminated_and_empty_interpolations_are_errors() {
    assert_eq!(
        error("pm.toml", "[sidecars.web]\ncommand = 'x'\ncwd = '${HOME/site'\n"),
        "pm.toml:3: sidecars.web.cwd: unterminated `${` in `${HOME/site`; close it with `}`, or \
         write `$$` for a literal `$`"
    );
    assert_eq!(
        error("pm.toml", "[sidecars.web]\ncommand = ['${EMPTY}', 'x']\n"),
        "pm.toml:2: sidecars.web.command[0]: the program is empty after interpolation"
    );
}

#[test]
fn relative_paths_are_anchored_at_the_project_directory() {
    let toml = "[sidecars.web]\ncommand = 'x'\ncwd = 'site/../www'\n\
                env_file = ['./.env', 'conf/web.env', '/etc/abs.env']\n\
                [sidecars.abs]\ncommand = 'x'\ncwd = '/srv'\n";
    let (dir, project) = load_file("pm.toml", toml);
    let project = project.unwrap();
    let web = &project.sidecars["web"];
    assert_eq!(web.cwd, Some(dir.path().join("site/../www")));
    let env_files = [dir.path().join(".env"), dir.path().join("conf/web.env"), "/etc/abs.env".into()];
    assert_eq!(web.env_file, env_files);
    assert_eq!(project.sidecars["abs"].cwd.as_deref(), Some(Path::new("/srv")));

    // A relative project path is made absolute too.
    let project = parse(Path::new("sub/pm.toml"), "[sidecars.web]\ncommand = 'x'\n", &env).unwrap();
    let cwd = std::env::current_dir().unwrap().join("sub");
    assert_eq!(project.sidecars["web"].cwd, Some(cwd.clone()));
    assert_eq!(project.path, cwd.join("pm.toml"));
}

#[test]
fn find_prefers_toml_then_yaml_then_yml_then_json() {
    let dir = tempfile::tempdir().unwrap();
    let e = find(dir.path()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "no project file in {}: looked for pm.toml, pm.yaml, pm.yml, pm.json; create one \
             there, or name one with `pm start -f FILE`",
            dir.path().display()
        )
    );
    std::fs::create_dir(dir.path().join("pm.toml")).unwrap(); // a directory is not a file
    for name in ["pm.json", "pm.yml", "pm.yaml"] {
        std::fs::write(dir.path().join(name), "").unwrap();
        assert_eq!(find(dir.path()).unwrap(), dir.path().join(name));
    }
    std::fs::remove_dir(dir.path().join("pm.toml")).unwrap();
    std::fs::write(dir.path().join("pm.toml"), "").unwrap();
    assert_eq!(find(dir.path()).unwrap(), dir.path().join("pm.toml"));
}

#[test]
fn unreadable_files_and_unknown_formats_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("pm.toml");
    let e = load(&missing, &env).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert_eq!(e.to_string(), format!("cannot read {}: No such file or directory (os error 2)", missing.display()));
    let e = load(Path::new("project.ini"), &env).unwrap_err();
    assert_eq!(e.to_string(), "project.ini: unknown project file format; name it *.toml, *.yaml, *.yml or *.json");
}

#[test]
fn values_past_their_limits_name_key_and_line() {
    for key in ["backoff_initial", "backoff_max", "restart_window", "min_uptime", "stop_timeout", "ready_timeout"] {
        let toml = format!("[sidecars.web]\ncommand = 'x'\n{key} = '500000000000y'\n");
        assert_eq!(
            error("pm.toml", &toml),
            format!("pm.toml:3: sidecars.web.{key}: duration `500000000000y`: too long: at most 100years")
        );
    }
    let long = "a".repeat(1024);
    let e = error("pm.toml", &format!("[sidecars.web]\ncommand = 'x'\n\n[sidecars.{long}]\ncommand = 'y'\n"));
    assert!(e.starts_with("pm.toml:4: sidecars.aaaa"), "{e}");
    assert!(e.ends_with(": invalid name `aaaaaaaaaaaaaaaa…`: 1024 bytes long; names are at most 128"), "{e}");
}

#[test]
fn deep_nesting_is_refused_at_once_in_every_format() {
    for (name, text) in [
        ("pm.yaml", format!("sidecars:\n  web:\n    command: {}", "[".repeat(100_000))),
        ("pm.json", format!("{{\"sidecars\": {}", "{\"a\": ".repeat(100_000))),
        ("pm.toml", format!("[sidecars.web]\ncommand = {}", "[".repeat(100_000))),
    ] {
        let started = std::time::Instant::now();
        let e = error(name, &text);
        assert!(e.contains("brackets nested more than 100 deep"), "{name}: {e}");
        assert!(started.elapsed() < Duration::from_secs(1), "{name}: {:?}", started.elapsed());
    }
    let quoted = format!("[sidecars.web]\ncommand = [\"echo\", \"{}\"]\n", "[".repeat(500));
    assert!(parse(Path::new("pm.toml"), &quoted, &env).is_ok(), "brackets in a string are text");
}
