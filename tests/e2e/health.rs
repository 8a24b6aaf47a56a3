//! Health checks and the readiness kinds that share their probes, against real servers: a
//! Python http.server that turns to 500, a SIGSTOPped server, commands on the host, and a
//! sidecar's own method through the mesh.

use crate::support::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// An HTTP server on `port` whose /healthz answers 200, or 500 while the file `sick` exists.
const SERVER: &str = r#"
import http.server, os, sys
port, sick = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 500 if os.path.exists(sick) else 200
        body = b"sick\n" if code == 500 else b"all good\n"
        self.send_response(code)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
print("listening", flush=True)
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"#;

#[test]
fn an_http_check_that_turns_to_500_restarts_the_instance_with_the_reason() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let health = url.clone();
    let script = pm.write("srv.py", SERVER);
    let sick = pm.path("srv.sick");
    #[rustfmt::skip]
    pm.ok(&["map", "web", "--ready", &url, "--health", &health, "--health-interval", "200ms", "--backoff-initial", "0s",
        "--", "python3", &script.display().to_string(), &port.to_string(), &sick.display().to_string()]);
    pm.ok(&["start", "web"]);
    let events = Events::follow(&pm, "web");
    let web = pm.instance("web");
    assert_eq!(web["state"], "ready", "{web}");
    let pid = web["pid"].as_u64().unwrap();
    wait_until("a first healthy check", Duration::from_secs(10), || {
        pm.instance("web")["health"]["status"] == "healthy"
    });

    std::fs::write(&sick, "").unwrap();
    wait_until("a restart for being unhealthy", Duration::from_secs(10), || {
        pm.instance("web")["restarts"].as_u64() >= Some(1)
    });
    let want = format!("health check failed 3 times in a row: {url} answered 500 (expected 2xx or 3xx)");
    wait_until("the unhealthy event, with its reason", Duration::from_secs(5), || {
        events.lines().iter().any(|e| e.contains("\"state\":\"unhealthy\"") && e.contains(&want))
    });
    // The new run is a new process, and healthy again once the server is.
    std::fs::remove_file(&sick).unwrap();
    wait_until("the new run is ready and healthy", Duration::from_secs(10), || {
        let web = pm.instance("web");
        web["state"] == "ready" && web["health"]["status"] == "healthy"
    });
    assert_ne!(pm.instance("web")["pid"].as_u64().unwrap(), pid);
}

#[test]
fn a_stopped_server_is_unhealthy_within_its_bound_and_healthy_again_once_it_runs() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    let port = free_port();
    let script = pm.write("srv.py", SERVER);
    // Checks every 300 ms, each at most 300 ms, unhealthy at the 2nd failure in a row: about
    // 0.9 s after the stop at most.
    let project = format!(
        "[sidecars.frozen]\ncommand = [\"python3\", \"{}\", \"{port}\", \"{}\"]\n\
         ready = {{ http = \"http://127.0.0.1:{port}/healthz\" }}\n\
         [sidecars.frozen.health]\nhttp = \"http://127.0.0.1:{port}/healthz\"\ninterval = \"300ms\"\n\
         timeout = \"300ms\"\nfailure_threshold = 2\non_unhealthy = \"report\"\n",
        script.display(),
        pm.path("srv.sick").display()
    );
    pm.write("pm.toml", &project);
    pm.ok(&["start", "-f", &pm.path("pm.toml").display().to_string()]);
    wait_until("healthy", Duration::from_secs(10), || pm.instance("frozen")["health"]["status"] == "healthy");

    let pid = pm.instance("frozen")["pid"].as_i64().unwrap() as i32;
    kill(Pid::from_raw(pid), Signal::SIGSTOP).unwrap();
    let stopped = Instant::now();
    wait_until("unhealthy", Duration::from_secs(10), || pm.instance("frozen")["state"] == "unhealthy");
    let took = stopped.elapsed();
    assert!(took < Duration::from_millis(2000), "detected after {took:?}, bound about 900ms");
    let frozen = pm.instance("frozen");
    assert!(frozen["reason"].as_str().unwrap().contains("no answer within 300ms"), "{frozen}");
    assert_eq!(frozen["ready"], false, "unhealthy is not ready: {frozen}");
    assert_eq!(frozen["pid"].as_i64(), Some(pid as i64), "report only: the same run");

    kill(Pid::from_raw(pid), Signal::SIGCONT).unwrap();
    wait_until("ready again", Duration::from_secs(10), || pm.instance("frozen")["state"] == "ready");
    assert_eq!(pm.instance("frozen")["pid"].as_i64(), Some(pid as i64));
    assert_eq!(pm.instance("frozen")["reason"], serde_json::Value::Null);
}

#[test]
fn exec_readiness_and_an_exec_check_on_the_host() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    let flag = pm.path("up");
    let check = format!("exec:test -e {}", flag.display());
    // Ready once the sidecar has created the flag; unhealthy (reported) once it is gone.
    let script = format!("sleep 0.3; touch {}; exec sleep 1000", flag.display());
    #[rustfmt::skip]
    pm.ok(&["map", "svc", "--ready", &check, "--health", &check, "--health-interval", "100ms", "--on-unhealthy", "report",
        "--", "sh", "-c", &script]);
    let started = Instant::now();
    pm.ok(&["start", "svc"]);
    assert!(started.elapsed() >= Duration::from_millis(300), "ready only once the flag exists");
    assert_eq!(pm.instance("svc")["state"], "ready");
    std::fs::remove_file(&flag).unwrap();
    wait_until("unhealthy", Duration::from_secs(10), || pm.instance("svc")["state"] == "unhealthy");
    let reason = pm.instance("svc")["reason"].as_str().unwrap().to_string();
    assert!(reason.contains(&format!("`test -e {}` exited with 1", flag.display())), "{reason}");
    std::fs::write(&flag, "").unwrap();
    wait_until("ready again", Duration::from_secs(10), || pm.instance("svc")["state"] == "ready");
}

