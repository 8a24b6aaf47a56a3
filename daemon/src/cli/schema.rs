//! `pm schema`: the JSON Schema of project files, generated from the Rust types.

use std::process::ExitCode;

pub fn run() -> anyhow::Result<ExitCode> {
    say!("{}", serde_json::to_string_pretty(&crate::config::json_schema())?);
    Ok(ExitCode::SUCCESS)
}
