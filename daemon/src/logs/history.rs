//! `pm log -n`: the last lines of an instance's files, read from the end.

use super::LogHub;
use pm_protocol::{LogLine, LogStream};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

impl LogHub {
    /// The last `n` lines of the instances' logs, both streams merged in time order.
    pub fn history(&self, instances: &[String], n: usize) -> Vec<LogLine> {
        let mut lines = Vec::new();
        for instance in instances {
            for stream in [LogStream::Out, LogStream::Err] {
                let path = self.home.log_file(instance, stream);
                for raw in tail(&path, n).unwrap_or_default() {
                    let (at, line) = raw.split_once(' ').unwrap_or(("", raw.as_str()));
                    lines.push(LogLine {
                        instance: instance.clone(),
                        stream,
                        at: at.to_string(),
                        line: line.to_string(),
                    });
                }
            }
        }
        // Timestamps are fixed-width RFC 3339, so text order is time order; the sort is stable.
        lines.sort_by(|a, b| a.at.cmp(&b.at));
        let skip = lines.len().saturating_sub(n);
        lines.split_off(skip)
    }
}

/// The last `n` lines of a file, read backwards in blocks so a large log costs only its tail.
fn tail(path: &Path, n: usize) -> std::io::Result<Vec<String>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut file = std::fs::File::open(path)?;
    let mut start = file.metadata()?.len();
    // Read backwards block by block, counting only each new block's newlines, and join once:
    // linear in what is read (n whole lines need n + 1 newlines from the end, or the file start).
    let mut blocks = Vec::new();
    let mut newlines = 0;
    const BLOCK: u64 = 64 * 1024;
    while start > 0 && newlines <= n {
        let from = start.saturating_sub(BLOCK);
        let mut block = vec![0; (start - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut block)?;
        newlines += block.iter().filter(|&&b| b == b'\n').count();
        blocks.push(block);
        start = from;
    }
    let chunk: Vec<u8> = blocks.into_iter().rev().flatten().collect();
    let text = String::from_utf8_lossy(&chunk);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // a partial first line
    }
    let skip = lines.len().saturating_sub(n);
    Ok(lines.split_off(skip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_reads_only_the_last_lines_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let text: String = (0..50_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        assert_eq!(tail(&path, 3).unwrap(), vec!["line 49997", "line 49998", "line 49999"]);
        assert_eq!(tail(&path, 0).unwrap(), Vec::<String>::new());
        assert_eq!(tail(&path, 60_000).unwrap().len(), 50_000);
        let last: Vec<String> = (10_000..50_000).map(|i| format!("line {i}")).collect();
        assert_eq!(tail(&path, 40_000).unwrap(), last, "whole lines, in order, across many blocks");
    }
}
