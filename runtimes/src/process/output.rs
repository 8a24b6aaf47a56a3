//! Reading a child's stdout or stderr into [`OutputLine`]s.

use crate::{OutputLine, Stream};
use std::time::SystemTime;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::sync::mpsc;

/// Longer lines are delivered in pieces of this many bytes, so one runaway line cannot exhaust
/// memory. A cut may fall inside a multi-byte character, which then reads as replacement characters.
const MAX_LINE: usize = 1 << 20;

/// Reads of 8 KiB spare a chatty child a syscall per line, while 100 sidecars restarting do not
/// churn megabytes of buffers through the allocator.
const READ_BUFFER: usize = 8 * 1024;

/// Sends every line of `pipe` to `tx` until end of file. Sends wait while the channel is full, so a
/// slow consumer slows the child down instead of losing lines.
pub(super) async fn pump(pipe: impl AsyncRead + Unpin, stream: Stream, tx: mpsc::Sender<OutputLine>) {
    let mut reader = BufReader::with_capacity(READ_BUFFER, pipe);
    let mut buf = Vec::new();
    // The previous piece was cut at MAX_LINE: a newline right after it ends that line; it is not
    // an empty line of its own.
    let mut cut = false;
    loop {
        buf.clear();
        let read = (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut buf).await;
        match read {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(?stream, %error, "cannot read child output");
                break;
            }
        }
        // With the receiver gone, keep draining: closing the pipe would kill the child with SIGPIPE.
        if tx.is_closed() {
            continue;
        }
        let at = SystemTime::now();
        let (line, complete) = match buf.strip_suffix(b"\n") {
            Some(line) => (line.strip_suffix(b"\r").unwrap_or(line), true),
            None => (buf.as_slice(), false),
        };
        let after_cut = std::mem::replace(&mut cut, !complete);
        if after_cut && complete && line.is_empty() {
            continue;
        }
        let line = OutputLine { stream, line: String::from_utf8_lossy(line).into_owned(), at };
        let _ = tx.send(line).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn lines_of(input: &[u8]) -> Vec<String> {
        let (tx, mut rx) = mpsc::channel(16);
        let input = input.to_vec();
        let pump = tokio::spawn(async move { pump(input.as_slice(), Stream::Stdout, tx).await });
        let collect = async {
            let mut lines = Vec::new();
            while let Some(line) = rx.recv().await {
                lines.push(line.line);
            }
            pump.await.unwrap();
            lines
        };
        tokio::time::timeout(Duration::from_secs(10), collect).await.expect("pump hung")
    }

    #[tokio::test]
    async fn splits_on_newlines_and_keeps_the_last_partial_line() {
        assert_eq!(lines_of(b"a\nb\r\n\nc").await, ["a", "b", "", "c"]);
        assert_eq!(lines_of(b"").await, Vec::<String>::new());
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
