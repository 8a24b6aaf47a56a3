//! An application that embeds the pm daemon and registers a task of its own.
//!
//! ```sh
//! PM_HOME=/tmp/pm-embedded cargo run -p pm-daemon --example embedded
//! # in another shell, with the same PM_HOME:
//! PM_HOME=/tmp/pm-embedded cargo run -q --bin pm -- call indexer.count
//! PM_HOME=/tmp/pm-embedded cargo run -q --bin pm -- log indexer -f
//! ```
//!
//! The `indexer` task counts once a second, logs into pm's log files like any sidecar, and
//! serves `count` through the mesh. Ctrl-C stops it and the daemon.

use async_trait::async_trait;
use pm_client::{Client, PmApiClient, Serve};
use pm_daemon::{Daemon, Task, TaskContext, TaskError};
use pm_protocol::params::StartParams;
use pm_protocol::{Definition, Readiness, RuntimeKind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

struct Indexer;

#[async_trait]
impl Task for Indexer {
    async fn run(&self, ctx: TaskContext) -> Result<(), TaskError> {
        let count = Arc::new(AtomicU64::new(0));
        let mut module = pm_client::jsonrpsee::RpcModule::new(count.clone());
        module.register_method("count", |_, count, _| count.load(Ordering::Relaxed))?;
        let cancel = ctx.cancel.clone();
        let serving = Serve::new(module)
            .endpoint(ctx.daemon.clone())
            .token(ctx.token.clone())
            .shutdown(async move { cancel.cancelled().await })
            .run();
        let counting = async {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let n = count.fetch_add(1, Ordering::Relaxed) + 1;
                ctx.log.out(&format!("indexed batch {n}")).await;
            }
        };
        tokio::select! {
            served = serving => served?,
            _ = counting => {}
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let daemon = Daemon::builder().task("indexer", Indexer);
    let home = daemon.home.clone();
    let running = tokio::spawn(daemon.run(async {
        let _ = tokio::signal::ctrl_c().await;
    }));

    // Define and start the task as a sidecar once the daemon answers.
    let client = loop {
        match Client::connect_unix(&home.socket()).await {
            Ok(client) => break client,
            Err(_) if !running.is_finished() => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => return Err(e.into()),
        }
    };
    let mut indexer = Definition::new(vec!["indexer".into()]);
    indexer.runtime = RuntimeKind::Task;
    indexer.ready = Readiness::Registered;
    client.daemon().map("indexer".into(), indexer, true).await?;
    client.daemon().start(StartParams { name: Some("indexer".into()), ..Default::default() }).await?;
    println!("indexer is running in this process; PM_HOME is {} (Ctrl-C stops it)", home.root().display());
    running.await??;
    Ok(())
}
