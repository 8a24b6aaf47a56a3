//! tls://, ws:// and wss:// over real sockets: small echo servers built from the server-side
//! pieces (TlsAcceptor + Connection::ndjson, ws::accept), and `transport::connect` as the client.

use futures::{SinkExt, StreamExt};
use pm_protocol::connection::{Connection, FrameError};
use pm_protocol::tls::{self, TlsAcceptor};
use pm_protocol::transport::{ConnectOptions, connect};
use pm_protocol::{Endpoint, ws};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Every await in these tests is bounded by this.
const LIMIT: Duration = Duration::from_secs(10);

async fn within<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// A self-signed certificate for localhost and 127.0.0.1, as PEM files in a temporary directory.
struct Cert {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

fn cert() -> Cert {
    let dir = tempfile::tempdir().unwrap();
    let (cert_pem, key_pem) = tls::self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, cert_pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();
    Cert { _dir: dir, cert, key }
}

fn acceptor(cert: &Cert) -> TlsAcceptor {
    TlsAcceptor::from(tls::server_config(&cert.cert, &cert.key).unwrap())
}

fn options(ca: Option<&Cert>, token: Option<&str>) -> ConnectOptions {
    ConnectOptions { tls_ca: ca.map(|c| c.cert.clone()), token: token.map(str::to_string), ..ConnectOptions::default() }
}

/// What a test server saw on one connection.
#[derive(Debug)]
enum Seen {
    /// Handshake done (with the WebSocket bearer token, if any).
    Connected(Option<String>),
    HandshakeFailed(String),
    ReadFailed(FrameError),
}

/// Echoes frames until the peer leaves; reports a read error.
async fn echo(conn: Connection, seen: &mpsc::UnboundedSender<Seen>) {
    let Connection { mut frames, mut sink } = conn;
    while let Some(frame) = frames.next().await {
        match frame {
            Ok(text) => {
                if sink.send(text).await.is_err() {
                    return;
                }
            }
            Err(e) => return drop(seen.send(Seen::ReadFailed(e))),
        }
    }
}

async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// An NDJSON-over-TLS echo server.
async fn tls_server(acceptor: TlsAcceptor) -> (SocketAddr, mpsc::UnboundedReceiver<Seen>) {
    let (listener, addr) = listen().await;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(LIMIT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Seen::Connected(None));
                        echo(Connection::ndjson(tls, 1 << 20), &tx).await
                    }
                    Ok(Err(e)) => drop(tx.send(Seen::HandshakeFailed(e.to_string()))),
                    Err(_) => drop(tx.send(Seen::HandshakeFailed("timed out".into()))),
                }
            });
        }
    });
    (addr, rx)
}

/// A WebSocket echo server (over TLS with an acceptor), frames bounded to `max_frame`.
async fn ws_server(tls: Option<TlsAcceptor>, max_frame: usize) -> (SocketAddr, mpsc::UnboundedReceiver<Seen>) {
    let (listener, addr) = listen().await;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (tls, tx) = (tls.clone(), tx.clone());
            tokio::spawn(async move {
                let accepted = tokio::time::timeout(LIMIT, async {
                    match tls {
                        Some(acceptor) => {
                            ws::accept(acceptor.accept(stream).await?, max_frame).await.map_err(Into::into)
                        }
                        None => ws::accept(stream, max_frame).await.map_err(std::io::Error::from),
                    }
                })
                .await;
                match accepted {
                    Ok(Ok((conn, token))) => {
                        let _ = tx.send(Seen::Connected(token));
                        echo(conn, &tx).await
                    }
                    Ok(Err(e)) => drop(tx.send(Seen::HandshakeFailed(e.to_string()))),
                    Err(_) => drop(tx.send(Seen::HandshakeFailed("timed out".into()))),
                }
            });
        }
    });
    (addr, rx)
}

/// Sends each message and expects it back.
async fn round_trip(conn: &mut Connection, messages: &[&str]) {
    for msg in messages {
        within("send", conn.sink.send(msg.to_string())).await.unwrap();
        let back = within("echo", conn.frames.next()).await.expect("connection closed").unwrap();
        assert_eq!(back, *msg);
    }
}

async fn next(seen: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    within("server report", seen.recv()).await.expect("server gone")
}

