//! `pm events [NAME] [--json]`: state changes of every instance (or of NAME's) as they happen,
//! until Ctrl-C.

use super::connect;
use crate::home::Home;
use pm_protocol::PmApiClient;
use pm_protocol::status::EventItem;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Only this definition's or instance's events.
    name: Option<String>,
    /// Print each event as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (client, _) = connect::running(&Home::from_env()).await?;
    let mut sub = client.daemon().events(args.name).await?;
    loop {
        let item = tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            item = sub.next() => item,
        };
        match item {
            Some(Ok(EventItem::Change(e))) if args.json => say!("{}", serde_json::to_string(&e)?),
            Some(Ok(EventItem::Change(e))) => {
                let at =
                    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(e.at_ms));
                match e.reason {
                    Some(reason) => say!("{at} {} {} ({reason})", e.instance, e.state),
                    None => say!("{at} {} {}", e.instance, e.state),
                }
            }
            Some(Ok(EventItem::Skipped(n))) => eprintln!("pm: {n} events skipped while following"),
            Some(Ok(EventItem::End(why))) => {
                eprintln!("pm: event stream ended: {why}");
                return Ok(ExitCode::SUCCESS);
            }
            Some(Err(e)) => anyhow::bail!("event stream broke: {e}"),
            None => anyhow::bail!("the daemon closed the event stream"),
        }
    }
}
