//! `pm log NAME [-n N] [-f]`: history from the files, then (with -f) live lines.

use super::connect;
use crate::home::Home;
use pm_client::ClientOptions;
use pm_protocol::status::LogEvent;
use pm_protocol::{LogStream, PmApiClient};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Definition (all its instances) or instance.
    name: String,
    /// How many past lines to show.
    #[arg(short = 'n', long = "lines", default_value_t = 20)]
    lines: usize,
    /// Keep following new lines until Ctrl-C.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Print each line as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    // The client drops a subscription whose buffer overflows, and this side may print slower
    // than the daemon sends: room for the whole history, so none of it is lost.
    let room = args.lines.saturating_add(pm_client::DEFAULT_SUBSCRIPTION_BUFFER);
    let opts = ClientOptions::default().subscription_buffer(room);
    let (client, _) = connect::running_with(&Home::from_env(), opts).await?;
    let mut sub = client.daemon().logs(args.name, args.lines, args.follow).await?;
    loop {
        let event = tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            event = sub.next() => event,
        };
        match event {
            Some(Ok(LogEvent::Line(line))) if args.json => println!("{}", serde_json::to_string(&line)?),
            Some(Ok(LogEvent::Line(line))) => {
                let tag = match line.stream {
                    LogStream::Out => String::new(),
                    LogStream::Err => " err".into(),
                };
                println!("{} {}{tag} | {}", line.at, line.instance, line.line);
            }
            Some(Ok(LogEvent::Skipped(n))) => {
                eprintln!("pm: {n} lines skipped while following (they are in the log files)")
            }
            Some(Ok(LogEvent::End(_))) => return Ok(ExitCode::SUCCESS),
            Some(Err(e)) => anyhow::bail!("log stream broke: {e}"),
            None => anyhow::bail!("the daemon closed the log stream"),
        }
    }
}
