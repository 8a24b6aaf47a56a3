//! `pm log -n`: the last lines of instances' files, both streams merged in time order.
//!
//! Two passes, both blocking file I/O for `spawn_blocking`, both linear in what is returned and
//! bounded in memory whatever N is:
//! - backward ([`LogHub::open_history`]): each file is read from its end, a block at a time, and
//!   the files are merged newest first until N lines are counted. This pass only learns where
//!   each file's share of the history starts;
//! - forward ([`History::read_batch`]): those ranges are read again (from the page cache) in
//!   blocks, merged oldest first, and handed out a bounded batch at a time, as notifications
//!   ready to send. The caller asks for the next batch once the last one is on its way, so the
//!   history goes at the reader's pace.
//!
//! Lines are merged by their timestamps (fixed-width RFC 3339, so text order is time order);
//! equal timestamps keep the order of the instances given, `out` before `err`, and each file's
//! own order.

use super::rotate::{MAX_KEEP, rotated};
use super::{Filter, LogHub};
use pm_protocol::status::LogEvent;
use pm_protocol::{LogLine, LogRun, LogStream};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;

/// Bytes read from a file at a time.
const BLOCK: usize = 64 * 1024;
/// Text of one `lines` notification, about (a single longer line makes a longer one).
const CHUNK: usize = 64 * 1024;
/// Lines of the last millisecond of a file kept to tell its history from its live lines.
const SEAM: usize = 1024;

/// One file of the history.
struct Source {
    instance: String,
    stream: LogStream,
    file: File,
    /// Its length when the history was opened: lines written later are live ones.
    end: u64,
}

/// The history of some instances, read forward a batch at a time ([`History::read_batch`]).
pub struct History {
    sources: Vec<Source>,
    /// Which lines are wanted (all, mostly).
    filter: Arc<Filter>,
    readers: Vec<Forward>,
    /// The readers that have a next line, oldest first.
    heads: BinaryHeap<Reverse<Key>>,
    seen: Seen,
}

impl LogHub {
    /// Finds the last `n` lines of the instances' logs (the backward pass; blocking). With
    /// `follow`, also notes the end of each file, to tell history from live lines ([`Seen`]).
    pub fn open_history(&self, instances: &[String], n: usize, follow: bool, filter: Arc<Filter>) -> History {
        // Each stream's files, the current one first: older (rotated) ones are opened only while
        // the newer ones hold fewer than `n` lines.
        let mut streams: Vec<Vec<Source>> = Vec::new();
        for instance in instances {
            for stream in [LogStream::Out, LogStream::Err] {
                streams.push(self.older(instance, stream, &[]).into_iter().collect());
            }
        }
        let mut seen = Seen::default();
        if follow {
            // Live lines can only follow the current files.
            for source in streams.iter().filter_map(|files| files.first()) {
                if let Some(seam) = seam(source) {
                    let pair = seen.files.entry(source.instance.clone()).or_default();
                    pair[source.stream as usize] = Some(seam);
                }
            }
        }
        let (sources, starts) = loop {
            let counts: Vec<usize> = streams.iter().map(Vec::len).collect();
            // Oldest first within a stream, so that equal timestamps keep the files' order.
            let flat: Vec<Source> = streams.iter_mut().flat_map(|files| files.drain(..).rev()).collect();
            let starts = starts(&flat, n, &filter);
            let mut flat = flat.into_iter();
            let (mut offset, mut more) = (0, false);
            for (files, &count) in streams.iter_mut().zip(&counts) {
                // A stream whose oldest open file is wholly in the history may have more in the
                // files rotated before it: all of them are opened, so that a second pass is the
                // last (one pass per file would read the newer ones again each time).
                let whole = count > 0 && starts[offset] == 0;
                offset += count;
                files.extend(flat.by_ref().take(count));
                files.reverse();
                while whole && let Some(source) = files.last().and_then(|f| self.older(&f.instance, f.stream, files)) {
                    files.push(source);
                    more = true;
                }
            }
            if !more {
                break (streams.into_iter().flat_map(|files| files.into_iter().rev()).collect::<Vec<_>>(), starts);
            }
        };
        // Only the files with lines in the history stay open.
        let (sources, readers): (Vec<Source>, Vec<Forward>) = sources
            .into_iter()
            .zip(starts)
            .filter(|(source, start)| *start < source.end)
            .map(|(source, start)| {
                let reader = Forward::new(&source, start);
                (source, reader)
            })
            .unzip();
        let heads = readers.iter().enumerate().filter_map(|(i, r)| Some(Reverse(key(r.ts()?, i)))).collect();
        History { sources, readers, heads, seen, filter }
    }

