//! The instance actor: one task owns one instance's run (child, readiness, restarts) and its
//! state. Everyone else sends it commands or reads its published [`Snapshot`], so a slow or hung
//! sidecar never blocks the daemon or other instances.

mod beside;
mod history;
mod launch;
mod watched;

use super::context::Context;
use super::health::Checker;
use super::hooks::{self, Beside};
use super::memory_limit::Limit;
use super::ports::Lease;
use super::probe::Target;
use super::restart::{Decision, Tracker};
use futures::future::BoxFuture;
use futures::{FutureExt, SinkExt, StreamExt};
pub use history::History;
use pm_protocol::status::{Event, now_ms};
use pm_protocol::vars::Vars;
use pm_protocol::{Definition, ExitInfo, HealthInfo, Readiness, State};
use pm_runtimes::{Exit, Handle, parse_signal, signal_name};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};
use tokio::time::sleep_until;

/// What an instance runs: its definition plus its own arguments.
#[derive(Debug, Clone)]
pub struct InstanceSpec {
    pub name: String,
    /// Its definition's name, and the definition.
    pub definition: String,
    pub def: Arc<Definition>,
    pub args: Vec<String>,
    /// Its index among its definition's instances (`PM_INSTANCE`), which picks its port from a
    /// range.
    pub index: u32,
}

/// The published state of an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub state: State,
    pub pid: Option<u32>,
    /// The current run's port.
    pub port: Option<u16>,
    /// The process' start time (from /proc), to recognise it after a daemon crash.
    pub pid_start_time: Option<u64>,
    /// How its last run was held (`cgroup`, `marker`, `task`, `container`).
    pub containment: Option<&'static str>,
    /// What the current run's health check found (none: no check, or none ran yet).
    pub health: Option<HealthInfo>,
    pub started_at_ms: Option<u64>,
    pub started: Option<Instant>,
    pub restarts: u32,
    pub last_exit: Option<ExitInfo>,
    pub reason: Option<String>,
    /// Bumped by each start request, so a waiter knows which start it is waiting for.
    pub start_seq: u64,
    /// The start that last reached ready (or exited as a one-shot): a waiter that looks late,
    /// after a quick crash, still learns its start succeeded.
    pub ready_seq: u64,
}

impl Snapshot {
    fn new() -> Self {
        Snapshot {
            state: State::Stopped,
            pid: None,
            port: None,
            pid_start_time: None,
            containment: None,
            health: None,
            started_at_ms: None,
            started: None,
            restarts: 0,
            last_exit: None,
            reason: None,
            start_seq: 0,
            ready_seq: 0,
        }
    }

    /// Ready, or a one-shot that finished as expected: either way its dependents are served.
    pub fn serves(&self) -> bool {
        matches!(self.state, State::Ready | State::Exited)
    }

    /// No run and none coming: stopped, failed or exited.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Stopped | State::Failed | State::Exited)
    }
}

pub enum Command {
    /// Prepare a start: answers the sequence number to wait on. An idle instance becomes
    /// `waiting` (for its dependencies); an active one keeps running and answers its current one.
    Prepare(oneshot::Sender<u64>),
    /// Launch the prepared start `seq` (ignored if something else happened since).
    Launch(u64),
    /// The prepared start `seq` cannot happen: fail it with this reason.
    Abort(u64, String),
    /// Stop, answering once stopped.
    Stop(oneshot::Sender<()>),
    /// New definition or arguments, used from the next launch on. Boxed: every instance's
    /// command queue holds slots the size of the largest command.
    Update(Box<InstanceSpec>),
    /// Stop and end the actor (the instance is deleted).
    Exit(oneshot::Sender<()>),
    /// Send a signal to the current run, if there is one (`pm run` forwards what it receives).
    Signal(nix::sys::signal::Signal),
    /// Restart the current run (or end its backoff) at once, for this reason: a watched file
    /// changed. Ignored with no run.
    Restart(String),
}

/// The supervisor's handle on an actor.
#[derive(Clone)]
pub struct Instance {
    /// A `futures` channel: it allocates per command, where tokio's takes a block of 32 slots
    /// up front, for every instance.
    commands: futures::channel::mpsc::Sender<Command>,
    status: watch::Receiver<Snapshot>,
    /// Its recent states and exits, for `pm info` only.
    history: History,
}

