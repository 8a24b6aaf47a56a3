//! The `pm` binary itself: how long its CLI takes to start (`pm --version`, beside `/bin/true`,
//! the cost of starting any process), and its size on disk, with how much of it is debug info
//! and whether it keeps its symbol table (read from its ELF section headers).

use crate::pm::{Pm, timed};
use crate::{Row, Size, fmt_duration, fmt_mb, median, progress, ratio, ratio_goal, verdict};
use anyhow::Context;
use std::time::Duration;

const WARMUP: Size<usize> = Size::new(5, 1);
const RUNS: Size<usize> = Size::new(50, 3);
/// The goals: `pm --version` against `/bin/true`, and the size of a stripped release build.
const VERSION_GOAL: f64 = 1.5;
const SIZE_GOAL_MB: u64 = 12;

pub async fn measure(pm: &Pm) -> anyhow::Result<Vec<Row>> {
    Ok(vec![start_up(pm).await?, size(pm)?])
}

async fn start_up(pm: &Pm) -> anyhow::Result<Row> {
    let limit = Duration::from_secs(10);
    let true_ = async || timed(tokio::process::Command::new("/bin/true"), "/bin/true", limit).await;
    for _ in 0..WARMUP.get() {
        pm.run(&["--version"], limit).await?;
        true_().await?;
    }
    // Interleaved, so that both see the same machine.
    let runs = RUNS.get();
    let (mut version, mut reference) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        version.push(pm.run_timed(&["--version"], limit).await?.1);
        reference.push(true_().await?.1);
    }
    let (pm_med, ref_med) = (median(&version), median(&reference));
    progress(&format!("pm --version: median {}, /bin/true {}", fmt_duration(pm_med), fmt_duration(ref_med)));
    Ok(Row {
        measure: "CLI start-up, `pm --version`".into(),
        pm: fmt_duration(pm_med),
        reference: fmt_duration(ref_med),
        ratio: ratio(pm_med, ref_med),
        note: format!(
            "{}; median of {runs} runs each, interleaved, real processes, output read by the harness; ref: \
             `/bin/true`, the cost of starting a process at all",
            ratio_goal(pm_med, ref_med, VERSION_GOAL)
        ),
    })
}

fn size(pm: &Pm) -> anyhow::Result<Row> {
    let bin = pm.bin();
    let elf = std::fs::read(bin).with_context(|| format!("cannot read {}", bin.display()))?;
    let size = elf.len() as u64;
    let (what, stripped) = match sections(&elf) {
        Some(s) => (
            format!(
                "{} of it debug info (.debug_*), symbol table {}",
                fmt_mb(s.debug),
                if s.symtab { "kept" } else { "stripped" }
            ),
            s.debug == 0 && !s.symtab,
        ),
        None => ("not a 64-bit little-endian ELF file: sections not read".into(), false),
    };
    Ok(Row {
        measure: "binary size (pm)".into(),
        pm: fmt_mb(size),
        reference: "-".into(),
        ratio: "-".into(),
        note: format!(
            "goal ≤ {SIZE_GOAL_MB} MB stripped release: {}; {what}; {}",
            verdict(size <= SIZE_GOAL_MB * 1_000_000 && stripped),
            bin.display()
        ),
    })
}

/// What the section headers of an ELF file say.
struct Sections {
    /// Bytes in `.debug_*` sections.
    debug: u64,
    /// Whether it has a `.symtab`.
    symtab: bool,
}

/// Reads the section headers of a 64-bit little-endian ELF file; None if it is not one, or
/// they do not fit in it.
fn sections(elf: &[u8]) -> Option<Sections> {
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let field = |at: usize, len: usize| -> Option<u64> {
        let bytes = elf.get(at..at + len)?;
        Some(bytes.iter().rev().fold(0, |n, &b| n << 8 | u64::from(b)))
    };
    // e_shoff, e_shentsize, e_shnum, e_shstrndx; in each header sh_name, sh_offset, sh_size.
    let (table, entry, count, names) =
        (field(0x28, 8)? as usize, field(0x3a, 2)? as usize, field(0x3c, 2)? as usize, field(0x3e, 2)? as usize);
    let names = field(table + names * entry + 0x18, 8)? as usize;
    let mut found = Sections { debug: 0, symtab: false };
    for i in 0..count {
        let header = table + i * entry;
        let name = elf.get(names + field(header, 4)? as usize..)?;
        let name = &name[..name.iter().position(|&b| b == 0)?];
        if name.starts_with(b".debug") {
            found.debug += field(header + 0x20, 8)?;
        } else if name == b".symtab" {
            found.symtab = true;
        }
    }
    Some(found)
}
