//! Many calls at once through the daemon to a served sidecar: every one answered, each with its
//! own result.

use crate::mesh::start_adder;
use crate::support::{Daemon, within};
use pm_client::{Client, ClientOptions};
use std::collections::BTreeSet;

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_concurrent_calls_are_all_answered() {
    const CALLS: i64 = 1000;
    let daemon = Daemon::start().await;
    start_adder(&daemon).await;
    // Two callers on two transports, sharing the load.
    let unix = within("connect", Client::connect_unix(&daemon.socket())).await.unwrap();
    let tcp =
        within("connect", Client::connect_endpoint(&daemon.tcp(), ClientOptions::default().token(daemon.token())))
            .await
            .unwrap();

    let calls = (0..CALLS).map(|i| {
        let adder = if i % 2 == 0 { unix.sidecar("adder") } else { tcp.sidecar("adder") };
        tokio::spawn(async move {
            // Some calls sleep a little, so that many are in flight in the sidecar at once and
            // their answers come back out of order.
            let answer: Result<i64, _> = if i % 3 == 0 {
                adder.call::<u64>("sleep_ms", ((i % 20) as u64,)).await.map(|ms| i - (i % 20) + ms as i64)
            } else {
                adder.call("add", (i, 0)).await
            };
            (i, answer)
        })
    });
    let answers = within("1000 answers", futures::future::join_all(calls)).await;

    let mut seen = BTreeSet::new();
    for joined in answers {
        let (i, answer) = joined.expect("the calling task");
        let value = answer.unwrap_or_else(|e| panic!("call {i} failed: {e}"));
        assert_eq!(value, i, "call {i} got another call's answer");
        assert!(seen.insert(i), "call {i} answered twice");
    }
    assert_eq!(seen.len(), CALLS as usize);
}
