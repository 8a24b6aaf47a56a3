//! Sidecars served with `serve()` and called through the real daemon with the proxy.

use crate::support::{Daemon, eventually, example, within};
use pm_client::jsonrpsee::RpcModule;
use pm_client::jsonrpsee::types::ErrorObjectOwned;
use pm_client::{Client, ClientOptions, Endpoint, Error, ErrorCode, Registered, Serve};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// The example `adder` as a real pm sidecar, ready once registered.
pub async fn start_adder(daemon: &Daemon) {
    let adder = example("adder");
    daemon.pm(&["map", "adder", "--ready", "registered", "--", &adder.display().to_string()]).await;
    daemon.pm(&["start", "adder"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_served_sidecar_answers_through_the_daemon() {
    let daemon = Daemon::start().await;
    start_adder(&daemon).await;
    let client = within("connect", Client::connect_unix(&daemon.socket())).await.unwrap();
    let adder = client.sidecar("adder");

    let sum: i64 = within("add", adder.call("add", (1, 2))).await.unwrap();
    assert_eq!(sum, 3);
    let sum: i64 = within("add", adder.call("add", vec![1, 2, 3, 4])).await.unwrap();
    assert_eq!(sum, 10, "a Vec goes by position");
    let sent = serde_json::json!({ "a": [1, "x", null], "b": { "c": true } });
    let echoed: serde_json::Value = within("echo", adder.call("echo", &sent)).await.unwrap();
    assert_eq!(echoed, sent, "params and results pass through unchanged");

    // Errors keep their code and message, whether the sidecar or the daemon answered.
    let err = within("bad params", adder.call::<i64>("add", ("x",))).await.unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::InvalidParams), "{err}");
    let Error::Rpc(rpc) = &err else { panic!("{err:?}") };
    assert_eq!(rpc.method, "adder.add");
    let err = within("overflow", adder.call::<i64>("add", (i64::MAX, 1))).await.unwrap_err();
    assert!(err.to_string().contains("overflows a 64-bit integer"), "the sidecar's own message: {err}");
    let err = within("no such method", adder.call::<i64>("nope", ())).await.unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::MethodNotFound), "{err}");
    assert!(err.to_string().contains("sidecar `adder` has no method `nope` (it serves: add, echo, sleep_ms)"), "{err}");
    let err = within("no such sidecar", client.sidecar("ghost").call::<i64>("add", (1, 2))).await.unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::UnknownName), "{err}");
    let err = within("bad name", client.sidecar("a.b").call::<i64>("add", (1, 2))).await.unwrap_err();
    assert!(matches!(err, Error::InvalidName(_)), "{err:?}");
    let err = within("wrong result type", adder.call::<String>("add", (1, 2))).await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");

    // A deadline shorter than the call: the daemon answers "deadline exceeded" in time.
    let started = Instant::now();
    let err = within("deadline", adder.call_with_deadline::<u64>("sleep_ms", (10_000,), Duration::from_millis(200)))
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::DeadlineExceeded), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "answered at the deadline, not after the sleep");
    let slept: u64 =
        within("in time", adder.call_with_deadline("sleep_ms", (10,), Duration::from_secs(5))).await.unwrap();
    assert_eq!(slept, 10);

    // A notification is sent and answered nothing; the connection carries on.
    within("notify", adder.notify("sleep_ms", (1,))).await.unwrap();
    within("notify", adder.notify("echo", ())).await.unwrap();
    let sum: i64 = within("add after notify", adder.call("add", (2, 2))).await.unwrap();
    assert_eq!(sum, 4);

    // The same over TCP with the daemon's token.
    let tcp = within("tcp", Client::connect_endpoint(&daemon.tcp(), ClientOptions::default().token(daemon.token())))
        .await
        .unwrap();
    let sum: i64 = within("add over tcp", tcp.sidecar("adder").call("add", (20, 22))).await.unwrap();
    assert_eq!(sum, 42);
}

/// A module with a context, as a sidecar's own state.
pub fn multiplier(factor: i64) -> RpcModule<i64> {
    let mut module = RpcModule::new(factor);
    module
        .register_method("mul", |params, factor: &i64, _| -> Result<i64, ErrorObjectOwned> {
            let (n,): (i64,) = params.parse()?;
            Ok(n * factor)
        })
        .unwrap();
    module
}

