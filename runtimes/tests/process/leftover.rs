use super::*;
use nix::sys::signal::Signal;
use pm_runtimes::process::{Identity, identity, kill_leftover_group};

#[tokio::test]
async fn a_leftover_group_is_killed_only_while_its_leader_is_the_same_process() {
    let mut spawned = spawn(sh("sleep 60 & echo $!; wait")).await;
    let leader = spawned.handle.pid().unwrap();
    let grandchild = next_pid(&mut spawned.output).await;
    let id = identity(leader).expect("identity of a live process");

    let stranger = Identity { start_time: id.start_time + 1, ..id };
    assert!(!kill_leftover_group(stranger), "a different start time means pid reuse");
    assert!(!is_dead(leader) && !is_dead(grandchild), "nothing was killed");

    assert!(kill_leftover_group(id));
    assert_eq!(within(spawned.handle.wait()).await.signal, Some(Signal::SIGKILL as i32));
    assert!(eventually(|| is_dead(grandchild)).await, "grandchild {grandchild} survived");
    assert!(!kill_leftover_group(id), "the leader is gone");
}

#[test]
fn there_is_no_identity_for_a_missing_process() {
    // Above the kernel's pid_max limit (2^22), so never a live pid.
    assert_eq!(identity(1 << 23), None);
}
