//! Docker images: pulled through the engine's API (bollard), unless the engine has the image
//! already, and one sidecar running it with its own entrypoint and command. The directory of
//! the version holds only the install's log: the image lives in the engine.

use super::progress::{Progress, STEP_TIMEOUT};
use super::{Resolved, Spec};
use crate::discover::{Found, FoundSidecar, pm_name};
use anyhow::bail;
use bollard::Docker;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::StreamExt;
use pm_protocol::{Definition, DockerSpec, RuntimeKind};
use std::path::PathBuf;
use std::time::Duration;

/// Where the Docker CLI looks when `DOCKER_HOST` is unset.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// How long the engine has to answer at all.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Makes sure the engine has the image.
pub async fn stage(spec: &Spec, progress: &Progress) -> anyhow::Result<Resolved> {
    let Spec::Registry { name, version, .. } = spec else {
        bail!("docker images come from a registry: docker:IMAGE[:TAG]");
    };
    let version = version.clone().unwrap_or_else(|| "latest".into());
    let reference = reference(name, &version);
    let address = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| DEFAULT_HOST.into());
    let unreachable = |e: &dyn std::fmt::Display| {
        anyhow::anyhow!("no Docker engine answers at {address} (start one, or set DOCKER_HOST): {e}")
    };
    progress.step(&format!("docker image inspect {reference}"), "docker image inspect");
    let docker = Docker::connect_with_host(&address).map_err(|e| unreachable(&e))?;
    match tokio::time::timeout(PING_TIMEOUT, docker.ping()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(unreachable(&e)),
        Err(_) => return Err(unreachable(&format!("no answer within {PING_TIMEOUT:?}"))),
    }
    match docker.inspect_image(&reference).await {
        Ok(_) => progress.line("the engine has it: not pulled"),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
            pull(&docker, name, &version, &reference, progress).await?;
        }
        Err(e) => return Err(progress.fail(format_args!("docker image inspect {reference} failed: {e}"))),
    }
    progress.done();
    Ok(Resolved { package: name.clone(), version })
}

/// `IMAGE:TAG`, or `IMAGE@sha256:…`.
fn reference(name: &str, version: &str) -> String {
    match version.starts_with("sha256:") {
        true => format!("{name}@{version}"),
        false => format!("{name}:{version}"),
    }
}

async fn pull(docker: &Docker, name: &str, version: &str, reference: &str, progress: &Progress) -> anyhow::Result<()> {
    progress.step(&format!("docker pull {reference}"), "docker pull");
    let options = CreateImageOptionsBuilder::default().from_image(name).tag(version).build();
    let mut stream = docker.create_image(Some(options), None, None);
    let pulled = async {
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| e.to_string())?;
            if let Some(error) = info.error_detail.and_then(|d| d.message) {
                return Err(error);
            }
            let words: Vec<String> = [info.id, info.status].into_iter().flatten().collect();
            progress.line(&words.join(" "));
        }
        Ok(())
    };
    match tokio::time::timeout(STEP_TIMEOUT, pulled).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(why)) => Err(progress.fail(format_args!("docker pull {reference} failed: {why}"))),
        Err(_) => Err(progress.fail(format_args!("docker pull {reference} did not finish within {STEP_TIMEOUT:?}"))),
    }
}

/// The one sidecar: the image, run as it is.
pub fn sidecars(resolved: &Resolved) -> Found {
    let reference = reference(&resolved.package, &resolved.version);
    let name = pm_name(resolved.package.rsplit('/').next().unwrap_or(&resolved.package));
    let mut definition = Definition::new(Vec::new());
    definition.runtime = RuntimeKind::Docker;
    definition.docker = Some(DockerSpec { image: reference.clone(), ..DockerSpec::default() });
    let file = PathBuf::from(format!("docker:{reference}"));
    Found {
        files: vec![file.clone()],
        sidecars: vec![FoundSidecar { name, kind: "docker", file, definition }],
        ..Found::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sidecar_runs_the_image() {
        let found = sidecars(&Resolved { package: "localhost:5000/team/Web_App".into(), version: "v2".into() });
        assert_eq!(found.sidecars.len(), 1);
        let sidecar = &found.sidecars[0];
        assert_eq!(sidecar.name, "web_app");
        let docker = sidecar.definition.docker.as_ref().unwrap();
        assert_eq!(docker.image, "localhost:5000/team/Web_App:v2");
        assert!(sidecar.definition.command.is_empty());
        crate::supervisor::validate(&sidecar.name, &sidecar.definition).unwrap();
        assert_eq!(reference("web", "sha256:ab"), "web@sha256:ab");
    }
}
