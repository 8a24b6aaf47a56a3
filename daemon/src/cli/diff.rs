//! `pm diff [-f PATH]`: what `pm start -f` or `pm discover` would change, without changing it.

use super::{discover, output};
use crate::config;
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// A project file, or any file or directory `pm discover` reads (default: the project file
    /// here).
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    file: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let path = match args.file {
        Some(path) => path,
        None => config::find(&std::env::current_dir().context("cannot read the current directory")?)?,
    };
    let found = crate::discover::scan(&path, None)?;
    let changes = discover::sync(discover::params(&found, false, true, false), true).await?;
    if args.json {
        return output::json(&changes).map(|()| ExitCode::SUCCESS);
    }
    if changes.is_empty() {
        say!("no changes: the daemon has these definitions as they are");
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    rows.extend(changes.added.iter().map(|n| vec![n.clone(), "add".into(), "-".into()]));
    rows.extend(changes.changed.iter().map(|c| {
        let from = c.was_from.as_ref().map(|f| format!(" (now from {f})")).unwrap_or_default();
        vec![c.name.clone(), format!("change{from}"), c.keys.join(", ")]
    }));
    rows.extend(changes.removed.iter().map(|n| vec![n.clone(), "delete with --prune".into(), "-".into()]));
    output::table(&["NAME", "WOULD", "KEYS"], &rows);
    say!("{} unchanged", changes.unchanged.len());
    Ok(ExitCode::SUCCESS)
}
