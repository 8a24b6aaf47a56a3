//! Native executables, run with `tokio::process`.
//!
//! Each child leads its own process group, so a signal reaches everything it started (shell
//! pipelines, worker pools, grandchildren), and a Ctrl-C aimed at the daemon's terminal does not
//! hit the sidecars directly. What leaves the group (setsid, double fork) is still held: by the
//! instance's cgroup where there is one, else by the run's marker (see [`Containment`]).

mod cgroup;
mod containment;
mod handle;
mod leftover;
mod lookup;
pub mod marker;
mod mover;
mod output;
pub mod reaper;
mod usage;

pub use containment::Containment;
pub use leftover::{Identity, identity, kill_leftover_group};
pub use usage::{Members, sample};

use crate::{OUTPUT_CAPACITY, Runtime, SpawnError, SpawnSpec, Spawned, Stream};
use async_trait::async_trait;
use handle::ProcessHandle;
use std::io::ErrorKind;
use std::process::Stdio;
use std::sync::Arc;
use tokio::net::unix::pipe;
use tokio::process::{ChildStderr, ChildStdout, Command};

/// Runs sidecars as native child processes.
#[derive(Debug, Clone)]
pub struct ProcessRuntime {
    containment: Arc<Containment>,
}

impl ProcessRuntime {
    pub fn new(containment: Arc<Containment>) -> Self {
        ProcessRuntime { containment }
    }
}

impl Default for ProcessRuntime {
    fn default() -> Self {
        ProcessRuntime::new(Arc::new(Containment::markers_only()))
    }
}

#[async_trait]
impl Runtime for ProcessRuntime {
    async fn spawn(&self, spec: SpawnSpec) -> Result<Spawned, SpawnError> {
        let Some(program) = spec.command.first().filter(|program| !program.is_empty()) else {
            return Err(SpawnError::EmptyCommand { instance: spec.instance });
        };
        // Checked up front: a missing cwd makes exec fail with ENOENT, which would read as a missing
        // executable.
        if let Some(cwd) = &spec.cwd
            && !cwd.is_dir()
        {
            return Err(SpawnError::NoCwd { instance: spec.instance.clone(), cwd: cwd.clone() });
        }

        let contained = self.containment.run(&spec.instance);
        let mut command = match lookup::on_path(program, &spec.env) {
            Some(found) => {
                let mut command = Command::new(found);
                command.arg0(program);
                command
            }
            None => Command::new(program),
        };
        command
            .args(&spec.command[1..])
            .envs(spec.env.iter().map(|(key, value)| (key, value)))
            .env(marker::VAR, &contained.marker)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            // The handle decides when the run ends (stop, sweep); dropping it must not kill.
            .kill_on_drop(false);
        if let Some(cwd) = &spec.cwd {
            command.current_dir(cwd);
        }
        let mut child = reaper::spawn(&mut command).map_err(|source| spawn_error(&spec, program, source))?;

        let pipes = match readers(child.stdout.take(), child.stderr.take()) {
            Ok(pipes) => pipes,
            Err(source) => {
                // Unread, its output would fill the pipes and block it: it must not live on.
                let _ = child.start_kill();
                if let Some(pid) = child.id() {
                    reaper::forget(pid);
                }
                return Err(SpawnError::Io { instance: spec.instance.clone(), program: program.clone(), source });
            }
        };
        let handle = ProcessHandle::new(child, contained).map_err(|source| SpawnError::Io {
            instance: spec.instance.clone(),
            program: program.clone(),
            source,
        })?;

        // A `futures` channel: unlike tokio's, it allocates per line, not a block of 32 lines up
        // front, which was 2 KiB of every quiet sidecar. Readers wait once the consumer is
        // `OUTPUT_CAPACITY` lines behind (and, once the pipes fill up too, the child blocks).
        let (tx, rx) = futures::channel::mpsc::channel(OUTPUT_CAPACITY);
        let (out, err) = pipes;
        tokio::spawn(output::pump(out, err, tx));
        Ok(Spawned { handle: Box::new(handle), output: Box::pin(rx) })
    }
}

/// The child's stdout and stderr as pipes that can be waited on without a buffer (both are
/// piped, so both are there).
fn readers(stdout: Option<ChildStdout>, stderr: Option<ChildStderr>) -> std::io::Result<(output::Pipe, output::Pipe)> {
    let open = |fd: Option<std::io::Result<std::os::fd::OwnedFd>>, stream| {
        let fd = fd.ok_or_else(|| std::io::Error::other(format!("the child has no {stream:?} pipe")))??;
        Ok::<_, std::io::Error>(output::Pipe::new(pipe::Receiver::from_owned_fd(fd)?, stream))
    };
    Ok((
        open(stdout.map(ChildStdout::into_owned_fd), Stream::Stdout)?,
        open(stderr.map(ChildStderr::into_owned_fd), Stream::Stderr)?,
    ))
}

fn spawn_error(spec: &SpawnSpec, program: &str, source: std::io::Error) -> SpawnError {
    let instance = spec.instance.clone();
    let program = program.to_string();
    match source.kind() {
        ErrorKind::NotFound => {
            let hint = if program.contains('/') { " (no such file)" } else { " (not in PATH)" };
            SpawnError::NotFound { instance, program, hint: hint.to_string() }
        }
        ErrorKind::PermissionDenied => SpawnError::PermissionDenied { instance, program },
        _ => SpawnError::Io { instance, program, source },
    }
}
