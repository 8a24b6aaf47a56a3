//! The supervisor's logic against the recording fake runtime: order, sharing, restarts, refusals.
//! (The same behaviours with real processes are covered by the black-box tests.)

use super::*;
use crate::home::Home;
use crate::logs::LogHub;
use pm_protocol::params::{StartParams, StopParams};
use pm_protocol::{RestartPolicy, State};
use pm_runtimes::fake::{Call, RecordingRuntime};
use pm_runtimes::{Exit, Runtime, SpawnError, SpawnSpec, Spawned};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(10);

struct Harness {
    sup: Supervisor,
    fake: RecordingRuntime,
    _dir: tempfile::TempDir,
}

fn harness() -> Harness {
    let fake = RecordingRuntime::default();
    harness_with(fake.clone(), Arc::new(fake))
}

/// A harness whose actors spawn through `runtime` (which should record into `fake`).
fn harness_with(fake: RecordingRuntime, runtime: Arc<dyn Runtime>) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    home.create().unwrap();
    let ctx = Context {
        mesh: Default::default(),
        runtime,
        logs: LogHub::new(home.clone()),
        events: tokio::sync::broadcast::channel(64).0,
        dirty: Default::default(),
        tracker: Default::default(),
        daemon_endpoint: "unix:///test/pm.sock".into(),
        notifier: Default::default(),
        meter: Default::default(),
        ports: Default::default(),
    };
    Harness { sup: Supervisor::new(ctx, home.state(), home.state_backup()), fake, _dir: dir }
}

fn def(deps: &[&str]) -> Definition {
    let mut d = Definition::new(vec!["server".into()]);
    d.depends_on = deps.iter().map(|s| s.to_string()).collect();
    d
}

fn spawned(fake: &RecordingRuntime) -> Vec<String> {
    fake.calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Spawn(spec) => Some(spec.instance),
            _ => None,
        })
        .collect()
}

