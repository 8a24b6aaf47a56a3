//! Python packages: a virtual environment of their own, `<dir>/venv`, and a sidecar per console
//! script the distribution declares (its `entry_points.txt`), running the script pip wrote.
//!
//! A venv is not relocatable (pip writes its path into each script), so the distribution's name
//! and version are resolved first (`pip install --dry-run --report`, with the venv's pip, which
//! is run as `python -m pip` and so works from wherever the venv is moved), then the venv moves to
//! its directory, and only then is the package installed into it.

use super::progress::{Progress, Tool};
use super::{Kind, Resolved, Spec};
use crate::discover::Found;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

const PYTHON: Tool = Tool { program: "python3", hint: "install Python 3 with its venv module", epilogue: "" };
const PIP: Tool =
    Tool { program: "pip", hint: "the venv has no python: `python3 -m venv` did not make one", epilogue: "" };
/// The largest metadata file read (a report, an entry_points.txt).
const MAX_METADATA: u64 = 4 << 20;

/// Makes the venv in `dir` and resolves what `spec` names.
pub async fn stage(spec: &Spec, dir: &Path, progress: &Progress) -> anyhow::Result<Resolved> {
    let mut venv = tokio::process::Command::new(PYTHON.program);
    venv.args(["-m", "venv"]).arg(dir.join("venv"));
    progress.run(&PYTHON, venv).await?;
    let report = dir.join("resolve.json");
    let mut resolve = pip(dir);
    resolve.args(["--dry-run", "--no-deps", "--ignore-installed", "--report"]).arg(&report).arg("--").arg(what(spec));
    progress.run(&PIP, resolve).await?;
    let text = read(&report)?;
    let _ = std::fs::remove_file(&report);
    resolved(&text).with_context(|| format!("{} (pip's report)", report.display()))
}

/// Installs the package into the venv, now in `dir`, and finds its console scripts.
pub async fn install(spec: &Spec, dir: &Path, resolved: &Resolved, progress: &Progress) -> anyhow::Result<Found> {
    let mut cmd = pip(dir);
    cmd.arg("--").arg(what(spec));
    progress.run(&PIP, cmd).await?;
    let entry_points = dist_info(dir, resolved)?.join("entry_points.txt");
    let scripts = match entry_points.is_file() {
        true => console_scripts(&read(&entry_points)?),
        false => Vec::new(),
    };
    let bin = dir.join("venv/bin");
    let programs = scripts.into_iter().map(|s| (s.clone(), bin.join(s))).collect();
    let manifest = match spec {
        Spec::Path { path, .. } if path.join("pyproject.toml").is_file() => {
            Some((path.join("pyproject.toml"), "pyproject"))
        }
        _ => None,
    };
    super::programs(Kind::Pip, dir, programs, manifest)
}

/// `<venv>/bin/python -m pip install …`, quiet about pip's own version.
fn pip(dir: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(dir.join("venv/bin/python"));
    cmd.args(["-m", "pip", "install", "--no-input", "--disable-pip-version-check"]);
    cmd
}

