//! `pm run` prints every sidecar's output on its own stdout and stderr, each line prefixed with
//! the instance's name (a stable colour per name on a terminal, none with `NO_COLOR`). Lines go
//! through a bounded queue to one writer task: a slow reader of pm's output slows the sidecars
//! down, as it would if they wrote to it themselves, and no line is dropped.

use pm_protocol::LogStream;
use std::io::IsTerminal;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

/// Lines waiting for the writer.
const QUEUE: usize = 1024;

/// Where the pumps send lines to print.
#[derive(Clone, Debug)]
pub struct Echo {
    lines: mpsc::Sender<(LogStream, String)>,
    colour: bool,
    width: usize,
}

/// Whether output to a terminal (or not) may be coloured: only on a terminal, and never with
/// `NO_COLOR` set to anything (no-color.org).
pub fn colour_on(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

impl Echo {
    /// Starts the writer; names are padded to `width` (the longest expected name, at most 24).
    /// The writer ends once every `Echo` is gone and it has printed what they sent.
    pub fn start(width: usize) -> (Echo, Printed) {
        let (lines, rx) = mpsc::channel(QUEUE);
        let writer = tokio::spawn(write(rx));
        let colour = colour_on(std::io::stdout().is_terminal());
        (Echo { lines, colour, width: width.min(24) }, Printed(writer))
    }

    /// Prints one line of `instance`'s output, waiting while the writer is behind.
    pub async fn line(&self, instance: &str, stream: LogStream, line: &str) {
        let _ = self.lines.send((stream, self.format(instance, line))).await;
    }

    fn format(&self, instance: &str, line: &str) -> String {
        let width = self.width;
        if self.colour {
            format!("\x1b[{}m{instance:<width$} |\x1b[0m {line}\n", colour_of(instance))
        } else {
            format!("{instance:<width$} | {line}\n")
        }
    }
}

/// The writer, to wait for before exiting: the last lines of a stop (`db got TERM`) are still
/// in its queue when the daemon ends.
pub struct Printed(tokio::task::JoinHandle<()>);

impl Printed {
    /// Waits until everything sent is printed, at most `within` (a reader of pm's output that
    /// stopped reading must not hold pm up for ever).
    pub async fn drained(self, within: std::time::Duration) {
        let _ = tokio::time::timeout(within, self.0).await;
    }
}

/// One of six ANSI foreground colours (31–36), the same for a name on every run.
pub fn colour_of(name: &str) -> u8 {
    // FNV-1a: stable across runs and builds, unlike the std hasher.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    31 + (hash % 6) as u8
}

async fn write(mut rx: mpsc::Receiver<(LogStream, String)>) {
    let mut out = BufWriter::new(tokio::io::stdout());
    let mut err = BufWriter::new(tokio::io::stderr());
    while let Some((stream, text)) = rx.recv().await {
        let target: &mut (dyn AsyncWrite + Unpin + Send) = match stream {
            LogStream::Out => &mut out,
            LogStream::Err => &mut err,
        };
        // A closed stdout (`pm run | head`) loses pm's copy only: the files have every line.
        let _ = target.write_all(text.as_bytes()).await;
        if rx.is_empty() {
            let _ = out.flush().await;
            let _ = err.flush().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_pad_and_colour_stably() {
        let (lines, _rx) = mpsc::channel(1);
        let plain = Echo { lines: lines.clone(), colour: false, width: 5 };
        assert_eq!(plain.format("db", "up"), "db    | up\n");
        let coloured = Echo { lines, colour: true, width: 2 };
        let code = colour_of("db");
        assert_eq!(coloured.format("db", "up"), format!("\x1b[{code}mdb |\x1b[0m up\n"));
        assert_eq!(colour_of("db"), code, "the same colour every time");
        assert!((31..=36).contains(&colour_of("api")));
    }
}
