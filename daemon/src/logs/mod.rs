//! Sidecar logs: every output line goes to `logs/<instance>.{out,err}.log` with a timestamp, and to
//! live followers (`pm log -f`). Lines are never dropped on the way to the file: the pump awaits the
//! runtime's channel and the runtime waits when the pump is behind.
//!
//! A line the file system refuses (a full disk) is dropped and counted, never waited on: the pump
//! keeps draining, so the sidecar never blocks on a full pipe, and followers still get every line.
//! The next write (on the next line, never on a timer) tries again; once one works, the file says
//! first `<timestamp> [pm] N lines lost: no space left on device`. The file holds whole lines
//! only: a line the disk cut short is cut back off the file. Files rotate by size ([`Rotation`]).

use crate::home::Home;
use futures::{FutureExt, StreamExt};
use pm_protocol::{LogLine, LogStream};
use pm_runtimes::{Output, Stream};
use regex::Regex;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{broadcast, oneshot};

mod echo;
mod filter;
mod history;
mod rotate;

pub use echo::{Echo, colour_of, colour_on};
pub use filter::Filter;
pub use history::{History, Seen};
pub use rotate::{MAX_KEEP, Rotation, flush};

/// Live lines of every instance, for followers; a follower filters the instances it wants.
#[derive(Clone)]
pub struct LogHub {
    home: Home,
    rotation: Rotation,
    live: broadcast::Sender<Arc<LogLine>>,
    /// Where `pm run` prints every line, too.
    echo: Option<Echo>,
}

/// Fires once when a line matches the readiness pattern.
pub struct ReadyOnLine {
    pub pattern: Regex,
    pub fire: oneshot::Sender<()>,
}

impl LogHub {
    pub fn new(home: Home) -> Self {
        LogHub { home, rotation: Rotation::default(), live: broadcast::channel(4096).0, echo: None }
    }

    /// Rotates the log files by this rule instead of the default one.
    pub fn rotating(mut self, rotation: Rotation) -> Self {
        self.rotation = rotation;
        self
    }

    /// Also prints every line through `echo`, when there is one.
    pub fn echoing(mut self, echo: Option<Echo>) -> Self {
        self.echo = echo;
        self
    }

    pub fn home(&self) -> &Home {
        &self.home
    }

    pub fn follow(&self) -> broadcast::Receiver<Arc<LogLine>> {
        self.live.subscribe()
    }

    /// Writes one run's output to its files until the output closes; writes whenever it has
    /// caught up, so a burst is written in large blocks and a quiet line is on disk at once.
    pub async fn pump(&self, instance: String, mut output: Output, mut ready: Option<ReadyOnLine>) {
        let mut out = LogFile::<std::fs::File>::new(self.home.log_file(&instance, LogStream::Out), self.rotation);
        let mut err = LogFile::<std::fs::File>::new(self.home.log_file(&instance, LogStream::Err), self.rotation);
        let mut next = output.next().await;
        while let Some(line) = next {
            if let Some(r) = ready.take_if(|r| r.pattern.is_match(&line.line)) {
                let _ = r.fire.send(());
            }
            let at = humantime::format_rfc3339_millis(line.at).to_string();
            let (file, stream) = match line.stream {
                Stream::Stdout => (&mut out, LogStream::Out),
                Stream::Stderr => (&mut err, LogStream::Err),
            };
            file.push(&at, &line.line);
            if file.pending.len() >= BLOCK {
                file.write().await;
            }
            if let Some(echo) = &self.echo {
                echo.line(&instance, stream, &line.line).await;
            }
            if self.live.receiver_count() > 0 {
                let _ = self.live.send(Arc::new(LogLine { instance: instance.clone(), stream, at, line: line.line }));
            }
            // The next line if it is there already; else, caught up, write before waiting.
            next = match output.next().now_or_never() {
                Some(line) => line,
                None => {
                    out.write().await;
                    err.write().await;
                    output.next().await
                }
            };
        }
        out.write().await;
        err.write().await;
    }
}

