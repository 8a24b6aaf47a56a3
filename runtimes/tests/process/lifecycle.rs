use super::*;
use nix::sys::signal::Signal;
use pm_runtimes::Exit;

const SIGTERM: Option<i32> = Some(Signal::SIGTERM as i32);
const SIGKILL: Option<i32> = Some(Signal::SIGKILL as i32);

#[tokio::test]
async fn the_exit_code_is_reported_and_kept() {
    // stdin is /dev/null, so `read` returns at once instead of waiting for input.
    let mut spawned = spawn(sh("read _ignored; exit 3")).await;
    assert!(spawned.handle.pid().is_some());
    let exit = within(spawned.handle.wait()).await;
    assert_eq!(exit, Exit { code: Some(3), signal: None });
    assert_eq!(within(spawned.handle.wait()).await, exit, "a second wait returns the same exit");
}

#[tokio::test]
async fn a_cancelled_wait_can_be_resumed() {
    let mut spawned = spawn(sh("echo started; exec sleep 60")).await;
    assert_eq!(next_line(&mut spawned.output).await, "started");
    let cancelled = tokio::time::timeout(Duration::from_millis(20), spawned.handle.wait()).await;
    assert!(cancelled.is_err(), "the child is still running");
    spawned.handle.signal(Signal::SIGTERM).unwrap();
    assert_eq!(within(spawned.handle.wait()).await.signal, SIGTERM);
}

#[tokio::test]
async fn death_by_signal_is_reported() {
    let mut spawned = spawn(sh("kill -KILL $$")).await;
    assert_eq!(within(spawned.handle.wait()).await, Exit { code: None, signal: SIGKILL });
}

#[tokio::test]
async fn signal_reaches_the_whole_group() {
    let mut spawned = spawn(sh("sleep 60 & echo $!; wait")).await;
    let grandchild = next_pid(&mut spawned.output).await;
    spawned.handle.signal(Signal::SIGTERM).unwrap();
    assert_eq!(within(spawned.handle.wait()).await.signal, SIGTERM);
    assert!(eventually(|| is_dead(grandchild)).await, "grandchild {grandchild} survived");
    // Signalling an empty group is not an error.
    spawned.handle.signal(Signal::SIGTERM).unwrap();
}

#[tokio::test]
async fn stop_of_a_well_behaved_child_returns_its_sigterm_exit() {
    let mut spawned = spawn(spec(&["sleep", "60"])).await;
    // Far longer than the test limit: a SIGTERM exit proves stop did not wait for it.
    let exit = within(spawned.handle.stop(Signal::SIGTERM, LIMIT * 10)).await;
    assert_eq!(exit, Exit { code: None, signal: SIGTERM });
}

#[tokio::test]
async fn stop_kills_a_child_and_grandchild_that_ignore_the_signal() {
    let script = "trap '' TERM; sh -c 'trap \"\" TERM; echo $$; exec sleep 60' & wait";
    let mut spawned = spawn(sh(script)).await;
    let child = spawned.handle.pid().unwrap();
    let grandchild = next_pid(&mut spawned.output).await;
    let exit = within(spawned.handle.stop(Signal::SIGTERM, Duration::from_millis(300))).await;
    assert_eq!(exit, Exit { code: None, signal: SIGKILL });
    assert!(is_dead(child), "child {child} survived");
    assert!(eventually(|| is_dead(grandchild)).await, "grandchild {grandchild} survived");
    assert!(all_lines(&mut spawned.output).await.is_empty(), "output closes");
}

#[tokio::test]
async fn stop_sweeps_a_grandchild_that_outlives_its_parent() {
    let script = "sh -c 'trap \"\" TERM; echo $$; exec sleep 60' & wait";
    let mut spawned = spawn(sh(script)).await;
    let grandchild = next_pid(&mut spawned.output).await;
    let exit = within(spawned.handle.stop(Signal::SIGTERM, LIMIT * 10)).await;
    assert_eq!(exit.signal, SIGTERM, "the parent obeyed the signal");
    assert!(eventually(|| is_dead(grandchild)).await, "grandchild {grandchild} survived");
}
