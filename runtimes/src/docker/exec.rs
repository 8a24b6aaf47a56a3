//! A command run inside a container (the engine's exec), for exec probes: its exit code and the
//! end of its output.

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures::StreamExt;

/// How much of the command's output is kept, from its end, to say why it failed.
const TAIL: usize = 512;

pub(super) async fn run(docker: Docker, container: String, argv: Vec<String>) -> Result<(i64, String), String> {
    let options = CreateExecOptions {
        cmd: Some(argv),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let exec =
        docker.create_exec(&container, options).await.map_err(|e| format!("cannot exec in the container: {e}"))?;
    let mut tail = Vec::new();
    match docker.start_exec(&exec.id, None).await.map_err(|e| format!("cannot exec in the container: {e}"))? {
        StartExecResults::Attached { mut output, .. } => {
            // Read to the end (the command's end), keeping only the last bytes.
            while let Some(chunk) = output.next().await {
                let Ok(chunk) = chunk else { break };
                tail.extend_from_slice(&chunk.into_bytes());
                if tail.len() > TAIL {
                    tail.drain(..tail.len() - TAIL);
                }
            }
        }
        StartExecResults::Detached => {}
    }
    let inspected = docker.inspect_exec(&exec.id).await.map_err(|e| format!("cannot inspect the exec: {e}"))?;
    let code = inspected.exit_code.ok_or("the exec has no exit code")?;
    Ok((code, String::from_utf8_lossy(&tail).into_owned()))
}