/// Serves `module` as `name` in this process; returns what the daemon said and a handle that
/// stops serving (and then gives serve's result).
pub async fn serve_in_process(
    serve: Serve,
) -> (Registered, oneshot::Sender<()>, tokio::task::JoinHandle<Result<(), Error>>) {
    let (registered, mut rx) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(
        serve
            .on_registered(move |r| {
                let _ = registered.send(r.clone());
            })
            .shutdown(async move {
                let _ = stopped.await;
            })
            .run(),
    );
    let registered = within("registered", rx.recv()).await.expect("a registration");
    (registered, stop, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sidecar_served_in_this_process_reverse_then_direct() {
    let daemon = Daemon::start().await;
    let token = daemon.sidecar_token("holder").await;
    let client = within("connect", Client::connect_unix(&daemon.socket())).await.unwrap();
    let holder = client.sidecar("holder");

    let serve = Serve::new(multiplier(7)).endpoint(daemon.unix()).token(token.clone());
    let (registered, stop, task) = serve_in_process(serve).await;
    assert_eq!((registered.name.as_str(), registered.mode.as_str()), ("holder", "reverse"));
    assert_eq!(registered.methods, ["mul"]);
    let n: i64 = within("mul", holder.call("mul", (6,))).await.unwrap();
    assert_eq!(n, 42);

    // Stopping closes the serving connection, and with it the registration.
    stop.send(()).unwrap();
    within("serve returns", task).await.unwrap().unwrap();
    // (A call racing with the daemon noticing the close may get "sidecar gone" instead.)
    let err = eventually("the registration to end", || {
        let holder = holder.clone();
        async move {
            let err = holder.call::<i64>("mul", (1,)).await.err()?;
            (err.error_code() != Some(ErrorCode::SidecarGone)).then_some(err)
        }
    })
    .await;
    assert_eq!(err.error_code(), Some(ErrorCode::NotCommandable), "{err}");

    // Direct mode: the daemon connects to where this process listens (port 0: any free one).
    let direct: Endpoint = "tcp://127.0.0.1:0".parse().unwrap();
    let serve = Serve::new(multiplier(3)).endpoint(daemon.tcp()).token(token).direct(direct);
    let (registered, stop, task) = serve_in_process(serve).await;
    assert_eq!(registered.mode, "direct");
    let url = registered.direct.clone().expect("the direct endpoint");
    assert!(url.starts_with("tcp://127.0.0.1:") && !url.ends_with(":0"), "{url}");
    let n: i64 = within("mul, direct", holder.call("mul", (14,))).await.unwrap();
    assert_eq!(n, 42);
    stop.send(()).unwrap();
    within("serve returns", task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_null_result_comes_back_as_null() {
    let daemon = Daemon::start().await;
    let token = daemon.sidecar_token("holder").await;
    let mut module = RpcModule::new(());
    module.register_method("nothing", |_, _, _| ()).unwrap();
    let (_registered, _stop, _task) = serve_in_process(Serve::new(module).endpoint(daemon.unix()).token(token)).await;
    let client = within("connect", Client::connect_unix(&daemon.socket())).await.unwrap();
    let answer: serde_json::Value =
        within("nothing", client.sidecar("holder").call_with_deadline("nothing", (), Duration::from_secs(2)))
            .await
            .unwrap();
    assert_eq!(answer, serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_daemon_crash_the_sidecar_is_served_again() {
    let mut daemon = Daemon::start().await;
    start_adder(&daemon).await;
    let client = within("connect", Client::connect_unix(&daemon.socket())).await.unwrap();
    let sum: i64 = within("add", client.sidecar("adder").call("add", (1, 2))).await.unwrap();
    assert_eq!(sum, 3);

    daemon.restart().await;
    let err =
        within("call on the dead connection", client.sidecar("adder").call::<i64>("add", (1, 2))).await.unwrap_err();
    assert!(matches!(err, Error::Closed { .. }), "{err:?}");
    assert!(!client.is_connected());

    // The new daemon brings the sidecar back; it registers again and answers.
    let client = within("connect", Client::connect_unix(&daemon.socket())).await.unwrap();
    let sum: i64 = eventually("adder to answer through the new daemon", || {
        let adder = client.sidecar("adder");
        async move { adder.call("add", (2, 3)).await.ok() }
    })
    .await;
    assert_eq!(sum, 5);
}
