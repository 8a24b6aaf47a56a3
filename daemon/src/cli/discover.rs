//! `pm discover PATH [NAME]`: maps the sidecars a project's own files describe (a Procfile, a
//! compose file, a package.json, …), as a difference to what the daemon has.

use super::{connect, output};
use crate::discover::{self, Found};
use crate::home::Home;
use anyhow::bail;
use pm_protocol::PmApiClient;
use pm_protocol::sync::{Sourced, SyncParams, SyncReport};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// A directory (every file of a kind pm reads in it) or one file.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Only this sidecar (as the source names it in pm), with what it depends on.
    name: Option<String>,
    /// The kind of file, when its name does not say (e.g. `procfile` for `Procfile.dev`).
    #[arg(long)]
    kind: Option<String>,
    /// Put this before every name (and dependency), e.g. `--prefix shop-` maps `web` as `shop-web`.
    #[arg(long, default_value = "")]
    prefix: String,
    /// Print what was found and what would change, without mapping anything.
    #[arg(long)]
    dry_run: bool,
    /// Also stop and delete the definitions these files gave before and no longer give.
    #[arg(long)]
    prune: bool,
    /// Then start the autostart sidecars found.
    #[arg(long)]
    start: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// What `--json` prints.
#[derive(serde::Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    found: &'a Found,
    changes: &'a SyncReport,
    dry_run: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut found = discover::scan(&args.path, args.kind.as_deref())?;
    if let Some(name) = &args.name {
        keep_with_dependencies(&mut found, name)?;
    }
    prefix(&mut found, &args.prefix)?;
    let params = params(&found, args.prune, args.dry_run, args.start);
    let changes = sync(params, args.dry_run).await?;
    if args.json {
        output::json(&Report { found: &found, changes: &changes, dry_run: args.dry_run })?;
    } else {
        show(&found, &changes, args.dry_run, args.prune);
        if !changes.started.is_empty() {
            output::report(&changes.started, false)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The sync of what was found: each sidecar with its file as its source.
pub(super) fn params(found: &Found, prune: bool, dry_run: bool, start: bool) -> SyncParams {
    let definitions = found
        .sidecars
        .iter()
        .map(|s| (s.name.clone(), Sourced { source: source(&s.file), definition: s.definition.clone() }))
        .collect();
    SyncParams { definitions, sources: found.files.iter().map(|f| source(f)).collect(), prune, dry_run, start }
}

/// How a file is named as a source: its absolute path, as `pm start -f` names it.
pub(super) fn source(file: &Path) -> String {
    file.display().to_string()
}

/// Applies `params`, or for a dry run asks the daemon what would change; with no daemon running,
/// a dry run starts none and everything would be added.
pub(super) async fn sync(params: SyncParams, dry_run: bool) -> anyhow::Result<SyncReport> {
    let home = Home::from_env();
    if dry_run {
        return Ok(match connect::existing(&home).await {
            Some((client, _)) => client.daemon().sync(params).await?,
            None => SyncReport { added: params.definitions.into_keys().collect(), ..SyncReport::default() },
        });
    }
    let (client, info) = connect::daemon_listening(&home, &[]).await?;
    output::notice(&info);
    Ok(client.daemon().sync(params).await?)
}

/// Keeps `name` and what it depends on, among what was found.
fn keep_with_dependencies(found: &mut Found, name: &str) -> anyhow::Result<()> {
    let by_name: BTreeMap<&str, &[String]> =
        found.sidecars.iter().map(|s| (s.name.as_str(), s.definition.depends_on.as_slice())).collect();
    if !by_name.contains_key(name) {
        let names: Vec<&str> = by_name.keys().copied().collect();
        bail!("no sidecar `{name}` found (found: {})", if names.is_empty() { "none".into() } else { names.join(", ") });
    }
    let mut keep = BTreeSet::from([name.to_string()]);
    let mut todo = vec![name.to_string()];
    while let Some(next) = todo.pop() {
        for dep in by_name.get(next.as_str()).copied().unwrap_or_default() {
            if by_name.contains_key(dep.as_str()) && keep.insert(dep.clone()) {
                todo.push(dep.clone());
            }
        }
    }
    found.sidecars.retain(|s| keep.contains(&s.name));
    Ok(())
}

/// Puts `prefix` before every name found and every dependency on one of them.
pub(super) fn prefix(found: &mut Found, prefix: &str) -> anyhow::Result<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    let names: BTreeSet<String> = found.sidecars.iter().map(|s| s.name.clone()).collect();
    for sidecar in &mut found.sidecars {
        sidecar.name = format!("{prefix}{}", sidecar.name);
        crate::supervisor::validate(&sidecar.name, &sidecar.definition)
            .map_err(|e| anyhow::anyhow!("--prefix `{prefix}`: {e}"))?;
        for dep in &mut sidecar.definition.depends_on {
            if names.contains(dep) {
                *dep = format!("{prefix}{dep}");
            }
        }
    }
    Ok(())
}

/// The table of what was found, what was not translated, and what changed.
pub(super) fn show(found: &Found, changes: &SyncReport, dry_run: bool, prune: bool) {
    let change_of = |name: &str| -> String {
        if changes.added.iter().any(|n| n == name) {
            "added".into()
        } else if let Some(c) = changes.changed.iter().find(|c| c.name == name) {
            format!("changed ({})", c.keys.join(", "))
        } else {
            "unchanged".into()
        }
    };
    let dash = || "-".to_string();
    let rows: Vec<Vec<String>> = found
        .sidecars
        .iter()
        .map(|s| {
            let d = &s.definition;
            let command = match (&d.docker, d.command.is_empty()) {
                (Some(docker), true) => docker.image.clone(),
                (Some(docker), false) => format!("{} {}", docker.image, shell_words::join(&d.command)),
                (None, _) => shell_words::join(&d.command),
            };
            vec![
                s.name.clone(),
                s.kind.to_string(),
                short(&s.file),
                d.runtime.to_string(),
                command.chars().take(60).collect(),
                if d.depends_on.is_empty() { dash() } else { d.depends_on.join(",") },
                d.ready.to_string(),
                change_of(&s.name),
            ]
        })
        .collect();
    let files: Vec<String> = found.files.iter().map(|f| short(f)).collect();
    say!("found {} sidecar(s) in {}", found.sidecars.len(), files.join(", "));
    if !rows.is_empty() {
        output::table(&["NAME", "KIND", "FILE", "RUNTIME", "COMMAND", "DEPENDS ON", "READY", "CHANGE"], &rows);
    }
    for n in &found.untranslated {
        let at = match n.key.line {
            Some(line) => format!("{}:{line}", short(&n.file)),
            None => short(&n.file),
        };
        match &n.key.why {
            Some(why) => say!("not translated: {} ({at}): {why}", n.key.key),
            None => say!("not translated: {} ({at})", n.key.key),
        }
    }
    for s in &found.skipped {
        say!("skipped: {} ({}): {}", s.name, short(&s.file), s.because);
    }
    if !changes.removed.is_empty() {
        match (changes.pruned, prune) {
            (true, _) => say!("deleted (no longer in their files): {}", changes.removed.join(", ")),
            (false, true) => say!("would delete (no longer in their files): {}", changes.removed.join(", ")),
            (false, false) => {
                say!("no longer in their files: {} (`--prune` deletes them)", changes.removed.join(", "))
            }
        }
    }
    let verb = if dry_run { "would map" } else { "mapped" };
    say!(
        "{verb}: {} added, {} changed, {} unchanged",
        changes.added.len(),
        changes.changed.len(),
        changes.unchanged.len()
    );
    if !changes.restarted.is_empty() {
        say!("restarted one at a time: {}", changes.restarted.join(", "));
    }
}

/// A path as short as it can be said: relative to the current directory when under it.
fn short(path: &Path) -> String {
    let here = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&here).unwrap_or(path).display().to_string()
}