fn stopped(fake: &RecordingRuntime) -> Vec<String> {
    fake.calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Stop { instance, .. } => Some(instance),
            _ => None,
        })
        .collect()
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    tokio::time::timeout(LIMIT, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

fn state(sup: &Supervisor, name: &str) -> InstanceStatus {
    sup.status(Some(name)).unwrap().remove(0)
}

#[tokio::test]
async fn dependencies_spawn_first_and_stop_last() {
    let h = harness();
    let defs = BTreeMap::from([("db".into(), def(&[])), ("api".into(), def(&["db"])), ("jobs".into(), def(&["db"]))]);
    tokio::time::timeout(LIMIT, h.sup.apply(defs, true)).await.unwrap().unwrap();
    let order = spawned(&h.fake);
    assert_eq!(order[0], "db", "{order:?}");
    assert_eq!(order.len(), 3);
    let env = match &h.fake.calls()[0] {
        Call::Spawn(spec) => spec.env.clone(),
        other => panic!("{other:?}"),
    };
    assert!(
        env.contains(&("PM_NAME".into(), "db".into()))
            && env.contains(&("PM_DAEMON".into(), "unix:///test/pm.sock".into()))
    );

    tokio::time::timeout(LIMIT, h.sup.stop(StopParams { name: Some("db".into()), all: false })).await.unwrap().unwrap();
    let order = stopped(&h.fake);
    assert_eq!(order.last().map(String::as_str), Some("db"), "{order:?}");
    assert_eq!(order.len(), 3);
}

#[tokio::test]
async fn concurrent_starts_of_one_instance_spawn_it_once() {
    let h = harness();
    h.sup.map("web".into(), def(&[]), false).await.unwrap();
    let start = || h.sup.start(StartParams { name: Some("web".into()), ..Default::default() });
    let (a, b) = tokio::time::timeout(LIMIT, futures::future::join(start(), start())).await.unwrap();
    assert!(a.is_ok() && b.is_ok());
    assert_eq!(spawned(&h.fake), ["web"]);
}

#[tokio::test]
async fn crashes_restart_until_the_budget_is_spent() {
    let h = harness();
    let mut d = def(&[]);
    d.restart = RestartPolicy::Always;
    d.backoff_initial = Duration::ZERO;
    d.max_restarts = 2;
    h.sup.map("web".into(), d, false).await.unwrap();
    h.sup.start(StartParams { name: Some("web".into()), ..Default::default() }).await.unwrap();
    for run in 1..=3 {
        wait_for("a run to crash", || spawned(&h.fake).len() == run && state(&h.sup, "web").state == State::Ready)
            .await;
        assert!(h.fake.exit("web", Exit { code: Some(9), signal: None }));
    }
    wait_for("web failed", || state(&h.sup, "web").state == State::Failed).await;
    let s = state(&h.sup, "web");
    assert_eq!(s.restarts, 2);
    assert_eq!(s.reason.as_deref(), Some("gave up after 2 restarts within 1m (last exit: code 9)"));
    assert_eq!(spawned(&h.fake).len(), 3, "no run after giving up");
}

#[tokio::test]
async fn a_spawn_failure_fails_the_start_with_its_message() {
    let h = harness();
    h.sup.map("web".into(), def(&[]), false).await.unwrap();
    h.fake.fail_next_spawn("web", "boom");
    let err = h.sup.start(StartParams { name: Some("web".into()), ..Default::default() }).await.unwrap_err();
    assert!(err.to_string().starts_with("web: ") && err.to_string().contains("boom"), "{err}");
    assert_eq!(state(&h.sup, "web").state, State::Failed);
}

#[tokio::test]
async fn refusals_leave_everything_as_it_was() {
    let h = harness();
    h.sup.map("db".into(), def(&[]), false).await.unwrap();
    h.sup.map("api".into(), def(&["db"]), false).await.unwrap();
    let err = h.sup.map("db".into(), def(&["api"]), true).await.unwrap_err();
    assert_eq!(err.to_string(), "dependency cycle: api -> db -> api");
    assert!(h.sup.ls().iter().find(|d| d.name == "db").unwrap().definition.depends_on.is_empty());
    let err = h.sup.delete("db").await.unwrap_err();
    assert!(err.to_string().contains("cannot delete `db`: api depend(s) on it"), "{err}");
    let err = h.sup.map("db".into(), def(&[]), false).await.unwrap_err();
    assert!(matches!(err, SupError::AlreadyExists(_)));
    assert!(spawned(&h.fake).is_empty());
}

/// The recording runtime, except that its next spawn panics once armed.
struct PanicsOnce {
    fake: RecordingRuntime,
    armed: AtomicBool,
}

#[async_trait::async_trait]
impl Runtime for PanicsOnce {
    async fn spawn(&self, spec: SpawnSpec) -> std::result::Result<Spawned, SpawnError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            panic!("injected bug");
        }
        self.fake.spawn(spec).await
    }
}

#[tokio::test]
async fn a_panic_in_an_actor_fails_the_instance_and_the_actor_goes_on() {
    let fake = RecordingRuntime::default();
    let runtime = Arc::new(PanicsOnce { fake: fake.clone(), armed: AtomicBool::new(true) });
    let h = harness_with(fake, runtime);
    h.sup.map("web".into(), def(&[]), false).await.unwrap();
    let start = || h.sup.start(StartParams { name: Some("web".into()), ..Default::default() });
    let err = tokio::time::timeout(LIMIT, start()).await.unwrap().unwrap_err();
    assert_eq!(err.to_string(), "web: internal error: injected bug");
    let s = state(&h.sup, "web");
    assert_eq!((s.state, s.reason.as_deref()), (State::Failed, Some("internal error: injected bug")));
    tokio::time::timeout(LIMIT, start()).await.unwrap().unwrap();
    assert_eq!(state(&h.sup, "web").state, State::Ready);
}

