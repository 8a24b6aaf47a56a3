//! Newline-delimited JSON framing for stream transports: one compact JSON value per line, with a
//! bounded line length so a peer cannot make us buffer without limit.

use bytes::BytesMut;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio_util::codec::{Decoder, Encoder, LinesCodec, LinesCodecError};

/// Default bound of one frame: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// The codec for one connection, bounded to `max_frame` bytes per line.
pub fn codec(max_frame: usize) -> LinesCodec {
    LinesCodec::new_with_max_length(max_frame)
}

/// A lower bound on incoming lines that can be changed while the connection runs: the daemon
/// holds a connection to small frames until it authenticates, then lifts the bound.
#[derive(Debug, Clone)]
pub struct FrameLimit(Arc<AtomicUsize>);

impl FrameLimit {
    pub fn new(max: usize) -> Self {
        FrameLimit(Arc::new(AtomicUsize::new(max)))
    }

    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self, max: usize) {
        self.0.store(max, Ordering::Relaxed);
    }
}

/// [`LinesCodec`] that also obeys a [`FrameLimit`] below its own maximum.
#[derive(Debug)]
pub struct LimitedLines {
    lines: LinesCodec,
    limit: FrameLimit,
}

impl LimitedLines {
    pub fn new(max_frame: usize, limit: FrameLimit) -> Self {
        LimitedLines { lines: codec(max_frame), limit }
    }

    /// Fails once the line being read is longer than the current limit. Only the first
    /// `limit + 1` bytes are scanned, and only while the limit is below the codec's own.
    fn check(&self, buf: &BytesMut) -> Result<(), LinesCodecError> {
        let limit = self.limit.get();
        if limit >= self.lines.max_length() {
            return Ok(());
        }
        let window = &buf[..buf.len().min(limit + 1)];
        match window.contains(&b'\n') {
            false if buf.len() > limit => Err(LinesCodecError::MaxLineLengthExceeded),
            _ => Ok(()),
        }
    }
}

impl Decoder for LimitedLines {
    type Item = String;
    type Error = LinesCodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<String>, LinesCodecError> {
        self.check(buf)?;
        self.lines.decode(buf)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<String>, LinesCodecError> {
        self.check(buf)?;
        self.lines.decode_eof(buf)
    }
}

impl<T: AsRef<str>> Encoder<T> for LimitedLines {
    type Error = LinesCodecError;

    fn encode(&mut self, line: T, buf: &mut BytesMut) -> Result<(), LinesCodecError> {
        self.lines.encode(line, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut LimitedLines, bytes: &[u8]) -> Result<Vec<String>, LinesCodecError> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(line) = codec.decode(&mut buf)? {
            out.push(line);
        }
        Ok(out)
    }

    #[test]
    fn the_limit_holds_until_lifted() {
        let limit = FrameLimit::new(4);
        let mut codec = LimitedLines::new(100, limit.clone());
        assert_eq!(decode_all(&mut codec, b"abcd\nxy\n").unwrap(), ["abcd", "xy"]);
        assert!(matches!(decode_all(&mut codec, b"abcde"), Err(LinesCodecError::MaxLineLengthExceeded)));
        assert!(matches!(decode_all(&mut codec, b"abcde\n"), Err(LinesCodecError::MaxLineLengthExceeded)));
        let mut codec = LimitedLines::new(100, limit.clone());
        limit.set(100);
        assert_eq!(decode_all(&mut codec, b"abcdefgh\n").unwrap(), ["abcdefgh"]);
    }
}
