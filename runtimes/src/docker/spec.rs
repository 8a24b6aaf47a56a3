//! Turning a [`SpawnSpec`] into the engine's container configuration.

use super::DockerError;
use crate::SpawnSpec;
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding, PortMap};
use pm_protocol::DockerSpec;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

/// The label holding the instance a container runs.
pub const LABEL_INSTANCE: &str = "pm.instance";
/// The label holding the id of the daemon that created a container (kept in its `PM_HOME/id`):
/// an identity of its own, never a path, so two daemons with the same home path on two hosts
/// sharing an engine never take each other's containers for their own.
pub const LABEL_DAEMON: &str = "pm.daemon";

/// `pm-<instance>-<8 random hex digits>`, with characters a container name cannot hold replaced.
pub(super) fn container_name(instance: &str) -> String {
    let clean: String = instance
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '-' })
        .collect();
    let random = RandomState::new().hash_one(std::time::SystemTime::now()) as u32;
    format!("pm-{clean}-{random:08x}")
}

/// Splits `image` into what `POST /images/create` takes: the repository and a tag (`latest` when it
/// names none), or the whole reference when it is pinned by digest.
pub(super) fn pull_reference(image: &str) -> (String, Option<String>) {
    if image.contains('@') {
        return (image.to_string(), None);
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) => (image[..image.len() - tag.len() - 1].to_string(), Some(tag.to_string())),
        None => (image.to_string(), Some("latest".to_string())),
    }
}

/// The container's configuration: image, command, env, labels, mounts, ports, network and init.
pub(super) fn create_body(
    spec: &SpawnSpec,
    docker: &DockerSpec,
    daemon_id: &str,
) -> Result<ContainerCreateBody, DockerError> {
    let mut labels: HashMap<String, String> = docker.labels.clone().into_iter().collect();
    labels.insert(LABEL_INSTANCE.to_string(), spec.instance.clone());
    labels.insert(LABEL_DAEMON.to_string(), daemon_id.to_string());

    let mut exposed = Vec::new();
    let mut bindings = PortMap::new();
    for port in &docker.ports {
        let (container_port, binding) = parse_port(port).ok_or_else(|| DockerError::BadPort { port: port.clone() })?;
        if !exposed.contains(&container_port) {
            exposed.push(container_port.clone());
        }
        bindings.entry(container_port).or_insert_with(|| Some(Vec::new())).get_or_insert_default().push(binding);
    }

    let host_config = HostConfig {
        binds: (!docker.volumes.is_empty()).then(|| docker.volumes.clone()),
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        network_mode: docker.network.clone(),
        init: Some(docker.init),
        ..Default::default()
    };
    Ok(ContainerCreateBody {
        image: Some(docker.image.clone()),
        cmd: (!spec.command.is_empty()).then(|| spec.command.clone()),
        entrypoint: docker.entrypoint.clone(),
        working_dir: docker.workdir.clone(),
        user: docker.user.clone(),
        env: (!spec.env.is_empty()).then(|| spec.env.iter().map(|(key, value)| format!("{key}={value}")).collect()),
        labels: Some(labels),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        host_config: Some(host_config),
        ..Default::default()
    })
}

/// `[host_ip:]host_port:container_port[/proto]` or `container_port[/proto]` (a host port chosen by
/// the engine) into `("container_port/proto", binding)`.
fn parse_port(port: &str) -> Option<(String, PortBinding)> {
    let (addresses, proto) = match port.rsplit_once('/') {
        Some((addresses, proto)) if matches!(proto, "tcp" | "udp" | "sctp") => (addresses, proto),
        Some(_) => return None,
        None => (port, "tcp"),
    };
    let parts: Vec<&str> = addresses.rsplitn(3, ':').collect();
    let (container, host_port, host_ip) = match parts.as_slice() {
        [container] => (*container, "", None),
        [container, host] => (*container, *host, None),
        [container, host, ip] => (*container, *host, Some(ip.trim_start_matches('[').trim_end_matches(']'))),
        _ => return None,
    };
    let numeric = |text: &str| text.parse::<u16>().is_ok_and(|number| number > 0);
    if !numeric(container) || !(host_port.is_empty() || numeric(host_port)) {
        return None;
    }
    let binding = PortBinding {
        host_ip: host_ip.filter(|ip| !ip.is_empty()).map(str::to_string),
        host_port: Some(host_port.to_string()),
    };
    Some((format!("{container}/{proto}"), binding))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ports() {
        let (port, binding) = parse_port("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(port, "80/udp");
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(binding.host_port.as_deref(), Some("8080"));
        let (port, binding) = parse_port("8080:80").unwrap();
        assert_eq!((port.as_str(), binding.host_ip, binding.host_port.as_deref()), ("80/tcp", None, Some("8080")));
        assert_eq!(parse_port("80").unwrap().0, "80/tcp");
        assert!(parse_port("x:80").is_none());
        assert!(parse_port("80/icmp").is_none());
        assert!(parse_port("a:b:c:d").is_none());
    }

    #[test]
    fn splits_image_references() {
        assert_eq!(pull_reference("busybox"), ("busybox".into(), Some("latest".into())));
        assert_eq!(pull_reference("busybox:1.36"), ("busybox".into(), Some("1.36".into())));
        assert_eq!(pull_reference("localhost:5000/app"), ("localhost:5000/app".into(), Some("latest".into())));
        assert_eq!(pull_reference("localhost:5000/app:v1"), ("localhost:5000/app".into(), Some("v1".into())));
        assert_eq!(pull_reference("app@sha256:abc"), ("app@sha256:abc".into(), None));
    }

    #[test]
    fn labels_the_owner_and_runs_an_init_unless_told_not_to() {
        let spec = SpawnSpec { instance: "web".into(), ..Default::default() };
        let mut docker = DockerSpec { image: "busybox".into(), ..Default::default() };
        let body = create_body(&spec, &docker, "d1").unwrap();
        let labels = body.labels.unwrap();
        assert_eq!((labels[LABEL_INSTANCE].as_str(), labels[LABEL_DAEMON].as_str()), ("web", "d1"));
        assert_eq!(body.host_config.unwrap().init, Some(true), "an init by default");
        docker.init = false;
        assert_eq!(create_body(&spec, &docker, "d1").unwrap().host_config.unwrap().init, Some(false));
    }

    #[test]
    fn names_containers_safely() {
        let name = container_name("web 1/α");
        assert!(name.starts_with("pm-web-1--"), "{name}");
        assert_ne!(container_name("a"), container_name("a"));
    }
}
