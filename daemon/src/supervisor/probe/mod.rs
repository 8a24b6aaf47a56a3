//! Probes: one check of an instance, by kind (one module each), shared by readiness (which
//! repeats a probe until it passes) and health checks (which run one every interval). A probe
//! returns why it failed, in words; the caller bounds it with its timeout.

mod exec;
mod http;
mod rpc;
mod tcp;

use crate::mesh::Mesh;
use pm_protocol::Probe;
use pm_runtimes::ExecIn;
use std::path::PathBuf;
use std::time::Duration;

/// What a probe needs to know of the instance it checks.
#[derive(Clone)]
pub struct Target {
    pub instance: String,
    /// Runs a command inside the run (a container); `None`: commands run on the host.
    pub exec_in: Option<ExecIn>,
    /// For a command on the host: the instance's environment (as pairs: every run keeps one,
    /// and only hooks and exec probes read it) and working directory.
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub mesh: Mesh,
}

/// Runs `probe` once against `target`, within `timeout`.
pub async fn check(probe: &Probe, target: &Target, timeout: Duration) -> Result<(), String> {
    let attempt = async {
        match probe {
            Probe::Tcp(addr) => tcp::check(addr).await,
            Probe::Http(http) => http::check(http).await,
            Probe::Rpc(method) => rpc::check(method, target, timeout).await,
            // Bounds itself, to kill what it started and say so.
            Probe::Exec(argv) => exec::check(argv, target, timeout).await,
        }
    };
    if let Probe::Exec(_) = probe {
        return attempt.await;
    }
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {}", humantime::format_duration(timeout))),
    }
}

/// Resolves once `probe` passes, trying again with a growing pause (10 ms up to 250 ms); each
/// try is bounded by `timeout`. The caller bounds the whole with the ready timeout.
pub async fn until_passes(probe: Probe, target: Target, timeout: Duration) {
    let mut pause = Duration::from_millis(10);
    while check(&probe, &target, timeout).await.is_err() {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}
