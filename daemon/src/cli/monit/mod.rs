//! `pm monit [--interval 1s]`: a live table of the instances, refreshed from `pm.status` every
//! interval, sortable, with keys to restart or stop the selected instance and to show its last
//! log lines. It never starts the daemon, and one that goes away is shown, not fatal.
//!
//! The terminal is restored on every way out: a key, SIGTERM/SIGINT/SIGHUP, an error, a panic.

mod app;
mod draw;
mod feed;
mod keys;

use super::connect;
use crate::home::Home;
use anyhow::{Context, bail};
use app::{App, LogPane, Message};
use feed::{Act, Update};
use keys::Action;
use ratatui::crossterm::event::Event;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// The bounds of `--interval`: faster would only load the daemon, slower is not live.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

#[derive(clap::Args)]
pub struct Args {
    /// How often the table is refreshed, from 100ms to 1h.
    #[arg(long, default_value = "1s", value_parser = interval)]
    interval: Duration,
}

fn interval(text: &str) -> Result<Duration, String> {
    let d = pm_protocol::duration::parse(text)?;
    if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&d) {
        return Err(format!("{} is out of range: from 100ms to 1h", humantime::format_duration(d)));
    }
    Ok(d)
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!("pm monit needs a terminal; use pm status --json");
    }
    let home = Home::from_env();
    let (client, info) = connect::running(&home).await?;
    super::output::notice(&info);
    let mut signals = Signals::new()?;
    let mut terminal = Screen::enter()?;
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    keys::read(events_tx).context("cannot read the keyboard")?;
    let mut feed = feed::start(home, client, args.interval);
    let mut app = App::default();
    loop {
        terminal.0.draw(|frame| draw::draw(frame, &app, args.interval)).context("cannot draw")?;
        tokio::select! {
            update = feed.updates.recv() => match update {
                Some(update) => apply(&mut app, update),
                None => bail!("pm monit's connection to the daemon ended"),
            },
            event = events.recv() => {
                let event = event.context("the keyboard reader ended")?.context("cannot read the terminal")?;
                let Event::Key(key) = event else { continue };
                match keys::action(key) {
                    Some(Action::Quit) => return Ok(ExitCode::SUCCESS),
                    Some(action) => act(&mut app, &feed, action),
                    None => {}
                }
            }
            _ = signals.next() => return Ok(ExitCode::SUCCESS),
        }
        follow_selection(&mut app, &feed);
    }
}

fn apply(app: &mut App, update: Update) {
    match update {
        Update::Statuses(rows) => app.set_statuses(rows),
        Update::Lost(why) => app.daemon_lost(why),
        Update::Done(message) => app.message = Some(message),
        Update::Logs { instance, lines } => {
            // Lines read for an instance that is no longer selected are not shown.
            let selected = app.selected() == Some(instance.as_str());
            if let Some(pane) = app.logs.as_mut().filter(|_| selected) {
                *pane = LogPane { instance: Some(instance), lines };
            }
        }
    }
}

fn act(app: &mut App, feed: &feed::Handle, action: Action) {
    let selected = app.selected().map(str::to_string);
    match action {
        Action::Up => app.move_selection(-1),
        Action::Down => app.move_selection(1),
        Action::Sort => app.cycle_sort(),
        Action::Logs => {
            app.logs = match app.logs {
                Some(_) => None,
                None => Some(LogPane { instance: None, lines: Ok(Vec::new()) }),
            };
        }
        Action::Restart | Action::Stop => {
            let Some(name) = selected else { return };
            app.message = Some(Message::Info(match action {
                Action::Restart => format!("restarting {name}…"),
                _ => format!("stopping {name}…"),
            }));
            feed.act(if action == Action::Restart { Act::Restart(name) } else { Act::Stop(name) });
        }
        Action::Quit => {}
    }
}

/// The log pane shows the selected instance, whether a key or a refresh moved the selection.
fn follow_selection(app: &mut App, feed: &feed::Handle) {
    let now = app.selected().map(str::to_string);
    if let Some(pane) = app.logs.as_mut()
        && pane.instance != now
    {
        *pane = LogPane { instance: now.clone(), lines: Ok(Vec::new()) };
    }
    feed.logs_of(app.logs.as_ref().and(now));
}

/// The terminal in raw mode on the alternate screen, restored when dropped (ratatui's panic hook
/// restores it on a panic too).
struct Screen(ratatui::DefaultTerminal);

impl Screen {
    fn enter() -> anyhow::Result<Screen> {
        match ratatui::try_init() {
            Ok(terminal) => Ok(Screen(terminal)),
            Err(e) => {
                ratatui::restore();
                Err(e).context("cannot set up the terminal")
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// The signals that end `pm monit` cleanly: in raw mode Ctrl-C is a key, but `kill` and a closed
/// terminal still send these.
struct Signals([tokio::signal::unix::Signal; 3]);

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        let on = |kind| signal(kind).context("cannot handle signals");
        Ok(Signals([on(SignalKind::terminate())?, on(SignalKind::interrupt())?, on(SignalKind::hangup())?]))
    }

    async fn next(&mut self) {
        let [term, int, hup] = &mut self.0;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => {}
        }
    }
}
