//! A command the daemon runs on the host for an instance (exec probes, hooks, notifications).
//! It has the instance's environment and working directory and its own process group, which is
//! killed whole when the command ends, times out or is given up, so nothing it started outlives
//! it. It is listed with the reaper, which would otherwise take its exit status.

use futures::StreamExt;
use futures::stream::BoxStream;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use pm_runtimes::{OutputLine, Stream};
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

/// How much of the output is kept, from its end, to say why a command failed.
const TAIL: usize = 512;
/// Longer lines are cut (the rest is dropped), as sidecars' lines are.
const MAX_LINE: usize = 64 * 1024;

/// What to run.
pub struct HostCommand<'a> {
    pub argv: &'a [String],
    pub env: &'a BTreeMap<String, String>,
    pub cwd: Option<&'a Path>,
    pub timeout: Duration,
}

/// How it ended: its exit code (128 + N for signal N) and the end of its output.
pub struct Ended {
    pub code: i64,
    pub tail: String,
}

impl HostCommand<'_> {
    /// Runs it to its end or its timeout; every line of its output also goes to `lines`, when
    /// given, after `[tag] ` (waiting for room there: the timeout bounds that too).
    pub async fn run(&self, lines: Option<(&mpsc::Sender<OutputLine>, &str)>) -> Result<Ended, String> {
        let shown = shell_words::join(self.argv);
        let program = self.argv.first().ok_or("the command is empty")?;
        let mut command = tokio::process::Command::new(program);
        command
            .args(&self.argv[1..])
            .envs(self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(cwd) = self.cwd {
            command.current_dir(cwd);
        }
        let mut child =
            pm_runtimes::process::reaper::spawn(&mut command).map_err(|e| format!("cannot run `{shown}`: {e}"))?;
        let _group = child.id().map(Group);
        let mut output = match (child.stdout.take(), child.stderr.take()) {
            (Some(out), Some(err)) => {
                futures::stream::select(lines_of(out, Stream::Stdout), lines_of(err, Stream::Stderr))
            }
            _ => return Err(format!("cannot read the output of `{shown}`")),
        };
        let ran = tokio::time::timeout(self.timeout, async {
            let mut tail = String::new();
            while let Some((stream, line)) = output.next().await {
                // A line over the limit is dropped by the codec, which then goes on.
                let Ok(line) = line else { continue };
                keep_tail(&mut tail, &line);
                if let Some((lines, tag)) = lines {
                    let line = format!("[{tag}] {line}");
                    let _ = lines.send(OutputLine { stream, line, at: SystemTime::now() }).await;
                }
            }
            (child.wait().await, tail)
        })
        .await;
        match ran {
            Ok((Ok(status), tail)) => {
                let code = status.code().map(i64::from).unwrap_or_else(|| 128 + status.signal().map_or(0, i64::from));
                Ok(Ended { code, tail })
            }
            Ok((Err(e), _)) => Err(format!("cannot wait for `{shown}`: {e}")),
            Err(_) => Err(format!("`{shown}` did not finish within {}", humantime::format_duration(self.timeout))),
        }
    }
}

impl Ended {
    /// `Ok` on exit 0, else why not: the code and the last line it printed.
    pub fn success(self, argv: &[String]) -> Result<(), String> {
        if self.code == 0 {
            return Ok(());
        }
        let last = self.tail.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        let said = if last.is_empty() { String::new() } else { format!(": {last}") };
        Err(format!("`{}` exited with {}{said}", shell_words::join(argv), self.code))
    }
}

/// A pipe's lines, each with the stream it came from.
fn lines_of(
    pipe: impl tokio::io::AsyncRead + Send + 'static,
    stream: Stream,
) -> BoxStream<'static, (Stream, Result<String, LinesCodecError>)> {
    FramedRead::new(pipe, LinesCodec::new_with_max_length(MAX_LINE)).map(move |line| (stream, line)).boxed()
}

fn keep_tail(tail: &mut String, line: &str) {
    tail.push_str(line);
    tail.push('\n');
    if tail.len() > TAIL {
        let mut cut = tail.len() - TAIL;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail.drain(..cut);
    }
}

/// The command's process group: killed whole when the run ends, however it ends.
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        if let Ok(group) = i32::try_from(self.0) {
            let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
        }
        pm_runtimes::process::reaper::forget(self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<String> {
        shell_words::split(line).unwrap()
    }

    async fn run(line: &str, timeout: Duration) -> Result<Ended, String> {
        let (argv, env) = (argv(line), BTreeMap::from([("GREETING".to_string(), "hi".to_string())]));
        HostCommand { argv: &argv, env: &env, cwd: None, timeout }.run(None).await
    }

    #[tokio::test]
    async fn exit_codes_output_and_environment() {
        let ok = run("sh -c 'echo $GREETING'", Duration::from_secs(5)).await.unwrap();
        assert_eq!((ok.code, ok.tail.as_str()), (0, "hi\n"));
        // One stream: the order of lines across stdout and stderr is not kept.
        let failed = run("sh -c 'echo first >&2; echo oops >&2; exit 3'", Duration::from_secs(5)).await.unwrap();
        assert_eq!(failed.success(&argv("x")).unwrap_err(), "`x` exited with 3: oops");
        let err = run("/nonexistent/program", Duration::from_secs(5)).await.err().unwrap();
        assert!(err.starts_with("cannot run `/nonexistent/program`"), "{err}");
    }

    #[tokio::test]
    async fn a_command_past_its_timeout_is_killed_with_what_it_started() {
        let started = std::time::Instant::now();
        let err = run("sh -c 'sleep 30 & sleep 30'", Duration::from_millis(200)).await.err().unwrap();
        assert!(err.ends_with("did not finish within 200ms"), "{err}");
        // The background sleep held the output pipe: not waited for.
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn the_tail_keeps_the_end_on_a_char_boundary() {
        let mut tail = String::new();
        for _ in 0..200 {
            keep_tail(&mut tail, "ééé");
        }
        assert!(tail.len() <= TAIL && tail.ends_with("ééé\n"));
    }
}