impl Instance {
    pub fn spawn(spec: InstanceSpec, ctx: Context) -> Instance {
        Instance::spawn_as(spec, ctx, Snapshot::new())
    }

    /// An instance that failed under an earlier daemon: it stays failed, with its reason.
    pub fn spawn_failed(spec: InstanceSpec, ctx: Context, reason: String) -> Instance {
        let initial = Snapshot { state: State::Failed, reason: Some(reason), ..Snapshot::new() };
        Instance::spawn_as(spec, ctx, initial)
    }

    fn spawn_as(spec: InstanceSpec, ctx: Context, initial: Snapshot) -> Instance {
        let (commands, rx) = futures::channel::mpsc::channel(64);
        let (status_tx, status) = watch::channel(initial);
        let history = History::default();
        let restarts = Tracker::default();
        let template = spec.def.clone();
        let actor = Actor {
            spec,
            template,
            vars: None,
            ctx: ctx.clone(),
            status: status_tx,
            restarts,
            rx,
            history: history.clone(),
        };
        ctx.tracker.spawn(actor.run());
        Instance { commands, status, history }
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    pub fn snapshot(&self) -> Snapshot {
        self.status.borrow().clone()
    }

    /// The current snapshot without copying it; hold it briefly (the actor waits to update it).
    pub fn peek(&self) -> watch::Ref<'_, Snapshot> {
        self.status.borrow()
    }

    pub fn watch(&self) -> watch::Receiver<Snapshot> {
        self.status.clone()
    }

    /// Sends a command; an actor that has ended (deleted) ignores it.
    pub async fn send(&self, cmd: Command) {
        let _ = self.commands.clone().send(cmd).await;
    }

    /// Sends a command that answers, and waits for the answer (None if the actor has ended).
    pub async fn ask<T>(&self, cmd: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.send(cmd(tx)).await;
        rx.await.ok()
    }
}

struct Actor {
    /// What it runs, its definition's per-instance variables expanded for the current run.
    spec: InstanceSpec,
    /// The definition as given, for the next run's expansion.
    template: Arc<Definition>,
    /// The per-instance variables of the current (or last) run.
    vars: Option<Vars>,
    ctx: Context,
    status: watch::Sender<Snapshot>,
    restarts: Tracker,
    rx: futures::channel::mpsc::Receiver<Command>,
    history: History,
}

/// One run of the instance's process.
struct Run {
    handle: Box<dyn Handle>,
    started: Instant,
    ready: bool,
    /// Resolves when the readiness condition is met (none: ready at once, or on exit).
    check: Option<BoxFuture<'static, ()>>,
    /// When readiness times out (none: beyond the clock's range, never).
    deadline: Option<Instant>,
    /// What probes of this run check, and its health check once it is ready.
    target: Target,
    health: Option<Checker>,
    /// Its `post_start` hook, while it runs.
    post_start: Option<Beside>,
    /// The watch on its memory, with `max_memory`.
    memory: Option<Limit>,
    /// Its port, held for it until the run ends.
    _port: Option<Lease>,
}

enum Phase {
    Idle,
    Launch,
    Running(Box<Run>),
    /// Waiting to launch again (at none: never).
    Backoff(Option<Instant>),
    /// Failed because its runtime's engine did not answer: idle until it answers again.
    Unavailable(BoxFuture<'static, ()>),
    Ended,
}

impl Actor {
    async fn run(mut self) {
        let mut phase = Phase::Idle;
        while !matches!(phase, Phase::Ended) {
            // A bug must not leave the instance stuck in a state nobody drives any more: a panic
            // fails the instance, and the actor goes on taking commands.
            phase = match AssertUnwindSafe(self.step(phase)).catch_unwind().await {
                Ok(next) => next,
                Err(panic) => self.panicked(panic.as_ref()),
            };
        }
    }

    async fn step(&mut self, phase: Phase) -> Phase {
        match phase {
            Phase::Idle => match self.rx.next().await {
                Some(cmd) => self.idle(cmd),
                None => Phase::Ended,
            },
            // Every actor's task is as large as its largest phase: the phases an instance spends
            // little time in are boxed, so a running one holds only what running needs.
            Phase::Launch => Box::pin(self.launch()).await,
            Phase::Running(run) => self.running(run).await,
            Phase::Backoff(until) => Box::pin(self.backoff(until)).await,
            Phase::Unavailable(back) => Box::pin(self.unavailable(back)).await,
            Phase::Ended => Phase::Ended,
        }
    }

