//! Launching a run: its port and variables, its environment, the pre_start hook, the spawn, how
//! its readiness will be known, and its pid on disk.

use super::beside::until_passes;
use super::{Actor, Phase, Run, expanded};
use crate::logs::ReadyOnLine;
use crate::supervisor::memory_limit::Limit;
use crate::supervisor::ports::Lease;
use crate::supervisor::probe::Target;
use futures::future::BoxFuture;
use pm_protocol::status::now_ms;
use pm_protocol::vars::Vars;
use pm_protocol::{Definition, Probe, Readiness, State};
use pm_runtimes::SpawnSpec;
use std::time::Instant;
use tokio::sync::oneshot;

impl Actor {
    pub(super) async fn launch(&mut self) -> Phase {
        let port = match self.template.port {
            Some(spec) => match self.ctx.ports.take(&self.spec.name, &self.spec.definition, spec, self.spec.index) {
                Ok(lease) => Some(lease),
                Err(reason) => return self.fail(reason),
            },
            None => None,
        };
        let vars = Vars { name: self.spec.name.clone(), index: self.spec.index, port: port.as_ref().map(Lease::port) };
        self.spec.def = expanded(&vars, &self.template);
        self.vars = Some(vars);
        let def = self.spec.def.clone();
        let env = match self.environment() {
            Ok(env) => env,
            Err(reason) => return self.fail(reason),
        };
        // Commands of probes and hooks run as the sidecar would, but without its token.
        let mut target = Target {
            instance: self.spec.name.clone(),
            exec_in: None,
            // A copy only for the commands that will need it.
            env: if runs_commands(&def) { env.clone() } else { Vec::new() },
            cwd: def.cwd.clone(),
            mesh: self.ctx.mesh.clone(),
        };
        if let Some(hook) = def.hooks.pre_start.clone()
            && let Some(phase) = self.pre_start(&hook, &target).await
        {
            return phase;
        }
        // The token is issued only now, for a run that is spawned.
        let spawned = match self.ctx.runtime.spawn(self.spawn_spec(env)).await {
            Ok(s) => s,
            Err(e) => {
                // The reason is shown next to the instance's name: drop the runtime's prefix.
                let message = e.to_string();
                let prefix = format!("{}: ", self.spec.name);
                let reason = message.strip_prefix(&prefix).unwrap_or(&message).to_string();
                // An engine that does not answer is waited for, when the policy restarts.
                if def.restart != pm_protocol::RestartPolicy::Never
                    && let Some(back) = self.ctx.runtime.when_available(&e)
                {
                    self.fail(format!("{reason}; pm starts it again once the engine answers"));
                    return Phase::Unavailable(back);
                }
                return self.fail(reason);
            }
        };
        target.exec_in = spawned.handle.exec_in();
        let (line_ready, check) = match &def.ready {
            Readiness::Log(pattern) => match regex::Regex::new(pattern) {
                Ok(pattern) => {
                    let (fire, fired) = oneshot::channel();
                    let check: BoxFuture<'static, ()> = Box::pin(async move {
                        // A closed channel means the output ended without a match: never ready.
                        if fired.await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    });
                    (Some(ReadyOnLine { pattern, fire }), Some(check))
                }
                Err(e) => return self.fail(format!("invalid ready log pattern: {e}")),
            },
            Readiness::Tcp(addr) => (None, Some(until_passes(Probe::Tcp(addr.clone()), &target))),
            Readiness::Http(url) => match pm_protocol::HttpProbe::new(url.clone(), None, None) {
                Ok(http) => (None, Some(until_passes(Probe::Http(http), &target))),
                Err(e) => return self.fail(format!("ready: {e}")),
            },
            Readiness::Exec(argv) => (None, Some(until_passes(Probe::Exec(argv.clone()), &target))),
            Readiness::Registered => (None, Some(self.ctx.mesh.registered(self.spec.name.clone()))),
            Readiness::Started | Readiness::Exited => (None, None),
        };
        let logs = self.ctx.logs.clone();
        let name = self.spec.name.clone();
        self.ctx.tracker.spawn(async move { logs.pump(name, spawned.output, line_ready).await });

        let (pid, start_time) = (spawned.handle.pid(), spawned.handle.start_time());
        let now = Instant::now();
        let ready = def.ready == Readiness::Started;
        let deadline = now.checked_add(def.ready_timeout);
        let usage = spawned.handle.usage();
        self.ctx.meter.start(&self.spec.name, pid, usage.clone());
        let memory = def.max_memory.zip(usage).map(|(max, source)| Limit::start(source, max));
        let mut run = Box::new(Run {
            handle: spawned.handle,
            started: now,
            ready,
            check,
            deadline,
            target,
            health: None,
            post_start: None,
            memory,
            _port: port,
        });
        if ready {
            self.on_ready(&mut run);
        }
        self.record_pid(pid, start_time);
        let containment = run.handle.containment();
        let state = match def.ready {
            Readiness::Started => State::Ready,
            Readiness::Exited => State::Running,
            _ => State::Starting,
        };
        self.publish(|s| {
            s.state = state;
            s.started_at_ms = Some(now_ms());
            s.started = Some(Instant::now());
            s.reason = None;
            s.containment = containment;
            s.health = None;
            s.port = self.vars.as_ref().and_then(|v| v.port);
        });
        Phase::Running(run)
    }

    /// Queues a new run's pid for disk, so that a daemon killed later leaves a state naming this
    /// process and the next daemon kills it instead of starting a second copy. A start by hand
    /// is answered only once it is there (`start_instances` saves before it answers); a restart after a
    /// crash does not wait for the disk, which would cost every restart an fsync.
    fn record_pid(&self, pid: Option<u32>, start_time: Option<u64>) {
        let Some(pid) = pid else { return };
        self.publish(|s| {
            s.pid = Some(pid);
            s.pid_start_time = start_time;
        });
        self.ctx.dirty.nudge();
    }

    /// The environment of the next run, but its token.
    fn environment(&self) -> Result<Vec<(String, String)>, String> {
        let def = &self.spec.def;
        let mut env = Vec::new();
        for file in &def.env_file {
            let vars = dotenvy::from_path_iter(file).map_err(|e| format!("env file {}: {e}", file.display()))?;
            for var in vars {
                env.push(var.map_err(|e| format!("env file {}: {e}", file.display()))?);
            }
        }
        env.extend(def.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        env.extend(self.vars.iter().flat_map(Vars::pairs).map(|(k, v)| (k.to_string(), v)));
        env.push(("PM_DAEMON".into(), self.ctx.daemon_endpoint.clone()));
        Ok(env)
    }

    /// The next run: its command line, working directory, and `env` with a new token.
    fn spawn_spec(&self, mut env: Vec<(String, String)>) -> SpawnSpec {
        let def = &self.spec.def;
        env.push(("PM_TOKEN".into(), self.ctx.mesh.issue_token(&self.spec.name, def.clone())));
        let mut command = def.command.clone();
        let expand = |arg: &String| self.vars.as_ref().map_or_else(|| arg.clone(), |v| v.expand(arg));
        command.extend(self.spec.args.iter().map(expand));
        SpawnSpec {
            runtime: def.runtime,
            docker: def.docker.clone(),
            instance: self.spec.name.clone(),
            command,
            cwd: def.cwd.clone(),
            env,
        }
    }
}

/// Whether a run's hooks or probes run commands on the host, with its environment.
fn runs_commands(def: &Definition) -> bool {
    !def.hooks.is_empty()
        || matches!(def.ready, Readiness::Exec(_))
        || def.health.as_ref().is_some_and(|h| matches!(h.probe, Probe::Exec(_)))
}
