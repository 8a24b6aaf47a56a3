//! Splitting the engine's output chunks (not aligned to lines) into [`OutputLine`]s.

use crate::{OutputLine, Stream};
use std::time::SystemTime;

/// Longer lines are delivered in pieces of this many bytes, as the process runtime does.
pub(super) const MAX_LINE: usize = 1 << 20;

/// Accumulates the bytes of one stream and yields each complete line.
#[derive(Debug)]
pub(super) struct Splitter {
    stream: Stream,
    buf: Vec<u8>,
}

impl Splitter {
    pub(super) fn new(stream: Stream) -> Self {
        Self { stream, buf: Vec::new() }
    }

    /// Adds `bytes` and returns the lines they complete.
    pub(super) fn push(&mut self, mut bytes: &[u8]) -> Vec<OutputLine> {
        let mut lines = Vec::new();
        while !bytes.is_empty() {
            let room = MAX_LINE - self.buf.len();
            match bytes.iter().take(room).position(|&byte| byte == b'\n') {
                Some(at) => {
                    self.buf.extend_from_slice(&bytes[..at]);
                    bytes = &bytes[at + 1..];
                    if self.buf.last() == Some(&b'\r') {
                        self.buf.pop();
                    }
                    lines.push(self.take());
                }
                None if bytes.len() < room => {
                    self.buf.extend_from_slice(bytes);
                    bytes = &[];
                }
                None => {
                    self.buf.extend_from_slice(&bytes[..room]);
                    bytes = &bytes[room..];
                    lines.push(self.take());
                    // A newline right after the cut ends the piece, not an empty line of its own.
                    if bytes.first() == Some(&b'\n') {
                        bytes = &bytes[1..];
                    }
                }
            }
        }
        lines
    }

    /// The final partial line, if the output did not end with a newline.
    pub(super) fn finish(&mut self) -> Option<OutputLine> {
        (!self.buf.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> OutputLine {
        let line = String::from_utf8_lossy(&self.buf).into_owned();
        self.buf.clear();
        OutputLine { stream: self.stream, line, at: SystemTime::now() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut splitter = Splitter::new(Stream::Stdout);
        let mut lines: Vec<String> = chunks.iter().flat_map(|chunk| splitter.push(chunk)).map(|l| l.line).collect();
        lines.extend(splitter.finish().map(|l| l.line));
        lines
    }

    #[test]
    fn joins_chunks_and_keeps_the_last_partial_line() {
        assert_eq!(split(&[b"a\nb", b"c\r\n\n", b"d"]), ["a", "bc", "", "d"]);
        assert_eq!(split(&[b""]), Vec::<String>::new());
        assert_eq!(split(&[b"x\n"]), ["x"]);
    }

    #[test]
    fn cuts_long_lines_without_adding_empty_ones() {
        let mut input = vec![b'x'; MAX_LINE * 2];
        input.extend_from_slice(b"\nnext\n");
        let (first, second) = input.split_at(MAX_LINE + 7);
        let lengths: Vec<usize> = split(&[first, second]).iter().map(String::len).collect();
        assert_eq!(lengths, [MAX_LINE, MAX_LINE, 4]);
    }

    #[test]
    fn replaces_invalid_utf8() {
        assert_eq!(split(&[b"ok\xff\n"]), ["ok\u{FFFD}"]);
    }
}
