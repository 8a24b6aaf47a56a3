//! `pm-bench-echo`: the echo sidecar of pm-bench's mesh measures, in raw NDJSON JSON-RPC (one
//! compact message per line), without the SDK.
//!
//! Started by pm, it connects to `PM_DAEMON` (or `--daemon URL`, e.g. the daemon's tcp listener),
//! calls `pm.auth` with `PM_TOKEN`, then `pm.register {"methods":["echo"]}`, and answers the
//! requests the daemon sends over that connection (reverse mode). It also serves the same
//! protocol, without authentication, on `--unix PATH` and `--tcp HOST:PORT` for direct calls;
//! those listeners are up before it registers. `echo` answers with its params as the result.
//! It exits when the daemon closes its connection.
//!
//! With `--deaf` it authenticates and registers the same way, then never reads its daemon
//! connection again: the deaf sidecar of the noisy-neighbour measure, whose routed calls pile up.
//!
//! Every connection is served the same way: read lines, answer each one into a buffer, and write
//! the buffer once no complete line is waiting (one write per burst of requests).

use anyhow::{Context, anyhow, bail};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Default)]
struct Args {
    unix: Option<PathBuf>,
    tcp: Option<String>,
    daemon: Option<String>,
    deaf: bool,
}

const USAGE: &str = "usage: pm-bench-echo [--unix PATH] [--tcp HOST:PORT] [--daemon URL] [--deaf]";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pm-bench-echo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| anyhow!("{flag} needs a value; {USAGE}"));
        match flag.as_str() {
            "--unix" => args.unix = Some(value()?.into()),
            "--tcp" => args.tcp = Some(value()?),
            "--daemon" => args.daemon = Some(value()?),
            "--deaf" => args.deaf = true,
            _ => bail!("unknown argument {flag:?}; {USAGE}"),
        }
    }
    Ok(args)
}

async fn run() -> anyhow::Result<()> {
    let args = args()?;
    if let Some(path) = &args.unix {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => drop(tokio::spawn(serve(stream, Vec::new(), false))),
                    Err(e) => accept_failed(e).await,
                }
            }
        });
    }
    if let Some(addr) = &args.tcp {
        let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen on tcp {addr}"))?;
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        drop(tokio::spawn(serve(stream, Vec::new(), false)));
                    }
                    Err(e) => accept_failed(e).await,
                }
            }
        });
    }
    let daemon = args.daemon.or_else(|| std::env::var("PM_DAEMON").ok());
    let (Some(daemon), Ok(token)) = (daemon, std::env::var("PM_TOKEN")) else {
        eprintln!("pm-bench-echo: no PM_DAEMON/PM_TOKEN (not started by pm): serving direct calls only");
        tokio::signal::ctrl_c().await?;
        return Ok(());
    };
    let hello = format!(
        "{}\n{}\n",
        r#"{"jsonrpc":"2.0","id":"auth","method":"pm.auth","params":{"token":TOKEN}}"#
            .replace("TOKEN", &serde_json::to_string(&token)?),
        r#"{"jsonrpc":"2.0","id":"register","method":"pm.register","params":{"methods":["echo"]}}"#
    );
    if let Some(path) = daemon.strip_prefix("unix://").or_else(|| daemon.strip_prefix("jsonrpc+unix://")) {
        let stream = UnixStream::connect(path).await.with_context(|| format!("cannot connect to {daemon}"))?;
        join(stream, hello.into_bytes(), args.deaf).await
    } else if let Some(addr) = daemon.strip_prefix("tcp://").or_else(|| daemon.strip_prefix("jsonrpc+tcp://")) {
        let stream = TcpStream::connect(addr.trim_end_matches('/'))
            .await
            .with_context(|| format!("cannot connect to {daemon}"))?;
        stream.set_nodelay(true)?;
        join(stream, hello.into_bytes(), args.deaf).await
    } else {
        bail!("cannot reach the daemon at {daemon}: pm-bench-echo speaks unix:// and tcp:// only")
    }
}

async fn accept_failed(e: std::io::Error) {
    eprintln!("pm-bench-echo: accept failed: {e}");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Sends `hello` (pm.auth, pm.register) on the daemon connection, then serves it, or with `deaf`
/// waits for the two answers and then holds it open without ever reading it again.
async fn join<S: AsyncRead + AsyncWrite + Unpin>(stream: S, hello: Vec<u8>, deaf: bool) -> anyhow::Result<()> {
    if !deaf {
        return serve(stream, hello, true).await;
    }
    let mut stream = BufReader::new(stream);
    stream.get_mut().write_all(&hello).await?;
    let mut line = Vec::new();
    for _ in 0..2 {
        line.clear();
        if stream.read_until(b'\n', &mut line).await? == 0 {
            bail!("the daemon closed the connection before registering us");
        }
        // Fails on an error answer; the only answers that can come yet are to our own calls.
        answer(&line, &mut Vec::new(), true)?;
    }
    // pm stops it with a signal; until then `stream` lives on here, open and unread.
    std::future::pending::<()>().await;
    Ok(())
}

/// Serves one connection until the peer closes it. `first` goes out before anything else;
/// `own_calls`: this is the daemon connection, where replies to our pm.auth / pm.register come.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: S, first: Vec<u8>, own_calls: bool) -> anyhow::Result<()> {
    let mut stream = BufReader::with_capacity(64 * 1024, stream);
    let mut out = first;
    let mut line = Vec::with_capacity(4096);
    loop {
        // Caught up (no complete request waiting): send the answers so far in one write.
        if !out.is_empty() && !stream.buffer().contains(&b'\n') {
            stream.get_mut().write_all(&out).await?;
            out.clear();
        }
        line.clear();
        if stream.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        answer(&line, &mut out, own_calls)?;
    }
}

/// Appends the answer to one line (if it needs one) to `out`.
fn answer(line: &[u8], out: &mut Vec<u8>, own_calls: bool) -> anyhow::Result<()> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Ok(());
    }
    let msg: Message = match serde_json::from_slice(line) {
        Ok(msg) => msg,
        Err(e) => {
            let error = serde_json::to_string(&format!("invalid JSON-RPC message: {e}"))?;
            out.extend_from_slice(
                format!(r#"{{"jsonrpc":"2.0","id":null,"error":{{"code":-32700,"message":{error}}}}}"#).as_bytes(),
            );
            out.push(b'\n');
            return Ok(());
        }
    };
    let Some(method) = msg.method else {
        // A reply: on the daemon connection, to our own pm.auth or pm.register.
        if own_calls {
            let id = msg.id.map_or("null", RawValue::get);
            if let Some(error) = msg.error {
                bail!("pm refused {id}: {}", error.get());
            }
            println!("{id}: ok");
        }
        return Ok(());
    };
    // A notification gets no answer.
    let Some(id) = msg.id else { return Ok(()) };
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id.get().as_bytes());
    if method == "echo" {
        out.extend_from_slice(br#","result":"#);
        out.extend_from_slice(msg.params.map_or("null", RawValue::get).as_bytes());
    } else {
        let error = serde_json::to_string(&format!("pm-bench-echo has no method {method}"))?;
        out.extend_from_slice(format!(r#","error":{{"code":-32601,"message":{error}}}"#).as_bytes());
    }
    out.extend_from_slice(b"}\n");
    Ok(())
}