    /// The file rotated before the oldest of `files` (one stream's, newest first; none: the
    /// current file, or the one just rotated if there is no current file yet). A file renamed
    /// while the history opens (a rotation) is not taken twice.
    fn older(&self, instance: &str, stream: LogStream, files: &[Source]) -> Option<Source> {
        let current = self.home.log_file(instance, stream);
        let id = |s: &Source| s.file.metadata().ok().map(|m| (m.dev(), m.ino()));
        for k in files.len() as u32..=MAX_KEEP {
            match open_source(instance, stream, &rotated(&current, k)) {
                Some(source) if !files.iter().any(|open| id(open) == id(&source)) => return Some(source),
                // Already open, under its name before the rotation.
                Some(_) => {}
                // No current file: it is made by the first line after a rotation.
                None if k == 0 => {}
                None => return None,
            }
        }
        None
    }

    /// The last `n` lines, all at once (for tests: the daemon streams them).
    #[cfg(test)]
    pub fn history(&self, instances: &[String], n: usize) -> Vec<LogLine> {
        let mut history = self.open_history(instances, n, false, Default::default());
        let mut lines = Vec::new();
        while let Some(runs) = history.next_chunk() {
            for run in runs {
                lines.extend(run.lines().map(|(at, line)| LogLine {
                    instance: run.instance.clone(),
                    stream: run.stream,
                    at: at.to_string(),
                    line: line.to_string(),
                }));
            }
        }
        lines
    }
}

impl History {
    /// The next events, with about `budget` bytes of lines in all, each with the bytes of its
    /// lines: `Lines` of about [`CHUNK`] bytes each when `chunked`, else one `Line` per line.
    /// Empty once everything was read.
    pub fn read_batch(&mut self, chunked: bool, budget: usize) -> Vec<(LogEvent, usize)> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while bytes < budget {
            let Some(runs) = self.next_chunk() else { break };
            if chunked {
                let len = runs.iter().map(|run| run.text.len()).sum();
                bytes += len;
                batch.push((LogEvent::Lines(runs), len));
                continue;
            }
            for run in &runs {
                for (at, line) in run.lines() {
                    let len = at.len() + line.len() + 2;
                    bytes += len;
                    let line = LogLine {
                        instance: run.instance.clone(),
                        stream: run.stream,
                        at: at.to_string(),
                        line: line.to_string(),
                    };
                    batch.push((LogEvent::Line(line), len));
                }
            }
        }
        batch
    }

    /// What the live stream must skip: the lines that were already in the files.
    pub fn into_seen(self) -> Seen {
        self.seen
    }

    /// The next lines in time order, about [`CHUNK`] bytes of them, as runs of one file each.
    fn next_chunk(&mut self) -> Option<Vec<LogRun>> {
        let mut runs: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut len = 0;
        while len < CHUNK {
            // The oldest head goes first; it may go on as long as it stays older than the next.
            let Some(Reverse(Key { i: leader, .. })) = self.heads.pop() else { break };
            let next = self.heads.peek().map(|Reverse(next)| *next);
            let reader = &mut self.readers[leader];
            let range = reader.take(leader, next, CHUNK - len);
            let kept;
            let text = match self.filter.is_empty() {
                true => &reader.buf[range],
                false => {
                    kept = self.filter.keep_lines(&reader.buf[range]);
                    &kept[..]
                }
            };
            if !text.is_empty() {
                match runs.last_mut() {
                    Some((source, run)) if *source == leader => run.extend_from_slice(text),
                    _ => runs.push((leader, text.to_vec())),
                }
                len += text.len();
                if text.last() != Some(&b'\n')
                    && let Some((_, run)) = runs.last_mut()
                {
                    // A file's last line, still being written.
                    run.push(b'\n');
                    len += 1;
                }
            }
            if let Err(e) = reader.fill(&self.sources[leader]) {
                warn_unreadable(&self.sources[leader], &e);
                reader.stop();
            }
            if let Some(ts) = reader.ts() {
                self.heads.push(Reverse(key(ts, leader)));
            }
        }
        if runs.is_empty() {
            return None;
        }
        let runs = runs
            .into_iter()
            .map(|(i, text)| LogRun {
                instance: self.sources[i].instance.clone(),
                stream: self.sources[i].stream,
                text: String::from_utf8(text).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            })
            .collect();
        Some(runs)
    }
}

