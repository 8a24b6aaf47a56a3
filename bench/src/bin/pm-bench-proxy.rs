//! `pm-bench-proxy`: the bare forwarding proxy of pm-bench's mesh measures, the physical floor
//! of one hop. For each client connection it opens one connection to the target and copies bytes
//! both ways (`tokio::io::copy_bidirectional`); it never looks at them.
//!
//! `pm-bench-proxy [--unix LISTEN_PATH TARGET_PATH] [--tcp LISTEN_ADDR TARGET_ADDR]`
//!
//! It prints `ready` once it listens, and exits when its stdin closes (the harness holds it
//! open; if the harness dies, the proxy goes too).

use anyhow::{Context, anyhow, bail};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

const USAGE: &str = "usage: pm-bench-proxy [--unix LISTEN_PATH TARGET_PATH] [--tcp LISTEN_ADDR TARGET_ADDR]";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pm-bench-proxy: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let (mut unix, mut tcp) = (None, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut pair = || -> anyhow::Result<(String, String)> {
            match (it.next(), it.next()) {
                (Some(listen), Some(target)) => Ok((listen, target)),
                _ => Err(anyhow!("{flag} needs LISTEN and TARGET; {USAGE}")),
            }
        };
        match flag.as_str() {
            "--unix" => unix = Some(pair()?),
            "--tcp" => tcp = Some(pair()?),
            _ => bail!("unknown argument {flag:?}; {USAGE}"),
        }
    }
    if let Some((listen, target)) = unix {
        let _ = std::fs::remove_file(&listen);
        let listener = UnixListener::bind(&listen).with_context(|| format!("cannot listen on {listen}"))?;
        let target = PathBuf::from(target);
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((mut client, _)) => {
                        let target = target.clone();
                        tokio::spawn(async move {
                            match UnixStream::connect(&target).await {
                                Ok(mut upstream) => {
                                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                                }
                                Err(e) => eprintln!("pm-bench-proxy: cannot connect to {}: {e}", target.display()),
                            }
                        });
                    }
                    Err(e) => accept_failed(e).await,
                }
            }
        });
    }
    if let Some((listen, target)) = tcp {
        let listener = TcpListener::bind(&listen).await.with_context(|| format!("cannot listen on tcp {listen}"))?;
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((mut client, _)) => {
                        let target = target.clone();
                        tokio::spawn(async move {
                            match TcpStream::connect(&target).await {
                                Ok(mut upstream) => {
                                    let _ = client.set_nodelay(true);
                                    let _ = upstream.set_nodelay(true);
                                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                                }
                                Err(e) => eprintln!("pm-bench-proxy: cannot connect to tcp {target}: {e}"),
                            }
                        });
                    }
                    Err(e) => accept_failed(e).await,
                }
            }
        });
    }
    let mut stdout = std::io::stdout();
    writeln!(stdout, "ready")?;
    stdout.flush()?;
    // Until the harness lets go of our stdin (or dies).
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    std::process::exit(0)
}

async fn accept_failed(e: std::io::Error) {
    eprintln!("pm-bench-proxy: accept failed: {e}");
    tokio::time::sleep(Duration::from_millis(50)).await;
}
