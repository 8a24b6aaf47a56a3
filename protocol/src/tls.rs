//! TLS for tls:// and wss://: rustls with the ring provider, PEM files on disk, and self-signed
//! certificates for a daemon that has no certificate from a CA.
//!
//! Configs are built with the ring provider named explicitly rather than rustls' process-wide
//! default, so they keep working even if another crate ever compiles a second provider in.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};

pub use tokio_rustls::client::TlsStream as ClientTlsStream;
pub use tokio_rustls::server::TlsStream as ServerTlsStream;
pub use tokio_rustls::{TlsAcceptor, TlsConnector};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {what}", path.display())]
    Pem { path: PathBuf, what: String },
    #[error("{}: {source}", path.display())]
    Rejected { path: PathBuf, source: rustls::Error },
    #[error(
        "no system root certificates found{0}; give the CA (or the server's own certificate) to trust as a PEM file"
    )]
    NoSystemRoots(String),
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS setup: {0}")]
    Config(#[from] rustls::Error),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_path_buf(), source })
}

/// Every certificate in a PEM file; an error if there is none.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem { path: path.to_path_buf(), what: format!("bad PEM: {e}") })?;
    if certs.is_empty() {
        let what = "no certificate in this file (expected a PEM `BEGIN CERTIFICATE` block)".into();
        return Err(TlsError::Pem { path: path.to_path_buf(), what });
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        let what = match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no private key in this file (expected a PEM `BEGIN PRIVATE KEY` block)".to_string()
            }
            e => format!("bad PEM: {e}"),
        };
        TlsError::Pem { path: path.to_path_buf(), what }
    })
}

/// A server config from a certificate chain and its key, both PEM.
pub fn server_config(cert_pem: &Path, key_pem: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = load_certs(cert_pem)?;
    let key = load_key(key_pem)?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        // rustls checks that the key matches the certificate: blame the key file.
        .map_err(|source| TlsError::Rejected { path: key_pem.to_path_buf(), source })?;
    Ok(Arc::new(config))
}

/// A client config trusting exactly the certificates in `ca` (a CA, or a self-signed server
/// certificate); without one, the system's roots.
pub fn client_config(ca: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            for cert in load_certs(path)? {
                roots.add(cert).map_err(|source| TlsError::Rejected { path: path.to_path_buf(), source })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found.errors.first().map(|e| format!(" ({e})")).unwrap_or_default();
                return Err(TlsError::NoSystemRoots(why));
            }
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A self-signed certificate for `hosts` (DNS names or IP addresses, each a subject
/// alternative name): `(cert_pem, key_pem)`.
pub fn self_signed(hosts: &[String]) -> Result<(String, String), TlsError> {
    let mut params = rcgen::CertificateParams::new(hosts.to_vec())?;
    let key = rcgen::KeyPair::generate()?;
    // A subject unique to the key: two daemons' certificates never look like the same issuer, so
    // trusting the wrong one fails as "unknown issuer", not as a puzzling bad signature.
    let id: String = key.public_key_raw().iter().rev().take(8).map(|b| format!("{b:02x}")).collect();
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::CommonName, hosts.first().map_or("pm", String::as_str));
    name.push(rcgen::DnType::OrganizationName, "pm (self-signed)");
    name.push(rcgen::DnType::OrganizationalUnitName, format!("key {id}"));
    params.distinguished_name = name;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The name a server's certificate must carry for `host:port`: the host, brackets of an IPv6
/// literal removed (IP addresses are checked against the certificate's IP SANs).
pub fn server_name(addr: &str) -> std::io::Result<ServerName<'static>> {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("`{host}` is not a valid TLS server name"))
    })
}

/// TCP (no Nagle) to `addr` (`host:port`), then the TLS handshake, checking the server's
/// certificate against `config`'s roots for the host part of `addr`.
pub async fn connect_tls(addr: &str, config: Arc<ClientConfig>) -> std::io::Result<ClientTlsStream<TcpStream>> {
    let name = server_name(addr)?;
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let handshake = TlsConnector::from(config).connect(name, tcp).await;
    handshake.map_err(|source| std::io::Error::new(source.kind(), HandshakeFailed { addr: addr.to_string(), source }))
}

/// A failed client handshake (inside the `io::Error` of [`connect_tls`]).
#[derive(Debug, thiserror::Error)]
#[error("TLS handshake with {addr} failed: {source}")]
pub struct HandshakeFailed {
    pub addr: String,
    pub source: std::io::Error,
}

impl HandshakeFailed {
    /// Whether the server's certificate was refused (rather than the connection failing).
    pub fn untrusted(&self) -> bool {
        let inner = self.source.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
        matches!(inner, Some(rustls::Error::InvalidCertificate(_)))
    }
}
