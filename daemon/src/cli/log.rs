//! `pm log NAME [-n N] [-f]`: history from the files, then (with -f) live lines.
//!
//! It speaks NDJSON to the daemon's socket itself rather than through the SDK's client, whose
//! subscriptions are buffered and dropped when they overflow: here a message is read only once
//! the last one is printed, so a slow terminal or pipe slows the daemon down (through the socket)
//! instead of losing lines, and memory stays bounded whatever N is. It asks for `chunks`: many
//! lines per notification.

use crate::home::Home;
use anyhow::{Context, anyhow, bail};
use pm_protocol::status::{LogEvent, LogFilter};
use pm_protocol::{LogRun, LogStream};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::io::{BufRead, BufReader, BufWriter, ErrorKind, IsTerminal, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;

/// Bytes read from the socket, and written to stdout, at a time (at most).
const BUFFER: usize = 256 * 1024;
/// The longest message accepted from the daemon.
const MAX_FRAME: usize = pm_protocol::ndjson::DEFAULT_MAX_FRAME;

#[derive(clap::Args)]
pub struct Args {
    /// Definitions (all their instances), instances or @groups; none: every instance. Several
    /// are merged in time order, each line prefixed with its instance's name.
    names: Vec<String>,
    /// How many past lines to show [default: 20; with --since, every line since then].
    #[arg(short = 'n', long = "lines")]
    lines: Option<usize>,
    /// Only lines from then on: a duration before now (`10m`, `2h`) or a time (`2026-11-25T10:00:00Z`).
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Only lines matching this regular expression (`-n` counts matching lines).
    #[arg(long, value_name = "REGEX", allow_hyphen_values = true)]
    grep: Option<String>,
    /// Keep following new lines until Ctrl-C.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Print each line as JSON.
    #[arg(long)]
    json: bool,
}

/// A message from the daemon: the answer to the subscription, or one of its notifications.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<Failure>,
    #[serde(default)]
    params: Option<Notification>,
}

#[derive(Deserialize)]
struct Failure {
    message: String,
}

#[derive(Deserialize)]
struct Notification {
    result: LogEvent,
}

/// `--json`: one line as `pm.logs` gives it (the fields of `LogLine`).
#[derive(Serialize)]
struct JsonLine<'a> {
    instance: &'a str,
    stream: LogStream,
    at: &'a str,
    line: &'a str,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let socket = Home::from_env().socket();
    // Plain blocking reads and writes, on a thread of its own: the read of the next message
    // waits for the last one to be written out, which is all the pacing there is.
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("pm-log".into())
        .spawn(move || {
            let _ = done.send(show(&socket, &args));
        })
        .context("cannot start a thread")?;
    tokio::select! {
        // Whatever is still being printed goes with the process.
        _ = tokio::signal::ctrl_c() => Ok(ExitCode::SUCCESS),
        result = result => result.unwrap_or_else(|_| Err(anyhow!("pm log stopped unexpectedly"))),
    }
}

