//! What a container uses, from the engine's one-shot stats: its cgroup's cumulative CPU time and
//! its memory as `docker stats` counts it.

use crate::Usage;
use bollard::Docker;
use bollard::models::ContainerStatsResponse;
use bollard::query_parameters::StatsOptions;
use futures::StreamExt;
use std::time::Duration;

/// Where one container's [`Usage`] is read.
#[derive(Debug, Clone)]
pub struct ContainerStats {
    docker: Docker,
    id: String,
}

impl ContainerStats {
    pub(super) fn new(docker: Docker, id: String) -> Self {
        ContainerStats { docker, id }
    }

    /// Asks the engine once; `None` when it fails or the container is gone. Not bounded in
    /// time: the caller decides how long it may take.
    pub async fn sample(&self) -> Option<Usage> {
        // One-shot: the engine answers at once instead of sampling twice a second apart.
        let options = StatsOptions { stream: false, one_shot: true };
        let stats = self.docker.stats(&self.id, Some(options)).next().await?.ok()?;
        Some(usage_of(&stats))
    }
}

fn usage_of(stats: &ContainerStatsResponse) -> Usage {
    let cpu = stats.cpu_stats.as_ref().and_then(|cpu| cpu.cpu_usage.as_ref()?.total_usage).map(Duration::from_nanos);
    let memory_bytes = stats.memory_stats.as_ref().and_then(|memory| {
        let usage = memory.usage?;
        // As `docker stats` does: inactive page cache, which the kernel drops first, does not
        // count (cgroup v1 names it `total_inactive_file`, v2 `inactive_file`).
        let stats = memory.stats.as_ref();
        let inactive = stats.and_then(|s| s.get("total_inactive_file").or_else(|| s.get("inactive_file")));
        Some(match inactive {
            Some(&inactive) if inactive < usage => usage - inactive,
            _ => usage,
        })
    });
    Usage { cpu, memory_bytes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerCpuStats, ContainerCpuUsage, ContainerMemoryStats};
    use std::collections::HashMap;

    fn stats(total_usage: Option<u64>, usage: Option<u64>, extra: &[(&str, u64)]) -> ContainerStatsResponse {
        let extra: HashMap<String, u64> = extra.iter().map(|&(k, v)| (k.to_string(), v)).collect();
        ContainerStatsResponse {
            cpu_stats: Some(ContainerCpuStats {
                cpu_usage: Some(ContainerCpuUsage { total_usage, ..Default::default() }),
                ..Default::default()
            }),
            memory_stats: Some(ContainerMemoryStats { usage, stats: Some(extra), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn counts_memory_as_docker_stats_does() {
        let v1 = stats(Some(1_500_000_000), Some(1000), &[("inactive_file", 100), ("total_inactive_file", 300)]);
        assert_eq!(usage_of(&v1), Usage { cpu: Some(Duration::from_millis(1500)), memory_bytes: Some(700) });
        let v2 = stats(Some(0), Some(1000), &[("inactive_file", 100)]);
        assert_eq!(usage_of(&v2).memory_bytes, Some(900));
        let odd = stats(None, Some(1000), &[("inactive_file", 5000)]);
        assert_eq!(usage_of(&odd), Usage { cpu: None, memory_bytes: Some(1000) });
        // An engine without the memory controller reports no memory at all.
        assert_eq!(usage_of(&stats(Some(1), None, &[])).memory_bytes, None);
        assert_eq!(usage_of(&ContainerStatsResponse::default()), Usage::default());
    }
}
