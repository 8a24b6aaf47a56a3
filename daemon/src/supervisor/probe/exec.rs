//! `exec`: a command exits 0 within the timeout; inside the container for a container, else on
//! the host with the instance's environment and working directory (see [`HostCommand`]).

use super::Target;
use crate::supervisor::host_command::{Ended, HostCommand};
use std::time::Duration;

pub async fn check(argv: &[String], target: &Target, timeout: Duration) -> Result<(), String> {
    let ended = match &target.exec_in {
        // The engine has no way to end an exec: past the timeout it is left to finish.
        Some(exec_in) => match tokio::time::timeout(timeout, exec_in(argv.to_vec())).await {
            Ok(ran) => ran.map(|(code, tail)| Ended { code, tail })?,
            Err(_) => {
                let shown = shell_words::join(argv);
                return Err(format!("`{shown}` did not finish within {}", humantime::format_duration(timeout)));
            }
        },
        None => {
            let env = target.env.iter().cloned().collect();
            HostCommand { argv, env: &env, cwd: target.cwd.as_deref(), timeout }.run(None).await?
        }
    };
    ended.success(argv)
}
