//! `pm unstartup [--user]`: stops and disables the unit `pm startup` wrote (best effort, as
//! enabling was), then removes it.

use super::startup::{Target, UNIT};
use anyhow::Context;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: Target,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (path, may_disable) = args.target.path()?;
    if !path.exists() {
        say!("no {} to remove", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    if may_disable && let Err(why) = args.target.systemctl(&["disable", "--now", UNIT]) {
        say!("not disabled: {why}");
    }
    std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    if may_disable {
        let _ = args.target.systemctl(&["daemon-reload"]);
    }
    say!("removed {}", path.display());
    Ok(ExitCode::SUCCESS)
}
