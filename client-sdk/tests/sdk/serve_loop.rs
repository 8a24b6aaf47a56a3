//! serve()'s connection loop against a fake daemon written here in raw NDJSON: the handshake,
//! requests before the register answer, batches, notifications, losing the daemon and finding it
//! again, and refusals that end serving.
//!
//! A fake, because a real daemon cannot be restarted under a running sidecar that it did not
//! spawn: a new daemon does not know the old one's sidecar tokens (and kills the sidecars the old
//! one left).

use crate::support::{TIMEOUT, eventually, within};
use pm_client::jsonrpsee::RpcModule;
use pm_client::jsonrpsee::types::ErrorObjectOwned;
use pm_client::{Disconnected, Endpoint, Error, ErrorCode, Registered, Serve};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// One accepted connection of the fake daemon.
struct Peer {
    lines: Lines<BufReader<OwnedReadHalf>>,
    writer: OwnedWriteHalf,
}

impl Peer {
    async fn accept(listener: &UnixListener) -> Peer {
        let (stream, _): (UnixStream, _) = within("serve to connect", listener.accept()).await.unwrap();
        let (read, writer) = stream.into_split();
        Peer { lines: BufReader::new(read).lines(), writer }
    }

    async fn read(&mut self) -> Value {
        let line = within("a frame from the sidecar", self.lines.next_line()).await.unwrap().expect("a frame, not EOF");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    async fn send(&mut self, value: Value) {
        self.writer.write_all(format!("{value}\n").as_bytes()).await.unwrap();
    }

    /// Expects `pm.auth` with `token`, answers it with `answer` (a result or an error member).
    async fn auth(&mut self, token: &str, answer: Value) {
        let auth = self.read().await;
        assert_eq!(
            (auth["method"].as_str(), auth["params"]["token"].as_str()),
            (Some("pm.auth"), Some(token)),
            "{auth}"
        );
        self.send(reply(&auth["id"], answer)).await;
    }

    /// Expects `pm.register`; returns its id (to answer later) and params.
    async fn register(&mut self) -> (Value, Value) {
        let register = self.read().await;
        assert_eq!(register["method"], "pm.register", "{register}");
        (register["id"].clone(), register["params"].clone())
    }
}

/// An answer to `id`: `answer` is `{"result": …}` or `{"error": …}`.
fn reply(id: &Value, answer: Value) -> Value {
    let mut message = json!({ "jsonrpc": "2.0", "id": id });
    for (k, v) in answer.as_object().cloned().unwrap_or_default() {
        message[k] = v;
    }
    message
}

fn adder(ticks: Arc<AtomicUsize>) -> RpcModule<Arc<AtomicUsize>> {
    let mut module = RpcModule::new(ticks);
    module
        .register_method("add", |params, _, _| -> Result<i64, ErrorObjectOwned> {
            let (a, b): (i64, i64) = params.parse()?;
            Ok(a + b)
        })
        .unwrap();
    module
        .register_method("tick", |_, ticks: &Arc<AtomicUsize>, _| {
            ticks.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    module
}

enum Event {
    Registered(Registered),
    Disconnected(Disconnected),
}

/// Runs serve against the fake daemon at `path`; events and the stop switch come back.
fn serve(
    path: &Path,
    module: RpcModule<Arc<AtomicUsize>>,
) -> (mpsc::UnboundedReceiver<Event>, oneshot::Sender<()>, tokio::task::JoinHandle<Result<(), Error>>) {
    let (events, rx) = mpsc::unbounded_channel();
    let lost = events.clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(
        Serve::new(module)
            .endpoint(Endpoint::Unix(path.to_path_buf()))
            .token("t0k")
            .backoff(Duration::from_millis(10), Duration::from_millis(100))
            .on_registered(move |r| {
                let _ = events.send(Event::Registered(r.clone()));
            })
            .on_disconnected(move |d| {
                let _ = lost.send(Event::Disconnected(d.clone()));
            })
            .shutdown(async move {
                let _ = stopped.await;
            })
            .run(),
    );
    (rx, stop, task)
}

async fn next_event(events: &mut mpsc::UnboundedReceiver<Event>) -> Event {
    within("an event from serve", events.recv()).await.expect("serve is running")
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_registers_answers_and_registers_again_when_the_daemon_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pm.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let ticks = Arc::new(AtomicUsize::new(0));
    let (mut events, stop, task) = serve(&path, adder(ticks.clone()));

    let mut daemon = Peer::accept(&listener).await;
    daemon.auth("t0k", json!({"result": {"identity": "sidecar", "name": "adder"}})).await;
    let (register_id, params) = daemon.register().await;
    assert_eq!(params, json!({"methods": ["add", "tick"], "direct": false}));

    // The daemon routes calls as soon as it has registered the sidecar, maybe before its answer
    // to pm.register is out: they are served all the same.
    daemon.send(json!({"jsonrpc": "2.0", "id": 1, "method": "add", "params": [2, 3]})).await;
    assert_eq!(daemon.read().await, json!({"jsonrpc": "2.0", "id": 1, "result": 5}));
    daemon.send(reply(&register_id, json!({"result": {"name": "adder", "mode": "reverse"}}))).await;
    let Event::Registered(registered) = next_event(&mut events).await else { panic!("expected a registration") };
    assert_eq!((registered.name.as_str(), registered.mode.as_str()), ("adder", "reverse"));

    // Notifications run and get no answer; a batch gets one array of answers.
    daemon
        .send(json!([
            {"jsonrpc": "2.0", "id": "a", "method": "add", "params": [1, 1]},
            {"jsonrpc": "2.0", "method": "tick"},
            {"jsonrpc": "2.0", "id": "b", "method": "nope"},
        ]))
        .await;
    let batch = daemon.read().await;
    assert_eq!(batch[0], json!({"jsonrpc": "2.0", "id": "a", "result": 2}), "{batch}");
    assert_eq!((batch[1]["id"].as_str(), batch[1]["error"]["code"].as_i64()), (Some("b"), Some(-32601)), "{batch}");
    assert_eq!(batch.as_array().map(Vec::len), Some(2), "{batch}");
    assert_eq!(ticks.load(Ordering::SeqCst), 1, "the batch's notification ran before its answer");
    daemon.send(json!({"jsonrpc": "2.0", "method": "tick"})).await;
    // Requests run concurrently, so the notification may finish after a later request.
    eventually("the notification to run", || {
        let ran = ticks.load(Ordering::SeqCst) == 2;
        async move { ran.then_some(()) }
    })
    .await;

    // The daemon goes away: connection, listener and socket.
    drop(daemon);
    drop(listener);
    std::fs::remove_file(&path).unwrap();
    let Event::Disconnected(lost) = next_event(&mut events).await else { panic!("expected the loss") };
    assert!(lost.was_registered && lost.why.contains("closed the connection"), "{lost:?}");
    // While it is away, serve keeps trying, at growing intervals.
    let mut pauses = Vec::new();
    while pauses.len() < 3 {
        let Event::Disconnected(failed) = next_event(&mut events).await else { panic!("expected a failed attempt") };
        assert!(!failed.was_registered && failed.why.starts_with("cannot connect"), "{failed:?}");
        pauses.push(failed.retry_in);
    }
    assert!(pauses.windows(2).all(|w| w[0] <= w[1]) && pauses[2] > pauses[0], "backoff grows: {pauses:?}");

    // A new daemon at the same place: serve finds it and registers again.
    let listener = UnixListener::bind(&path).unwrap();
    let mut daemon = Peer::accept(&listener).await;
    daemon.auth("t0k", json!({"result": {"identity": "sidecar", "name": "adder"}})).await;
    let (register_id, _) = daemon.register().await;
    daemon.send(reply(&register_id, json!({"result": {"name": "adder", "mode": "reverse"}}))).await;
    // Attempts that failed while the socket was being re-created may still be reported.
    loop {
        match next_event(&mut events).await {
            Event::Registered(_) => break,
            Event::Disconnected(d) => assert!(!d.was_registered, "{d:?}"),
        }
    }
    daemon.send(json!({"jsonrpc": "2.0", "id": 3, "method": "add", "params": [40, 2]})).await;
    assert_eq!(daemon.read().await["result"], 42);

    // Stopping: serve returns and closes the connection.
    stop.send(()).unwrap();
    within("serve to return", task).await.unwrap().unwrap();
    let eof = within("the connection to close", daemon.lines.next_line()).await.unwrap();
    assert_eq!(eof, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_token_or_registration_ends_serving_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pm.sock");
    let listener = UnixListener::bind(&path).unwrap();

    let (_events, _stop, task) = serve(&path, adder(Arc::default()));
    let mut daemon = Peer::accept(&listener).await;
    daemon.auth("t0k", json!({"error": {"code": -32005, "message": "invalid token"}})).await;
    let err = within("serve to give up", task).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    assert_eq!(err.error_code(), Some(ErrorCode::Unauthorized));
    assert!(err.to_string().contains("invalid token"), "{err}");

    let (_events, _stop, task) = serve(&path, adder(Arc::default()));
    let mut daemon = Peer::accept(&listener).await;
    daemon.auth("t0k", json!({"result": {"identity": "owner"}})).await;
    let (id, _) = daemon.register().await;
    let refusal = "pm.register is for sidecars: call pm.auth with the sidecar's PM_TOKEN first";
    daemon.send(reply(&id, json!({"error": {"code": -32005, "message": refusal}}))).await;
    let err = within("serve to give up", task).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Register { code: -32005, .. }), "{err:?}");
    assert!(err.to_string().contains(refusal), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_that_never_answers_auth_is_given_up_on_and_tried_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pm.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (events, mut losses) = mpsc::unbounded_channel::<Disconnected>();
    let (stop_tx, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(
        Serve::new(adder(Arc::default()))
            .endpoint(Endpoint::Unix(path.clone()))
            .token("t0k")
            .options(pm_client::ClientOptions::default().connect_timeout(Duration::from_millis(200)))
            .backoff(Duration::from_millis(10), Duration::from_millis(10))
            .on_disconnected(move |d| {
                let _ = events.send(d.clone());
            })
            .shutdown(async move {
                let _ = stopped.await;
            })
            .run(),
    );
    let mut silent = Peer::accept(&listener).await;
    assert_eq!(silent.read().await["method"], "pm.auth");
    let lost = within("serve to give up on the silent daemon", losses.recv()).await.unwrap();
    assert!(lost.why.contains("no answer to pm.auth"), "{lost:?}");
    let mut next = Peer::accept(&listener).await;
    assert_eq!(next.read().await["method"], "pm.auth", "and it tries again");
    stop_tx.send(()).unwrap();
    tokio::time::timeout(TIMEOUT, task).await.unwrap().unwrap().unwrap();
}
