//! `pm schema`: the JSON Schema of project files; with `--api`, the OpenRPC document of the
//! daemon's API (what `rpc.discover` answers). Both are generated from the Rust types.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Print the OpenRPC document of the daemon's `pm.*` API instead.
    #[arg(long)]
    api: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let document = match args.api {
        true => serde_json::from_str(crate::server::dispatch::api_document())?,
        false => crate::config::json_schema(),
    };
    say!("{}", serde_json::to_string_pretty(&document)?);
    Ok(ExitCode::SUCCESS)
}
