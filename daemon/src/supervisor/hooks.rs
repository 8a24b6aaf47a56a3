//! Lifecycle hooks: a definition's `pre_start`, `post_start`, `pre_stop` and `post_stop`
//! commands, run on the host with the instance's environment (plus `PM_HOOK` and the hook's own
//! `env`), each bounded by its timeout and killed whole after it. Their output goes into the
//! instance's log, each line after `[pre_start] ` (or the hook's name), and so does a failure.

use super::context::Context;
use super::host_command::HostCommand;
use pm_protocol::Hook;
use pm_runtimes::{OutputLine, Stream};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;
use tokio::sync::mpsc;

/// What a hook runs for: the instance, its environment and working directory.
pub struct HookTarget<'a> {
    pub ctx: &'a Context,
    pub instance: &'a str,
    pub env: &'a BTreeMap<String, String>,
    pub cwd: Option<&'a Path>,
}

impl HookTarget<'_> {
    /// Runs hook `name`, with `extra` variables, to its end or its timeout; a failure is also
    /// written to the instance's log.
    pub async fn run(&self, name: &str, hook: &Hook, extra: &[(&str, String)]) -> Result<(), String> {
        let mut env = self.env.clone();
        env.extend(hook.env.clone());
        env.insert("PM_HOOK".into(), name.into());
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let command = HostCommand { argv: &hook.command, env: &env, cwd: self.cwd, timeout: hook.timeout };
        let (tx, rx) = mpsc::channel(64);
        let pump = self.ctx.logs.pump(self.instance.to_string(), rx, None);
        let run = async move {
            let result = command.run(Some((&tx, name))).await.and_then(|ended| ended.success(&hook.command));
            if let Err(e) = &result {
                let line = format!("[{name}] failed: {e}");
                let _ = tx.send(OutputLine { stream: Stream::Stderr, line, at: SystemTime::now() }).await;
            }
            result
        };
        let (result, ()) = tokio::join!(run, pump);
        if let Err(e) = &result {
            tracing::warn!("{}: {name} hook failed: {e}", self.instance);
        }
        result
    }
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
