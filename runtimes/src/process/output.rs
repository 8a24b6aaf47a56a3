//! Reading a child's stdout or stderr into [`OutputLine`]s.
//!
//! A quiet pipe costs no buffer: the reader waits for readiness, then reads into a stack buffer
//! that lives only until the lines are cut out of it. Only a line still unfinished at the end of
//! a read is kept on the heap. (A `BufReader` per pipe held 8 KiB for every sidecar, printing or
//! not: 16 MB for 1,000 silent sidecars.)

use crate::{OutputLine, Stream};
use futures::SinkExt;
use futures::channel::mpsc;
use std::io::ErrorKind;
use std::time::SystemTime;
use tokio::net::unix::pipe;

/// Longer lines are delivered in pieces of this many bytes, so one runaway line cannot exhaust
/// memory. A cut may fall inside a multi-byte character, which then reads as replacement characters.
const MAX_LINE: usize = 1 << 20;

/// One read takes up to this much: a chatty child is read in few syscalls.
const READ_BUFFER: usize = 8 * 1024;

/// One of a run's output pipes, and the line it is in the middle of.
pub(super) struct Pipe {
    pipe: pipe::Receiver,
    stream: Stream,
    lines: Lines,
    open: bool,
}

impl Pipe {
    pub(super) fn new(pipe: pipe::Receiver, stream: Stream) -> Pipe {
        Pipe { pipe, stream, lines: Lines::default(), open: true }
    }

    /// Reads what is there into `out`'s lines; at end of file or on an error, the last line too,
    /// and the pipe is closed.
    fn read(&mut self, out: &mut Vec<String>) {
        // In a block with no await: the buffer is not kept in the task between reads.
        let read = {
            let mut chunk = [0u8; READ_BUFFER];
            self.pipe.try_read(&mut chunk).map(|n| self.lines.feed(&chunk[..n], out))
        };
        match read {
            Ok(true) => return,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => return,
            // End of file.
            Ok(false) => {}
            Err(error) => tracing::warn!(stream = ?self.stream, %error, "cannot read child output"),
        }
        self.lines.finish(out);
        self.open = false;
    }
}

/// Sends every line of a run's stdout and stderr to `tx` until both end: one task per run, not
/// one per pipe. Sends wait while the channel is full, so a slow consumer slows the child down
/// instead of losing lines.
pub(super) async fn pump(mut out: Pipe, mut err: Pipe, mut tx: mpsc::Sender<OutputLine>) {
    let mut lines = Vec::new();
    while out.open || err.open {
        let (ready, pipe) = tokio::select! {
            ready = out.pipe.readable(), if out.open => (ready, &mut out),
            ready = err.pipe.readable(), if err.open => (ready, &mut err),
        };
        if let Err(error) = ready {
            tracing::warn!(stream = ?pipe.stream, %error, "cannot wait for child output");
            pipe.open = false;
            continue;
        }
        pipe.read(&mut lines);
        let stream = pipe.stream;
        send(&mut tx, stream, &mut lines).await;
    }
}

async fn send(tx: &mut mpsc::Sender<OutputLine>, stream: Stream, lines: &mut Vec<String>) {
    // With the receiver gone, keep draining: closing the pipe would kill the child with SIGPIPE.
    if tx.is_closed() {
        lines.clear();
        return;
    }
    let at = SystemTime::now();
    for line in lines.drain(..) {
        let _ = tx.send(OutputLine { stream, line, at }).await;
    }
}

/// Cuts a byte stream into lines: `\n` or `\r\n` ends one; a line reaching [`MAX_LINE`] bytes is
/// delivered in pieces.
#[derive(Default)]
struct Lines {
    /// The unfinished line.
    partial: Vec<u8>,
    /// The last piece delivered was cut at [`MAX_LINE`]: a newline right after it ends that line;
    /// it is not an empty line of its own.
    cut: bool,
}

