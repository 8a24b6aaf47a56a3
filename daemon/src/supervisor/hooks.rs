//! Lifecycle hooks: a definition's `pre_start`, `post_start`, `pre_stop` and `post_stop`
//! commands, run on the host with the instance's environment (plus `PM_HOOK` and the hook's own
//! `env`), each bounded by its timeout and killed whole after it. Their output goes into the
//! instance's log, each line after `[pre_start] ` (or the hook's name), and so does a failure.

use super::context::Context;
use super::host_command::HostCommand;
use super::probe::Target;
use pm_protocol::Hook;
use pm_runtimes::{OutputLine, Stream};
use std::time::SystemTime;
use tokio::sync::mpsc;

/// Runs hook `name` of the instance `target` names, with its environment and working directory
/// and `extra` variables, to its end or its timeout; a failure is also written to its log.
pub async fn run(
    ctx: &Context,
    target: &Target,
    name: &str,
    hook: &Hook,
    extra: &[(&str, String)],
) -> Result<(), String> {
    let mut env: std::collections::BTreeMap<String, String> = target.env.iter().cloned().collect();
    env.extend(hook.env.clone());
    env.insert("PM_HOOK".into(), name.into());
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let command = HostCommand { argv: &hook.command, env: &env, cwd: target.cwd.as_deref(), timeout: hook.timeout };
    let (tx, rx) = mpsc::channel(64);
    let pump = ctx.logs.pump(target.instance.clone(), pm_runtimes::output_of(rx), None);
    let ran = async move {
        let result = command.run(Some((&tx, name))).await.and_then(|ended| ended.success(&hook.command));
        if let Err(e) = &result {
            let line = format!("[{name}] failed: {e}");
            let _ = tx.send(OutputLine { stream: Stream::Stderr, line, at: SystemTime::now() }).await;
        }
        result
    };
    let (result, ()) = tokio::join!(ran, pump);
    if let Err(e) = &result {
        tracing::warn!("{}: {name} hook failed: {e}", target.instance);
    }
    result
}

/// A task that ends when this is dropped (a `post_start` hook ends with its run).
pub struct Beside(tokio::task::JoinHandle<()>);

impl Beside {
    pub fn spawn(task: impl Future<Output = ()> + Send + 'static) -> Beside {
        Beside(tokio::spawn(task))
    }
}

impl Drop for Beside {
    fn drop(&mut self) {
        self.0.abort();
    }
}