/// Lines are written in blocks of about this size. Small: a pump writes whenever it catches up,
/// and 100 instances x 2 streams of large buffers, freed and re-made on every restart, left the
/// allocator holding tens of MB.
const BLOCK: usize = 16 * 1024;

/// One stream's log file and the lines on their way to it.
struct LogFile<F> {
    path: PathBuf,
    rotation: Rotation,
    /// Whether rotating the file fails (said once in the daemon's log, not per block).
    rotate_failing: bool,
    /// None until it could be opened.
    file: Option<F>,
    /// Whole lines not written yet, how many, and the first one's timestamp.
    pending: Vec<u8>,
    lines: u64,
    first_at: String,
    /// Lines dropped since the last write that worked.
    lost: u64,
    /// Why the last write failed, while writing fails.
    failing: Option<String>,
    /// The file may end in part of a line (a failed write that could not be cut back).
    torn: bool,
}

/// What a log file needs of the file system; the unit tests fake it to make writes fail.
trait Sink: Write + Send + Sized + 'static {
    /// Opens `path` for appending, creating it (mode 0600).
    fn open(path: &Path) -> io::Result<Self>;
    /// The file's length.
    fn size(&self) -> io::Result<u64>;
    /// Cuts the file back to `len` bytes.
    fn cut(&self, len: u64) -> io::Result<()>;
}

impl Sink for std::fs::File {
    fn open(path: &Path) -> io::Result<Self> {
        std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn cut(&self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }
}

impl<F: Sink> LogFile<F> {
    /// Made and held open by the first write: a sidecar that prints nothing costs no file, no
    /// descriptor and no buffer (creating 2,000 files was half the daemon's work in a start of
    /// 1,000 quiet sidecars).
    fn new(path: PathBuf, rotation: Rotation) -> Self {
        LogFile {
            path,
            rotation,
            rotate_failing: false,
            file: None,
            pending: Vec::new(),
            lines: 0,
            first_at: String::new(),
            lost: 0,
            failing: None,
            torn: false,
        }
    }

    /// Queues a line.
    fn push(&mut self, at: &str, line: &str) {
        if self.pending.is_empty() {
            self.first_at.clear();
            self.first_at.push_str(at);
        }
        self.pending.extend_from_slice(at.as_bytes());
        self.pending.push(b' ');
        self.pending.extend_from_slice(line.as_bytes());
        self.pending.push(b'\n');
        self.lines += 1;
    }

    /// Writes the queued lines, after the count of those lost if writing failed before. What
    /// cannot be written is dropped and counted: the next write tries again with what comes next.
    async fn write(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        // On a line of its own, with the timestamp of the line after it, so that history (sorted
        // by time) shows it where the lines went missing.
        let notice = match self.lost {
            0 => String::new(),
            lost => {
                let reason = self.failing.as_deref().unwrap_or("cannot write");
                let fresh_line = if self.torn { "\n" } else { "" };
                format!("{fresh_line}{} [pm] {lost} lines lost: {reason}\n", self.first_at)
            }
        };
        let notice_len = notice.len();
        let (path, file, pending, torn, rotation) =
            (self.path.clone(), self.file.take(), std::mem::take(&mut self.pending), self.torn, self.rotation);
        let job = tokio::task::spawn_blocking(move || {
            let file = match file {
                Some(file) => Ok(file),
                None => F::open(&path),
            };
            match file {
                Ok(mut file) => {
                    let appended = append(&mut file, [notice.as_bytes(), &pending], torn);
                    // Between whole blocks: the next block goes to a fresh file.
                    let rotated = match appended.error.is_none() && file.size().is_ok_and(|size| rotation.due(size)) {
                        true => Some(rotation.rotate(&path)),
                        false => None,
                    };
                    let file = match rotated {
                        Some(Ok(())) => None,
                        _ => Some(file),
                    };
                    (file, pending, appended, rotated.and_then(Result::err))
                }
                Err(e) => (None, pending, Appended { bytes: 0, error: Some(e), torn }, None),
            }
        });
        let (file, mut pending, appended, rotate_error) = match job.await {
            Ok(done) => done,
            Err(e) => (None, Vec::new(), Appended { bytes: 0, error: Some(io::Error::other(e)), torn }, None),
        };
        match rotate_error {
            Some(e) if !self.rotate_failing => {
                tracing::warn!("cannot rotate {}: {e}; it grows until it can", self.path.display());
                self.rotate_failing = true;
            }
            Some(_) => {}
            None => self.rotate_failing = false,
        }
        self.file = file;
        self.torn = appended.torn;
        let lines = std::mem::take(&mut self.lines);
        match appended.error {
            None => {
                if let Some(reason) = self.failing.take() {
                    tracing::info!("{}: writing again ({} lines lost: {reason})", self.path.display(), self.lost);
                }
                self.lost = 0;
            }
            Some(e) => {
                // The notice is in (or there was none): only this block's lines are still missing.
                let written = match appended.bytes.checked_sub(notice_len) {
                    Some(bytes) => {
                        self.lost = 0;
                        newlines(&pending[..bytes.min(pending.len())])
                    }
                    None => 0,
                };
                self.lost += lines - written;
                self.failed(&e);
            }
        }
        pending.clear();
        pending.shrink_to(4 * BLOCK);
        self.pending = pending;
    }