#[test]
fn a_hung_exec_check_is_killed_with_its_children_at_its_timeout() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    // Digits only, as `sleep` must accept it; the leading digits keep it apart from other
    // tests' in this process.
    let tag = format!("03{}", std::process::id());
    let project = format!(
        "[sidecars.h]\ncommand = \"sleep 1000\"\n\
         [sidecars.h.health]\nexec = [\"sh\", \"-c\", \"sleep 3001.{tag} & sleep 3002.{tag}\"]\n\
         interval = \"200ms\"\ntimeout = \"200ms\"\nfailure_threshold = 2\non_unhealthy = \"report\"\n"
    );
    pm.write("pm.toml", &project);
    pm.ok(&["start", "-f", &pm.path("pm.toml").display().to_string()]);
    wait_until("unhealthy", Duration::from_secs(10), || pm.instance("h")["state"] == "unhealthy");
    let reason = pm.instance("h")["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("did not finish within 200ms"), "{reason}");
    // No check outlives its timeout, nor leaves a child behind.
    pm.ok(&["stop", "h"]);
    wait_until("no check process left", Duration::from_secs(5), || !argv_contains(&tag));
}

#[test]
fn an_rpc_check_calls_the_sidecars_own_method_through_the_mesh() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    #[rustfmt::skip]
    pm.ok(&["map", "echo", "--runtime", "task", "--ready", "registered", "--health", "rpc:echo", "--health-interval", "100ms",
        "--", "echo"]);
    #[rustfmt::skip]
    pm.ok(&["map", "mute", "--runtime", "task", "--ready", "registered", "--health", "rpc:nosuch", "--health-interval",
        "100ms", "--on-unhealthy", "report", "--", "echo"]);
    pm.ok(&["start", "echo"]);
    pm.ok(&["start", "mute"]);
    wait_until("echo healthy", Duration::from_secs(10), || pm.instance("echo")["health"]["status"] == "healthy");
    wait_until("mute unhealthy", Duration::from_secs(10), || pm.instance("mute")["state"] == "unhealthy");
    let reason = pm.instance("mute")["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("has no method `nosuch`"), "{reason}");
    assert_eq!(pm.instance("echo")["state"], "ready");
}

#[test]
fn an_exec_check_of_a_container_runs_inside_it() {
    if !crate::containers::engine("an_exec_check_of_a_container_runs_inside_it") {
        return;
    }
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    // The file exists only inside the container: a check on the host could not see it.
    let script = "touch /tmp/up; exec sleep 1000";
    let health = "[sidecars.box.health]\nexec = \"test -e /tmp/up\"\ninterval = \"200ms\"\non_unhealthy = \"report\"\n";
    let project = crate::containers::container("box", script, "ready = { exec = \"test -e /tmp/up\" }\n") + health;
    pm.write("pm.toml", &project);
    pm.ok(&["start", "-f", &pm.path("pm.toml").display().to_string()]);
    wait_until("box healthy", Duration::from_secs(20), || pm.instance("box")["health"]["status"] == "healthy");
    let id = crate::containers::containers_of(None, &crate::containers::daemon_id(pm.home.path()));
    crate::containers::docker(None, &["exec", &id[0].0, "rm", "/tmp/up"]);
    wait_until("box unhealthy", Duration::from_secs(20), || pm.instance("box")["state"] == "unhealthy");
    let reason = pm.instance("box")["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("`test -e /tmp/up` exited with 1"), "{reason}");
    pm.ok(&["stop", "box"]);
}

#[test]
fn bad_checks_are_refused_with_the_key() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    pm.write("pm.toml", "[sidecars.a]\ncommand = \"sleep 1\"\nhealth = { tcp = \"x:1\", interval = \"0s\" }\n");
    let err = pm.fails(&["start", "-f", &pm.path("pm.toml").display().to_string()]);
    assert!(err.contains("pm.toml:3: sidecars.a.health") && err.contains("at least 100ms"), "{err}");
    let err = pm.fails(&["map", "b", "--health", "https://x/", "--", "sleep", "1"]);
    assert!(err.contains("expected tcp:HOST:PORT, an http:// URL"), "{err}");
    let err = pm.fails(&["map", "c", "--ready", "exited", "--health", "tcp:x:1", "--", "true"]);
    assert!(err.contains("not a one-shot"), "{err}");
}

/// `pm events NAME --json` running beside the test, its lines collected.
struct Events {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Events {
    fn follow(pm: &Pm, name: &str) -> Events {
        use std::io::BufRead;
        let mut child = pm.cmd(&["events", name, "--json"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let collected = lines.clone();
        std::thread::spawn(move || out.lines().map_while(Result::ok).for_each(|l| collected.lock().unwrap().push(l)));
        Events { child, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
