//! What an install shows while it runs: on a terminal, one line redrawn in place (a spinner,
//! the step, the time it has taken, the package manager's last line); otherwise one plain line
//! per step. Everything the package manager prints goes to the install's log, whose last lines
//! are shown when it fails.

use anyhow::bail;
use futures::StreamExt;
use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::process::Command;
use tokio_util::codec::{FramedRead, LinesCodec};

/// The log's name: PM_HOME/packages/install.log during an install, then in the package's
/// directory.
pub const LOG: &str = "install.log";
/// The longest one step may take (a crate's build is the slow one).
pub(super) const STEP_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The spinner's pace, while a step runs on a terminal.
const TICK: Duration = Duration::from_millis(120);
/// The lines of a failed step shown.
const LAST_LINES: usize = 10;
/// The longest line read from a package manager; the rest of a longer one is dropped.
const MAX_LINE: usize = 16 << 10;
const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// A package manager pm runs, and how to get it when it is missing.
pub struct Tool {
    pub program: &'static str,
    pub hint: &'static str,
    /// What its last line says when it fails and that says nothing of why (npm's pointer to its
    /// own log): such a line is not the one quoted.
    pub epilogue: &'static str,
}

/// The progress of one install (`pm install npm:foo`).
pub struct Progress {
    /// What is being done, e.g. `install npm:foo`.
    label: String,
    tty: bool,
    log: PathBuf,
    state: Mutex<State>,
}

struct State {
    /// What the spinner says of the step: the tool, say.
    step: String,
    /// The running tool's [`Tool::epilogue`].
    epilogue: &'static str,
    started: Instant,
    last: VecDeque<String>,
    frame: usize,
}

impl State {
    /// The step's last line that says something.
    fn last_said(&self) -> &str {
        let says = |l: &&str| !l.is_empty() && (self.epilogue.is_empty() || !l.contains(self.epilogue));
        self.last.iter().rev().map(|l| l.trim()).find(says).unwrap_or_default()
    }
}

