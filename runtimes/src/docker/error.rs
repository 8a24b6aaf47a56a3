//! What can go wrong talking to the Docker engine.
//!
//! Errors of one spawn do not name the instance: [`super::DockerRuntime::spawn`] wraps them in a
//! [`crate::SpawnError::Io`], whose message starts with the instance and the image.

/// An error of the Docker runtime; the message says what failed, on what, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(
        "Docker engine not reachable at {address}: {source}; start one (scripts/docker-engine.sh) \
         or point DOCKER_HOST at a running engine"
    )]
    Unreachable { address: String, source: bollard::errors::Error },
    #[error("a `{runtime}` definition was given to the docker runtime")]
    WrongRuntime { runtime: String },
    #[error("its definition has no `docker` section (the image to run)")]
    NoSpec,
    #[error(
        "image `{image}` is not present in the engine and its pull policy is `never`; build or pull it \
         first, or set `pull = \"missing\"`"
    )]
    ImageMissing { image: String },
    #[error("cannot pull image `{image}`: {source}")]
    Pull { image: String, source: bollard::errors::Error },
    #[error("container name `{name}` is already in use; remove that container (`docker rm -f {name}`)")]
    NameConflict { name: String },
    #[error("invalid port `{port}`: expected `[host_ip:]host_port:container_port[/tcp|udp]`")]
    BadPort { port: String },
    #[error("cannot {action} {target}: {source}")]
    Engine { action: &'static str, target: String, source: bollard::errors::Error },
}

/// The HTTP status of an engine error, if it was one.
pub(super) fn status_of(error: &bollard::errors::Error) -> Option<u16> {
    match error {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}