    /// Notes why writing fails; says so in the daemon's log once, not per line.
    fn failed(&mut self, e: &io::Error) {
        if self.failing.is_none() {
            tracing::warn!(
                "cannot write {}: {e}; its lines are dropped and counted until it can be written again",
                self.path.display()
            );
        }
        self.failing = Some(reason(e));
    }
}

/// What [`append`] did: how many bytes of its parts are in the file (whole lines, unless
/// `torn`), and why not all of them.
struct Appended {
    bytes: usize,
    error: Option<io::Error>,
    torn: bool,
}

/// Appends `parts` in order. When a write fails part-way through a line, that part is cut back
/// off the file if the file is still as this left it; otherwise the result says the file is
/// `torn` (it ends mid-line), and `torn` on entry says it already was.
fn append<F: Sink>(file: &mut F, parts: [&[u8]; 2], torn: bool) -> Appended {
    let before = file.size().ok();
    let mut bytes = 0;
    let mut error = None;
    'parts: for part in parts {
        let mut rest = part;
        while !rest.is_empty() {
            match file.write(rest) {
                Ok(0) => {
                    error = Some(io::ErrorKind::WriteZero.into());
                    break 'parts;
                }
                Ok(n) => {
                    bytes += n;
                    rest = &rest[n..];
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e);
                    break 'parts;
                }
            }
        }
    }
    if error.is_none() {
        return Appended { bytes, error, torn: false };
    }
    // The end of the last whole line written.
    let in_first = bytes.min(parts[0].len());
    let end_of_line = |part: &[u8]| part.iter().rposition(|&b| b == b'\n').map(|i| i + 1);
    let whole = end_of_line(&parts[1][..bytes - in_first])
        .map(|end| in_first + end)
        .or_else(|| end_of_line(&parts[0][..in_first]))
        .unwrap_or(0);
    let cut = whole == bytes
        || before
            .is_some_and(|len| file.size().ok() == Some(len + bytes as u64) && file.cut(len + whole as u64).is_ok());
    match cut {
        true => Appended { bytes: whole, error, torn: torn && whole == 0 },
        false => Appended { bytes, error, torn: true },
    }
}

