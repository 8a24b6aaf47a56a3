//! An instance's recent past, for `pm info`: its last state changes and its last exits. Kept
//! beside the published snapshot, which every `pm status` row clones, and bounded, so a crash
//! loop costs a fixed amount of memory.

use pm_protocol::ExitInfo;
use pm_protocol::State;
use pm_protocol::status::Event;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// State changes kept per instance: about ten crash-and-restart cycles.
pub const MAX_STATES: usize = 32;
/// Exits kept per instance.
pub const MAX_EXITS: usize = 10;

/// One state change; the instance's name is added back when it is read.
#[derive(Debug, Clone, PartialEq)]
struct Change {
    state: State,
    reason: Option<String>,
    at_ms: u64,
}

#[derive(Debug, Default)]
struct Rings {
    states: VecDeque<Change>,
    exits: VecDeque<ExitInfo>,
}

/// Written by the instance's actor, read by `pm.info`; the lock is held only to push or copy.
#[derive(Debug, Clone, Default)]
pub struct History(Arc<Mutex<Rings>>);

impl History {
    fn lock(&self) -> MutexGuard<'_, Rings> {
        // Each update is one push and at most one pop: sound after a panic elsewhere.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn changed(&self, event: &Event) {
        let change = Change { state: event.state, reason: event.reason.clone(), at_ms: event.at_ms };
        push(&mut self.lock().states, change, MAX_STATES);
    }

    pub fn exited(&self, exit: &ExitInfo) {
        push(&mut self.lock().exits, exit.clone(), MAX_EXITS);
    }

    /// The state changes of `instance`, then its exits, each oldest first.
    pub fn read(&self, instance: &str) -> (Vec<Event>, Vec<ExitInfo>) {
        let rings = self.lock();
        let states = rings
            .states
            .iter()
            .map(|c| Event { instance: instance.to_string(), state: c.state, reason: c.reason.clone(), at_ms: c.at_ms })
            .collect();
        (states, rings.exits.iter().cloned().collect())
    }
}

fn push<T>(ring: &mut VecDeque<T>, item: T, max: usize) {
    if ring.len() == max {
        ring.pop_front();
    }
    ring.push_back(item);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_in_order_and_no_more() {
        let history = History::default();
        for at_ms in 0..(MAX_STATES as u64 + 5) {
            history.changed(&Event { instance: "x".into(), state: State::Starting, reason: None, at_ms });
        }
        for code in 0..(MAX_EXITS as i32 + 3) {
            history.exited(&ExitInfo { code: Some(code), signal: None, at_ms: 0 });
        }
        let (states, exits) = history.read("web");
        assert_eq!(states.len(), MAX_STATES);
        assert_eq!((states[0].at_ms, states[MAX_STATES - 1].at_ms), (5, MAX_STATES as u64 + 4));
        assert!(states.iter().all(|e| e.instance == "web"));
        let codes: Vec<_> = exits.iter().map(|e| e.code.unwrap()).collect();
        assert_eq!(codes, (3..MAX_EXITS as i32 + 3).collect::<Vec<_>>());
    }
}
