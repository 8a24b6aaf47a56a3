//! Every transport end to end through the real daemon: TLS with a certificate from
//! `pm tls-cert`, WebSocket and secure WebSocket with a Bearer token, each carrying a daemon
//! call and a call routed to a sidecar.

use crate::support::{Pm, Raw, free_port};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::rpc_params;
use pm_protocol::api::PmSessionClient;
use pm_protocol::status::LogEvent;
use pm_protocol::transport::{ConnectOptions, client_over, connect};
use pm_protocol::{Endpoint, PmApiClient};
use std::io::BufRead;
use std::time::Duration;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn tls_ws_and_wss_carry_daemon_and_routed_calls() {
    let pm = Pm::new();
    let out = pm.ok(&["tls-cert"]);
    let cert = pm.home.path().join("tls/cert.pem");
    assert!(out.contains(&cert.display().to_string()), "{out}");
    let (tls, ws, wss) = (free_port(), free_port(), free_port());
    let urls = [format!("tls://127.0.0.1:{tls}"), format!("ws://127.0.0.1:{ws}/"), format!("wss://localhost:{wss}/")];
    pm.ok(&["start", "pm", "--listen", &urls[0], "--listen", &urls[1], "--listen", &urls[2]]);
    let sidecar = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/e2e/fixtures/sidecar.py");
    pm.ok(&["map", "side", "--ready", "registered", "--", "python3", sidecar]);
    pm.ok(&["start", "side"]);
    let token = pm.ok(&["token"]).trim().to_string();

    runtime().block_on(async {
        let limit = Duration::from_secs(10);
        for url in &urls {
            let endpoint: Endpoint = url.parse().unwrap();
            let opts = ConnectOptions { token: Some(token.clone()), tls_ca: Some(cert.clone()), ..Default::default() };
            let conn = tokio::time::timeout(limit, connect(&endpoint, &opts))
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            let client = client_over(conn, limit);
            if matches!(endpoint, Endpoint::Tls(_)) {
                // Stream transports authenticate with a call; WebSocket did in its handshake.
                let err = client.ping().await.unwrap_err().to_string();
                assert!(err.contains("not authenticated"), "{url}: {err}");
                client.auth(token.clone()).await.unwrap();
            }
            let info = client.ping().await.unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(info.endpoints.contains(url), "{url}: {:?}", info.endpoints);
            let sum: i64 = client.request("side.add", rpc_params![20, 22]).await.unwrap();
            assert_eq!(sum, 42, "{url}");
            // Subscriptions too: the sidecar's log history, then the explicit end.
            let mut logs = client.logs("side".into(), 5, false, None, None).await.unwrap();
            let mut items = Vec::new();
            while let Some(item) = tokio::time::timeout(limit, logs.next()).await.unwrap() {
                let end = matches!(item, Ok(LogEvent::End(_)));
                items.push(item.unwrap());
                if end {
                    break;
                }
            }
            assert!(
                items.iter().any(|i| matches!(i, LogEvent::Line(l) if l.line == "register: ok")),
                "{url}: {items:?}"
            );
            assert!(matches!(items.last(), Some(LogEvent::End(_))), "{url}: {items:?}");
        }

        // A wrong token is refused on each transport, with a reason.
        for url in &urls[1..] {
            let opts = ConnectOptions { token: Some("wrong".into()), tls_ca: Some(cert.clone()), ..Default::default() };
            let err = connect(&url.parse().unwrap(), &opts)
                .await
                .err()
                .unwrap_or_else(|| panic!("{url} accepted a wrong token"));
            assert!(err.to_string().contains("invalid token"), "{url}: {err}");
        }
        let opts = ConnectOptions { tls_ca: Some(cert.clone()), ..Default::default() };
        let client = client_over(connect(&urls[0].parse().unwrap(), &opts).await.unwrap(), limit);
        assert!(client.auth("wrong".into()).await.unwrap_err().to_string().contains("invalid token"));
        // Trusting the wrong certificate fails the handshake.
        let other = pm.write("other.pem", &pm_protocol::tls::self_signed(&["localhost".into()]).unwrap().0);
        let opts = ConnectOptions { tls_ca: Some(other), ..Default::default() };
        let err = connect(&urls[0].parse().unwrap(), &opts).await.err().expect("untrusted certificate refused");
        assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    });

    // A plaintext client on the TLS port gets no JSON-RPC at all, and the daemon carries on.
    let mut plain = Raw::tcp(&format!("127.0.0.1:{tls}"));
    plain.send(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"pm.ping\"}\n");
    let mut reply = Vec::new();
    let _ = plain.reader.read_until(b'\n', &mut reply);
    assert!(serde_json::from_slice::<serde_json::Value>(&reply).is_err(), "no JSON answer over plaintext: {reply:?}");
    pm.ok(&["status"]);
}

#[test]
fn tls_listener_without_a_certificate_is_a_clear_error() {
    let pm = Pm::new();
    let url = format!("tls://127.0.0.1:{}", free_port());
    let err = pm.fails(&["daemon", "--listen", &url]);
    assert!(err.contains("cannot serve tls:// or wss://") && err.contains("pm tls-cert"), "{err}");
}
