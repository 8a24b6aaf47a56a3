use super::*;
use crate::discover::sources::testing::{Subject, listed, names, sidecar, strings};

pub const SUBJECT: Subject = Subject { read, file: "compose.yaml", fixture: "compose" };
use pm_protocol::{Health, Probe};
use std::path::{Path, PathBuf};

fn busybox(dir: &Path) -> DockerSpec {
    DockerSpec {
        image: "pm-test-busybox:latest".into(),
        pull: PullPolicy::Never,
        init: true,
        volumes: vec![format!("{}:/shop", dir.display())],
        labels: [("com.example.stack".to_string(), "shop".to_string())].into(),
        ..DockerSpec::default()
    }
}

fn health(argv: &[&str], interval: u64, timeout: u64, retries: u32) -> Health {
    Health {
        probe: Probe::Exec(strings(argv)),
        interval: Duration::from_secs(interval),
        timeout: Duration::from_secs(timeout),
        initial_delay: Duration::ZERO,
        failure_threshold: retries,
        success_threshold: 1,
        on_unhealthy: OnUnhealthy::Report,
    }
}

#[test]
fn the_fixture_translates_service_by_service() {
    let (dir, t) = SUBJECT.fixture();
    assert_eq!(names(&t), ["db", "migrate", "web", "debug"]);

    let mut db = docker_definition();
    db.command =
        strings(&["sh", "-c", "sleep 1; echo db ready >> /shop/record.log; touch /tmp/ready; exec sleep 3600"]);
    db.docker = Some(DockerSpec { network: Some("none".into()), ..busybox(&dir) });
    db.env =
        [("POSTGRES_DB", "shop"), ("POSTGRES_PASSWORD", "secret")].map(|(k, v)| (k.to_string(), v.to_string())).into();
    db.health = Some(health(&["test", "-f", "/tmp/ready"], 1, 2, 10));
    db.ready = Readiness::Exec(strings(&["test", "-f", "/tmp/ready"]));
    db.ready_timeout = Duration::from_secs(30);
    db.restart = RestartPolicy::Always;
    db.max_restarts = u32::MAX;
    db.backoff_max = Duration::from_secs(60);
    db.min_uptime = Duration::from_secs(10);
    db.stop_signal = "SIGINT".into();
    db.stop_timeout = Duration::from_secs(5);
    db.cwd = Some(dir.clone());
    assert_eq!(t.sidecars[0].1, db);

    let mut migrate = docker_definition();
    migrate.command = strings(&["sh", "-c", "echo migrated >> /shop/record.log"]);
    migrate.docker = Some(DockerSpec { network: Some("none".into()), ..busybox(&dir) });
    migrate.depends_on = strings(&["db"]);
    migrate.ready = Readiness::Exited;
    migrate.cwd = Some(dir.clone());
    assert_eq!(t.sidecars[1].1, migrate);

    let mut web = docker_definition();
    web.command = strings(&["sh", "-c", "echo web >> /shop/record.log && exec httpd -f -p 8080 -h /shop"]);
    web.docker = Some(DockerSpec {
        workdir: Some("/shop".into()),
        ports: strings(&["127.0.0.1::8080", "127.0.0.1::8443/tcp"]),
        ..busybox(&dir)
    });
    web.env_file = vec![dir.join("shop.env")];
    web.env = [("MODE".to_string(), "production".to_string())].into();
    web.depends_on = strings(&["migrate", "db"]);
    let wget = ["/bin/sh", "-c", "wget -q -O /dev/null http://127.0.0.1:8080/compose.yaml"];
    web.health = Some(health(&wget, 2, 30, 3));
    web.max_memory = Some(64 << 20);
    web.restart = RestartPolicy::OnFailure;
    web.max_restarts = 3;
    web.restart_window = pm_protocol::duration::MAX;
    web.backoff_max = Duration::from_secs(60);
    web.min_uptime = Duration::from_secs(10);
    web.cwd = Some(dir.clone());
    assert_eq!(t.sidecars[2].1, web);

    let mut debug = docker_definition();
    debug.command = strings(&["sleep", "3600"]);
    debug.docker = Some(busybox(&dir));
    debug.autostart = false;
    debug.cwd = Some(dir.clone());
    assert_eq!(t.sidecars[3].1, debug);

    assert_eq!(
        listed(&t),
        [
            "name (4): pm names containers after their sidecars",
            "services.web.build (43): pm does not build images: `image` is run as it is",
            "services.web.volumes[1] (53): `cache:/var/cache/shop`: named volume `cache`: pm mounts host paths only",
            "services.web.environment[1] (57): no value, and not set in the environment: left out",
            "services.web.depends_on.db.restart (63): pm does not restart a dependent with it",
            "services.web.deploy.resources.limits.cpus (72)",
            "services.web.networks (74): pm puts containers on the engine's default network",
            "services.web.container_name (75): pm names containers after their instances",
            "services.debug.profiles (80): started only with its profile in compose: autostart = false (`pm start` it by name)",
            "services.assets.build (83): pm runs images, it does not build them: build it and name it in `image`",
            "networks (86): pm puts containers on the engine's default network",
            "volumes (89): named volumes: pm mounts host paths only",
        ]
    );
}