impl Progress {
    /// Starts the log at `log` afresh.
    pub fn new(label: impl Into<String>, log: PathBuf) -> anyhow::Result<Progress> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&log, "").map_err(|e| anyhow::anyhow!("cannot write {}: {e}", log.display()))?;
        let state =
            State { step: String::new(), epilogue: "", started: Instant::now(), last: VecDeque::new(), frame: 0 };
        Ok(Progress { label: label.into(), tty: std::io::stderr().is_terminal(), log, state: Mutex::new(state) })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new step, `what` (a command line): in the log, and as a plain line without a terminal;
    /// on one, the spinner says `short`.
    pub fn step(&self, what: &str, short: &str) {
        self.append(&format!("$ {what}\n"));
        let mut state = self.state();
        state.step = short.to_string();
        state.epilogue = "";
        state.started = Instant::now();
        state.last.clear();
        if self.tty {
            self.draw(&mut state);
        } else {
            eprintln!("pm: {}: {what}", self.label);
        }
    }

    /// A line of output of the current step: to the log, and beside the spinner.
    pub fn line(&self, line: &str) {
        self.append(&format!("{line}\n"));
        let mut state = self.state();
        if state.last.len() == LAST_LINES {
            state.last.pop_front();
        }
        state.last.push_back(line.to_string());
        if self.tty {
            self.draw(&mut state);
        }
    }

    /// Clears the spinner's line (before anything else is printed).
    pub fn done(&self) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
    }

    /// Moves the log beside the package it installed.
    pub fn keep_log(&self, to: &Path) {
        let _ = std::fs::rename(&self.log, to);
    }

    /// Says why a step failed: its last lines on stderr, then one error line naming the tool,
    /// what it said last and the log.
    pub fn fail(&self, what: std::fmt::Arguments<'_>) -> anyhow::Error {
        self.done();
        let state = self.state();
        for line in &state.last {
            eprintln!("  | {line}");
        }
        let said = match state.last_said() {
            "" => String::new(),
            last => format!(": {last}"),
        };
        anyhow::anyhow!("{what}{said}; see {}", self.log.display())
    }

    /// Runs one step, `cmd` (whose program is `tool`), to its end, its output to the log.
    pub async fn run(&self, tool: &Tool, mut cmd: Command) -> anyhow::Result<()> {
        let argv = std::iter::once(cmd.as_std().get_program())
            .chain(cmd.as_std().get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>();
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("{} is not on PATH ({})", tool.program, tool.hint)
            }
            Err(e) => bail!("cannot run {}: {e}", tool.program),
        };
        self.step(&shell_words::join(&argv), tool.program);
        self.state().epilogue = tool.epilogue;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            bail!("cannot read the output of {}", tool.program);
        };
        let codec = || LinesCodec::new_with_max_length(MAX_LINE);
        let mut output = futures::stream::select(FramedRead::new(stdout, codec()), FramedRead::new(stderr, codec()));
        let deadline = tokio::time::sleep(STEP_TIMEOUT);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                line = output.next() => match line {
                    Some(Ok(line)) => self.line(&line),
                    // A line over the bound: the codec drops the rest of it and goes on.
                    Some(Err(_)) => continue,
                    None => break,
                },
                _ = tick.tick(), if self.tty => self.draw(&mut self.state()),
                () = &mut deadline => {
                    let _ = child.kill().await;
                    return Err(self.fail(format_args!(
                        "{} did not finish within {}",
                        tool.program,
                        humantime::format_duration(STEP_TIMEOUT)
                    )));
                }
            }
        }
        let status = tokio::select! {
            status = child.wait() => status?,
            () = &mut deadline => {
                let _ = child.kill().await;
                return Err(self.fail(format_args!("{} did not end after closing its output", tool.program)));
            }
        };
        self.done();
        if !status.success() {
            let how = match status.code() {
                Some(code) => format!("exit {code}"),
                None => "killed by a signal".into(),
            };
            return Err(self.fail(format_args!("{} failed ({how})", tool.program)));
        }
        Ok(())
    }

    fn append(&self, text: &str) {
        if let Ok(mut file) = std::fs::OpenOptions::new().append(true).open(&self.log) {
            let _ = file.write_all(text.as_bytes());
        }
    }

    fn draw(&self, state: &mut State) {
        state.frame = (state.frame + 1) % FRAMES.len();
        let last = state.last_said();
        let mut line =
            format!("{} {}: {} ({}s)", FRAMES[state.frame], self.label, state.step, state.started.elapsed().as_secs());
        if !last.is_empty() {
            line.push_str(" | ");
            line.push_str(last);
        }
        // A terminal that does not tell its width (0) gets the usual 80 columns.
        let width = match ratatui::crossterm::terminal::size() {
            Ok((w, _)) if w > 0 => usize::from(w.max(20)),
            _ => 80,
        };
        let line: String = line.chars().take(width - 1).collect();
        eprint!("\r\x1b[2K{line}");
        let _ = std::io::stderr().flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_goes_to_the_log_and_a_failure_names_the_tool_its_last_line_and_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join(LOG);
        let progress = Progress::new("install x", log.clone()).unwrap();
        let tool = Tool { program: "sh", hint: "", epilogue: "see the log" };
        let mut ok = Command::new("sh");
        ok.args(["-c", "echo one; echo two >&2"]);
        progress.run(&tool, ok).await.unwrap();
        let mut bad = Command::new("sh");
        bad.args(["-c", "echo working >&2; echo 'E: no such version' >&2; echo 'E: see the log' >&2; exit 3"]);
        let err = progress.run(&tool, bad).await.unwrap_err().to_string();
        assert_eq!(err, format!("sh failed (exit 3): E: no such version; see {}", log.display()));
        let text = std::fs::read_to_string(&log).unwrap();
        for line in ["$ sh -c 'echo one; echo two >&2'", "one", "two", "working", "E: no such version"] {
            assert!(text.lines().any(|l| l == line), "{line:?} in {text}");
        }
        let missing = Tool { program: "no-such-tool-pm", hint: "install it", epilogue: "" };
        let err = progress.run(&missing, Command::new("no-such-tool-pm")).await.unwrap_err().to_string();
        assert_eq!(err, "no-such-tool-pm is not on PATH (install it)");
    }
}
