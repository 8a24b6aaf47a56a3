//! The keys of `pm monit`, read on a thread of their own (crossterm's reads block).

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tokio::sync::mpsc;

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    Sort,
    Restart,
    Stop,
    Logs,
    Quit,
}

/// The footer: each key and what it does (the sort key shows the current order).
pub const HELP: &[(&str, &str)] =
    &[("↑/↓ j/k", "select"), ("s", "sort"), ("r", "restart"), ("x", "stop"), ("l", "logs"), ("q", "quit")];

pub fn action(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    Some(match key.code {
        KeyCode::Char('c') if ctrl => Action::Quit,
        _ if ctrl => return None,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::Char('s') => Action::Sort,
        KeyCode::Char('r') => Action::Restart,
        KeyCode::Char('x') => Action::Stop,
        KeyCode::Char('l') => Action::Logs,
        KeyCode::Char('q') | KeyCode::Esc => Action::Quit,
        _ => return None,
    })
}

/// Terminal events, until the receiver is gone or the terminal fails (then its error). The
/// thread is not joined: it may be blocked in a read when the program ends.
pub fn read(events: mpsc::UnboundedSender<std::io::Result<Event>>) -> std::io::Result<()> {
    std::thread::Builder::new().name("pm-monit-keys".into()).spawn(move || {
        loop {
            let event = event::read();
            let failed = event.is_err();
            if events.send(event).is_err() || failed {
                return;
            }
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_actions() {
        let key = |code, modifiers| action(KeyEvent::new(code, modifiers));
        assert_eq!(key(KeyCode::Char('c'), KeyModifiers::CONTROL), Some(Action::Quit));
        assert_eq!(key(KeyCode::Char('r'), KeyModifiers::CONTROL), None);
        assert_eq!(key(KeyCode::Char('j'), KeyModifiers::NONE), Some(Action::Down));
        assert_eq!(key(KeyCode::Up, KeyModifiers::NONE), Some(Action::Up));
        assert_eq!(key(KeyCode::Esc, KeyModifiers::NONE), Some(Action::Quit));
        assert_eq!(key(KeyCode::Char('z'), KeyModifiers::NONE), None);
    }
}