    /// After a panic: kills the process group of the run it interrupted (its handle is gone), and
    /// fails the instance with the panic's message.
    fn panicked(&mut self, panic: &(dyn std::any::Any + Send)) -> Phase {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        tracing::error!("{}: internal error: {message}", self.spec.name);
        let (pid, start_time) = {
            let s = self.status.borrow();
            (s.pid, s.pid_start_time)
        };
        // A container is removed through the engine when its dropped handle lets it go.
        if let (Some(pid), Some(start_time)) = (pid, start_time)
            && self.spec.def.runtime != pm_protocol::RuntimeKind::Docker
        {
            pm_runtimes::process::kill_leftover_group(pm_runtimes::process::Identity { pid, start_time });
        }
        self.publish(|s| {
            s.pid = None;
            s.pid_start_time = None;
            s.started = None;
        });
        self.fail(format!("internal error: {message}"))
    }

    fn idle(&mut self, cmd: Command) -> Phase {
        let waiting_for = |s: &Snapshot, seq| s.state == State::Waiting && s.start_seq == seq;
        match cmd {
            Command::Prepare(reply) => {
                // Concurrent starts of a waiting instance share its pending start.
                let seq = self.publish(|s| {
                    if s.state != State::Waiting {
                        s.start_seq += 1;
                        s.state = State::Waiting;
                        s.reason = None;
                    }
                    s.start_seq
                });
                let _ = reply.send(seq);
            }
            Command::Launch(seq) if waiting_for(&self.status.borrow(), seq) => {
                // A start by hand gets a fresh restart budget.
                self.restarts.reset();
                self.publish(|s| s.restarts = 0);
                return Phase::Launch;
            }
            Command::Abort(seq, reason) if waiting_for(&self.status.borrow(), seq) => {
                self.publish(|s| {
                    s.state = State::Failed;
                    s.reason = Some(reason);
                });
            }
            Command::Launch(_) | Command::Abort(..) => {}
            Command::Stop(reply) => {
                self.publish(|s| {
                    if s.state == State::Waiting {
                        s.state = State::Stopped;
                        s.reason = None;
                    }
                });
                let _ = reply.send(());
            }
            Command::Update(spec) => self.update(*spec),
            Command::Exit(reply) => {
                let _ = reply.send(());
                return Phase::Ended;
            }
            Command::Signal(_) | Command::Restart(_) => {}
        }
        Phase::Idle
    }

    async fn running(&mut self, mut run: Box<Run>) -> Phase {
        let waits_for_readiness = !run.ready && self.spec.def.ready != Readiness::Exited;
        tokio::select! {
            exit = run.handle.wait() => Box::pin(self.exited(run, exit)).await,
            cmd = self.rx.next() => match cmd {
                Some(Command::Stop(reply)) => {
                    Box::pin(self.stop(&mut run)).await;
                    let _ = reply.send(());
                    Phase::Idle
                }
                Some(Command::Exit(reply)) => {
                    Box::pin(self.stop(&mut run)).await;
                    let _ = reply.send(());
                    Phase::Ended
                }
                None => {
                    Box::pin(self.stop(&mut run)).await;
                    Phase::Ended
                }
                Some(Command::Signal(signal)) => {
                    if let Err(e) = run.handle.signal(signal) {
                        tracing::warn!("{}: cannot send {signal}: {e}", self.spec.name);
                    }
                    Phase::Running(run)
                }
                Some(Command::Restart(why)) => Box::pin(self.restart_now(Some(run), why)).await,
                Some(cmd) => {
                    self.while_active(cmd);
                    Phase::Running(run)
                }
            },
            _ = async { run.check.as_mut().expect("guarded by the condition").await }, if run.check.is_some() && !run.ready => {
                run.ready = true;
                run.check = None;
                self.publish(|s| s.state = State::Ready);
                self.on_ready(&mut run);
                Phase::Running(run)
            }
            report = async { run.health.as_mut().expect("guarded by the condition").next().await }, if run.health.is_some() => {
                Box::pin(self.health_report(run, report)).await
            }
            bytes = async { run.memory.as_mut().expect("guarded by the condition").exceeded().await }, if run.memory.is_some() => {
                let max = self.spec.def.max_memory.unwrap_or_default();
                let (used, max) = (pm_protocol::size::format(bytes), pm_protocol::size::format(max));
                Box::pin(self.replace(run, State::Backoff, format!("memory {used} over max_memory {max}"))).await
            }
            _ = sleep_until_or_never(run.deadline), if waits_for_readiness => {
                let reason = format!(
                    "readiness `{}` not met within {}",
                    self.spec.def.ready,
                    humantime::format_duration(self.spec.def.ready_timeout)
                );
                Box::pin(self.stop_as(&mut run, State::Failed, Some(reason))).await;
                Phase::Idle
            }
        }
    }

