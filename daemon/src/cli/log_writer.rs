//! The daemon's log writer. tracing-subscriber reports a failed write with `eprintln!`, which
//! panics when stderr itself is what fails (`pm daemon 2>/dev/full`, a full disk under
//! daemon.log): a log line must never cost the daemon. So a line that cannot be written is
//! dropped and counted, and once writing works again one line says how many were lost (on a line
//! of its own, also when the disk cut the last one short).

use super::daemon_log::DaemonLog;
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
    /// The output ends in part of a line (a write failed part-way).
    torn: bool,
    /// The file written, when it rotates (daemon.log).
    rotating: Option<DaemonLog>,
}

impl<M> Lossy<M> {
    pub fn new(make: M) -> Self {
        Lossy { make, lost: Mutex::default() }
    }

    /// Rotates daemon.log as lines are written to it.
    pub fn rotating(self, log: Option<DaemonLog>) -> Self {
        self.lost.lock().unwrap_or_else(PoisonError::into_inner).rotating = log;
        self
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
        let lost = &mut *self.lost.lock().unwrap_or_else(PoisonError::into_inner);
        let said = lost.error.as_ref().map(|error| {
            let fresh_line = if lost.torn { "\n" } else { "" };
            format!("{fresh_line}{} daemon log lines lost: {error}\n", lost.lines)
        });
        let result = match said {
            Some(said) => whole(&mut self.inner, said.as_bytes(), &mut lost.torn).map(|()| {
                lost.lines = 0;
                lost.error = None;
            }),
            None => Ok(()),
        };
        match result.and_then(|()| whole(&mut self.inner, buf, &mut lost.torn)) {
            Ok(()) => {
                if let Some(log) = &mut lost.rotating {
                    log.wrote(buf.len());
                }
            }
            Err(e) => {
                lost.lines += 1;
                lost.error = Some(e);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Nothing to report to: a failed flush is a failed write, counted with the next one.
        let _ = self.inner.flush();
        Ok(())
    }
}

/// `write_all`, noting in `torn` whether what was written ends mid-line.
fn whole(out: &mut impl Write, mut bytes: &[u8], torn: &mut bool) -> io::Result<()> {
    while !bytes.is_empty() {
        match out.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                *torn = bytes[n - 1] != b'\n';
                bytes = &bytes[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// A writer into `out` that fails while `broken` is set, after taking `room` more bytes.
    #[derive(Clone, Default)]
    struct Flaky {
        out: Arc<Mutex<Vec<u8>>>,
        broken: Arc<AtomicBool>,
        room: Arc<AtomicUsize>,
    }

    impl Write for Flaky {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = match self.broken.load(Ordering::SeqCst) {
                true => buf.len().min(self.room.swap(0, Ordering::SeqCst)),
                false => buf.len(),
            };
            if n == 0 {
                return Err(io::Error::from_raw_os_error(28));
            }
            self.out.lock().unwrap().extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A writer that fails when told to, behind a [`Lossy`].
    fn flaky_lossy() -> (Flaky, Lossy<impl Fn() -> Flaky>) {
        let flaky = Flaky::default();
        let writer = flaky.clone();
        (flaky, Lossy::new(move || writer.clone()))
    }

    #[test]
    fn failed_lines_are_dropped_counted_and_said_once_writing_works_again() {
        let (flaky, lossy) = flaky_lossy();
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

    #[test]
    fn a_line_the_failure_cut_short_is_ended_before_the_count() {
        let (flaky, lossy) = flaky_lossy();
        let line = |text: &str| lossy.make_writer().write_all(text.as_bytes()).expect("never fails");
        line("one\n");
        flaky.broken.store(true, Ordering::SeqCst);
        flaky.room.store(2, Ordering::SeqCst);
        line("two\n");
        line("three\n");
        flaky.broken.store(false, Ordering::SeqCst);
        line("four\n");
        let out = String::from_utf8(flaky.out.lock().unwrap().clone()).unwrap();
        let lost = io::Error::from_raw_os_error(28);
        assert_eq!(out, format!("one\ntw\n2 daemon log lines lost: {lost}\nfour\n"));
    }
}