/// What pip is told to install.
fn what(spec: &Spec) -> String {
    match spec {
        Spec::Registry { name, version: Some(version), .. } => format!("{name}=={version}"),
        Spec::Registry { name, version: None, .. } => name.clone(),
        Spec::Path { path, .. } => path.display().to_string(),
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    let size = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
    if size > MAX_METADATA {
        bail!("{}: {size} bytes; expected at most {MAX_METADATA}", path.display());
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The name and version in pip's installation report (`--report`): its one install.
fn resolved(report: &str) -> anyhow::Result<Resolved> {
    let report: serde_json::Value = serde_json::from_str(report)?;
    let installs = report["install"].as_array().map(Vec::as_slice).unwrap_or_default();
    let [install] = installs else {
        bail!("pip would install {} distributions; expected one", installs.len());
    };
    let field = |key: &str| install["metadata"][key].as_str().unwrap_or_default().to_string();
    let (package, version) = (field("name"), field("version"));
    super::spec::check_name(Kind::Pip, &package)?;
    Ok(Resolved { package, version })
}

/// A distribution name as Python compares them (PEP 503): lowercase, runs of `-_.` as one `-`.
fn normalized(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if "-_.".contains(c) {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// The `<name>-<version>.dist-info` directory of the installed distribution.
fn dist_info(dir: &Path, resolved: &Resolved) -> anyhow::Result<PathBuf> {
    let lib = dir.join("venv/lib");
    let entries = |d: &Path| -> anyhow::Result<Vec<PathBuf>> {
        let read = std::fs::read_dir(d).with_context(|| format!("cannot read {}", d.display()))?;
        Ok(read.filter_map(|e| e.ok().map(|e| e.path())).collect())
    };
    let want = (normalized(&resolved.package), normalized(&resolved.version));
    for python in entries(&lib)? {
        let site = python.join("site-packages");
        if !site.is_dir() {
            continue;
        }
        for entry in entries(&site)? {
            let Some(stem) = entry.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".dist-info"))
            else {
                continue;
            };
            if stem.rsplit_once('-').is_some_and(|(n, v)| (normalized(n), normalized(v)) == want) {
                return Ok(entry);
            }
        }
    }
    bail!("pip installed {} {} but {} has no dist-info of it", resolved.package, resolved.version, lib.display())
}

/// The names of the `[console_scripts]` of an entry_points.txt.
fn console_scripts(text: &str) -> Vec<String> {
    let mut section = "";
    let mut scripts = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim();
        } else if section == "console_scripts"
            && !line.starts_with(['#', ';'])
            && let Some((name, _)) = line.split_once('=')
        {
            let name = name.trim();
            // A script is a file in the venv's bin: a name with a path in it is not one.
            if !name.is_empty() && !name.contains('/') && name != "." && name != ".." {
                scripts.push(name.to_string());
            }
        }
    }
    scripts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_scripts_of_an_entry_points_file() {
        let text = "[gui_scripts]\nviewer = a:b\n\n[console_scripts]\n# note\nserve = hello.main:run\n\
                    hello-cli=hello:cli [extra]\n../evil = x:y\n\n[other]\nx = y:z\n";
        assert_eq!(console_scripts(text), ["serve", "hello-cli"]);
        assert!(console_scripts("").is_empty());
        assert!(console_scripts("[console_scripts\nx = y").is_empty());
    }

    #[test]
    fn the_report_names_one_distribution() {
        let report = r#"{"version": "1", "install": [{"metadata": {"name": "Hello_World", "version": "2.0.1"}}]}"#;
        assert_eq!(resolved(report).unwrap(), Resolved { package: "Hello_World".into(), version: "2.0.1".into() });
        let two = r#"{"install": [{"metadata": {}}, {"metadata": {}}]}"#;
        assert_eq!(resolved(two).unwrap_err().to_string(), "pip would install 2 distributions; expected one");
        let bad = r#"{"install": [{"metadata": {"name": "../x", "version": "1"}}]}"#;
        assert!(resolved(bad).unwrap_err().to_string().contains("is not a package name"));
        assert!(resolved("[").is_err());
        assert_eq!(normalized("Hello__World.x"), "hello-world-x");
    }

    #[test]
    fn the_dist_info_is_found_by_its_normalized_name_and_version() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("venv/lib/python3.11/site-packages");
        std::fs::create_dir_all(site.join("hello_world-2.0.1.dist-info")).unwrap();
        std::fs::create_dir_all(site.join("pip-23.2.1.dist-info")).unwrap();
        let resolved = |package: &str, version: &str| Resolved { package: package.into(), version: version.into() };
        let found = dist_info(dir.path(), &resolved("Hello-World", "2.0.1")).unwrap();
        assert_eq!(found, site.join("hello_world-2.0.1.dist-info"));
        let err = dist_info(dir.path(), &resolved("hello-world", "3")).unwrap_err().to_string();
        assert!(err.starts_with("pip installed hello-world 3 but "), "{err}");
    }
}
