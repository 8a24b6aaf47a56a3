//! Crates: `cargo install --root <dir>`, and a sidecar per binary it installed in `<dir>/bin`. A
//! crate installed from a checkout takes its `[package.metadata.pm]` settings.
//!
//! The build goes to a target directory inside the install, removed once the binaries are in
//! place: nothing is written into the checkout.

use super::progress::{Progress, Tool};
use super::{Kind, Resolved, Spec};
use crate::discover::Found;
use anyhow::{Context, bail};
use std::path::Path;

const CARGO: Tool = Tool { program: "cargo", hint: "install Rust's toolchain, e.g. with rustup", epilogue: "" };
/// Cargo's record of what `--root` has, and the largest one read.
const RECORD: &str = ".crates2.json";
const MAX_RECORD: u64 = 1 << 20;

/// Builds and installs the crate into `dir`.
pub async fn stage(spec: &Spec, dir: &Path, progress: &Progress) -> anyhow::Result<Resolved> {
    let build = dir.join("build");
    let mut cmd = tokio::process::Command::new(CARGO.program);
    cmd.arg("install").arg("--root").arg(dir).arg("--target-dir").arg(&build);
    match spec {
        Spec::Path { path, .. } => cmd.arg("--path").arg(path),
        Spec::Registry { name, version, .. } => {
            if let Some(version) = version {
                cmd.arg("--version").arg(version);
            }
            cmd.arg("--").arg(name)
        }
    };
    let installed = progress.run(&CARGO, cmd).await;
    let _ = std::fs::remove_dir_all(&build);
    installed?;
    let (resolved, _) = record(dir)?;
    Ok(resolved)
}

/// A sidecar per binary, running `<dir>/bin/<binary>`.
pub fn sidecars(spec: &Spec, dir: &Path) -> anyhow::Result<Found> {
    let (_, bins) = record(dir)?;
    let programs = bins.into_iter().map(|bin| (bin.clone(), dir.join("bin").join(bin))).collect();
    let manifest = match spec {
        Spec::Path { path, .. } => Some((path.join("Cargo.toml"), "cargo")),
        Spec::Registry { .. } => None,
    };
    super::programs(Kind::Cargo, dir, programs, manifest)
}

/// The crate, version and binaries cargo recorded in `dir`.
fn record(dir: &Path) -> anyhow::Result<(Resolved, Vec<String>)> {
    let path = dir.join(RECORD);
    let size = std::fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?.len();
    if size > MAX_RECORD {
        bail!("{}: {size} bytes; expected at most {MAX_RECORD}", path.display());
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_record(&text).with_context(|| format!("{} (cargo's record of the install)", path.display()))
}

/// `{"installs": {"NAME VERSION (SOURCE)": {"bins": [...]}}}`, with one install.
fn parse_record(text: &str) -> anyhow::Result<(Resolved, Vec<String>)> {
    let record: serde_json::Value = serde_json::from_str(text)?;
    let installs = record["installs"].as_object().map(|m| m.iter().collect::<Vec<_>>()).unwrap_or_default();
    let [(key, install)] = installs.as_slice() else {
        bail!("{} crates installed; expected one", installs.len());
    };
    let mut words = key.split_whitespace();
    let (Some(package), Some(version)) = (words.next(), words.next()) else {
        bail!("`{key}` is not `NAME VERSION (SOURCE)`");
    };
    super::spec::check_name(Kind::Cargo, package)?;
    let bins: Vec<String> = install["bins"]
        .as_array()
        .map(|b| {
            b.iter()
                .filter_map(|b| b.as_str())
                .filter(|b| !b.contains('/') && !b.starts_with('.'))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Ok((Resolved { package: package.into(), version: version.into() }, bins))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargos_record_names_the_crate_its_version_and_binaries() {
        let text =
            r#"{"installs": {"hello-pm 0.2.0 (path+file:///src/hello)": {"bins": ["hello-pm", "helper", "../x"]}}}"#;
        let (resolved, bins) = parse_record(text).unwrap();
        assert_eq!(resolved, Resolved { package: "hello-pm".into(), version: "0.2.0".into() });
        assert_eq!(bins, ["hello-pm", "helper"]);
        assert_eq!(parse_record(r#"{"installs": {}}"#).unwrap_err().to_string(), "0 crates installed; expected one");
        assert!(parse_record(r#"{"installs": {"x": {}}}"#).unwrap_err().to_string().contains("is not `NAME VERSION"));
        assert!(parse_record("nope").is_err());
    }
}