#[tokio::test]
async fn durations_past_the_clock_do_not_panic_an_actor() {
    // Validation refuses such values; an instance given one anyway must still not panic.
    let h = harness();
    let mut d = def(&[]);
    d.ready = pm_protocol::Readiness::Log("never".into());
    d.ready_timeout = Duration::MAX;
    d.restart = RestartPolicy::Always;
    d.backoff_initial = Duration::MAX;
    d.backoff_max = Duration::MAX;
    let spec =
        InstanceSpec { name: "web".into(), definition: "web".into(), def: Arc::new(d), args: Vec::new(), index: 0 };
    let web = Instance::spawn(spec, h.sup.inner.ctx.clone());
    let seq = web.ask(Command::Prepare).await.unwrap();
    web.send(Command::Launch(seq)).await;
    wait_for("web starting", || web.snapshot().state == State::Starting).await;
    assert!(h.fake.exit("web", Exit { code: Some(1), signal: None }));
    wait_for("web backing off", || web.snapshot().state == State::Backoff).await;
    tokio::time::timeout(LIMIT, web.ask(Command::Stop)).await.unwrap().unwrap();
    assert_eq!(web.snapshot().state, State::Stopped);
}

#[tokio::test]
async fn planning_a_stop_of_many_instances_is_not_quadratic() {
    // Never started, so what costs is the plan: the ordering between the instances.
    let h = harness();
    let mut many = def(&[]);
    many.instances = pm_protocol::definition::MAX_INSTANCES;
    let defs = BTreeMap::from([("many".into(), many), ("top".into(), def(&["many"]))]);
    h.sup.apply(defs, false).await.unwrap();
    let all = StopParams { name: None, all: true };
    let stopped = tokio::time::timeout(Duration::from_secs(5), h.sup.stop(all)).await.unwrap().unwrap();
    assert_eq!(stopped.len(), 10_001);
}

async fn stop(sup: &Supervisor, name: &str) {
    let params = StopParams { name: Some(name.into()), all: false };
    tokio::time::timeout(LIMIT, sup.stop(params)).await.unwrap().unwrap();
}

#[tokio::test]
async fn an_exited_one_shot_between_keeps_dependents_stopping_first() {
    let h = harness();
    let mut once = def(&["base"]);
    once.ready = pm_protocol::Readiness::Exited;
    let defs = BTreeMap::from([("base".into(), def(&[])), ("once".into(), once), ("top".into(), def(&["once"]))]);
    let exit_once = async {
        wait_for("once spawned", || spawned(&h.fake).contains(&"once".to_string())).await;
        assert!(h.fake.exit("once", Exit { code: Some(0), signal: None }));
    };
    let (started, ()) =
        tokio::time::timeout(LIMIT, futures::future::join(h.sup.apply(defs, true), exit_once)).await.unwrap();
    started.unwrap();
    assert_eq!(state(&h.sup, "once").state, State::Exited);
    stop(&h.sup, "base").await;
    assert_eq!(stopped(&h.fake), ["top", "base"]);
}

#[tokio::test]
async fn dependents_stay_up_until_the_last_ready_instance_of_a_dependency_stops() {
    let h = harness();
    let mut pool = def(&[]);
    pool.instances = 3;
    pool.stateless = true;
    let defs = BTreeMap::from([("pool".into(), pool), ("top".into(), def(&["pool"]))]);
    tokio::time::timeout(LIMIT, h.sup.apply(defs, true)).await.unwrap().unwrap();
    stop(&h.sup, "pool-1").await;
    stop(&h.sup, "pool-0").await;
    assert_eq!(stopped(&h.fake), ["pool-1", "pool-0"]);
    assert_eq!(state(&h.sup, "top").state, State::Ready);
    stop(&h.sup, "pool-2").await;
    assert_eq!(stopped(&h.fake), ["pool-1", "pool-0", "top", "pool-2"]);
    assert_eq!(state(&h.sup, "top").state, State::Stopped);
}

#[tokio::test]
async fn concurrent_stops_of_the_last_instances_still_stop_dependents_first() {
    let h = harness();
    let mut pool = def(&[]);
    pool.instances = 2;
    let defs = BTreeMap::from([("pool".into(), pool), ("top".into(), def(&["pool"]))]);
    tokio::time::timeout(LIMIT, h.sup.apply(defs, true)).await.unwrap().unwrap();
    futures::future::join(stop(&h.sup, "pool-0"), stop(&h.sup, "pool-1")).await;
    let order = stopped(&h.fake);
    assert_eq!(state(&h.sup, "top").state, State::Stopped, "{order:?}");
    let pos = |n: &str| order.iter().position(|o| o == n).unwrap();
    assert!(pos("top") < pos("pool-1"), "{order:?}");
}
