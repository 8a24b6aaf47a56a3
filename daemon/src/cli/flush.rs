//! `pm flush NAME…`: empties log files (the current ones cut to nothing, rotated ones deleted).

use super::{Targets, connect};
use crate::home::Home;
use pm_protocol::PmApiClient;
use std::process::ExitCode;

pub async fn run(args: Targets) -> anyhow::Result<ExitCode> {
    let client = connect::daemon(&Home::from_env()).await?;
    let mut flushed = Vec::new();
    for name in args.names {
        flushed.extend(client.daemon().flush(name).await?);
    }
    if args.json {
        super::output::json(&flushed)?;
    } else if flushed.is_empty() {
        say!("no log files to flush");
    } else {
        for path in flushed {
            say!("flushed {path}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
