//! `pm link NAME PATH`: maps the sidecars a local checkout describes (as `pm discover` reads
//! it), where it is, with `link:PATH` as their source: for development, nothing is copied or
//! built. Linking again reads the checkout again. `pm unlink NAME` deletes those definitions
//! and leaves the checkout alone.

use super::discover::prefix;
use super::install::{Report, check_free, params, start};
use super::uninstall::{Removed, unmap};
use crate::discover;
use crate::home::Home;
use crate::packages::{Index, Kind, Package, Packages};
use anyhow::{Context, bail};
use pm_protocol::PmApiClient;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The name the link has in pm (`pm unlink NAME`).
    name: String,
    /// The checkout: a directory (or one file) of a kind `pm discover` reads.
    path: PathBuf,
    /// Put this before the name of each of its sidecars.
    #[arg(long, default_value = "")]
    prefix: String,
    /// Then start its autostart sidecars.
    #[arg(long)]
    start: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct UnlinkArgs {
    /// The link, as `pm link` named it.
    name: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    pm_protocol::validate_name(&args.name).map_err(|e| anyhow::anyhow!("pm link: {e}"))?;
    let dir = std::fs::canonicalize(&args.path).with_context(|| format!("pm link: {}", args.path.display()))?;
    let home = Home::from_env();
    let packages = Packages::new(&home);
    let _lock = packages.lock()?;
    let mut index = Index::load(&packages)?;
    match index.packages.get(&args.name) {
        Some(p) if p.kind != Kind::Link => {
            bail!("`{}` is installed ({} {}); `pm uninstall {}` first", args.name, p.package, p.version, args.name)
        }
        Some(p) if p.dir != dir => {
            bail!("`{}` is linked to {}; `pm unlink {}` first", args.name, p.dir.display(), args.name)
        }
        _ => {}
    }
    let mut found = discover::scan(&dir, None)?;
    prefix(&mut found, &args.prefix)?;
    let path = dir.display().to_string();
    let source = Kind::Link.source(&path, "");
    let client = super::connect::daemon(&home).await?;
    check_free(&client.daemon().ls().await?, &found, &[&source])?;
    // Read in full: what the checkout no longer describes goes.
    let params = params(&found, &source, vec![source.clone()], true);
    let changes = client.daemon().sync(params.clone()).await?;
    let package = Package {
        kind: Kind::Link,
        package: path,
        version: String::new(),
        from: None,
        dir,
        source,
        prefix: args.prefix,
        definitions: found.sidecars.iter().map(|s| s.name.clone()).collect(),
    };
    index.packages.insert(args.name.clone(), package.clone());
    index.save(&packages)?;
    let headline = format!("linked {} to {} ({})", args.name, package.dir.display(), package.source);
    let started = start(&client, params, args.start).await?;
    let report = Report { name: &args.name, package: &package, from: None, found: &found, changes: &changes, started };
    report.say(args.json, &headline)
}

pub async fn unlink(args: UnlinkArgs) -> anyhow::Result<ExitCode> {
    let home = Home::from_env();
    let packages = Packages::new(&home);
    let _lock = packages.lock()?;
    let mut index = Index::load(&packages)?;
    let package = index.get(&args.name)?.clone();
    if package.kind != Kind::Link {
        bail!("`{}` is installed, not linked: `pm uninstall {}`", args.name, args.name);
    }
    let client = super::connect::daemon(&home).await?;
    let deleted = unmap(&client, &args.name, &package).await?;
    index.packages.remove(&args.name);
    index.save(&packages)?;
    let removed = Removed { name: &args.name, package: &package, deleted: &deleted };
    removed.say(args.json, &format!("unlinked {} ({})", args.name, package.dir.display()))
}