impl Lines {
    /// Adds what was read (empty at end of file: then false) and appends the lines it completes.
    fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<String>) -> bool {
        if bytes.is_empty() {
            return false;
        }
        while !bytes.is_empty() {
            let room = MAX_LINE - self.partial.len();
            let window = &bytes[..bytes.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    let (line, rest) = (&window[..end], &bytes[end + 1..]);
                    if self.partial.is_empty() {
                        self.deliver(line, true, out);
                    } else {
                        self.partial.extend_from_slice(line);
                        let whole = std::mem::take(&mut self.partial);
                        self.deliver(&whole, true, out);
                    }
                    bytes = rest;
                }
                None => {
                    self.partial.extend_from_slice(window);
                    bytes = &bytes[window.len()..];
                    if self.partial.len() == MAX_LINE {
                        let piece = std::mem::take(&mut self.partial);
                        self.deliver(&piece, false, out);
                    }
                }
            }
        }
        true
    }

    /// At end of file: the last line, even without its newline.
    fn finish(&mut self, out: &mut Vec<String>) {
        if !self.partial.is_empty() {
            let last = std::mem::take(&mut self.partial);
            self.deliver(&last, false, out);
        }
    }

    fn deliver(&mut self, line: &[u8], complete: bool, out: &mut Vec<String>) {
        let after_cut = std::mem::replace(&mut self.cut, !complete);
        let line = match line.strip_suffix(b"\r") {
            Some(line) if complete => line,
            _ => line,
        };
        if !(after_cut && complete && line.is_empty()) {
            out.push(String::from_utf8_lossy(line).into_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    /// The lines `pump` sends for `input`, written in one go into a real pipe.
    async fn lines_of(input: &[u8]) -> Vec<String> {
        let (mut writer, reader) = pipe::pipe().unwrap();
        // stderr: a pipe that ends at once.
        let (_, quiet) = pipe::pipe().unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let pump = tokio::spawn(pump(Pipe::new(reader, Stream::Stdout), Pipe::new(quiet, Stream::Stderr), tx));
        let input = input.to_vec();
        let write = tokio::spawn(async move { writer.write_all(&input).await.unwrap() });
        let collect = async {
            let mut lines = Vec::new();
            while let Some(line) = rx.next().await {
                lines.push(line.line);
            }
            pump.await.unwrap();
            write.await.unwrap();
            lines
        };
        tokio::time::timeout(Duration::from_secs(10), collect).await.expect("pump hung")
    }

    /// The lines of `input` fed in pieces of `size` bytes.
    fn split_in_pieces(input: &[u8], size: usize) -> Vec<String> {
        let (mut lines, mut out) = (Lines::default(), Vec::new());
        for piece in input.chunks(size) {
            lines.feed(piece, &mut out);
        }
        lines.finish(&mut out);
        out
    }

    #[tokio::test]
    async fn splits_on_newlines_and_keeps_the_last_partial_line() {
        assert_eq!(lines_of(b"a\nb\r\n\nc").await, ["a", "b", "", "c"]);
        assert_eq!(lines_of(b"").await, Vec::<String>::new());
    }

    #[test]
    fn lines_split_across_reads_come_out_whole() {
        let input = b"first line\r\nsecond\n\nthird without end";
        for size in 1..input.len() {
            assert_eq!(split_in_pieces(input, size), ["first line", "second", "", "third without end"], "{size}");
        }
    }

    #[tokio::test]
    async fn cuts_long_lines_without_adding_empty_ones() {
        let mut input = vec![b'x'; MAX_LINE * 2];
        input.extend_from_slice(b"\nnext\n");
        let lines = lines_of(&input).await;
        let lengths: Vec<usize> = lines.iter().map(String::len).collect();
        assert_eq!(lengths, [MAX_LINE, MAX_LINE, 4]);
    }

    #[tokio::test]
    async fn replaces_invalid_utf8() {
        assert_eq!(lines_of(b"ok\xff\n").await, ["ok\u{FFFD}"]);
    }
}
