//! `port`: one per instance from a range, the first free one of an `auto:` range, `${PORT}` in
//! commands and probes, and clashes named on both sides.

use crate::support::*;
use std::net::TcpListener;

/// `n` consecutive ports that nothing listens on now.
fn free_ports(n: u16) -> u16 {
    let seed =
        std::process::id() as u16 ^ (std::time::SystemTime::now().elapsed().unwrap_or_default().as_nanos() as u16);
    (0..2000u16)
        .map(|i| 20_000 + (seed.wrapping_add(i.wrapping_mul(97)) % 40_000))
        .find(|&base| (base..base + n).all(|p| TcpListener::bind(("0.0.0.0", p)).is_ok()))
        .expect("a run of free ports")
}

fn get(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[test]
fn a_range_gives_each_instance_its_port_in_order_with_its_index() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    let base = free_ports(3);
    // PORT in the environment must not leak into the instances' own `${PORT}`.
    let project = format!(
        "[sidecars.web]\ninstances = 3\nport = \"{base}-{}\"\n\
         command = [\"sh\", \"-c\", \"echo port=$PORT pm_port=$PM_PORT index=$PM_INSTANCE arg=${{PORT}}; \
         exec python3 -m http.server ${{PORT}} --bind 127.0.0.1\"]\n\
         ready = {{ http = \"http://127.0.0.1:${{PORT}}/\" }}\n\
         [sidecars.plain]\ninstances = 2\ncommand = [\"sh\", \"-c\", \"echo index=$PM_INSTANCE; exec sleep 1000\"]\n",
        base + 2
    );
    pm.write("pm.toml", &project);
    let mut start = pm.cmd(&["start", "-f", "pm.toml"]);
    start.env("PORT", "1");
    let out = run_with_deadline(start, std::time::Duration::from_secs(60));
    assert!(out.status.success(), "{:?}", texts(&out));

    for i in 0..3u16 {
        let name = format!("web-{i}");
        let port = base + i;
        assert_eq!(pm.instance(&name)["port"], port, "{name}");
        assert!(get(port), "{name} listens on {port}");
        let first = lines(&pm.log_file(&name, "out")).into_iter().next().unwrap_or_default();
        assert!(first.ends_with(&format!("port={port} pm_port={port} index={i} arg={port}")), "{name}: {first}");
    }
    wait_until("plain-1 printed its index", std::time::Duration::from_secs(10), || {
        lines(&pm.log_file("plain-1", "out")).iter().any(|l| l.ends_with("index=1"))
    });
    let table = pm.ok(&["status"]);
    assert!(table.lines().next().unwrap().contains("PORT"), "{table}");
    let connect: serde_json::Value = serde_json::from_str(&pm.ok(&["connect", "web", "--json"])).unwrap();
    assert_eq!(connect["instances"][1]["port"], base + 1, "{connect}");

    // Stopped, an instance still shows the port its definition gives it.
    pm.ok(&["stop", "web"]);
    assert_eq!(pm.instance("web-2")["port"], base + 2);
    assert!(pm.instance("plain-0").get("port").is_none());
}

#[test]
fn auto_takes_the_first_free_port_at_each_start_and_says_when_none_is_left() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    let base = free_ports(3);
    let _held = TcpListener::bind(("0.0.0.0", base)).unwrap();
    let spec = format!("auto:{base}-{}", base + 2);
    pm.ok(&[
        "map",
        "a",
        "--port",
        &spec,
        "--ready",
        "tcp:127.0.0.1:${PORT}",
        "--",
        "python3",
        "-m",
        "http.server",
        "${PORT}",
        "--bind",
        "127.0.0.1",
    ]);
    pm.ok(&["map", "b", "--port", &spec, "--", "python3", "-m", "http.server", "${PORT}", "--bind", "127.0.0.1"]);
    pm.ok(&["map", "c", "--port", &spec, "--", "sleep", "1000"]);
    pm.ok(&["start", "a"]);
    assert_eq!(pm.instance("a")["port"], base + 1, "the held port is passed over");
    pm.ok(&["start", "b"]);
    assert_eq!(pm.instance("b")["port"], base + 2);
    let err = pm.fails(&["start", "c"]);
    assert!(
        err.contains(&format!(
            "no free port in {spec}: 2 held by pm instances, 0 claimed by other definitions, 1 in use"
        )),
        "{err}"
    );

    // A port is given back when its run ends, and taken again at the next start.
    pm.ok(&["stop", "a"]);
    assert!(pm.instance("a").get("port").is_none(), "an auto port is only shown while it runs");
    pm.ok(&["start", "c"]);
    assert_eq!(pm.instance("c")["port"], base + 1);
}

#[test]
fn a_port_in_use_fails_the_start_naming_who_holds_it() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    let holder = std::process::Command::new("python3")
        .args(["-c", "import socket,time\ns=socket.socket()\ns.bind(('0.0.0.0',0))\ns.listen()\nprint(s.getsockname()[1],flush=True)\ntime.sleep(1000)"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut holder = Guard(holder);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.0.stdout.as_mut().unwrap()), &mut line).unwrap();
    let port = line.trim().to_string();
    pm.ok(&["map", "web", "--port", &port, "--", "sleep", "1000"]);
    let err = pm.fails(&["start", "web"]);
    let pid = holder.0.id();
    assert!(err.contains(&format!("port {port} is in use by pid {pid} (`")), "{err}");
    assert!(err.contains("python3 -c import socket,time s=socket"), "one line: {err}");
    assert_eq!(pm.instance("web")["state"], "failed");
}

/// Kills the child when dropped.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn clashes_between_definitions_are_refused_naming_both() {
    let pm = Pm::new();
    let _daemon = pm.daemon(&[]);
    let base = free_ports(4);
    let project = format!(
        "[sidecars.web]\ncommand = \"sleep 1000\"\ninstances = 4\nport = \"{base}-{}\"\n\n\
         [sidecars.api]\ncommand = \"sleep 1000\"\nport = {}\n",
        base + 3,
        base + 2
    );
    pm.write("pm.toml", &project);
    let err = pm.fails(&["start", "-f", "pm.toml"]);
    assert!(err.contains("pm.toml:4: sidecars.web.port:"), "{err}");
    assert!(err.contains(&format!("port {} is also claimed by `api` (port = {})", base + 2, base + 2)), "{err}");

    pm.ok(&["map", "web", "--instances", "4", "--port", &format!("{base}-{}", base + 3), "--", "sleep", "1000"]);
    let err = pm.fails(&["map", "api", "--port", &(base + 3).to_string(), "--", "sleep", "1000"]);
    assert!(
        err.contains(&format!(
            "port {} is claimed by both `api` (port = {}) and `web` (port = {base}-{})",
            base + 3,
            base + 3,
            base + 3
        )),
        "{err}"
    );
    let err = pm.fails(&["scale", "web", "5"]);
    assert!(err.contains(&format!("port range {base}-{} has 4 ports for 5 instances", base + 3)), "{err}");
    let err = pm.fails(&["map", "one", "--instances", "2", "--port", "9000", "--", "sleep", "1"]);
    assert!(err.contains("port = 9000 is one port for 2 instances"), "{err}");
    for bad in ["0", "70000", "9-1", "auto:5", "http"] {
        let err = pm.fails(&["map", "bad", "--port", bad, "--", "sleep", "1"]);
        assert!(err.contains("--port"), "{bad}: {err}");
    }
}