    /// A command that arrives while a run is active or backing off.
    fn while_active(&mut self, cmd: Command) {
        match cmd {
            Command::Prepare(reply) => {
                let _ = reply.send(self.status.borrow().start_seq);
            }
            Command::Update(spec) => self.update(*spec),
            Command::Launch(_)
            | Command::Abort(..)
            | Command::Stop(_)
            | Command::Exit(_)
            | Command::Signal(_)
            | Command::Restart(_) => {}
        }
    }

    async fn backoff(&mut self, until: Option<Instant>) -> Phase {
        tokio::select! {
            _ = sleep_until_or_never(until) => Phase::Launch,
            cmd = self.rx.next() => match cmd {
                Some(Command::Stop(reply)) => {
                    self.publish(|s| { s.state = State::Stopped; s.reason = None; });
                    let _ = reply.send(());
                    Phase::Idle
                }
                Some(Command::Exit(reply)) => {
                    let _ = reply.send(());
                    Phase::Ended
                }
                None => Phase::Ended,
                Some(Command::Restart(why)) => self.restart_now(None, why).await,
                Some(cmd) => {
                    self.while_active(cmd);
                    Phase::Backoff(until)
                }
            },
        }
    }

    /// Failed because the engine did not answer: takes commands as when idle, and once the engine
    /// answers again, the restart policy decides (as after a crash). A start or a stop by hand
    /// ends the wait.
    async fn unavailable(&mut self, mut back: BoxFuture<'static, ()>) -> Phase {
        tokio::select! {
            _ = &mut back => {
                self.decide("its engine not answering", false, Duration::ZERO, "the engine answers again", |_| {})
            }
            cmd = self.rx.next() => match cmd {
                None => Phase::Ended,
                Some(Command::Stop(reply)) => {
                    let _ = reply.send(());
                    Phase::Idle
                }
                Some(cmd) => match self.idle(cmd) {
                    Phase::Idle if self.status.borrow().state == State::Failed => Phase::Unavailable(back),
                    next => next,
                },
            },
        }
    }

    /// Stops the run with the configured signal and timeout; SIGKILL to the group after that.
    async fn stop(&mut self, run: &mut Run) {
        self.stop_as(run, State::Stopped, None).await;
    }

    /// Stops the run and publishes `state` (with `reason`) in one step, so no waiter sees a
    /// `stopped` that is really a failure.
    async fn stop_as(&mut self, run: &mut Run, state: State, reason: Option<String>) {
        let def = &self.spec.def;
        self.publish(|s| s.state = State::Stopping);
        run.health = None;
        run.post_start = None;
        run.memory = None;
        if let Some(hook) = &def.hooks.pre_stop {
            // Whether it fails or times out, the stop goes on.
            let _ = hooks::run(&self.ctx, &run.target, "pre_stop", hook, &[]).await;
        }
        let signal = parse_signal(&def.stop_signal).unwrap_or(nix::sys::signal::Signal::SIGTERM);
        let exit = run.handle.stop(signal, def.stop_timeout).await;
        self.post_stop(&run.target, exit).await;
        let exit = self.exit_info(exit);
        // Stopped either way; when the runtime could not confirm it (an engine that did not
        // answer in time), the reason says so.
        let reason = reason.or_else(|| run.handle.stop_error());
        self.ctx.mesh.gone(&self.spec.name, "it was stopped");
        self.publish(|s| {
            s.state = state;
            s.pid = None;
            s.port = None;
            s.pid_start_time = None;
            s.started = None;
            s.reason = reason;
            s.last_exit = Some(exit);
        });
        self.ctx.dirty.nudge();
    }

