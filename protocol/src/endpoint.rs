//! Endpoint URLs: `unix:///path`, `tcp://host:port`, `tls://host:port`, `ws://host:port/`,
//! `wss://host:port/`, and akala's spellings `jsonrpc+unix://`, `jsonrpc+tcp://`,
//! `jsonrpc+tcp+tls://`.

use std::path::PathBuf;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
    Tls(String),
    Ws(String),
    Wss(String),
    /// An in-process listener (see [`crate::memory`]): how tasks reach their daemon.
    Memory(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid endpoint `{url}`: {why} (use unix:///path, tcp://host:port, tls://host:port, ws://host:port/ or wss://host:port/)"
)]
pub struct EndpointError {
    url: String,
    why: &'static str,
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let fail = |why| EndpointError { url: url.to_string(), why };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| fail("no scheme"))?;
        if rest.is_empty() {
            return Err(fail("nothing after the scheme"));
        }
        let host_port = |rest: &str| -> Result<String, EndpointError> {
            let authority = rest.split('/').next().unwrap_or_default();
            match authority.rsplit_once(':') {
                Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(authority.to_string()),
                _ => Err(fail("expected host:port")),
            }
        };
        match scheme {
            "unix" | "jsonrpc+unix" => Ok(Endpoint::Unix(PathBuf::from(rest))),
            "memory" => Ok(Endpoint::Memory(rest.to_string())),
            "tcp" | "jsonrpc+tcp" => host_port(rest).map(Endpoint::Tcp),
            "tls" | "jsonrpc+tcp+tls" | "jsonrpc+tls" => host_port(rest).map(Endpoint::Tls),
            "ws" => host_port(rest).map(|_| Endpoint::Ws(url.to_string())),
            "wss" => host_port(rest).map(|_| Endpoint::Wss(url.to_string())),
            _ => Err(fail("unknown scheme")),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            Endpoint::Tcp(addr) => write!(f, "tcp://{addr}"),
            Endpoint::Tls(addr) => write!(f, "tls://{addr}"),
            Endpoint::Ws(url) | Endpoint::Wss(url) => f.write_str(url),
            Endpoint::Memory(name) => write!(f, "memory://{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Endpoint;

    #[test]
    fn parses_every_scheme_and_alias() {
        let cases = [
            ("unix:///run/pm.sock", Endpoint::Unix("/run/pm.sock".into())),
            ("jsonrpc+unix:///run/pm.sock", Endpoint::Unix("/run/pm.sock".into())),
            ("tcp://127.0.0.1:7700", Endpoint::Tcp("127.0.0.1:7700".into())),
            ("jsonrpc+tcp://localhost:7700", Endpoint::Tcp("localhost:7700".into())),
            ("jsonrpc+tcp+tls://h:7701", Endpoint::Tls("h:7701".into())),
            ("ws://h:7702/", Endpoint::Ws("ws://h:7702/".into())),
            ("wss://h:7703/", Endpoint::Wss("wss://h:7703/".into())),
            ("memory://pm", Endpoint::Memory("pm".into())),
        ];
        for (url, want) in cases {
            assert_eq!(url.parse::<Endpoint>().unwrap(), want, "{url}");
        }
        assert_eq!(Endpoint::Unix("/x".into()).to_string(), "unix:///x");
    }

    #[test]
    fn rejects_bad_urls_with_a_reason() {
        for bad in ["/tmp/pm.sock", "tcp://nohost", "tcp://h:99999", "ftp://h:1", "unix://"] {
            let err = bad.parse::<Endpoint>().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }
}
