//! `pm uninstall NAME`: stops and deletes the definitions an installed package gave (refused,
//! with their names, while definitions of other sources depend on them), then its files.

use super::install::unmap_source;
use super::{connect, output};
use crate::home::Home;
use crate::packages::{Index, Kind, Package, Packages, remove_dir};
use anyhow::{Context, bail};
use pm_client::Client;
use pm_protocol::PmApiClient;
use std::collections::BTreeSet;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The package, as `pm install` named it.
    name: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// What `--json` prints for `pm uninstall` and `pm unlink`.
#[derive(serde::Serialize)]
pub(super) struct Removed<'a> {
    pub name: &'a str,
    pub package: &'a Package,
    /// The definitions deleted, dependents first.
    pub deleted: &'a [String],
}

impl Removed<'_> {
    /// Prints it as JSON, or as `headline: deleted …`.
    pub fn say(&self, json: bool, headline: &str) -> anyhow::Result<ExitCode> {
        if json {
            output::json(self)?;
        } else if self.deleted.is_empty() {
            say!("{headline}: no definition to delete");
        } else {
            say!("{headline}: deleted {}", self.deleted.join(", "));
        }
        Ok(ExitCode::SUCCESS)
    }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let home = Home::from_env();
    let packages = Packages::new(&home);
    let _lock = packages.lock()?;
    let mut index = Index::load(&packages)?;
    let package = index.get(&args.name)?.clone();
    if package.kind == Kind::Link {
        bail!("`{}` is a link to {}: `pm unlink {}`", args.name, package.dir.display(), args.name);
    }
    let client = connect::daemon(&home).await?;
    let deleted = unmap(&client, &args.name, &package).await?;
    if packages.owns(&package.dir) {
        remove_dir(&package.dir)?;
    }
    index.packages.remove(&args.name);
    index.save(&packages)?;
    let removed = Removed { name: &args.name, package: &package, deleted: &deleted };
    removed.say(args.json, &format!("uninstalled {} {} ({})", args.name, package.version, package.source))
}

/// Stops and deletes the definitions of `package`, dependents first; refused, naming them, while
/// definitions of other sources depend on them.
pub(super) async fn unmap(client: &Client, name: &str, package: &Package) -> anyhow::Result<Vec<String>> {
    let defs = client.daemon().ls().await?;
    let ours: BTreeSet<&str> =
        defs.iter().filter(|d| d.source.as_deref() == Some(package.source.as_str())).map(|d| d.name.as_str()).collect();
    let users: Vec<String> = defs
        .iter()
        .filter(|d| !ours.contains(d.name.as_str()))
        .flat_map(|d| {
            let needed = d.definition.depends_on.iter().filter(|dep| ours.contains(dep.as_str()));
            needed.map(|dep| format!("{} (on {dep})", d.name))
        })
        .collect();
    if !users.is_empty() {
        bail!("`{name}` is still needed: {} depend(s) on its sidecars; delete or change them first", users.join(", "));
    }
    unmap_source(client, &package.source).await.with_context(|| format!("cannot delete the sidecars of `{name}`"))
}