    /// The run ended on its own: the restart policy decides what follows.
    async fn exited(&mut self, mut run: Box<Run>, exit: Exit) -> Phase {
        run.handle.sweep();
        run.health = None;
        run.post_start = None;
        run.memory = None;
        self.post_stop(&run.target, exit).await;
        let uptime = run.started.elapsed();
        drop(run);
        self.ctx.mesh.gone(&self.spec.name, "it exited");
        let info = self.exit_info(exit);
        let outcome = info.to_string();
        let success = exit.signal.is_none() && self.spec.def.is_success(exit.code);
        self.decide(&outcome, success, uptime, &format!("exited with {outcome}"), |s| {
            s.pid = None;
            s.port = None;
            s.pid_start_time = None;
            s.started = None;
            s.last_exit = Some(info);
        })
    }

    /// What follows a run that ended with `outcome` (or could not run): the restart policy's
    /// decision, published in one step with `also` (what else the end changes). A restart's
    /// reason is `why` and the delay.
    fn decide(
        &mut self,
        outcome: &str,
        success: bool,
        uptime: Duration,
        why: &str,
        also: impl FnOnce(&mut Snapshot),
    ) -> Phase {
        let decision = self.restarts.on_exit(&self.spec.def, outcome, success, uptime, Instant::now());
        let (state, reason, phase) = match decision {
            Decision::Restart(delay) => (
                State::Backoff,
                Some(format!("{why}; restarting in {}", humantime::format_duration(delay))),
                // No timer for no delay: even one of 0 s fires on the timer wheel's next
                // millisecond tick, which was most of a restart's latency.
                if delay.is_zero() { Phase::Launch } else { Phase::Backoff(Instant::now().checked_add(delay)) },
            ),
            Decision::Exited => (State::Exited, None, Phase::Idle),
            Decision::Fail(reason) => (State::Failed, Some(reason), Phase::Idle),
        };
        let restarting = state == State::Backoff;
        self.publish(|s| {
            s.state = state;
            s.reason = reason;
            also(s);
            if restarting {
                s.restarts += 1;
            }
        });
        self.ctx.dirty.nudge();
        phase
    }

    fn fail(&mut self, reason: String) -> Phase {
        // A run that never started: the token issued for it dies here.
        self.ctx.mesh.gone(&self.spec.name, "it failed to start");
        self.publish(|s| {
            s.state = State::Failed;
            s.reason = Some(reason);
        });
        // Failed is persisted: the next daemon does not resume it.
        self.ctx.dirty.nudge();
        Phase::Idle
    }

    /// Takes a new definition or arguments: the current run keeps its variables (its port).
    fn update(&mut self, spec: InstanceSpec) {
        self.template = spec.def.clone();
        self.spec = spec;
        if let Some(vars) = &self.vars {
            self.spec.def = expanded(vars, &self.template);
        }
    }

    /// Changes the published state and, if the state or reason changed, reports an event.
    fn publish<R>(&self, change: impl FnOnce(&mut Snapshot) -> R) -> R {
        let mut out = None;
        let mut event = None;
        self.status.send_modify(|s| {
            let before = (s.state, s.reason.clone());
            out = Some(change(s));
            if s.serves() {
                s.ready_seq = s.start_seq;
            }
            if before != (s.state, s.reason.clone()) {
                event = Some(Event {
                    instance: self.spec.name.clone(),
                    state: s.state,
                    reason: s.reason.clone(),
                    at_ms: now_ms(),
                });
            }
        });
        if let Some(event) = event {
            match &event.reason {
                Some(reason) => tracing::info!("{}: {} ({reason})", event.instance, event.state),
                None => tracing::info!("{}: {}", event.instance, event.state),
            }
            self.notify(&event);
            self.history.changed(&event);
            let _ = self.ctx.events.send(event);
        }
        out.expect("send_modify runs the closure")
    }

    /// How a run ended, kept in the history too.
    fn exit_info(&self, exit: Exit) -> ExitInfo {
        let info = ExitInfo { code: exit.code, signal: exit.signal.map(signal_name), at_ms: now_ms() };
        self.history.exited(&info);
        info
    }
}

/// The definition with the instance's variables in: the template itself when they change
/// nothing, so instances share one copy (most definitions use no variables).
fn expanded(vars: &Vars, template: &Arc<Definition>) -> Arc<Definition> {
    let def = vars.definition(template);
    if def == **template { template.clone() } else { Arc::new(def) }
}

/// Sleeps until `at`, or forever without it.
async fn sleep_until_or_never(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