fn docker(t: &Translated, i: usize) -> &DockerSpec {
    t.sidecars[i].1.docker.as_ref().unwrap()
}

#[test]
fn files_that_are_not_compose_files_are_errors_that_say_where() {
    SUBJECT.errors(&[
        ("", "expected a compose file (a mapping with `services`), found nothing"),
        ("- a\n", "expected a compose file (a mapping with `services`), found a list"),
        ("version: '3'\n", "no `services`: not a compose file"),
        ("services: [a]\n", "services: expected a mapping of services, found a list"),
        ("services:\n  web: {image: x\n", "did not find expected"),
    ]);
}

#[test]
fn ports_short_long_and_ranges() {
    let (t, listed) = SUBJECT.one(
        "services:\n  web:\n    image: x\n    ports:\n      - 80\n      - 8080:80\n      - 9000-9001:90-91/udp\n      - \"[::1]:53:53/udp\"\n      - 127.0.0.1:5000-5001:5000-5001\n      - 3000-3001\n      - target: 80\n        published: 8081\n        host_ip: \"::1\"\n        mode: host\n      - 80/icmp\n      - 1-9:1\n      - a:b:c:d\n      - 0:80\n",
    );
    assert_eq!(
        docker(&t, 0).ports,
        strings(&[
            "80",
            "8080:80",
            "9000:90/udp",
            "9001:91/udp",
            "[::1]:53:53/udp",
            "127.0.0.1:5000:5000",
            "127.0.0.1:5001:5001",
            "3000",
            "3001",
            "[::1]:8081:80"
        ])
    );
    assert_eq!(
        listed,
        [
            "services.web.ports[6].mode (14)",
            "services.web.ports[7] (15): `80/icmp`: protocol `icmp` (expected tcp, udp or sctp)",
            "services.web.ports[8] (16): `1-9:1`: host and container port ranges differ in length (pm publishes fixed ports)",
            "services.web.ports[9] (17): `a:b:c:d`: an IPv6 address goes in brackets: `[::1]:8080:80`",
            "services.web.ports[10] (18): `0:80`: `0` is not a port",
        ]
    );
    let (_, listed) = SUBJECT.one("services:\n  web:\n    image: x\n    ports: [\"1-2000\"]\n");
    assert_eq!(listed, ["services.web.ports[0] (4): `1-2000`: more than 1024 ports"]);
}

#[test]
fn volumes_bind_host_paths_only() {
    let (t, listed) = SUBJECT.one(
        "services:\n  web:\n    image: x\n    volumes:\n      - ./data:/data:ro,z,cached\n      - /etc/hosts:/h\n      \
         - /anon\n      - named:/n\n      - ./x:/x:nocopy\n      - type: bind\n        source: ../up\n        \
         target: /up\n        read_only: true\n        bind: {propagation: rslave, create_host_path: true}\n      \
         - {type: volume, source: v, target: /v}\n      - {type: tmpfs, target: /t}\n",
    );
    assert_eq!(
        docker(&t, 0).volumes,
        strings(&["/srv/app/data:/data:ro,z", "/etc/hosts:/h", "/srv/app/../up:/up:ro,rslave"])
    );
    assert_eq!(
        listed,
        [
            "services.web.volumes[2] (7): `/anon`: an anonymous volume: pm mounts host paths only",
            "services.web.volumes[3] (8): `named:/n`: named volume `named`: pm mounts host paths only",
            "services.web.volumes[4] (9): `./x:/x:nocopy`: mount option `nocopy`",
            "services.web.volumes[6] (15): `v` volume: pm mounts host paths only",
            "services.web.volumes[7] (16): a `tmpfs` mount: pm mounts host paths only",
        ]
    );
}

#[test]
fn restart_policies_follow_dockers() {
    let restart = |policy: &str| {
        let (t, listed) = SUBJECT.one(&format!("services:\n  w:\n    image: x\n    restart: {policy}\n"));
        let d = &t.sidecars[0].1;
        (d.restart, d.max_restarts, d.restart_window == pm_protocol::duration::MAX, listed.len())
    };
    assert_eq!(restart("no"), (RestartPolicy::Never, 5, false, 0));
    assert_eq!(restart("always"), (RestartPolicy::Always, u32::MAX, false, 0));
    assert_eq!(restart("unless-stopped"), (RestartPolicy::Always, u32::MAX, false, 0));
    assert_eq!(restart("on-failure"), (RestartPolicy::OnFailure, u32::MAX, false, 0));
    assert_eq!(restart("on-failure:2"), (RestartPolicy::OnFailure, 2, true, 0));
    assert_eq!(restart("on-failure:x"), (RestartPolicy::Never, 5, false, 1));
    assert_eq!(restart("sometimes"), (RestartPolicy::Never, 5, false, 1));
    assert_eq!(restart("on-failure:99999999999"), (RestartPolicy::Never, 5, false, 1));
    let (t, listed) = SUBJECT.one(
        "services:\n  w:\n    image: x\n    deploy:\n      restart_policy: {condition: on-failure, max_attempts: 4, \
         delay: 5s}\n      placement: {}\n",
    );
    assert_eq!((t.sidecars[0].1.restart, t.sidecars[0].1.max_restarts), (RestartPolicy::OnFailure, 4));
    assert_eq!(listed, ["services.w.deploy.restart_policy.delay (5)", "services.w.deploy.placement (6)"]);
}

