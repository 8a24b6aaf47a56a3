//! `pm update NAME [VERSION]`: installs another version of a package beside the one there is,
//! then maps its sidecars in place of the old ones: the running instances of each changed
//! definition are replaced one at a time, each new one ready before the old one stops, and the
//! old version stays until all are. When one does not get ready, the old definitions come back
//! (the instances still on their old runs are not touched, the others started again), the new
//! version goes, and the error says why.

use super::discover::prefix;
use super::install::{Report, check_free, params, said};
use super::{connect, output};
use crate::home::Home;
use crate::packages::{self, Index, Kind, Package, Packages, Progress, Spec};
use anyhow::{Context, bail};
use pm_client::Client;
use pm_protocol::params::StartParams;
use pm_protocol::sync::{Sourced, SyncParams};
use pm_protocol::{Definition, PmApiClient, State};
use std::collections::BTreeMap;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The package, as `pm install` named it.
    name: String,
    /// The version to install (none: the newest). A package installed from a path takes the new
    /// file or directory instead (none: the same path, read again).
    #[arg(value_name = "VERSION")]
    to: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The version asked for is the one installed.
#[derive(Debug, thiserror::Error)]
#[error("already at {0}")]
struct Current(String);

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let home = Home::from_env();
    let packages = Packages::new(&home);
    let _lock = packages.lock()?;
    let mut index = Index::load(&packages)?;
    let name = args.name.as_str();
    let old = index.get(name)?.clone();
    let spec = next(name, &old, args.to.as_deref()).with_context(|| format!("update {name}"))?;
    let progress = Progress::new(format!("update {name}"), packages.log())?;
    let installed = packages::install(&packages, &spec, Some(name), &progress, |_, resolved| {
        if resolved.package != old.package {
            bail!("that is {}, not {}", resolved.package, old.package);
        }
        if resolved.version == old.version {
            return Err(Current(old.version.clone()).into());
        }
        Ok(())
    })
    .await;
    let mut installed = match installed {
        Err(e) if e.is::<Current>() => {
            match args.json {
                true => output::json(&serde_json::json!({"name": name, "package": old, "up_to_date": true}))?,
                false => say!("{name} is already at {}; nothing to update", old.version),
            }
            return Ok(ExitCode::SUCCESS);
        }
        other => other.with_context(|| format!("update {name}"))?,
    };
    let mut found = std::mem::take(&mut installed.found);
    prefix(&mut found, &old.prefix)?;
    let new = installed.package.clone();
    let client = connect::daemon(&home).await?;
    let defs = client.daemon().ls().await?;
    check_free(&defs, &found, &[&old.source, &new.source])?;
    let before: BTreeMap<String, Definition> = defs
        .into_iter()
        .filter(|d| d.source.as_deref() == Some(old.source.as_str()))
        .map(|d| (d.name, d.definition))
        .collect();
    let running: Vec<String> = client
        .daemon()
        .status(None)
        .await?
        .into_iter()
        .filter(|s| before.contains_key(&s.definition) && running(s.state))
        .map(|s| s.name)
        .collect();
    installed.package.prefix = old.prefix.clone();
    installed.package.definitions = found.sidecars.iter().map(|s| s.name.clone()).collect();
    index.packages.insert(name.to_string(), installed.package.clone());
    // The old version's definitions that the new one no longer has go too.
    let params = params(&found, &new.source, vec![old.source.clone(), new.source.clone()], true);
    let replaced = match client.daemon().sync(params).await {
        Ok(changes) => index.save(&packages).map(|()| changes).map_err(|e| format!("{e:#}")),
        Err(e) => Err(said(e)),
    };
    let changes = match replaced {
        Ok(changes) => changes,
        Err(why) => {
            let back = match rollback(&client, &old, before, running, &new.source).await {
                Ok(()) => format!("rolled back to {}", old.version),
                Err(e) => format!("rolling back to {} failed too: {e:#}", old.version),
            };
            // Dropping `installed` removes the new version's files.
            bail!("update of {name} to {} failed: {why}; {back}", new.version);
        }
    };
    let package = installed.keep();
    // The update is done: an old directory that cannot go is only worth a word.
    if packages.owns(&old.dir)
        && let Err(e) = packages::remove_dir(&old.dir)
    {
        eprintln!("pm: {e:#}");
    }
    let headline = format!("updated {name} from {} to {} ({})", old.version, package.version, package.source);
    let from = Some(old.version.as_str());
    let report = Report { name, package: &package, from, found: &found, changes: &changes, started: Vec::new() };
    report.say(args.json, &headline)
}

