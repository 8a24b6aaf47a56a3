//! What `pm monit` shows: the latest statuses in the chosen order, the selected instance (kept
//! by name across refreshes), the log pane and the last message.

use pm_protocol::{InstanceStatus, LogStream};

/// The orders `s` cycles through; all but the name put the largest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Name,
    Cpu,
    Memory,
    Restarts,
}

impl Sort {
    fn next(self) -> Sort {
        match self {
            Sort::Name => Sort::Cpu,
            Sort::Cpu => Sort::Memory,
            Sort::Memory => Sort::Restarts,
            Sort::Restarts => Sort::Name,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Sort::Name => "name",
            Sort::Cpu => "cpu",
            Sort::Memory => "mem",
            Sort::Restarts => "restarts",
        }
    }
}

/// A line under the table: what an action did, or what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Info(String),
    Error(String),
}

/// The log pane: whose lines, and the lines (or why there are none).
#[derive(Debug)]
pub struct LogPane {
    pub instance: Option<String>,
    /// Each line with the stream it came from.
    pub lines: Result<Vec<(LogStream, String)>, String>,
}

pub struct App {
    /// The instances, in `sort` order.
    rows: Vec<InstanceStatus>,
    /// The selected instance's name.
    selected: Option<String>,
    pub sort: Sort,
    /// Shown when open.
    pub logs: Option<LogPane>,
    pub message: Option<Message>,
    /// Why the daemon cannot be reached right now.
    pub daemon_error: Option<String>,
    /// Whether a first status has arrived.
    pub loaded: bool,
}

impl Default for App {
    fn default() -> Self {
        App {
            rows: Vec::new(),
            selected: None,
            sort: Sort::Name,
            logs: None,
            message: None,
            daemon_error: None,
            loaded: false,
        }
    }
}

impl App {
    pub fn rows(&self) -> &[InstanceStatus] {
        &self.rows
    }

    /// The selected row's index; the first row when the selected one is gone.
    pub fn selected_index(&self) -> Option<usize> {
        if self.rows.is_empty() {
            return None;
        }
        let name = self.selected.as_deref();
        Some(self.rows.iter().position(|r| Some(r.name.as_str()) == name).unwrap_or(0))
    }

    pub fn selected(&self) -> Option<&str> {
        self.selected_index().map(|i| self.rows[i].name.as_str())
    }

    pub fn set_statuses(&mut self, rows: Vec<InstanceStatus>) {
        self.rows = rows;
        self.loaded = true;
        self.daemon_error = None;
        self.order();
        self.selected = self.selected().map(str::to_string);
    }

    pub fn daemon_lost(&mut self, why: String) {
        self.rows.clear();
        self.daemon_error = Some(why);
    }

    /// Moves the selection by `delta` rows, stopping at either end.
    pub fn move_selection(&mut self, delta: isize) {
        let Some(at) = self.selected_index() else { return };
        let to = at.saturating_add_signed(delta).min(self.rows.len() - 1);
        self.selected = Some(self.rows[to].name.clone());
    }

    pub fn cycle_sort(&mut self) {
        self.sort = self.sort.next();
        self.order();
    }

    fn order(&mut self) {
        let by_name = |a: &InstanceStatus, b: &InstanceStatus| a.name.cmp(&b.name);
        match self.sort {
            Sort::Name => self.rows.sort_by(by_name),
            Sort::Cpu => self.rows.sort_by(|a, b| {
                let cpu = |s: &InstanceStatus| s.cpu_percent.unwrap_or(-1.0);
                cpu(b).total_cmp(&cpu(a)).then_with(|| by_name(a, b))
            }),
            Sort::Memory => self.rows.sort_by(|a, b| b.memory_bytes.cmp(&a.memory_bytes).then_with(|| by_name(a, b))),
            Sort::Restarts => self.rows.sort_by(|a, b| b.restarts.cmp(&a.restarts).then_with(|| by_name(a, b))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pm_protocol::{RuntimeKind, State};

    fn status(name: &str, cpu: Option<f64>, memory: Option<u64>, restarts: u32) -> InstanceStatus {
        InstanceStatus {
            name: name.into(),
            definition: name.into(),
            runtime: RuntimeKind::Process,
            state: State::Ready,
            pid: Some(1),
            port: None,
            started_at_ms: None,
            uptime_ms: None,
            restarts,
            last_exit: None,
            ready: true,
            reason: None,
            autostart: true,
            containment: None,
            health: None,
            cpu_percent: cpu,
            memory_bytes: memory,
        }
    }

    fn names(app: &App) -> Vec<&str> {
        app.rows().iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn sorts_cycle_and_the_selection_follows_its_instance() {
        let mut app = App::default();
        app.set_statuses(vec![
            status("b", Some(50.0), Some(10), 0),
            status("a", None, None, 3),
            status("c", Some(1.0), Some(99), 1),
        ]);
        assert_eq!(names(&app), ["a", "b", "c"]);
        assert_eq!(app.selected(), Some("a"));
        app.move_selection(1);
        assert_eq!(app.selected(), Some("b"));
        app.cycle_sort();
        assert_eq!((app.sort, names(&app)), (Sort::Cpu, vec!["b", "c", "a"]));
        assert_eq!(app.selected_index(), Some(0), "b is still selected, now first");
        app.cycle_sort();
        assert_eq!(names(&app), ["c", "b", "a"]);
        app.cycle_sort();
        assert_eq!(names(&app), ["a", "c", "b"]);
        app.cycle_sort();
        assert_eq!(app.sort, Sort::Name);
        app.move_selection(10);
        assert_eq!(app.selected(), Some("c"), "stops at the last row");
        app.move_selection(-10);
        assert_eq!(app.selected(), Some("a"), "stops at the first row");
        app.set_statuses(vec![status("b", None, None, 0)]);
        assert_eq!(app.selected(), Some("b"), "a gone: the first row");
        app.daemon_lost("gone".into());
        assert_eq!(app.selected(), None);
        app.move_selection(1);
    }
}
