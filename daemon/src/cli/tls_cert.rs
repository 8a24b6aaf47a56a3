//! `pm tls-cert`: a self-signed certificate and key for the daemon's tls:// and wss://
//! listeners, written where `pm daemon` looks for them by default (PM_HOME/tls).

use crate::home::Home;
use crate::server::secure::default_cert_paths;
use anyhow::Context;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Names the certificate is always valid for, so local clients work out of the box.
const DEFAULT_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

#[derive(clap::Args)]
pub struct Args {
    /// Also valid for this DNS name or IP address (repeatable); localhost, 127.0.0.1 and ::1 always are.
    #[arg(long = "host", value_name = "H")]
    hosts: Vec<String>,
    /// Write cert.pem and key.pem here instead of PM_HOME/tls.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Replace an existing certificate and key.
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (cert, key) = match &args.out {
        Some(dir) => (dir.join("cert.pem"), dir.join("key.pem")),
        None => default_cert_paths(&Home::from_env()),
    };
    if let Some(existing) = [&cert, &key].into_iter().find(|p| p.exists())
        && !args.force
    {
        anyhow::bail!("{} already exists; pass --force to replace it", existing.display());
    }
    let mut hosts: Vec<String> = DEFAULT_HOSTS.iter().map(|h| h.to_string()).collect();
    for host in args.hosts {
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    let (cert_pem, key_pem) = pm_protocol::tls::self_signed(&hosts)?;
    if let Some(dir) = cert.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write(&key, &key_pem, 0o600)?;
    write(&cert, &cert_pem, 0o644)?;
    say!("wrote {} (valid for {})", cert.display(), hosts.join(", "));
    say!("wrote {} (private: mode 0600)", key.display());
    say!("clients trust it with the certificate file as their CA (e.g. PM_TLS_CA={})", cert.display());
    Ok(ExitCode::SUCCESS)
}

/// Writes a file that is created with `mode` from the start, so the key is never readable by others.
fn write(path: &Path, contents: &str, mode: u32) -> anyhow::Result<()> {
    let context = || format!("cannot write {}", path.display());
    // Replacing (with --force): remove first, since `mode` only applies to a new file.
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).with_context(context),
        _ => {}
    }
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path).with_context(context)?;
    file.write_all(contents.as_bytes()).with_context(context)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Args, run};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_a_private_key_and_refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let args = |force| Args { hosts: vec!["pm.test".into()], out: Some(dir.path().to_path_buf()), force };
        run(args(false)).unwrap();
        let mode = |name: &str| std::fs::metadata(dir.path().join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode("cert.pem"), mode("key.pem")), (0o644, 0o600));
        let config = pm_protocol::tls::server_config(&dir.path().join("cert.pem"), &dir.path().join("key.pem"));
        assert!(config.is_ok());

        let err = run(args(false)).unwrap_err().to_string();
        assert!(err.contains("already exists") && err.contains("--force"), "{err}");
        run(args(true)).unwrap();
        assert_eq!(mode("key.pem"), 0o600);
    }
}