/// What to install: the registry's package at `version`, or, for a package installed from a
/// path, the path given (or the same one again).
fn next(name: &str, old: &Package, version: Option<&str>) -> anyhow::Result<Spec> {
    if old.kind == Kind::Link {
        bail!("a link is mapped from its checkout as it is; `pm link {name} {}` reads it again", old.dir.display());
    }
    let spec = match (&old.from, version) {
        (Some(from), None) => Spec::Path { kind: old.kind, path: from.clone() },
        (Some(_), Some(path)) if path.contains('/') || std::path::Path::new(path).exists() => Spec::parse(path)?,
        (Some(from), Some(_)) => bail!("it was installed from {}: give the new file or directory", from.display()),
        (None, version) => Spec::of(old.kind, &old.package, version)?,
    };
    if spec.kind() != old.kind {
        bail!("it is a {} package, and that is {}", old.kind.as_str(), spec.kind().as_str());
    }
    Ok(spec)
}

/// Whether an instance in `state` was running (or on its way) when the update began.
fn running(state: State) -> bool {
    !matches!(state, State::Stopped | State::Stopping | State::Failed | State::Exited)
}

/// Puts the old definitions back without touching the instances that still run them (a plain
/// `apply` replaces a definition without restarting anything), starts again those that were
/// running before and are not now, then gives them their source back and deletes what only the
/// new version had.
async fn rollback(
    client: &Client,
    old: &Package,
    before: BTreeMap<String, Definition>,
    running: Vec<String>,
    new_source: &str,
) -> anyhow::Result<()> {
    client.daemon().apply(before.clone(), false).await.map_err(|e| anyhow::anyhow!(said(e)))?;
    for instance in running {
        let params = StartParams { name: Some(instance), ..StartParams::default() };
        client.daemon().start(params).await.map_err(|e| anyhow::anyhow!(said(e)))?;
    }
    let definitions = before
        .into_iter()
        .map(|(name, definition)| (name, Sourced { source: old.source.clone(), definition }))
        .collect();
    let params = SyncParams {
        definitions,
        sources: vec![new_source.to_string(), old.source.clone()],
        prune: true,
        ..SyncParams::default()
    };
    client.daemon().sync(params).await.map_err(|e| anyhow::anyhow!(said(e)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(kind: Kind, from: Option<&str>) -> Package {
        Package {
            kind,
            package: "tool".into(),
            version: "1.0.0".into(),
            from: from.map(Into::into),
            dir: "/h/packages/tool/1.0.0".into(),
            source: kind.source("tool", "1.0.0"),
            prefix: String::new(),
            definitions: Vec::new(),
        }
    }

    #[test]
    fn the_next_version_of_a_registry_package_or_of_a_path() {
        let npm = package(Kind::Npm, None);
        let at = |version: &str| Spec::Registry { kind: Kind::Npm, name: "tool".into(), version: Some(version.into()) };
        assert_eq!(next("tool", &npm, Some("2.0.0")).unwrap(), at("2.0.0"));
        assert_eq!(
            next("tool", &npm, None).unwrap(),
            Spec::Registry { kind: Kind::Npm, name: "tool".into(), version: None }
        );
        assert!(format!("{:#}", next("tool", &npm, Some("--x")).unwrap_err()).contains("`--x` is not a version"));
        let local = package(Kind::Npm, Some("/src/tool-1.0.0.tgz"));
        assert_eq!(
            next("tool", &local, None).unwrap(),
            Spec::Path { kind: Kind::Npm, path: "/src/tool-1.0.0.tgz".into() }
        );
        let err = next("tool", &local, Some("2.0.0")).unwrap_err().to_string();
        assert!(err.contains("it was installed from /src/tool-1.0.0.tgz: give the new file"), "{err}");
        let docker = package(Kind::Docker, None);
        assert_eq!(
            next("tool", &docker, Some("v2")).unwrap(),
            Spec::Registry { kind: Kind::Docker, name: "tool".into(), version: Some("v2".into()) }
        );
        let link = package(Kind::Link, None);
        assert!(next("tool", &link, None).unwrap_err().to_string().starts_with("a link is mapped from its checkout"));
    }
}