fn newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// An error as the lost-lines notice says it: `no space left on device`, without `(os error 28)`.
fn reason(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match e.raw_os_error() {
        Some(code) => text.strip_suffix(&format!(" (os error {code})")).unwrap_or(&text),
        None => &text,
    };
    let mut chars = text.chars();
    chars.next().map(|first| first.to_lowercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pm_runtimes::OutputLine;
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    use std::time::{Duration, SystemTime};

    #[tokio::test]
    async fn pump_writes_timestamped_lines_and_fires_readiness() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        home.create().unwrap();
        let hub = LogHub::new(home.clone());
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let (fire, fired) = oneshot::channel();
        let ready = ReadyOnLine { pattern: Regex::new("listening on \\d+").unwrap(), fire };
        let pump = tokio::spawn({
            let hub = hub.clone();
            async move { hub.pump("web".into(), pm_runtimes::output_of(rx), Some(ready)).await }
        });
        let lines = [(Stream::Stdout, "booting"), (Stream::Stderr, "warn"), (Stream::Stdout, "listening on 80")];
        for (ms, (stream, line)) in (1_000..).zip(lines) {
            let at = SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
            tx.send(OutputLine { stream, line: line.into(), at }).await.unwrap();
        }
        tokio::time::timeout(Duration::from_secs(5), fired).await.unwrap().unwrap();
        drop(tx);
        tokio::time::timeout(Duration::from_secs(5), pump).await.unwrap().unwrap();
        let out = std::fs::read_to_string(home.log_file("web", LogStream::Out)).unwrap();
        assert_eq!(out, "1970-01-01T00:00:01.000Z booting\n1970-01-01T00:00:01.002Z listening on 80\n");
        let history = hub.history(&["web".into()], 2);
        assert_eq!(history.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(), vec!["warn", "listening on 80"]);
    }

    /// A file on a disk with `room` bytes left, as tmpfs does it: a write takes what fits, then
    /// fails with ENOSPC.
    #[derive(Default)]
    struct Disk {
        data: Vec<u8>,
        room: usize,
        /// Opening fails while set.
        unopenable: bool,
        /// Cutting fails while set (as when another writer appended meanwhile).
        uncuttable: bool,
    }

    /// The disks of the fake files, by path (`Sink::open` has only the path).
    static DISKS: LazyLock<Mutex<HashMap<PathBuf, Arc<Mutex<Disk>>>>> = LazyLock::new(Mutex::default);

    struct Fake(Arc<Mutex<Disk>>);

    impl Fake {
        fn disk(path: &Path) -> Arc<Mutex<Disk>> {
            DISKS.lock().unwrap().entry(path.to_path_buf()).or_default().clone()
        }
    }

    impl Write for Fake {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut disk = self.0.lock().unwrap();
            let n = buf.len().min(disk.room);
            if n == 0 {
                return Err(io::Error::from_raw_os_error(28));
            }
            disk.room -= n;
            disk.data.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink for Fake {
        fn open(path: &Path) -> io::Result<Self> {
            let disk = Fake::disk(path);
            if disk.lock().unwrap().unopenable {
                return Err(io::Error::from_raw_os_error(28));
            }
            Ok(Fake(disk))
        }

        fn size(&self) -> io::Result<u64> {
            Ok(self.0.lock().unwrap().data.len() as u64)
        }

        fn cut(&self, len: u64) -> io::Result<()> {
            let mut disk = self.0.lock().unwrap();
            if disk.uncuttable {
                return Err(io::Error::from_raw_os_error(1));
            }
            let freed = disk.data.len() - len as usize;
            disk.room += freed;
            disk.data.truncate(len as usize);
            Ok(())
        }
    }

    /// A fake log file at a path of its own, with `room` bytes left.
    fn fake(name: &str, room: usize) -> (PathBuf, Arc<Mutex<Disk>>) {
        let path = PathBuf::from(format!("/fake/{name}"));
        let disk = Fake::disk(&path);
        disk.lock().unwrap().room = room;
        (path, disk)
    }

    fn text(disk: &Mutex<Disk>) -> String {
        String::from_utf8(disk.lock().unwrap().data.clone()).unwrap()
    }

    const AT: &str = "1970-01-01T00:00:01.000Z";

    /// Writes `line N` for each N, one write per line (a pump that keeps catching up).
    async fn lines(log: &mut LogFile<Fake>, numbers: std::ops::RangeInclusive<u32>) {
        for n in numbers {
            log.push(AT, &format!("line {n}"));
            log.write().await;
        }
    }

    #[tokio::test]
    async fn a_full_disk_drops_and_counts_lines_then_says_how_many_before_the_next() {
        // Room for two lines and a half: the third is cut short by the disk, then cut back.
        let line = format!("{AT} line 1\n").len();
        let (path, disk) = fake("full", 2 * line + line / 2);
        let mut log = LogFile::<Fake>::new(path, Rotation::default());
        lines(&mut log, 1..=5).await;
        assert_eq!(text(&disk), format!("{AT} line 1\n{AT} line 2\n"), "whole lines only");
        assert_eq!((log.lost, log.failing.as_deref()), (3, Some("no space left on device")));
        // Still full: each new line tries once, and fails.
        lines(&mut log, 6..=7).await;
        assert_eq!(log.lost, 5);
        disk.lock().unwrap().room = usize::MAX / 2;
        let at = "1970-01-01T00:00:09.000Z";
        log.push(at, "line 8");
        log.push(at, "line 9");
        log.write().await;
        let expected = format!(
            "{AT} line 1\n{AT} line 2\n{at} [pm] 5 lines lost: no space left on device\n{at} line 8\n{at} line 9\n"
        );
        assert_eq!(text(&disk), expected);
        assert_eq!((log.lost, log.failing.as_deref(), log.torn), (0, None, false));
        lines(&mut log, 10..=10).await;
        assert!(text(&disk).ends_with(&format!("{at} line 9\n{AT} line 10\n")), "the notice is said once");
    }

    #[tokio::test]
    async fn a_notice_cut_short_is_said_again_with_the_lines_lost_meanwhile() {
        let (path, disk) = fake("notice", 0);
        let mut log = LogFile::<Fake>::new(path, Rotation::default());
        lines(&mut log, 1..=3).await;
        assert_eq!(log.lost, 3);
        // Room for part of the notice only: it is cut back, and line 4 is lost too.
        disk.lock().unwrap().room = 20;
        lines(&mut log, 4..=4).await;
        assert_eq!((text(&disk).as_str(), log.lost), ("", 4));
        disk.lock().unwrap().room = usize::MAX / 2;
        lines(&mut log, 5..=5).await;
        assert_eq!(text(&disk), format!("{AT} [pm] 4 lines lost: no space left on device\n{AT} line 5\n"));
    }

    #[tokio::test]
    async fn a_line_that_cannot_be_cut_back_is_ended_before_the_notice() {
        let line = format!("{AT} line 1\n").len();
        let (path, disk) = fake("torn", line + 5);
        disk.lock().unwrap().uncuttable = true;
        let mut log = LogFile::<Fake>::new(path, Rotation::default());
        lines(&mut log, 1..=3).await;
        assert!(log.torn);
        disk.lock().unwrap().room = usize::MAX / 2;
        lines(&mut log, 4..=4).await;
        let torn = &format!("{AT} line 2\n")[..5];
        let expected = format!("{AT} line 1\n{torn}\n{AT} [pm] 2 lines lost: no space left on device\n{AT} line 4\n");
        assert_eq!(text(&disk), expected, "line 2 was cut short, so it counts as lost");
        assert!(!log.torn);
    }

    #[tokio::test]
    async fn a_file_that_cannot_be_opened_is_opened_on_a_later_line() {
        let (path, disk) = fake("unopenable", usize::MAX / 2);
        disk.lock().unwrap().unopenable = true;
        let mut log = LogFile::<Fake>::new(path, Rotation::default());
        assert!(log.file.is_none());
        lines(&mut log, 1..=2).await;
        disk.lock().unwrap().unopenable = false;
        lines(&mut log, 3..=3).await;
        assert_eq!(text(&disk), format!("{AT} [pm] 2 lines lost: no space left on device\n{AT} line 3\n"));
    }

    #[test]
    fn reasons_read_as_the_os_says_them_without_the_code() {
        assert_eq!(reason(&io::Error::from_raw_os_error(28)), "no space left on device");
        assert_eq!(reason(&io::Error::other("Odd")), "odd");
    }
}
