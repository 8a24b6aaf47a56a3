//! The daemon's log writer. tracing-subscriber reports a failed write with `eprintln!`, which
//! panics when stderr itself is what fails (`pm daemon 2>/dev/full`, a full disk under
//! daemon.log): a log line must never cost the daemon. So a line that cannot be written is
//! dropped and counted, and once writing works again one line says how many were lost.

use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};
use tracing_subscriber::fmt::MakeWriter;

/// Makes writers that never fail, over the writers `make` makes.
pub struct Lossy<M> {
    make: M,
    lost: Mutex<Lost>,
}

/// Lines dropped since the last one written, and the last error.
#[derive(Default)]
struct Lost {
    lines: u64,
    error: Option<io::Error>,
}

impl<M> Lossy<M> {
    pub fn new(make: M) -> Self {
        Lossy { make, lost: Mutex::default() }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Lossy<M> {
    type Writer = LossyWriter<'a, M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        LossyWriter { inner: self.make.make_writer(), lost: &self.lost }
    }
}

/// Writes each buffer (one formatted event) whole, or drops and counts it.
pub struct LossyWriter<'a, W> {
    inner: W,
    lost: &'a Mutex<Lost>,
}

impl<W: Write> Write for LossyWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Held while writing, so the count of lost lines comes out before any later line.
        let mut lost = self.lost.lock().unwrap_or_else(PoisonError::into_inner);
        let said = lost.error.as_ref().map(|error| format!("{} daemon log lines lost: {error}\n", lost.lines));
        let result = match said {
            Some(said) => self.inner.write_all(said.as_bytes()).map(|()| *lost = Lost::default()),
            None => Ok(()),
        };
        if let Err(e) = result.and_then(|()| self.inner.write_all(buf)) {
            lost.lines += 1;
            lost.error = Some(e);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Nothing to report to: a failed flush is a failed write, counted with the next one.
        let _ = self.inner.flush();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A writer into `out` that fails while `broken` is set.
    #[derive(Clone, Default)]
    struct Flaky {
        out: Arc<Mutex<Vec<u8>>>,
        broken: Arc<AtomicBool>,
    }

    impl Write for Flaky {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.broken.load(Ordering::SeqCst) {
                return Err(io::Error::from_raw_os_error(28));
            }
            self.out.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn failed_lines_are_dropped_counted_and_said_once_writing_works_again() {
        let flaky = Flaky::default();
        let lossy = Lossy::new({
            let flaky = flaky.clone();
            move || flaky.clone()
        });
        let line = |text: &str| lossy.make_writer().write_all(text.as_bytes()).expect("never fails");
        line("one\n");
        flaky.broken.store(true, Ordering::SeqCst);
        line("two\n");
        line("three\n");
        flaky.broken.store(false, Ordering::SeqCst);
        line("four\n");
        line("five\n");
        let out = String::from_utf8(flaky.out.lock().unwrap().clone()).unwrap();
        let lost = io::Error::from_raw_os_error(28);
        assert_eq!(out, format!("one\n2 daemon log lines lost: {lost}\nfour\nfive\n"));
    }
}