const MESSAGES: [&str; 2] =
    [r#"{"jsonrpc":"2.0","id":1,"method":"pm.ping"}"#, r#"{"jsonrpc":"2.0","method":"note","params":["é ✓"]}"#];

#[tokio::test]
async fn tls_round_trips_ndjson() {
    let cert = cert();
    let (addr, mut seen) = tls_server(acceptor(&cert)).await;
    let endpoint: Endpoint = format!("tls://{addr}").parse().unwrap();
    let mut conn = within("connect", connect(&endpoint, &options(Some(&cert), None))).await.unwrap();
    assert!(matches!(next(&mut seen).await, Seen::Connected(None)));
    round_trip(&mut conn, &MESSAGES).await;
}

#[tokio::test]
async fn tls_checks_the_host_name_too() {
    // The certificate is for localhost and 127.0.0.1, and trusted: a name it does not carry fails.
    let cert = cert();
    let (addr, _seen) = tls_server(acceptor(&cert)).await;
    let config = tls::client_config(Some(&cert.cert)).unwrap();
    let tcp = within("tcp", TcpStream::connect(addr)).await.unwrap();
    let name = tls::server_name("elsewhere.example:1").unwrap();
    let err = within("tls", tls::TlsConnector::from(config).connect(name, tcp)).await.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[tokio::test]
async fn ws_round_trips_and_carries_the_bearer_token() {
    let (addr, mut seen) = ws_server(None, 1 << 20).await;
    let endpoint: Endpoint = format!("ws://{addr}/").parse().unwrap();
    let mut conn = within("connect", connect(&endpoint, &options(None, Some("s3cret")))).await.unwrap();
    match next(&mut seen).await {
        Seen::Connected(token) => assert_eq!(token.as_deref(), Some("s3cret")),
        other => panic!("{other:?}"),
    }
    round_trip(&mut conn, &MESSAGES).await;
}

#[tokio::test]
async fn ws_without_a_token_sends_none() {
    let (addr, mut seen) = ws_server(None, 1 << 20).await;
    let endpoint: Endpoint = format!("ws://{addr}/").parse().unwrap();
    let mut conn = within("connect", connect(&endpoint, &options(None, None))).await.unwrap();
    assert!(matches!(next(&mut seen).await, Seen::Connected(None)));
    round_trip(&mut conn, &MESSAGES[..1]).await;
}

#[tokio::test]
async fn wss_round_trips_and_carries_the_bearer_token() {
    let cert = cert();
    let (addr, mut seen) = ws_server(Some(acceptor(&cert)), 1 << 20).await;
    let endpoint: Endpoint = format!("wss://{addr}/").parse().unwrap();
    let mut conn = within("connect", connect(&endpoint, &options(Some(&cert), Some("tok")))).await.unwrap();
    match next(&mut seen).await {
        Seen::Connected(token) => assert_eq!(token.as_deref(), Some("tok")),
        other => panic!("{other:?}"),
    }
    round_trip(&mut conn, &MESSAGES).await;
}

#[tokio::test]
async fn a_plaintext_client_fails_the_tls_handshake_and_the_server_goes_on() {
    let cert = cert();
    let (addr, mut seen) = tls_server(acceptor(&cert)).await;

    let mut plain = within("tcp", TcpStream::connect(addr)).await.unwrap();
    within("write", plain.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"pm.ping\"}\n")).await.unwrap();
    match next(&mut seen).await {
        Seen::HandshakeFailed(why) => eprintln!("plaintext client: {why}"),
        other => panic!("a plaintext client got through: {other:?}"),
    }
    // The server answers with at most a TLS alert, never JSON, then closes.
    let mut reply = Vec::new();
    let _ = within("read", plain.read_to_end(&mut reply)).await;
    assert!(!reply.starts_with(b"{"), "{reply:?}");

    let endpoint: Endpoint = format!("tls://{addr}").parse().unwrap();
    let mut conn = within("connect", connect(&endpoint, &options(Some(&cert), None))).await.unwrap();
    assert!(matches!(next(&mut seen).await, Seen::Connected(None)));
    round_trip(&mut conn, &MESSAGES).await;
}

#[tokio::test]
async fn an_oversized_ws_message_is_too_large() {
    let (addr, mut seen) = ws_server(None, 64).await;
    let endpoint: Endpoint = format!("ws://{addr}/").parse().unwrap();
    let mut conn = within("connect", connect(&endpoint, &options(None, None))).await.unwrap();
    assert!(matches!(next(&mut seen).await, Seen::Connected(None)));
    round_trip(&mut conn, &["[1]"]).await;

    let big = format!("[\"{}\"]", "x".repeat(100));
    within("send", conn.sink.send(big)).await.unwrap();
    match next(&mut seen).await {
        Seen::ReadFailed(FrameError::TooLarge(64)) => {}
        other => panic!("expected TooLarge(64), got {other:?}"),
    }
}

#[tokio::test]
async fn the_client_side_bounds_ws_messages_too() {
    let (addr, _seen) = ws_server(None, 1 << 20).await;
    let endpoint: Endpoint = format!("ws://{addr}/").parse().unwrap();
    let opts = ConnectOptions { max_frame: 64, ..ConnectOptions::default() };
    let mut conn = within("connect", connect(&endpoint, &opts)).await.unwrap();
    // Our own sink does not bound what we send; the echo coming back is what is too large.
    within("send", conn.sink.send("x".repeat(100))).await.unwrap();
    match within("echo", conn.frames.next()).await {
        Some(Err(FrameError::TooLarge(64))) => {}
        other => panic!("expected TooLarge(64), got {other:?}"),
    }
}

#[tokio::test]
async fn a_client_trusting_another_ca_fails_clearly() {
    let (server_cert, other) = (cert(), cert());
    for scheme in ["tls", "wss"] {
        let (addr, mut seen) = match scheme {
            "tls" => tls_server(acceptor(&server_cert)).await,
            _ => ws_server(Some(acceptor(&server_cert)), 1 << 20).await,
        };
        let endpoint: Endpoint = format!("{scheme}://{addr}/").parse().unwrap();
        let Err(err) = within("connect", connect(&endpoint, &options(Some(&other), None))).await else {
            panic!("{scheme}: connected while trusting another certificate");
        };
        let msg = err.to_string();
        eprintln!("{msg}");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{msg}");
        for part in [&format!("{scheme}://{addr}"), "TLS handshake", "UnknownIssuer", "trusts only"] {
            assert!(msg.contains(part), "{scheme}: `{part}` missing from: {msg}");
        }
        assert!(msg.contains(&other.cert.display().to_string()), "{msg}");
        assert!(matches!(next(&mut seen).await, Seen::HandshakeFailed(_)));
    }
}

#[tokio::test]
async fn a_refused_ws_upgrade_says_why() {
    let (listener, addr) = listen().await;
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let check = |token: Option<&str>| match token {
            Some("good") => Ok(()),
            _ => Err("invalid token".to_string()),
        };
        ws::accept_with(stream, 1 << 20, check).await.map(|_| ())
    });
    let endpoint: Endpoint = format!("ws://{addr}/").parse().unwrap();
    let Err(err) = within("connect", connect(&endpoint, &options(None, Some("bad")))).await else {
        panic!("upgraded with a bad token");
    };
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(msg.contains("401") && msg.contains("invalid token"), "{msg}");
    match within("server", server).await.unwrap() {
        Err(ws::WsError::Unauthorized(reason)) => assert_eq!(reason, "invalid token"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bad_pem_files_are_named() {
    let cert = cert();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a pem\n").unwrap();

    let err = tls::server_config(&missing, &cert.key).unwrap_err().to_string();
    assert!(err.contains("missing.pem") && err.contains("cannot read"), "{err}");
    let err = tls::server_config(&junk, &cert.key).unwrap_err().to_string();
    assert!(err.contains("junk.pem") && err.contains("no certificate"), "{err}");
    let err = tls::server_config(&cert.cert, &junk).unwrap_err().to_string();
    assert!(err.contains("junk.pem") && err.contains("no private key"), "{err}");
    let err = tls::client_config(Some(&junk)).unwrap_err().to_string();
    assert!(err.contains("junk.pem"), "{err}");

    // A key that is not the certificate's.
    let other = self::cert();
    let err = tls::server_config(&cert.cert, &other.key).unwrap_err().to_string();
    assert!(err.contains(&other.key.display().to_string()), "{err}");
}
