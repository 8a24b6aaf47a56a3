//! The client side of the mesh measures: one NDJSON JSON-RPC connection making one call at a
//! time. The same code calls the sidecar directly, through pm and through the bare proxy, so only
//! the path differs: the request is written with one `write_all` (line and newline together), the
//! answer read with a buffered `read_until('\n')` and checked (same id, result equal to params).

use anyhow::{Context, anyhow, bail};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UnixStream};

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Clone, Debug)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            Endpoint::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

pub struct Caller {
    stream: BufReader<Box<dyn Io>>,
    /// The method as a JSON string, e.g. `"echo.echo"`.
    method: String,
    next_id: u64,
    out: Vec<u8>,
    line: Vec<u8>,
}

impl Caller {
    /// Connects; `token`: call `pm.auth` with it first (pm over tcp).
    pub async fn connect(endpoint: &Endpoint, method: &str, token: Option<&str>) -> anyhow::Result<Caller> {
        let stream: Box<dyn Io> = match endpoint {
            Endpoint::Unix(path) => Box::new(UnixStream::connect(path).await?),
            Endpoint::Tcp(addr) => {
                let stream = TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                Box::new(stream)
            }
        };
        let mut caller = Caller {
            stream: BufReader::with_capacity(64 * 1024, stream),
            method: serde_json::to_string(method)?,
            next_id: 1,
            out: Vec::with_capacity(256),
            line: Vec::with_capacity(256),
        };
        if let Some(token) = token {
            let params = format!(r#"{{"token":{}}}"#, serde_json::to_string(token)?);
            caller.request("\"pm.auth\"", &params).await.context("pm.auth")?;
        }
        Ok(caller)
    }

    /// One call of the endpoint's method with `params` (compact JSON); fails unless the result
    /// is `params` again.
    pub async fn call(&mut self, params: &str) -> anyhow::Result<()> {
        let Caller { stream, method, next_id, out, line } = self;
        round_trip(stream, out, line, next_id, method, params, true).await
    }

    async fn request(&mut self, method: &str, params: &str) -> anyhow::Result<()> {
        let Caller { stream, out, line, next_id, .. } = self;
        round_trip(stream, out, line, next_id, method, params, false).await
    }
}

/// Sends one request and waits for its answer, which must have the same id and no error (and,
/// with `echo`, `params` as its result).
async fn round_trip(
    stream: &mut BufReader<Box<dyn Io>>,
    out: &mut Vec<u8>,
    line: &mut Vec<u8>,
    next_id: &mut u64,
    method: &str,
    params: &str,
    echo: bool,
) -> anyhow::Result<()> {
    let id = *next_id;
    *next_id += 1;
    out.clear();
    write!(out, r#"{{"jsonrpc":"2.0","id":{id},"method":{method},"params":{params}}}"#)?;
    out.push(b'\n');
    stream.get_mut().write_all(out).await?;
    line.clear();
    if stream.read_until(b'\n', line).await? == 0 {
        bail!("the connection closed before the answer to {method}");
    }
    let reply: Reply = serde_json::from_slice(line).with_context(|| {
        format!("an answer to {method} that is not JSON-RPC: {}", String::from_utf8_lossy(line).trim())
    })?;
    if let Some(error) = reply.error {
        bail!("{method} failed: {}", error.get());
    }
    if reply.id.is_none_or(|got| got.get().parse::<u64>().ok() != Some(id)) {
        return Err(anyhow!("answer to {method} #{id} came with id {}", reply.id.map_or("none", RawValue::get)));
    }
    match reply.result.map(RawValue::get) {
        _ if !echo => Ok(()),
        Some(result) if result == params => Ok(()),
        result => bail!("{method} answered {} to {params}", result.unwrap_or("null")),
    }
}
