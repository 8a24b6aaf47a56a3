//! tls://, ws:// and wss:// (besides unix and tcp): connecting, authenticating as each requires,
//! calling the daemon and a sidecar, refusals, preference, and serving over a secure transport.

use crate::mesh::{multiplier, serve_in_process, start_adder};
use crate::support::{Daemon, within};
use pm_client::{Client, ClientOptions, Endpoint, Error, ErrorCode, Identity, PmApiClient, Serve};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn every_transport_carries_daemon_and_sidecar_calls() {
    let daemon = Daemon::start_on_every_transport().await;
    start_adder(&daemon).await;
    let opts = ClientOptions::default().token(daemon.token()).tls_ca(daemon.cert());
    let mut endpoints = daemon.secure.clone();
    endpoints.push(daemon.tcp());

    for endpoint in &endpoints {
        let client = within("connect", Client::connect_endpoint(endpoint, opts.clone()))
            .await
            .unwrap_or_else(|e| panic!("{endpoint}: {e}"));
        // Stream transports authenticated with pm.auth (which says who we are), WebSocket in
        // its handshake.
        let identity = match endpoint {
            Endpoint::Ws(_) | Endpoint::Wss(_) => Identity::Token,
            _ => Identity::Owner,
        };
        assert_eq!(client.identity(), &identity, "{endpoint}");
        let info = within("ping", client.daemon().ping()).await.unwrap();
        assert!(info.endpoints.contains(&endpoint.to_string()), "{endpoint}: {:?}", info.endpoints);
        let adder = client.sidecar("adder");
        let sum: i64 = within("add", adder.call("add", (20, 22))).await.unwrap();
        assert_eq!(sum, 42, "{endpoint}");
        let err = within("deadline", adder.call_with_deadline::<u64>("sleep_ms", (5000,), Duration::from_millis(100)))
            .await
            .unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::DeadlineExceeded), "{endpoint}: {err}");
    }

    // A wrong token is refused on every transport, as "unauthorized".
    let wrong = ClientOptions::default().token("wrong").tls_ca(daemon.cert());
    for endpoint in &endpoints {
        let err = within("connect", Client::connect_endpoint(endpoint, wrong.clone())).await.unwrap_err();
        assert!(matches!(err, Error::Unauthorized { .. }), "{endpoint}: {err:?}");
        assert_eq!(err.error_code(), Some(ErrorCode::Unauthorized), "{endpoint}");
        assert!(err.to_string().contains(&endpoint.to_string()), "{err}");
    }

    // Without the self-signed certificate to trust, TLS fails, and says what to do.
    let untrusted = ClientOptions::default().token(daemon.token());
    let err = within("connect", Client::connect_endpoint(&daemon.secure[0], untrusted)).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains("CA file"), "{err}");

    // By preference: tls before tcp before wss before ws.
    let preferred = within("preferred", Client::connect_preferred(&endpoints, opts.clone())).await.unwrap();
    assert!(matches!(preferred.endpoint(), Endpoint::Tls(_)), "{}", preferred.endpoint());
    let websockets: Vec<Endpoint> = endpoints.iter().filter(|e| e.to_string().starts_with("ws")).cloned().collect();
    let preferred = within("preferred", Client::connect_preferred(&websockets, opts)).await.unwrap();
    assert!(matches!(preferred.endpoint(), Endpoint::Wss(_)), "{}", preferred.endpoint());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sidecar_serves_over_wss_and_tls() {
    let daemon = Daemon::start_on_every_transport().await;
    let token = daemon.sidecar_token("holder").await;
    let client = within("connect", Client::connect_unix(&daemon.socket())).await.unwrap();
    for endpoint in [&daemon.secure[2], &daemon.secure[0]] {
        let options = ClientOptions::default().tls_ca(daemon.cert());
        let serve = Serve::new(multiplier(2)).endpoint(endpoint.clone()).options(options).token(token.clone());
        let (registered, stop, task) = serve_in_process(serve).await;
        assert_eq!((registered.name.as_str(), &registered.endpoint), ("holder", endpoint));
        let n: i64 = within("mul", client.sidecar("holder").call("mul", (21,))).await.unwrap();
        assert_eq!(n, 42, "{endpoint}");
        stop.send(()).unwrap();
        within("serve returns", task).await.unwrap().unwrap();
    }
}