/// Where each file's share of the last `n` lines starts: the files are read backwards and
/// merged newest first until `n` lines are counted.
fn starts(sources: &[Source], n: usize, filter: &Filter) -> Vec<u64> {
    let mut readers: Vec<Backward> = sources
        .iter()
        .map(|source| {
            let mut reader = Backward::new(source.end);
            if let Err(e) = reader.find_head(&source.file) {
                warn_unreadable(source, &e);
                reader.stop();
            }
            reader
        })
        .collect();
    // The newest head goes first, as long as it stays newer than the next one.
    let mut heads: BinaryHeap<Key> = readers.iter().enumerate().filter_map(|(i, r)| Some(key(r.ts()?, i))).collect();
    let mut remaining = n;
    while remaining > 0 {
        let Some(Key { i: leader, .. }) = heads.pop() else { break };
        let next = heads.peek().copied();
        let (reader, file) = (&mut readers[leader], &sources[leader].file);
        let newer = |ts: &[u8]| next.is_none_or(|next| key(ts, leader) > next);
        let popped = match (filter.is_empty(), next) {
            (true, None) => reader.pop_many(file, remaining),
            (true, Some(_)) => reader.pop_while(file, remaining, newer),
            (false, _) => reader.pop_filtered(file, remaining, newer, filter),
        };
        match popped {
            Ok(popped) => remaining -= popped,
            Err(e) => {
                warn_unreadable(&sources[leader], &e);
                reader.stop();
            }
        }
        if let Some(ts) = reader.ts() {
            heads.push(key(ts, leader));
        }
    }
    readers.iter().map(Backward::cut).collect()
}

/// Where a line goes in the merge: by its timestamp (the first 32 bytes; a real one has 24),
/// then by its file's place among the instances given and their streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    ts: [u8; 32],
    i: usize,
}

fn key(ts: &[u8], i: usize) -> Key {
    let mut key = Key { ts: [0; 32], i };
    let len = ts.len().min(32);
    key.ts[..len].copy_from_slice(&ts[..len]);
    key
}

/// The timestamp of a line: its text up to the first space.
fn ts_of(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let head = &line[..line.len().min(64)];
    match memchr::memchr(b' ', head) {
        Some(space) => &line[..space],
        None => line,
    }
}

/// One log file, open, with its length now.
fn open_source(instance: &str, stream: LogStream, path: &Path) -> Option<Source> {
    let file = File::open(path).ok()?;
    let end = file.metadata().ok()?.len();
    Some(Source { instance: instance.to_string(), stream, file, end })
}

fn warn_unreadable(source: &Source, e: &io::Error) {
    tracing::warn!("{}: cannot read its {} log: {e}", source.instance, source.stream.file_suffix());
}

/// Reads a file backwards, a line at a time or many at once.
struct Backward {
    /// File offset of `buf[0]`.
    lo: u64,
    /// The part of the file before the lines taken so far that has been read.
    buf: Vec<u8>,
    /// Where the last line of `buf` starts, if there is one.
    head: Option<usize>,
    /// The buffer before the last read, for the next.
    spare: Vec<u8>,
}

impl Backward {
    /// The timestamp of the last line not taken yet, if there is one.
    fn ts(&self) -> Option<&[u8]> {
        self.head.map(|h| ts_of(&self.buf[h..]))
    }

    fn new(end: u64) -> Backward {
        Backward { lo: end, buf: Vec::new(), head: None, spare: Vec::new() }
    }

    /// Where the lines taken so far start in the file.
    fn cut(&self) -> u64 {
        self.lo + self.buf.len() as u64
    }

    /// Takes nothing more from this file.
    fn stop(&mut self) {
        self.lo += self.buf.len() as u64;
        self.buf.clear();
        self.head = None;
    }

    /// Finds where the last line of `buf` starts, reading further back as needed. The line
    /// ends at the end of `buf`, with its newline (or without, the file's unfinished last line).
    fn find_head(&mut self, file: &File) -> io::Result<()> {
        loop {
            if self.buf.is_empty() && self.lo == 0 {
                self.head = None;
                return Ok(());
            }
            if let Some(nl) = memchr::memrchr(b'\n', &self.buf[..self.buf.len().saturating_sub(1)]) {
                self.head = Some(nl + 1);
                return Ok(());
            }
            if self.lo == 0 {
                self.head = Some(0);
                return Ok(());
            }
            self.read_before(file)?;
        }
    }

