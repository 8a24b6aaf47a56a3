//! Newline-delimited JSON framing for stream transports: one compact JSON value per line, with a
//! bounded line length so a peer cannot make us buffer without limit.

use tokio_util::codec::LinesCodec;

/// Default bound of one frame: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// The codec for one connection, bounded to `max_frame` bytes per line.
pub fn codec(max_frame: usize) -> LinesCodec {
    LinesCodec::new_with_max_length(max_frame)
}
