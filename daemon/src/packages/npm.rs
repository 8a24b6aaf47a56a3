//! npm packages: `npm install --prefix <dir>` into a prefix of their own, and the sidecars the
//! installed package's package.json gives (read as `pm discover` reads one: its `bin` entries,
//! `commands`, `main`, and its `pm` settings).

use super::progress::{Progress, Tool};
use super::{Resolved, Spec};
use crate::discover::Found;
use anyhow::{Context, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};

const NPM: Tool =
    Tool { program: "npm", hint: "install Node.js and npm", epilogue: "A complete log of this run can be found in" };
/// The largest package.json read.
const MAX_MANIFEST: u64 = 1 << 20;

/// Installs the package into `dir` (the prefix is relocatable: npm's links in it are relative).
pub async fn stage(spec: &Spec, dir: &Path, progress: &Progress) -> anyhow::Result<Resolved> {
    let what = match spec {
        Spec::Registry { name, version: Some(version), .. } => format!("{name}@{version}"),
        Spec::Registry { name, version: None, .. } => name.clone(),
        Spec::Path { path, .. } => path.display().to_string(),
    };
    let mut cmd = tokio::process::Command::new(NPM.program);
    // `--save`, whatever the user's npmrc says: the prefix's package.json then names what was
    // installed (its dependencies are installed beside it). `--install-links`: a directory is
    // packed and copied, not linked to.
    cmd.args(["install", "--save", "--install-links", "--no-audit", "--no-fund", "--no-update-notifier", "--prefix"])
        .arg(dir)
        .arg("--")
        .arg(&what)
        .current_dir(dir);
    progress.run(&NPM, cmd).await?;
    let prefix = manifest(&dir.join("package.json"))?;
    let names: Vec<&String> =
        prefix.get("dependencies").and_then(Value::as_object).map(|d| d.keys().collect()).unwrap_or_default();
    let [package] = names.as_slice() else {
        bail!("npm installed {} packages into {}; expected exactly one", names.len(), dir.display());
    };
    super::spec::check_name(super::Kind::Npm, package)?;
    let installed = manifest(&root(dir, package).join("package.json"))?;
    let version = installed.get("version").and_then(Value::as_str).unwrap_or_default().to_string();
    Ok(Resolved { package: package.to_string(), version })
}

/// The sidecars of the installed package.
pub fn sidecars(dir: &Path, resolved: &Resolved) -> anyhow::Result<Found> {
    crate::discover::scan(&root(dir, &resolved.package).join("package.json"), Some("package.json"))
}

/// Where npm puts package `name` (`@scope/name` included) in prefix `dir`.
fn root(dir: &Path, name: &str) -> PathBuf {
    dir.join("node_modules").join(name)
}

fn manifest(path: &Path) -> anyhow::Result<serde_json::Map<String, Value>> {
    let size = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
    if size > MAX_MANIFEST {
        bail!("{}: {size} bytes; a package.json has at most {MAX_MANIFEST}", path.display());
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a package.json", path.display()))
}
