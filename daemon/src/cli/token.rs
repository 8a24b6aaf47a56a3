//! `pm token`: the daemon's token, for clients on tcp/tls/ws (`pm.auth` or a Bearer header).

use super::connect;
use crate::home::Home;
use anyhow::Context;
use std::process::ExitCode;

pub async fn run() -> anyhow::Result<ExitCode> {
    let home = Home::from_env();
    // The daemon creates the token at its first start and keeps it, so the file is the token of
    // a stopped daemon too: only its absence needs a daemon to ask about.
    if !home.token().exists() {
        connect::running(&home).await?;
    }
    let token =
        std::fs::read_to_string(home.token()).with_context(|| format!("cannot read {}", home.token().display()))?;
    say!("{}", token.trim());
    Ok(ExitCode::SUCCESS)
}