    /// Reads the block before `buf`.
    fn read_before(&mut self, file: &File) -> io::Result<()> {
        let len = (BLOCK as u64).min(self.lo) as usize;
        let from = self.lo - len as u64;
        let mut block = std::mem::take(&mut self.spare);
        block.clear();
        block.resize(len, 0);
        file.read_exact_at(&mut block, from)?;
        block.extend_from_slice(&self.buf);
        self.spare = std::mem::replace(&mut self.buf, block);
        self.lo = from;
        Ok(())
    }

    /// Takes the last line.
    fn pop(&mut self, file: &File) -> io::Result<()> {
        if let Some(head) = self.head {
            self.buf.truncate(head);
            self.find_head(file)?;
        }
        Ok(())
    }

    /// Takes lines while `keep_going` says so of the next one's timestamp (and the first one in
    /// any case), at most `max`; how many.
    fn pop_while(&mut self, file: &File, max: usize, keep_going: impl Fn(&[u8]) -> bool) -> io::Result<usize> {
        let mut popped = 0;
        while popped < max && self.head.is_some() {
            self.pop(file)?;
            popped += 1;
            if !self.ts().is_some_and(&keep_going) {
                break;
            }
        }
        Ok(popped)
    }

    /// Takes lines as [`Backward::pop_while`] does, counting only those `filter` keeps; stops
    /// for good before the first line older than its `since`.
    fn pop_filtered(
        &mut self,
        file: &File,
        max: usize,
        keep_going: impl Fn(&[u8]) -> bool,
        filter: &Filter,
    ) -> io::Result<usize> {
        let mut kept = 0;
        while kept < max
            && let Some(head) = self.head
        {
            if !filter.recent(ts_of(&self.buf[head..])) {
                self.stop();
                break;
            }
            kept += usize::from(filter.keeps(&self.buf[head..]));
            self.pop(file)?;
            if !self.ts().is_some_and(&keep_going) {
                break;
            }
        }
        Ok(kept)
    }

    /// Takes up to `max` lines, counting newlines a block at a time; how many.
    fn pop_many(&mut self, file: &File, max: usize) -> io::Result<usize> {
        let mut popped = 0;
        while popped < max && self.head.is_some() {
            // Each newline before the last byte starts a line that is taken.
            let mut cut = None;
            for nl in memchr::memrchr_iter(b'\n', &self.buf[..self.buf.len() - 1]) {
                popped += 1;
                cut = Some(nl + 1);
                if popped == max {
                    break;
                }
            }
            if let Some(cut) = cut {
                self.buf.truncate(cut);
            }
            if popped == max {
                break;
            }
            // `buf` is one line now: the file's first, or one that starts further back.
            if self.lo == 0 {
                popped += 1;
                self.buf.clear();
                break;
            }
            self.read_before(file)?;
        }
        self.find_head(file)?;
        Ok(popped)
    }
}

/// Reads a file forward from where its history starts to where it ended when opened.
struct Forward {
    /// Next file offset to read, and the end.
    next: u64,
    end: u64,
    buf: Vec<u8>,
    /// Start of what is not taken yet in `buf`.
    pos: usize,
    /// End of the next line in `buf` (after its newline), if there is a next line.
    line_end: Option<usize>,
}

impl Forward {
    /// The timestamp of the next line, if there is one.
    fn ts(&self) -> Option<&[u8]> {
        self.line_end.map(|end| ts_of(&self.buf[self.pos..end]))
    }

    fn new(source: &Source, start: u64) -> Forward {
        let mut reader = Forward { next: start, end: source.end, buf: Vec::new(), pos: 0, line_end: None };
        if let Err(e) = reader.fill(source) {
            warn_unreadable(source, &e);
            reader.stop();
        }
        reader
    }

    fn stop(&mut self) {
        self.next = self.end;
        self.buf.clear();
        self.pos = 0;
        self.line_end = None;
    }