#[test]
fn environment_interpolation_and_names() {
    // PATH is set wherever tests run.
    let path = std::env::var("PATH").unwrap();
    let (t, listed) = SUBJECT.one(
        "x-tag: &tag x:${NOT_SET_PM_X}\nservices:\n  Web.App:\n    image: ${PATH}\n    \
         command: echo $$HOME ${PM_NOPE_PM:-dflt}\n    environment:\n      A: 1\n      B: true\n      \
         PATH:\n      D: ${PM_NOPE_PM}\n      E: [x]\n    labels: [a=b, c]\n  web-app:\n    \
         image: x\n  日本:\n    image: x\n",
    );
    assert_eq!(t.sidecars.len(), 1);
    let (name, def) = &t.sidecars[0];
    assert_eq!(name, "web-app");
    assert_eq!(def.docker.as_ref().unwrap().image, path);
    assert_eq!(def.command, strings(&["echo", "$HOME", "dflt"]));
    let env: Vec<(&str, &str)> = def.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(env, [("A", "1"), ("B", "true"), ("D", ""), ("PATH", path.as_str())]);
    let labels = &def.docker.as_ref().unwrap().labels;
    assert_eq!((labels["a"].as_str(), labels["c"].as_str()), ("b", ""));
    assert_eq!(
        listed,
        [
            "services.Web.App (3): named `web-app` in pm",
            "services.Web.App.environment.D (10): variable `PM_NOPE_PM` is not set: empty here",
            "services.Web.App.environment.E (11): expected a string, found a list",
            "services.web-app (13): its pm name `web-app` is another's in this file: left out",
            "services.日本 (15): `日本` makes no pm name (letters, digits, `-` and `_`)",
        ]
    );
}

#[test]
fn conditions_become_the_dependencys_readiness() {
    let (t, listed) = SUBJECT.one(
        "services:\n  db:\n    image: x\n    healthcheck:\n      test: pg_isready\n      start_period: 1m\n  \
         seed:\n    image: x\n  cache:\n    image: x\n    healthcheck: {test: [NONE]}\n  api:\n    image: x\n    \
         depends_on:\n      db: {condition: service_healthy}\n      seed: {condition: service_completed_successfully}\n      \
         cache: {condition: service_healthy}\n      ghost: {condition: service_started}\n  web:\n    image: x\n    \
         depends_on: [db, api, api]\n",
    );
    let def = |name: &str| sidecar(&t, name);
    assert_eq!(def("db").ready, Readiness::Exec(strings(&["/bin/sh", "-c", "pg_isready"])));
    assert_eq!(def("db").ready_timeout, Duration::from_secs(60 + 3 * 60));
    assert_eq!(def("seed").ready, Readiness::Exited);
    assert_eq!((&def("cache").ready, &def("cache").health), (&Readiness::Started, &None));
    assert_eq!(def("api").depends_on, strings(&["db", "seed", "cache"]));
    assert_eq!(def("web").depends_on, strings(&["db", "api"]));
    assert_eq!(
        listed,
        [
            "services.api.depends_on.cache.condition (17): `cache` has no healthcheck pm runs: waits for it to start",
            "services.api.depends_on.ghost (18): no service `ghost` is translated",
            "services.web.depends_on[0] (21): pm waits until `db` is ready (exec `/bin/sh -c pg_isready`), as for all its dependents",
        ]
    );
}

#[test]
fn odd_values_are_reported_never_panics() {
    let (t, listed) = SUBJECT.one(
        "services:\n  a:\n    image: x\n    command: \"echo 'open\"\n    entrypoint: []\n    healthcheck:\n      \
         test: [CMD]\n      interval: 1 minute\n      retries: 99999\n    stop_signal: SIGNOPE\n    \
         stop_grace_period: 99999999999h\n    mem_limit: 1k\n    scale: 100000\n    deploy: {replicas: 0}\n    \
         environment: 5\n    network_mode: service:db\n    pull_policy: daily\n    ports: 80\n    env_file:\n      \
         - path: missing.env\n        required: false\n      - other.env\n    x-note: ignored\n    frobnicate: 1\n  \
         b: [not, a, map]\n",
    );
    let d = &t.sidecars[0].1;
    assert_eq!((d.command.len(), d.instances, d.autostart), (0, 1, false));
    assert_eq!(d.env_file, [PathBuf::from("/srv/app/other.env")]);
    assert_eq!(listed.len(), 17, "{listed:#?}");
    assert!(listed[0].starts_with("services.a.command (4): `echo 'open`: "), "{listed:?}");
    assert_eq!(listed.last().unwrap(), "services.b (25): expected a mapping, found a list");
}
