//! Docker compose files (`compose.yaml`, `docker-compose.yml`, …): each service becomes a
//! container sidecar. The environment and a `.env` beside the file fill `${VAR}`s, as compose
//! does; `version` and `x-…` keys are ignored, as compose ignores them.

mod syntax;

use super::expand::{self, SHELL_LIKE, Vars};
use super::tree::{Doc, at, is_extension, key_text, restart_at_most, restart_without_end, settle_cwd};
use super::waits::{self, Wait};
use crate::config::{ConfigError, Format, Seg, key};
use crate::discover::{SourceFile, Translated};
use pm_protocol::definition::MAX_INSTANCES;
use pm_protocol::health::HealthTable;
use pm_protocol::{Definition, DockerSpec, OnUnhealthy, PullPolicy, Readiness, RestartPolicy, RuntimeKind};
use serde_yaml::{Mapping, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use syntax::{short_port, short_volume};

/// The most ports one service may publish (a range expands to one entry per port).
const MAX_PORTS: usize = 1024;

pub fn read(file: &SourceFile<'_>) -> Result<Translated, ConfigError> {
    let mut doc = Doc::new(file, Format::Yaml);
    let mut root = doc.parse()?;
    let vars = Vars::with_dotenv(file.dir, false);
    expand::tree(&mut doc, &mut root, &[], &vars, &SHELL_LIKE);
    let top = doc.mapping(&root, &[], "a compose file (a mapping with `services`)")?;
    let mut services = None;
    for (key, value) in top {
        let key = key_text(key);
        let path = key![key.as_str()];
        match key.as_str() {
            "services" => services = Some(value),
            "version" => {}
            k if is_extension(k) => {}
            "networks" => doc.because(&path, "pm puts containers on the engine's default network"),
            "volumes" => doc.because(&path, "named volumes: pm mounts host paths only"),
            "name" => doc.because(&path, "pm names containers after their sidecars"),
            _ => doc.skip(&path, None),
        }
    }
    let services = services.ok_or_else(|| doc.src.invalid(key![], "no `services`: not a compose file"))?;
    let services = doc.mapping(services, &[Seg::from("services")], "a mapping of services")?;

    // Names first: `depends_on` refers to services by their compose names.
    let mut named = Vec::new();
    for (raw, value) in services {
        let raw = key_text(raw);
        if is_extension(&raw) {
            continue;
        }
        if let Some(name) = doc.name(&raw, &[Seg::from("services"), Seg::from(raw.as_str())]) {
            named.push((raw, name, value));
        }
    }

    let mut sidecars = Vec::new();
    let mut healthy = Vec::new();
    let mut edges = Vec::new();
    for (raw, name, value) in &named {
        let path = key!["services", raw.as_str()];
        let Value::Mapping(service) = value else {
            doc.wrong(&path, "a mapping", value);
            continue;
        };
        let mut s =
            Service { doc: &mut doc, vars: &vars, path, def: docker_definition(), healthy: None, edges: Vec::new() };
        if s.translate(service) {
            settle_cwd(&mut s.def, file.dir);
            sidecars.push((name.clone(), s.def));
            healthy.push(s.healthy);
            edges.push(s.edges);
        }
    }

    // Dependencies, by pm name, with what each dependent waits for.
    let position: HashMap<&str, usize> = named
        .iter()
        .filter_map(|(raw, name, _)| Some((raw.as_str(), sidecars.iter().position(|(n, _)| n == name)?)))
        .collect();
    let mut waits = Vec::new();
    for (dependent, edges) in edges.into_iter().enumerate() {
        for (dep, condition, path) in edges {
            let Some(&at) = position.get(dep.as_str()) else {
                doc.because(&path, format!("no service `{dep}` is translated"));
                continue;
            };
            let ready = match condition.as_str() {
                "service_started" => Readiness::Started,
                "service_completed_successfully" => Readiness::Exited,
                "service_healthy" => match &healthy[at] {
                    Some((argv, _)) => Readiness::Exec(argv.clone()),
                    None => {
                        doc.because(&path, format!("`{dep}` has no healthcheck pm runs: waits for it to start"));
                        Readiness::Started
                    }
                },
                other => {
                    doc.because(&path, format!("unknown condition `{other}`: waits for it to start"));
                    Readiness::Started
                }
            };
            let dep_name = sidecars[at].0.clone();
            let def = &mut sidecars[dependent].1;
            if !def.depends_on.contains(&dep_name) {
                def.depends_on.push(dep_name);
            }
            waits.push(Wait { dep: at, ready, path });
        }
    }
    waits::settle(&mut doc, &mut sidecars, &waits);
    for ((_, def), healthy) in sidecars.iter_mut().zip(healthy) {
        if let (Readiness::Exec(_), Some((_, timeout))) = (&def.ready, healthy) {
            def.ready_timeout = timeout;
        }
    }
    Ok(Translated { sidecars, untranslated: doc.untranslated() })
}

/// A container definition with compose's default where it differs from pm's: no restart (the
/// `docker` table, without an init unless `init: true`, comes from the service).
fn docker_definition() -> Definition {
    let mut def = Definition::new(Vec::new());
    def.runtime = RuntimeKind::Docker;
    def.restart = RestartPolicy::Never;
    def
}

/// One service being translated.
struct Service<'d, 'a> {
    doc: &'d mut Doc<'a>,
    vars: &'d Vars,
    path: Vec<Seg>,
    def: Definition,
    /// The healthcheck's command and how long compose waits for it to pass, for dependents that
    /// wait for `service_healthy`.
    healthy: Option<(Vec<String>, Duration)>,
    /// `depends_on`: (compose name, condition, key path).
    edges: Vec<(String, String, Vec<Seg>)>,
}

impl Service<'_, '_> {
    fn at(&self, key: &str) -> Vec<Seg> {
        at(&self.path, key)
    }

    /// Translates the service; `false` when it cannot run in pm (no image).
    fn translate(&mut self, service: &Mapping) -> bool {
        let mut docker = DockerSpec { init: false, ..DockerSpec::default() };
        let mut restart_key = false;
        let mut deploy = None;
        let mut build = None;
        for (key, value) in service {
            let key = key_text(key);
            let path = self.at(&key);
            match key.as_str() {
                k if is_extension(k) => {}
                "image" => docker.image = self.doc.text(value, &path).unwrap_or_default(),
                "build" => build = Some(path),
                "command" => self.def.command = self.command(value, &path).unwrap_or_default(),
                "entrypoint" => match self.command(value, &path) {
                    Some(argv) if argv.is_empty() => {
                        self.doc.because(&path, "an empty entrypoint (the image's is used)")
                    }
                    argv => docker.entrypoint = argv,
                },
                "environment" => self.environment(value, &path),
                "env_file" => self.env_files(value, &path),
                "ports" => docker.ports = self.ports(value, &path),
                "volumes" => docker.volumes = self.volumes(value, &path),
                "working_dir" => docker.workdir = self.doc.text(value, &path),
                "user" => docker.user = self.doc.text(value, &path),
                "labels" => docker.labels = self.labels(value, &path),
                "network_mode" => docker.network = self.network(value, &path),
                "init" => docker.init = self.doc.flag(value, &path).unwrap_or(false),
                "pull_policy" => docker.pull = self.pull(value, &path).unwrap_or_default(),
                "depends_on" => self.depends_on(value, &path),
                "healthcheck" => self.healthcheck(value, &path),
                "restart" => restart_key = self.restart(value, &path),
                "stop_signal" => {
                    let signal = self.doc.text(value, &path).and_then(|s| self.doc.signal(&s, &path));
                    self.def.stop_signal = signal.unwrap_or(self.def.stop_signal.clone());
                }
                "stop_grace_period" => {
                    self.def.stop_timeout = self.doc.go_duration(value, &path).unwrap_or(self.def.stop_timeout);
                }
                "scale" => self.instances(value, &path),
                "mem_limit" => self.memory(value, &path),
                "deploy" => deploy = Some((value, path)),
                "profiles" => {
                    self.def.autostart = false;
                    let why = "started only with its profile in compose: autostart = false (`pm start` it by name)";
                    self.doc.because(&path, why);
                }
                "networks" | "links" | "external_links" => {
                    self.doc.because(&path, "pm puts containers on the engine's default network")
                }
                "container_name" | "hostname" => self.doc.because(&path, "pm names containers after their instances"),
                "expose" => self.doc.because(&path, "pm publishes `ports` only"),
                "post_start" | "pre_stop" => self.doc.because(&path, "pm runs hooks on the host, not in the container"),
                _ => self.doc.skip(&path, None),
            }
        }
        if let Some((value, path)) = deploy {
            self.deploy(value, &path, restart_key);
        }
        match build {
            Some(path) if docker.image.is_empty() => {
                self.doc.because(&path, "pm runs images, it does not build them: build it and name it in `image`");
                return false;
            }
            Some(path) => self.doc.because(&path, "pm does not build images: `image` is run as it is"),
            None if docker.image.is_empty() => {
                self.doc.because(&self.path, "no `image`: nothing pm can run");
                return false;
            }
            None => {}
        }
        self.def.docker = Some(docker);
        true
    }

    /// A command as compose takes it: a list, or a string split like a shell would.
    fn command(&mut self, value: &Value, path: &[Seg]) -> Option<Vec<String>> {
        match value {
            Value::Null => Some(Vec::new()),
            Value::String(line) => match shell_words::split(line) {
                Ok(argv) => Some(argv),
                Err(e) => {
                    self.doc.because(path, format!("`{line}`: {e}"));
                    None
                }
            },
            other => self.doc.strings(other, path, false),
        }
    }

    /// `environment`: a mapping, or a list of `KEY=value`; a variable with no value takes the
    /// environment's (and is left out when unset there, as compose does).
    fn environment(&mut self, value: &Value, path: &[Seg]) {
        let set =
            |s: &mut Self, var: String, value: Option<String>, at: Vec<Seg>| match value.or_else(|| s.vars.get(&var)) {
                Some(value) => _ = s.def.env.insert(var, value),
                None => s.doc.because(&at, "no value, and not set in the environment: left out"),
            };
        match value {
            Value::Mapping(map) => {
                for (var, value) in map {
                    let var = key_text(var);
                    let at = at(path, var.as_str());
                    if value.is_null() {
                        set(self, var, None, at);
                    } else if let Some(text) = self.doc.text(value, &at) {
                        set(self, var, Some(text), at);
                    }
                }
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    let at = at(path, i);
                    let Some(entry) = self.doc.text(item, &at) else { continue };
                    match entry.split_once('=') {
                        Some((var, value)) => set(self, var.to_string(), Some(value.to_string()), at),
                        None => set(self, entry, None, at),
                    }
                }
            }
            other => self.doc.wrong(path, "a mapping or a list of `KEY=value`", other),
        }
    }

    /// `env_file`: one path, or a list of paths or of `{path, required}`.
    fn env_files(&mut self, value: &Value, path: &[Seg]) {
        let items = match value {
            Value::Sequence(items) => items.iter().enumerate().map(|(i, v)| (v, at(path, i))).collect(),
            one => vec![(one, path.to_vec())],
        };
        for (item, at_item) in items {
            let (file, required) = match item {
                Value::Mapping(entry) => {
                    let mut file = None;
                    let mut required = true;
                    for (key, value) in entry {
                        let key = key_text(key);
                        let at_key = at(&at_item, key.as_str());
                        match key.as_str() {
                            "path" => file = self.doc.text(value, &at_key),
                            "required" => required = self.doc.flag(value, &at_key).unwrap_or(true),
                            _ => self.doc.skip(&at_key, None),
                        }
                    }
                    (file, required)
                }
                other => (self.doc.text(other, &at_item), true),
            };
            let Some(file) = file else { continue };
            let file = self.doc.anchored(&file);
            if !required && !file.is_file() {
                self.doc.because(&at_item, format!("{} does not exist (required: false): left out", file.display()));
                continue;
            }
            self.def.env_file.push(file);
        }
    }

    /// `ports`, short (`"8080:80"`) or long (`{target, published, …}`), as pm's entries.
    fn ports(&mut self, value: &Value, path: &[Seg]) -> Vec<String> {
        let Value::Sequence(items) = value else {
            self.doc.wrong(path, "a list", value);
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at_item = at(path, i);
            let spec = match item {
                Value::Mapping(long) => self.long_port(long, &at_item),
                other => self.doc.text(other, &at_item),
            };
            let Some(spec) = spec else { continue };
            match short_port(&spec) {
                Ok(ports) if out.len() + ports.len() <= MAX_PORTS => out.extend(ports),
                Ok(_) => self.doc.because(&at_item, format!("more than {MAX_PORTS} ports")),
                Err(e) => self.doc.because(&at_item, format!("`{spec}`: {e}")),
            }
        }
        out
    }

    /// A long-syntax port written the short way.
    fn long_port(&mut self, long: &Mapping, path: &[Seg]) -> Option<String> {
        let (mut target, mut published, mut ip, mut protocol) = (None, None, None, None);
        for (key, value) in long {
            let key = key_text(key);
            let at = at(path, key.as_str());
            match key.as_str() {
                "target" => target = self.doc.text(value, &at),
                "published" => published = self.doc.text(value, &at),
                "host_ip" => ip = self.doc.text(value, &at),
                "protocol" => protocol = self.doc.text(value, &at),
                _ => self.doc.skip(&at, None),
            }
        }
        let Some(target) = target else {
            self.doc.because(path, "no `target` port");
            return None;
        };
        let ip =
            ip.map(|ip| if ip.contains(':') && !ip.starts_with('[') { format!("[{ip}]:") } else { format!("{ip}:") });
        let mut spec = match (ip, published) {
            (Some(ip), published) => format!("{ip}{}:{target}", published.unwrap_or_default()),
            (None, Some(published)) => format!("{published}:{target}"),
            (None, None) => target,
        };
        if let Some(protocol) = protocol {
            spec = format!("{spec}/{protocol}");
        }
        Some(spec)
    }

    /// `volumes`: bind mounts of host paths (relative ones anchored at the file's directory).
    fn volumes(&mut self, value: &Value, path: &[Seg]) -> Vec<String> {
        let Value::Sequence(items) = value else {
            self.doc.wrong(path, "a list", value);
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at_item = at(path, i);
            let mount = match item {
                Value::Mapping(long) => self.long_volume(long, &at_item),
                other => self.doc.text(other, &at_item).and_then(|spec| match short_volume(&spec) {
                    Ok(mount) => Some(mount),
                    Err(e) => {
                        self.doc.because(&at_item, format!("`{spec}`: {e}"));
                        None
                    }
                }),
            };
            if let Some((source, target, options)) = mount {
                let source = self.doc.anchored(&source);
                let mut bind = format!("{}:{target}", source.display());
                if !options.is_empty() {
                    bind = format!("{bind}:{}", options.join(","));
                }
                out.push(bind);
            }
        }
        out
    }

    /// A long-syntax volume: `type: bind` only.
    fn long_volume(&mut self, long: &Mapping, path: &[Seg]) -> Option<(String, String, Vec<String>)> {
        let (mut kind, mut source, mut target, mut options) = (None, None, None, Vec::new());
        for (key, value) in long {
            let key = key_text(key);
            let at = at(path, key.as_str());
            match key.as_str() {
                "type" => kind = self.doc.text(value, &at),
                "source" => source = self.doc.text(value, &at),
                "target" => target = self.doc.text(value, &at),
                "read_only" => {
                    if self.doc.flag(value, &at) == Some(true) {
                        options.push("ro".to_string());
                    }
                }
                "bind" => options.extend(self.bind_options(value, &at)),
                _ => self.doc.skip(&at, None),
            }
        }
        match (kind.as_deref(), source, target) {
            (Some("bind"), Some(source), Some(target)) => Some((source, target, options)),
            (Some("bind"), ..) => {
                self.doc.because(path, "a bind mount needs `source` and `target`");
                None
            }
            (Some("volume"), source, _) => {
                let name = source.map_or_else(|| "anonymous".to_string(), |s| format!("`{s}`"));
                self.doc.because(path, format!("{name} volume: pm mounts host paths only"));
                None
            }
            (kind, ..) => {
                let kind = kind.unwrap_or_default();
                self.doc.because(path, format!("a `{kind}` mount: pm mounts host paths only"));
                None
            }
        }
    }

    /// A bind's `propagation` and `selinux` as mount options.
    fn bind_options(&mut self, value: &Value, path: &[Seg]) -> Vec<String> {
        let Some(bind) = self.doc.fields(value, path) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, at, value) in bind {
            match key.as_str() {
                "propagation" | "selinux" => out.extend(self.doc.text(value, &at)),
                // The engine creates a missing host path of a bind, as compose asks by default.
                "create_host_path" if value.as_bool() == Some(true) => {}
                _ => self.doc.skip(&at, None),
            }
        }
        out
    }

    /// `labels`: a mapping, or a list of `key=value`.
    fn labels(&mut self, value: &Value, path: &[Seg]) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        match value {
            Value::Mapping(map) => {
                for (key, value) in map {
                    let key = key_text(key);
                    let text = if value.is_null() {
                        Some(String::new())
                    } else {
                        self.doc.text(value, &at(path, key.as_str()))
                    };
                    out.extend(text.map(|text| (key, text)));
                }
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    let Some(entry) = self.doc.text(item, &at(path, i)) else { continue };
                    let (key, value) = entry.split_once('=').unwrap_or((&entry, ""));
                    out.insert(key.to_string(), value.to_string());
                }
            }
            other => self.doc.wrong(path, "a mapping or a list of `key=value`", other),
        }
        out
    }

    fn network(&mut self, value: &Value, path: &[Seg]) -> Option<String> {
        let mode = self.doc.text(value, path)?;
        if mode.starts_with("service:") || mode.starts_with("container:") {
            self.doc.because(path, format!("`{mode}`: pm does not share another container's network"));
            return None;
        }
        Some(mode)
    }

    fn pull(&mut self, value: &Value, path: &[Seg]) -> Option<PullPolicy> {
        match self.doc.text(value, path)?.as_str() {
            "always" => Some(PullPolicy::Always),
            "never" => Some(PullPolicy::Never),
            "missing" | "if_not_present" => Some(PullPolicy::Missing),
            other => {
                self.doc.because(path, format!("`{other}`: pm pulls always, never or when missing"));
                None
            }
        }
    }

    /// `depends_on`: a list of services, or a mapping of them to `{condition, …}`.
    fn depends_on(&mut self, value: &Value, path: &[Seg]) {
        match value {
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    let at = at(path, i);
                    if let Some(dep) = self.doc.text(item, &at) {
                        self.edges.push((dep, "service_started".into(), at));
                    }
                }
            }
            Value::Mapping(map) => {
                for (dep, spec) in map {
                    let dep = key_text(dep);
                    let at_dep = at(path, dep.as_str());
                    let mut condition = "service_started".to_string();
                    match spec {
                        Value::Mapping(spec) => {
                            for (key, value) in spec {
                                let key = key_text(key);
                                let at_key = at(&at_dep, key.as_str());
                                match key.as_str() {
                                    "condition" => condition = self.doc.text(value, &at_key).unwrap_or(condition),
                                    "required" if value.as_bool() == Some(true) => {}
                                    "required" => self.doc.because(&at_key, "pm always requires its dependencies"),
                                    "restart" if value.as_bool() == Some(false) => {}
                                    "restart" => self.doc.because(&at_key, "pm does not restart a dependent with it"),
                                    _ => self.doc.skip(&at_key, None),
                                }
                            }
                        }
                        Value::Null => {}
                        other => self.doc.wrong(&at_dep, "a mapping", other),
                    }
                    let at_condition = at(&at_dep, "condition");
                    let at_edge = if condition == "service_started" { at_dep } else { at_condition };
                    self.edges.push((dep, condition, at_edge));
                }
            }
            other => self.doc.wrong(path, "a list or a mapping of services", other),
        }
    }

    /// `healthcheck`: a health check run inside the container, which only reports (docker does
    /// not restart an unhealthy container); dependents that wait for `service_healthy` wait for
    /// its command to pass.
    fn healthcheck(&mut self, value: &Value, path: &[Seg]) {
        let Value::Mapping(check) = value else {
            self.doc.wrong(path, "a mapping", value);
            return;
        };
        // Docker's defaults.
        let (mut test, mut interval, mut timeout, mut retries, mut start) =
            (None, Duration::from_secs(30), Duration::from_secs(30), 3u32, Duration::ZERO);
        for (key, value) in check {
            let key = key_text(key);
            let at = at(path, key.as_str());
            match key.as_str() {
                "test" => test = self.test(value, &at),
                "interval" => interval = self.doc.go_duration(value, &at).unwrap_or(interval),
                "timeout" => timeout = self.doc.go_duration(value, &at).unwrap_or(timeout),
                "retries" => match self.doc.number(value, &at, pm_protocol::health::MAX_THRESHOLD.into()) {
                    // Docker takes 0 as its default.
                    Some(0) | None => {}
                    Some(n) => retries = n as u32,
                },
                "start_period" => start = self.doc.go_duration(value, &at).unwrap_or(start),
                "disable" if value.as_bool() == Some(true) => return,
                "disable" => {}
                _ => self.doc.skip(&at, None),
            }
        }
        let Some(test) = test else {
            if !check.contains_key("test") {
                self.doc.because(path, "no `test`: the image's own healthcheck is not known to pm");
            }
            return;
        };
        if test.is_empty() {
            return; // NONE: disabled
        }
        let table = HealthTable {
            exec: Some(test.clone()),
            interval: Some(interval),
            timeout: Some(timeout),
            initial_delay: Some(start),
            failure_threshold: Some(retries),
            on_unhealthy: Some(OnUnhealthy::Report),
            ..HealthTable::default()
        };
        if let Some(health) = self.doc.health(table, path) {
            self.def.health = Some(health);
            // Docker gives up on a container that failed `retries` checks after `start_period`.
            let per_try = interval.saturating_add(timeout);
            let wait = start.saturating_add(per_try.saturating_mul(retries)).min(pm_protocol::duration::MAX);
            self.healthy = Some((test, wait));
        }
    }

    /// A healthcheck's `test` as a command run in the container; empty for `NONE`.
    fn test(&mut self, value: &Value, path: &[Seg]) -> Option<Vec<String>> {
        let shell = |line: String| vec!["/bin/sh".to_string(), "-c".to_string(), line];
        match value {
            Value::String(line) => Some(shell(line.clone())),
            Value::Sequence(_) => {
                let words = self.doc.strings(value, path, false)?;
                match words.split_first() {
                    Some((first, rest)) if first == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
                    Some((first, rest)) if first == "CMD-SHELL" && !rest.is_empty() => Some(shell(rest.join(" "))),
                    Some((first, _)) if first == "NONE" => Some(Vec::new()),
                    _ => {
                        self.doc.because(path, "expected [\"CMD\", …], [\"CMD-SHELL\", \"…\"] or [\"NONE\"]");
                        None
                    }
                }
            }
            other => {
                self.doc.wrong(path, "a string or a list", other);
                None
            }
        }
    }

    /// `restart`: `no`, `always`, `unless-stopped`, `on-failure[:N]`. Docker backs off from 100ms
    /// doubling up to a minute, resets after 10s up, and never gives up unless told `:N`.
    fn restart(&mut self, value: &Value, path: &[Seg]) -> bool {
        let Some(policy) = self.doc.text(value, path) else { return false };
        let (policy, max) = match policy.split_once(':') {
            Some((policy, max)) => (policy, Some(max)),
            None => (policy.as_str(), None),
        };
        let max = match max.map(str::parse::<u32>) {
            Some(Ok(max)) => Some(max),
            Some(Err(_)) => {
                self.doc.because(path, "expected `on-failure:N` with N a whole number");
                return false;
            }
            None => None,
        };
        match (policy, max) {
            ("no", None) => self.def.restart = RestartPolicy::Never,
            ("always" | "unless-stopped", None) => restart_without_end(&mut self.def, RestartPolicy::Always),
            ("on-failure", None) | ("on-failure", Some(0)) => {
                restart_without_end(&mut self.def, RestartPolicy::OnFailure)
            }
            ("on-failure", Some(max)) => restart_at_most(&mut self.def, RestartPolicy::OnFailure, max),
            _ => {
                self.doc.because(path, "expected no, always, unless-stopped or on-failure[:N]");
                return false;
            }
        }
        if self.def.restart != RestartPolicy::Never {
            self.def.backoff_max = Duration::from_secs(60);
            self.def.min_uptime = Duration::from_secs(10);
        }
        true
    }

    fn instances(&mut self, value: &Value, path: &[Seg]) {
        match self.doc.number(value, path, MAX_INSTANCES.into()) {
            Some(0) => {
                self.def.autostart = false;
                self.doc.because(path, "0 replicas: autostart = false, with one instance when started");
            }
            Some(n) => self.def.instances = n as u32,
            None => {}
        }
    }

    /// A memory limit (`512m`, `1g`, bytes), as pm's `max_memory`.
    fn memory(&mut self, value: &Value, path: &[Seg]) {
        let Some(text) = self.doc.text(value, path) else { return };
        let range = pm_protocol::size::MIN..=pm_protocol::size::MAX;
        match pm_protocol::size::parse(&text) {
            Ok(bytes) if range.contains(&bytes) => self.def.max_memory = Some(bytes),
            Ok(_) => self.doc.because(path, "pm's max_memory is from 1M to 1P"),
            Err(e) => self.doc.because(path, e),
        }
    }

    /// `deploy`: `replicas`, `resources.limits.memory` and `restart_policy` (unless `restart`
    /// says it); the rest is for a swarm.
    fn deploy(&mut self, value: &Value, path: &[Seg], restart_key: bool) {
        let Some(deploy) = self.doc.fields(value, path) else {
            return;
        };
        for (key, at_key, value) in deploy {
            match (key.as_str(), value) {
                ("replicas", _) => self.instances(value, &at_key),
                ("resources", Value::Mapping(resources)) => {
                    for (key, value) in resources {
                        let key = key_text(key);
                        let at_res = at(&at_key, key.as_str());
                        match (key.as_str(), value) {
                            ("limits", Value::Mapping(limits)) => {
                                for (key, value) in limits {
                                    let key = key_text(key);
                                    let at_limit = at(&at_res, key.as_str());
                                    match key.as_str() {
                                        "memory" => self.memory(value, &at_limit),
                                        _ => self.doc.skip(&at_limit, None),
                                    }
                                }
                            }
                            _ => self.doc.skip(&at_res, None),
                        }
                    }
                }
                ("restart_policy", _) if restart_key => self.doc.because(&at_key, "`restart` is used"),
                ("restart_policy", Value::Mapping(policy)) => self.restart_policy(policy, &at_key),
                _ => self.doc.skip(&at_key, None),
            }
        }
    }

    /// `deploy.restart_policy`: `condition` (none, on-failure, any) and `max_attempts`.
    fn restart_policy(&mut self, policy: &Mapping, path: &[Seg]) {
        let (mut condition, mut max) = ("any".to_string(), None);
        for (key, value) in policy {
            let key = key_text(key);
            let at = at(path, key.as_str());
            match key.as_str() {
                "condition" => condition = self.doc.text(value, &at).unwrap_or(condition),
                "max_attempts" => max = self.doc.number(value, &at, u32::MAX.into()).map(|n| n as u32),
                _ => self.doc.skip(&at, None),
            }
        }
        let policy = match condition.as_str() {
            "none" => {
                self.def.restart = RestartPolicy::Never;
                return;
            }
            "on-failure" => RestartPolicy::OnFailure,
            "any" => RestartPolicy::Always,
            other => {
                self.doc.because(&at(path, "condition"), format!("`{other}`: expected none, on-failure or any"));
                return;
            }
        };
        match max {
            Some(max) if max > 0 => restart_at_most(&mut self.def, policy, max),
            _ => restart_without_end(&mut self.def, policy),
        }
    }
}

#[cfg(test)]
pub(super) mod tests;
