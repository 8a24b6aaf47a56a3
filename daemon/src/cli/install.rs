//! `pm install SPEC`: installs a package (npm, pip, cargo, docker, or a local artifact of one of
//! those) under PM_HOME/packages and maps the sidecars it gives, with the package as their
//! source. A failed install leaves nothing mapped and no files but its log.

use super::discover::{prefix, show};
use super::{connect, output};
use crate::discover::Found;
use crate::home::Home;
use crate::packages::{self, Index, Kind, Package, Packages, Progress, Spec};
use anyhow::{Context, bail};
use pm_client::Client;
use pm_protocol::sync::{Sourced, SyncParams, SyncReport};
use pm_protocol::{DefinitionInfo, InstanceStatus, PmApiClient};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// npm:NAME[@VERSION], pip:NAME[==VERSION], cargo:CRATE[@VERSION], docker:IMAGE[:TAG], or a
    /// path: an `npm pack` .tgz, a .whl, or a directory with package.json, pyproject.toml or
    /// Cargo.toml.
    spec: String,
    /// The package's name in pm (`pm update NAME`, `pm uninstall NAME`); by default its own.
    #[arg(long)]
    name: Option<String>,
    /// Put this before the name of each of its sidecars, e.g. `--prefix tools-`.
    #[arg(long, default_value = "")]
    prefix: String,
    /// Then start its autostart sidecars.
    #[arg(long)]
    start: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// What `--json` prints for `pm install`, `pm link` and `pm update`.
#[derive(serde::Serialize)]
pub(super) struct Report<'a> {
    pub name: &'a str,
    pub package: &'a Package,
    /// The version an update replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<&'a str>,
    #[serde(flatten)]
    pub found: &'a Found,
    pub changes: &'a SyncReport,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub started: Vec<InstanceStatus>,
}

impl Report<'_> {
    /// Prints it as JSON, or as `headline`, the table of what was mapped, and what started.
    pub fn say(&self, json: bool, headline: &str) -> anyhow::Result<ExitCode> {
        if json {
            output::json(self)?;
            return Ok(ExitCode::SUCCESS);
        }
        say!("{headline}");
        show(self.found, self.changes, false, self.package.kind == Kind::Link);
        if !self.started.is_empty() {
            output::report(&self.started, false)?;
        }
        Ok(ExitCode::SUCCESS)
    }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let label = format!("install {}", args.spec);
    install(args).await.context(label)
}

async fn install(args: Args) -> anyhow::Result<ExitCode> {
    let spec = Spec::parse(&args.spec)?;
    if let Some(name) = &args.name {
        pm_protocol::validate_name(name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    }
    let home = Home::from_env();
    let packages = Packages::new(&home);
    let _lock = packages.lock()?;
    let mut index = Index::load(&packages)?;
    let progress = Progress::new(format!("install {}", args.spec), packages.log())?;
    let mut installed = packages::install(&packages, &spec, args.name.as_deref(), &progress, |name, _| {
        match index.packages.get(name) {
            Some(p) if p.kind == Kind::Link => {
                bail!("`{name}` is linked to {}; `pm unlink {name}` first", p.dir.display())
            }
            Some(p) => bail!(
                "`{name}` is already installed ({} {}); `pm update {name} [VERSION]` installs another version, \
                 `--name` installs this one under another name",
                p.package,
                p.version
            ),
            None => Ok(()),
        }
    })
    .await?;
    let mut found = std::mem::take(&mut installed.found);
    prefix(&mut found, &args.prefix)?;
    let source = installed.package.source.clone();
    let client = connect::daemon(&home).await?;
    check_free(&client.daemon().ls().await?, &found, &[])?;
    let params = params(&found, &source, vec![source.clone()], false);
    let changes = client.daemon().sync(params.clone()).await?;
    let name = installed.name.clone();
    let mut package = installed.keep();
    package.prefix = args.prefix;
    package.definitions = found.sidecars.iter().map(|s| s.name.clone()).collect();
    index.packages.insert(name.clone(), package.clone());
    if let Err(e) = index.save(&packages) {
        // Not recorded, so not mapped either.
        unmap_source(&client, &source).await?;
        packages::remove_dir(&package.dir)?;
        return Err(e);
    }
    let headline = format!("installed {name} {} ({}) in {}", package.version, package.source, package.dir.display());
    let started = start(&client, params, args.start).await?;
    let report = Report { name: &name, package: &package, from: None, found: &found, changes: &changes, started };
    report.say(args.json, &headline)
}

/// With `start`, starts the autostart sidecars just mapped (a sync that changes nothing more).
pub(super) async fn start(client: &Client, mut params: SyncParams, start: bool) -> anyhow::Result<Vec<InstanceStatus>> {
    if !start {
        return Ok(Vec::new());
    }
    params.start = true;
    match client.daemon().sync(params).await {
        Ok(report) => Ok(report.started),
        Err(e) => bail!("its sidecars are mapped, but starting them failed: {}", said(e)),
    }
}

/// What the daemon said, in its own words.
pub(super) fn said(e: jsonrpsee::core::client::Error) -> String {
    match e {
        jsonrpsee::core::client::Error::Call(obj) => obj.message().to_string(),
        other => other.to_string(),
    }
}

/// The sync that maps the sidecars found, each with `source`; with `prune`, the definitions
/// `sources` gave before and no longer give are deleted.
pub(super) fn params(found: &Found, source: &str, sources: Vec<String>, prune: bool) -> SyncParams {
    let definitions = found
        .sidecars
        .iter()
        .map(|s| (s.name.clone(), Sourced { source: source.to_string(), definition: s.definition.clone() }))
        .collect();
    SyncParams { definitions, sources, prune, dry_run: false, start: false }
}

/// Refuses to take a name that a definition of another source (not one of `ours`) has.
pub(super) fn check_free(defs: &[DefinitionInfo], found: &Found, ours: &[&str]) -> anyhow::Result<()> {
    let taken: Vec<String> = found
        .sidecars
        .iter()
        .filter_map(|s| {
            let def = defs.iter().find(|d| d.name == s.name)?;
            let from = def.source.as_deref();
            (!from.is_some_and(|f| ours.contains(&f))).then(|| format!("`{}` ({})", s.name, from.unwrap_or("pm map")))
        })
        .collect();
    if !taken.is_empty() {
        bail!("already defined from elsewhere: {}; `--prefix` gives its sidecars other names", taken.join(", "));
    }
    Ok(())
}

/// Deletes every definition of `source`.
pub(super) async fn unmap_source(client: &Client, source: &str) -> anyhow::Result<Vec<String>> {
    let params = SyncParams { sources: vec![source.to_string()], prune: true, ..SyncParams::default() };
    Ok(client.daemon().sync(params).await?.removed)
}
