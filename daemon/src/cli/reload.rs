//! `pm reload NAME…`: replace running instances one at a time, with no call lost to a stateless
//! pool of two or more.

use super::{Targets, connect, output};
use crate::home::Home;
use pm_protocol::PmApiClient;
use pm_protocol::reload::Reloaded;
use std::process::ExitCode;

pub async fn run(args: Targets) -> anyhow::Result<ExitCode> {
    let client = connect::daemon(&Home::from_env()).await?;
    let (mut reloaded, mut skipped) = (Vec::new(), Vec::new());
    for name in args.names {
        let answer = client.daemon().reload(name).await?;
        reloaded.extend(answer.reloaded);
        skipped.extend(answer.skipped);
    }
    let all = Reloaded { reloaded: output::merged(reloaded), skipped: output::merged(skipped) };
    if args.json {
        return output::json(&all).map(|()| ExitCode::SUCCESS);
    }
    if !all.reloaded.is_empty() {
        output::report(&all.reloaded, false)?;
    }
    for s in &all.skipped {
        say!("skipped {} ({}): not running, so not started", s.name, s.state);
    }
    Ok(ExitCode::SUCCESS)
}
