//! How `pm monit` looks: a title, the table, the log pane when open, a message line and the
//! keys.

use super::app::{App, Message, Sort};
use super::keys::HELP;
use crate::cli::output::{short_bytes, short_duration};
use pm_protocol::{HealthStatus, InstanceStatus, LogStream, State};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, TableState};
use std::time::Duration;

const COLUMNS: [(&str, Option<Sort>, u16); 8] = [
    ("NAME", Some(Sort::Name), 24),
    ("STATE", None, 10),
    ("PID", None, 8),
    ("CPU%", Some(Sort::Cpu), 7),
    ("MEM", Some(Sort::Memory), 8),
    ("RESTARTS", Some(Sort::Restarts), 9),
    ("UPTIME", None, 8),
    ("HEALTH", None, 14),
];

pub fn draw(frame: &mut Frame, app: &App, interval: Duration) {
    let log_height = if app.logs.is_some() { Constraint::Percentage(40) } else { Constraint::Length(0) };
    let [title, table, logs, message, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        log_height,
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let every = humantime::format_duration(interval);
    let count = app.rows().len();
    let heading = format!("pm monit · {count} instances · every {every} · sorted by {}", app.sort.label());
    frame.render_widget(Line::from(heading).style(Style::new().add_modifier(Modifier::BOLD)), title);
    instances(frame, app, table);
    log_pane(frame, app, logs);
    let (text, style) = match (&app.daemon_error, &app.message) {
        (Some(why), _) => (format!("{why}; trying again every {every}"), Style::new().fg(Color::Red)),
        (None, Some(Message::Error(e))) => (e.clone(), Style::new().fg(Color::Red)),
        (None, Some(Message::Info(i))) => (i.clone(), Style::new().fg(Color::Green)),
        (None, None) => (String::new(), Style::new()),
    };
    frame.render_widget(Line::from(text).style(style), message);
    frame.render_widget(keys(app.sort), footer);
}

fn instances(frame: &mut Frame, app: &App, area: Rect) {
    if app.rows().is_empty() {
        let text = match (&app.daemon_error, app.loaded) {
            (Some(_), _) => "the daemon cannot be reached (see below)",
            (None, true) => "no sidecars (define one with `pm map` or a pm.toml)",
            (None, false) => "asking the daemon…",
        };
        frame.render_widget(Paragraph::new(text), area);
        return;
    }
    let header = COLUMNS.iter().map(|(name, sort, _)| match sort {
        Some(sort) if *sort == app.sort => format!("{name}{}", if *sort == Sort::Name { "▲" } else { "▼" }),
        _ => name.to_string(),
    });
    let header = Row::new(header).style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
    let table = Table::new(app.rows().iter().map(row), COLUMNS.iter().map(|(_, _, width)| Constraint::Length(*width)))
        .header(header)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("› ");
    let mut state = TableState::default().with_selected(app.selected_index());
    frame.render_stateful_widget(table, area, &mut state);
}

fn row(s: &InstanceStatus) -> Row<'static> {
    let dash = || "-".to_string();
    let health = match &s.health {
        None => dash(),
        Some(h) => match h.status {
            HealthStatus::Unknown => "unknown".into(),
            HealthStatus::Healthy => "healthy".into(),
            HealthStatus::Unhealthy => format!("unhealthy ({})", h.failures),
        },
    };
    let state_color = match s.state {
        State::Ready | State::Running | State::Exited => Color::Green,
        State::Failed => Color::Red,
        State::Unhealthy | State::Backoff => Color::Yellow,
        State::Waiting | State::Starting | State::Stopping => Color::Cyan,
        State::Stopped => Color::DarkGray,
    };
    Row::new(vec![
        Span::raw(s.name.clone()),
        Span::styled(s.state.to_string(), Style::new().fg(state_color)),
        Span::raw(s.pid.map_or_else(dash, |p| p.to_string())),
        Span::raw(s.cpu_percent.map_or_else(dash, |p| format!("{p:.1}"))),
        Span::raw(s.memory_bytes.map_or_else(dash, short_bytes)),
        Span::raw(s.restarts.to_string()),
        Span::raw(s.uptime_ms.map_or_else(dash, short_duration)),
        Span::raw(health),
    ])
}

fn log_pane(frame: &mut Frame, app: &App, area: Rect) {
    let Some(pane) = &app.logs else { return };
    let title = match &pane.instance {
        Some(name) => format!(" logs: {name} "),
        None => " logs ".to_string(),
    };
    let block = Block::new().borders(Borders::TOP).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let text: Vec<Line> = match &pane.lines {
        Err(e) => vec![Line::styled(e.clone(), Style::new().fg(Color::Red))],
        Ok(lines) if lines.is_empty() => vec![Line::raw("no lines yet")],
        Ok(lines) => {
            // The last lines that fit; a line longer than the pane is cut, not wrapped.
            let skip = lines.len().saturating_sub(usize::from(inner.height));
            let line = |(stream, text): &(LogStream, String)| match stream {
                LogStream::Out => Line::raw(text.clone()),
                LogStream::Err => Line::styled(text.clone(), Style::new().fg(Color::Red)),
            };
            lines[skip..].iter().map(line).collect()
        }
    };
    frame.render_widget(Paragraph::new(text), inner);
}

fn keys(sort: Sort) -> Line<'static> {
    let mut spans = Vec::new();
    for (key, what) in HELP {
        let what = if *key == "s" { format!("sort ({})", sort.label()) } else { what.to_string() };
        spans.push(Span::styled(format!(" {key} "), Style::new().add_modifier(Modifier::REVERSED)));
        spans.push(Span::raw(format!(" {what}  ")));
    }
    Line::from(spans)
}
