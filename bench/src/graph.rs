//! The dependency graphs that the start-up measures build: N `sleep 1000` sidecars with
//! `ready = "started"`, in one of three shapes, written as a pm project file for pm and spawned
//! directly by the harness for the floor. Sidecar `i` is named after its shape and `i`
//! (`f0`, `s0`, `d0`, …), and everything it depends on comes before it, level by level.

use crate::pm::{Children, Pm, spawn_sleep, within};
use crate::{fmt_count, progress};
use anyhow::{Context, bail};
use pm_client::{Client, PmApiClient};
use pm_protocol::State;
use std::fmt::Write;
use std::ops::Range;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Independent sidecars.
    Flat,
    /// A binary tree: sidecar i depends on sidecar (i-1)/2.
    Sparse,
    /// Levels of [`Graph::width`], each sidecar depending on all of the level below.
    Dense,
}

impl Shape {
    pub const ALL: [Shape; 3] = [Shape::Flat, Shape::Sparse, Shape::Dense];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Flat => "flat",
            Shape::Sparse => "sparse DAG",
            Shape::Dense => "dense DAG",
        }
    }

    fn prefix(self) -> char {
        match self {
            Shape::Flat => 'f',
            Shape::Sparse => 's',
            Shape::Dense => 'd',
        }
    }
}

/// `n` sidecars of one shape.
#[derive(Clone, Copy)]
pub struct Graph {
    pub shape: Shape,
    pub n: usize,
}

impl Graph {
    /// A dense graph's level width: min(200, max(1, n/5)), so 5 levels up to 1,000 sidecars.
    fn width(self) -> usize {
        (self.n / 5).clamp(1, 200)
    }

    /// The indices sidecar `i` depends on.
    fn deps(self, i: usize) -> Range<usize> {
        match self.shape {
            Shape::Flat => 0..0,
            Shape::Sparse if i == 0 => 0..0,
            Shape::Sparse => (i - 1) / 2..(i - 1) / 2 + 1,
            Shape::Dense => {
                let (w, level) = (self.width(), i / self.width());
                if level == 0 { 0..0 } else { (level - 1) * w..level * w }
            }
        }
    }

    fn name(self, i: usize) -> String {
        format!("{}{i}", self.shape.prefix())
    }

    fn index(self, name: &str) -> Option<usize> {
        name.strip_prefix(self.shape.prefix())?.parse().ok().filter(|&i| i < self.n)
    }

    /// In words: `1,000 in 5 levels of 200, each on all 200 below`.
    pub fn describe(self) -> String {
        let n = fmt_count(self.n);
        match self.shape {
            Shape::Flat => format!("{n} independent"),
            Shape::Sparse => format!("{n} in a binary tree of {} levels", usize::BITS - self.n.leading_zeros()),
            Shape::Dense => {
                let w = self.width();
                format!("{n} in {} levels of {w}, each on all {w} below", self.n.div_ceil(w))
            }
        }
    }

    /// The project file. Dependencies make most of it: 2 million entries for 10,000 dense.
    pub fn project(self) -> String {
        let (mut toml, prefix) = (String::new(), self.shape.prefix());
        for i in 0..self.n {
            let _ = write!(toml, "[sidecars.{prefix}{i}]\ncommand = [\"sleep\", \"1000\"]\nready = \"started\"\n");
            let deps = self.deps(i);
            if !deps.is_empty() {
                toml.push_str("depends_on = [");
                for (k, dep) in deps.enumerate() {
                    let _ = write!(toml, "{}\"{prefix}{dep}\"", if k == 0 { "" } else { ", " });
                }
                toml.push_str("]\n");
            }
            toml.push('\n');
        }
        toml
    }

    /// Writes the project file as `pm.toml` in the project dir; returns its path and size.
    pub fn write(self, pm: &Pm) -> anyhow::Result<(String, u64)> {
        let (file, toml) = (pm.project_dir().join("pm.toml"), self.project());
        std::fs::write(&file, &toml).with_context(|| format!("cannot write {}", file.display()))?;
        Ok((file.to_string_lossy().into_owned(), toml.len() as u64))
    }

    /// The physical floor: the harness spawns the same `n` processes itself, in dependency
    /// order, each spawn complete (exec done, pid known) before the next. They are killed and
    /// reaped before it returns.
    pub fn spawn_floor(self) -> anyhow::Result<Duration> {
        let mut children = Children::default();
        let started = Instant::now();
        for _ in 0..self.n {
            children.push(spawn_sleep()?);
        }
        Ok(started.elapsed())
    }

    /// Checks through `pm.status` that all `n` are ready with a pid (and nothing else is
    /// defined); warns if one started before something it depends on.
    pub async fn check_ready(self, client: &Client) -> anyhow::Result<()> {
        let limit = Duration::from_secs(10) + Duration::from_millis(self.n as u64);
        let statuses = within(limit, "pm.status", client.daemon().status(None)).await??;
        let not_ready: Vec<String> = statuses
            .iter()
            .filter(|s| s.state != State::Ready || s.pid.is_none())
            .map(|s| format!("{} is {}", s.name, s.state))
            .collect();
        if statuses.len() != self.n || !not_ready.is_empty() {
            bail!(
                "{} instances, expected {}; not ready: {} of them, e.g. {}",
                statuses.len(),
                self.n,
                not_ready.len(),
                not_ready.into_iter().take(5).collect::<Vec<_>>().join(", ")
            );
        }
        let mut started = vec![None; self.n];
        for s in &statuses {
            let i =
                self.index(&s.name).with_context(|| format!("an instance {:?} that is not in the graph", s.name))?;
            started[i] = s.started_at_ms;
        }
        let early: Vec<usize> = (0..self.n).filter(|&i| self.deps(i).any(|dep| started[i] < started[dep])).collect();
        if let Some(&first) = early.first() {
            progress(&format!(
                "warning: {} sidecars started before something they depend on, e.g. {} at {:?} ms",
                early.len(),
                self.name(first),
                started[first]
            ));
        }
        Ok(())
    }
}