    /// Makes sure the next line is whole in `buf`, reading on as needed.
    fn fill(&mut self, source: &Source) -> io::Result<()> {
        loop {
            if let Some(nl) = memchr::memchr(b'\n', &self.buf[self.pos..]) {
                self.line_end = Some(self.pos + nl + 1);
                return Ok(());
            }
            if self.next >= self.end {
                // What is left is the file's unfinished last line, if anything.
                self.line_end = (self.pos < self.buf.len()).then_some(self.buf.len());
                return Ok(());
            }
            self.buf.drain(..self.pos);
            self.pos = 0;
            let len = (BLOCK as u64).min(self.end - self.next) as usize;
            let old = self.buf.len();
            self.buf.resize(old + len, 0);
            source.file.read_exact_at(&mut self.buf[old..], self.next)?;
            self.next += len as u64;
        }
    }

    /// Takes the next lines (at least one) while they come before `next` (this is reader
    /// `me`), within about `room` bytes; the range of `buf` they are in. Call
    /// [`Forward::fill`] after.
    fn take(&mut self, me: usize, next: Option<Key>, room: usize) -> Range<usize> {
        let start = self.pos;
        let Some(first_end) = self.line_end else { return start..start };
        // Whole lines in `buf` within `room` (the unfinished last line of the file counts).
        let window = &self.buf[start..self.buf.len().min(start + room.max(1))];
        let whole_end = if self.next >= self.end && start + window.len() == self.buf.len() {
            self.buf.len()
        } else {
            memchr::memrchr(b'\n', window).map_or(first_end, |nl| start + nl + 1).max(first_end)
        };
        let before = |line: &[u8]| next.is_none_or(|next| key(ts_of(line), me) < next);
        // Most often every line up to there comes first: one look at the last one says so.
        let last_start = memchr::memrchr(b'\n', &self.buf[start..whole_end - 1]).map_or(start, |nl| start + nl + 1);
        let end = if before(&self.buf[last_start..whole_end]) {
            whole_end
        } else {
            let mut end = first_end;
            while end < whole_end {
                let line_end = memchr::memchr(b'\n', &self.buf[end..whole_end]).map_or(whole_end, |nl| end + nl + 1);
                if !before(&self.buf[end..line_end]) {
                    break;
                }
                end = line_end;
            }
            end
        };
        self.pos = end;
        self.line_end = None;
        start..end
    }
}

/// What the history held of each file, so that the live stream, which starts before the files
/// are read, does not repeat it: a file's live lines repeat its history until the first one
/// newer than its last line, or of the same millisecond but not among its last lines.
#[derive(Default)]
pub struct Seen {
    /// Per instance, the out and err files.
    files: HashMap<String, [Option<Seam>; 2]>,
}

struct Seam {
    /// The timestamp of the file's last line.
    last: String,
    /// The file's last lines with that timestamp (the newest [`SEAM`]).
    lines: VecDeque<String>,
    /// A live line newer than the history came: every later one is new too.
    caught_up: bool,
}

impl Seen {
    /// Whether a live line is new (it was not in the history), in the order they come.
    pub fn is_new(&mut self, line: &LogLine) -> bool {
        let Some(Some(seam)) = self.files.get_mut(line.instance.as_str()).map(|pair| &mut pair[line.stream as usize])
        else {
            return true;
        };
        if seam.caught_up {
            return true;
        }
        let repeated = match line.at.as_str().cmp(seam.last.as_str()) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Equal => match seam.lines.iter().position(|l| *l == line.line) {
                Some(i) => {
                    seam.lines.drain(..=i);
                    true
                }
                None => false,
            },
            std::cmp::Ordering::Greater => false,
        };
        seam.caught_up = !repeated;
        !repeated
    }
}

/// The last timestamp of a file and its lines with it.
fn seam(source: &Source) -> Option<Seam> {
    read_seam(source).unwrap_or_else(|e| {
        warn_unreadable(source, &e);
        None
    })
}

fn read_seam(source: &Source) -> io::Result<Option<Seam>> {
    let mut reader = Backward::new(source.end);
    reader.find_head(&source.file)?;
    let Some(last) = reader.ts().map(<[u8]>::to_vec) else { return Ok(None) };
    let mut lines = VecDeque::new();
    while lines.len() < SEAM
        && let Some(head) = reader.head
        && ts_of(&reader.buf[head..]) == last.as_slice()
    {
        let raw = String::from_utf8_lossy(&reader.buf[head..]);
        let raw = raw.strip_suffix('\n').unwrap_or(&raw);
        lines.push_front(raw.split_once(' ').map_or(raw, |(_, text)| text).to_string());
        reader.pop(&source.file)?;
    }
    Ok(Some(Seam { last: String::from_utf8_lossy(&last).into_owned(), lines, caught_up: false }))
}

#[cfg(test)]
mod tests;
