//! The typed `pm.*` API over each transport, authentication, and connecting by preference.

use crate::support::{Daemon, within};
use pm_client::params::{StartParams, StopParams};
use pm_client::status::State;
use pm_client::{Client, ClientOptions, Endpoint, Error, ErrorCode, Identity, PmApiClient};

#[tokio::test(flavor = "multi_thread")]
async fn the_typed_daemon_api_over_unix_and_tcp() {
    let daemon = Daemon::start().await;

    let unix = within("connect unix", Client::connect_unix(&daemon.socket())).await.unwrap();
    assert_eq!(unix.identity(), &Identity::Owner);
    assert_eq!(within("ping", unix.daemon().ping()).await.unwrap().pid, daemon.pid());

    let tcp =
        within("connect tcp", Client::connect_endpoint(&daemon.tcp(), ClientOptions::default().token(daemon.token())))
            .await
            .unwrap();
    assert_eq!(tcp.identity(), &Identity::Owner, "the daemon's token makes the owner");
    assert_eq!(tcp.endpoint(), &daemon.tcp());
    assert_eq!(within("ping", tcp.daemon().ping()).await.unwrap().pid, daemon.pid());

    // Made over TCP, seen over the socket.
    let definition = serde_json::from_value(serde_json::json!({ "command": ["sleep", "1000"] })).unwrap();
    within("map", tcp.daemon().map("napper".into(), definition, false)).await.unwrap();
    let started =
        within("start", tcp.daemon().start(StartParams { name: Some("napper".into()), ..Default::default() }))
            .await
            .unwrap();
    assert_eq!(started[0].state, State::Ready, "{started:?}");
    let seen = within("status", unix.daemon().status(Some("napper".into()))).await.unwrap();
    assert_eq!((seen[0].name.as_str(), seen[0].pid), ("napper", started[0].pid));
    within("stop", unix.daemon().stop(StopParams { name: Some("napper".into()), all: false })).await.unwrap();

    // The daemon's errors keep their code, through the typed API and through raw calls alike.
    let err = within("status ghost", tcp.daemon().status(Some("ghost".into()))).await.unwrap_err();
    let err = Error::from(err);
    assert_eq!(err.error_code(), Some(ErrorCode::UnknownName), "{err}");
    let err = within("raw status", unix.call::<serde_json::Value>("pm.status", serde_json::json!({"name": "ghost"})))
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::UnknownName), "{err}");
    assert!(err.to_string().contains("no sidecar named `ghost`"), "{err}");
    let info: serde_json::Value = within("raw ping", tcp.call("pm.ping", ())).await.unwrap();
    assert_eq!(info["pid"], daemon.pid());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_or_missing_token_is_refused() {
    let daemon = Daemon::start().await;

    let wrong = ClientOptions::default().token("not-the-token");
    let err = within("connect", Client::connect_endpoint(&daemon.tcp(), wrong)).await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    assert_eq!(err.error_code(), Some(ErrorCode::Unauthorized));
    let text = err.to_string();
    assert!(text.contains(&format!("tcp://{}", daemon.tcp)) && text.contains("invalid token"), "{text}");

    let err = within("connect", Client::connect_endpoint(&daemon.tcp(), ClientOptions::default())).await.unwrap_err();
    assert!(matches!(err, Error::TokenRequired { .. }), "{err:?}");

    // On the socket a wrong token is refused too (a right one would make the connection a sidecar's).
    let wrong = ClientOptions::default().token("not-the-token");
    let err = within("connect", Client::connect_endpoint(&daemon.unix(), wrong)).await.unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::Unauthorized), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_preferred_takes_the_best_endpoint_that_works() {
    let daemon = Daemon::start().await;
    let opts = ClientOptions::default().token(daemon.token());
    let missing = Endpoint::Unix(daemon.home.path().join("nobody-here.sock"));
    let closed: Endpoint = "tcp://127.0.0.1:1".parse().unwrap();

    let client =
        within("preferred", Client::connect_preferred(&[daemon.tcp(), daemon.unix()], opts.clone())).await.unwrap();
    assert_eq!(client.endpoint(), &daemon.unix(), "unix first, whatever the order given");

    let client =
        within("preferred", Client::connect_preferred(&[daemon.tcp(), missing.clone()], opts.clone())).await.unwrap();
    assert_eq!(client.endpoint(), &daemon.tcp(), "the socket is not there: tcp");
    within("ping", client.daemon().ping()).await.unwrap();

    let err =
        within("preferred", Client::connect_preferred(&[closed.clone(), missing.clone()], opts)).await.unwrap_err();
    let Error::NoEndpoint { attempts } = &err else { panic!("{err:?}") };
    let tried: Vec<&str> = attempts.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(tried, [missing.to_string().as_str(), "tcp://127.0.0.1:1"]);
    let text = err.to_string();
    assert!(text.contains("`pm start pm`") && text.contains("tcp://127.0.0.1:1"), "{text}");
}