/// Subscribes and prints until the stream ends.
fn show(socket: &Path, args: &Args) -> anyhow::Result<ExitCode> {
    let stream = UnixStream::connect(socket).map_err(|_| super::connect::not_running())?;
    let lines = args.lines.unwrap_or(if args.since.is_some() { 0 } else { 20 });
    let request = serde_json::json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "pm.logs",
        "params": {
            "name": "",
            "lines": lines,
            "follow": args.follow,
            "chunks": true,
            "filter": LogFilter { names: Some(args.names.clone()), since: args.since.clone(), grep: args.grep.clone() },
        },
    });
    (&stream).write_all(format!("{request}\n").as_bytes()).map_err(|_| super::connect::not_running())?;
    let mut reader = BufReader::with_capacity(BUFFER, &stream);
    let colour = crate::logs::colour_on(std::io::stdout().is_terminal());
    let mut out = Printer { out: BufWriter::with_capacity(BUFFER, std::io::stdout().lock()), json: args.json, colour };
    let mut frame = Vec::new();
    loop {
        frame.clear();
        (&mut reader).take(MAX_FRAME as u64 + 1).read_until(b'\n', &mut frame).context("the log stream broke")?;
        if frame.last() != Some(&b'\n') {
            out.flush()?;
            match frame.len() {
                0 => bail!("the daemon closed the log stream (see daemon.log in PM_HOME)"),
                n if n > MAX_FRAME => bail!("the daemon sent a message longer than {MAX_FRAME} bytes"),
                _ => bail!("the daemon closed the log stream in the middle of a message"),
            }
        }
        let incoming: Incoming =
            serde_json::from_slice(&frame).context("the daemon sent a message that is not JSON-RPC")?;
        if let Some(failure) = incoming.error {
            // The daemon's message is already the one line a person needs.
            bail!("{}", failure.message);
        }
        let Some(Notification { result: event }) = incoming.params else {
            // The answer to the subscription: its id.
            if incoming.result.is_none() {
                bail!("the daemon answered with neither a result nor an error: {}", String::from_utf8_lossy(&frame));
            }
            continue;
        };
        let printed = match event {
            LogEvent::Lines(runs) => runs.iter().try_for_each(|run| out.run(run)),
            LogEvent::Line(line) => {
                let run = LogRun { instance: line.instance, stream: line.stream, text: String::new() };
                out.line(&run, &line.at, &line.line)
            }
            LogEvent::Skipped(n) => {
                out.flush()?;
                eprintln!("pm: {n} lines skipped while following (they are in the log files)");
                Ok(())
            }
            LogEvent::End(why) => {
                out.flush()?;
                if args.follow {
                    eprintln!("pm: log stream ended: {why}");
                }
                return Ok(ExitCode::SUCCESS);
            }
        };
        // Out as it comes, in large writes: flushed whenever the next message is not here yet.
        let caught_up = !reader.buffer().contains(&b'\n');
        match printed.and_then(|()| if caught_up { out.out.flush() } else { Ok(()) }) {
            Ok(()) => {}
            // The reader went away (`pm log … | head`): nothing more to do.
            Err(e) if e.kind() == ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
            Err(e) => return Err(e).context("cannot write to stdout"),
        }
    }
}

struct Printer {
    out: BufWriter<std::io::StdoutLock<'static>>,
    json: bool,
    /// Names in their colour (a terminal, without NO_COLOR).
    colour: bool,
}

impl Printer {
    fn run(&mut self, run: &LogRun) -> std::io::Result<()> {
        if self.json {
            for (at, line) in run.lines() {
                self.line(run, at, line)?;
            }
            return Ok(());
        }
        // As `run.lines()` would, a little faster: this is most of what `pm log` does.
        let tag: &[u8] = match run.stream {
            LogStream::Out => b"",
            LogStream::Err => b" err",
        };
        let (on, off) = self.colour_of(&run.instance);
        let mut rest = run.text.as_bytes();
        while !rest.is_empty() {
            let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            let raw = &rest[..end];
            let (at, line) = match memchr::memchr(b' ', raw) {
                Some(space) => (&raw[..space], &raw[space + 1..]),
                None => (&b""[..], raw),
            };
            for part in [at, b" ", on.as_bytes(), run.instance.as_bytes(), tag, off.as_bytes(), b" | ", line, b"\n"] {
                self.out.write_all(part)?;
            }
            rest = rest.get(end + 1..).unwrap_or_default();
        }
        Ok(())
    }

    /// One line of `run` (whose text it need not be in).
    fn line(&mut self, run: &LogRun, at: &str, line: &str) -> std::io::Result<()> {
        if self.json {
            let json = JsonLine { instance: &run.instance, stream: run.stream, at, line };
            serde_json::to_writer(&mut self.out, &json)?;
            return self.out.write_all(b"\n");
        }
        let tag = match run.stream {
            LogStream::Out => "",
            LogStream::Err => " err",
        };
        let (on, off) = self.colour_of(&run.instance);
        for part in [at, " ", &on, &run.instance, tag, off, " | ", line, "\n"] {
            self.out.write_all(part.as_bytes())?;
        }
        Ok(())
    }

    /// What goes before and after an instance's name: its stable colour, or nothing.
    fn colour_of(&self, instance: &str) -> (String, &'static str) {
        match self.colour {
            true => (format!("\x1b[{}m", crate::logs::colour_of(instance)), "\x1b[0m"),
            false => (String::new(), ""),
        }
    }

    /// Flushes; a reader that went away is no error.
    fn flush(&mut self) -> anyhow::Result<()> {
        match self.out.flush() {
            Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(e).context("cannot write to stdout"),
            _ => Ok(()),
        }
    }
}
