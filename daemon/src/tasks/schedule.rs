//! `schedule`: starts a (one-shot) definition on a cron expression, in a time zone, or with
//! `--restart` restarts one (PM2's `cron_restart`).
//!
//! ```toml
//! [sidecars.nightly]
//! runtime = "task"
//! command = ["schedule", "--cron", "0 30 2 * * *", "--tz", "Europe/Paris", "--start", "backup"]
//! ```
//!
//! The expression has a seconds field first (`sec min hour day month weekday [year]`). A run
//! is skipped while the previous one is still going, unless `--overlap`. Each decision is a line
//! in this task's log; the runs themselves show in the started definition's status and logs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use pm_client::{Client, ClientOptions, PmApiClient};
use pm_protocol::State;
use pm_protocol::params::StartParams;
use pm_runtimes::task::{Task, TaskContext, TaskError};
use std::str::FromStr;

pub struct Schedule;

/// What the task's arguments say.
#[derive(Debug, PartialEq)]
struct Plan {
    cron: cron::Schedule,
    tz: Tz,
    /// The definition it starts (or restarts).
    start: String,
    /// Restart it at each run, running or not, rather than start it when it is not running.
    restart: bool,
    overlap: bool,
}

fn plan(args: &[String]) -> Result<Plan, String> {
    let usage = "usage: schedule --cron 'SEC MIN HOUR DAY MONTH WEEKDAY' (--start | --restart) DEFINITION [--tz ZONE] [--overlap]";
    let (mut cron, mut tz, mut start, mut restart, mut overlap) = (None, Tz::UTC, None, false, false);
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let mut value = || words.next().ok_or_else(|| format!("{word} needs a value; {usage}"));
        match word.as_str() {
            "--cron" => {
                let expr = value()?;
                cron =
                    Some(cron::Schedule::from_str(expr).map_err(|e| format!("invalid cron expression `{expr}`: {e}"))?);
            }
            "--tz" => {
                let zone = value()?;
                tz = zone.parse().map_err(|_| format!("unknown time zone `{zone}` (e.g. Europe/Paris, UTC)"))?;
            }
            "--start" | "--restart" if start.is_some() => return Err(format!("one --start or --restart; {usage}")),
            "--start" => start = Some(value()?.clone()),
            "--restart" => {
                start = Some(value()?.clone());
                restart = true;
            }
            "--overlap" => overlap = true,
            other => return Err(format!("unknown argument `{other}`; {usage}")),
        }
    }
    match (cron, start) {
        (Some(cron), Some(start)) => Ok(Plan { cron, tz, start, restart, overlap }),
        _ => Err(usage.into()),
    }
}

/// The first run strictly after `now`, in the plan's time zone.
fn next_run(plan: &Plan, now: DateTime<Utc>) -> Option<DateTime<Tz>> {
    plan.cron.after(&now.with_timezone(&plan.tz)).next()
}

#[async_trait]
impl Task for Schedule {
    async fn run(&self, ctx: TaskContext) -> Result<(), TaskError> {
        let plan = plan(&ctx.args)?;
        // As the owner (in memory, no token): starting another definition is the owner's to do,
        // and the owner configured this schedule.
        let client = Client::connect_endpoint(&ctx.daemon, ClientOptions::default()).await?;
        let verb = if plan.restart { "restarting" } else { "starting" };
        ctx.log.out(&format!("{verb} `{}` on `{}` ({})", plan.start, plan.cron, plan.tz)).await;
        loop {
            let Some(at) = next_run(&plan, Utc::now()) else {
                ctx.log.out("the expression has no more runs").await;
                return Ok(());
            };
            let wait = (at.with_timezone(&Utc) - Utc::now()).to_std().unwrap_or_default();
            tokio::select! {
                _ = ctx.cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
            if plan.restart {
                ctx.log.out(&format!("{at}: restarting `{}`", plan.start)).await;
                let (client, log, name) = (client.clone(), ctx.log.clone(), plan.start.clone());
                tokio::spawn(async move {
                    if let Err(e) = client.daemon().restart(name.clone()).await {
                        log.err(&format!("{at}: restarting `{name}` failed: {e}")).await;
                    }
                });
                continue;
            }
            let busy = client
                .daemon()
                .status(Some(plan.start.clone()))
                .await?
                .iter()
                .any(|s| !matches!(s.state, State::Stopped | State::Exited | State::Failed));
            if busy && !plan.overlap {
                ctx.log.out(&format!("{at}: skipped, `{}` is still running", plan.start)).await;
                continue;
            }
            ctx.log.out(&format!("{at}: starting `{}`", plan.start)).await;
            // The start answers when the run is ready (a one-shot: when it has finished), so it
            // waits on its own task; the next tick is not held up.
            let (client, log, start) = (client.clone(), ctx.log.clone(), plan.start.clone());
            tokio::spawn(async move {
                let params = StartParams { name: Some(start.clone()), ..Default::default() };
                if let Err(e) = client.daemon().start(params).await {
                    log.err(&format!("{at}: `{start}` failed: {e}")).await;
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn runs_at_the_next_time_in_its_zone() {
        let p = plan(&args(&["--cron", "0 0 9 * * *", "--tz", "Asia/Tokyo", "--start", "backup"])).unwrap();
        let now = DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z").unwrap().with_timezone(&Utc);
        // 09:00 in Tokyo is 00:00 UTC: the next one is tomorrow's.
        let next = next_run(&p, now).unwrap().with_timezone(&Utc);
        assert_eq!(next.to_rfc3339(), "2026-11-24T00:00:00+00:00");
        assert!(!p.overlap);
        assert_eq!(p.start, "backup");
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        assert!(
            plan(&args(&["--cron", "nope", "--start", "x"])).unwrap_err().contains("invalid cron expression `nope`")
        );
        assert!(
            plan(&args(&["--cron", "* * * * * *", "--start", "x", "--tz", "Mars/Olympus"]))
                .unwrap_err()
                .contains("unknown time zone")
        );
        assert!(plan(&args(&["--cron", "* * * * * *"])).unwrap_err().starts_with("usage:"));
        assert!(plan(&args(&["--every", "5"])).unwrap_err().contains("unknown argument `--every`"));
        let both = plan(&args(&["--cron", "* * * * * *", "--start", "a", "--restart", "b"])).unwrap_err();
        assert!(both.starts_with("one --start or --restart"), "{both}");
        assert!(plan(&args(&["--cron", "0 0 3 * * *", "--restart", "web"])).unwrap().restart);
    }
}
