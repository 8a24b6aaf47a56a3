//! Finding the files `pm discover` reads in a directory (or taking the one it is given), reading
//! each with its kind's translator, and gathering the sidecars: the first file to name a sidecar
//! wins, in the order of [`KINDS`], and a later one's is reported as skipped.

use super::sources::{KINDS, Kind, kind_of, named};
use super::{Translated, Untranslated};
use pm_protocol::Definition;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The most bytes a source file may have: they are project files, not data.
const MAX_FILE: u64 = 4 << 20;

/// One sidecar found.
#[derive(Debug, Clone, Serialize)]
pub struct FoundSidecar {
    pub name: String,
    pub kind: &'static str,
    pub file: PathBuf,
    pub definition: Definition,
}

/// A key not translated, with its file.
#[derive(Debug, Clone, Serialize)]
pub struct NotTranslated {
    pub file: PathBuf,
    #[serde(flatten)]
    pub key: Untranslated,
}

/// A sidecar another file had named first.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub name: String,
    pub file: PathBuf,
    pub because: String,
}

/// Everything found under a path.
#[derive(Debug, Default, Serialize)]
pub struct Found {
    /// The files read, in order.
    pub files: Vec<PathBuf>,
    #[serde(rename = "found")]
    pub sidecars: Vec<FoundSidecar>,
    pub untranslated: Vec<NotTranslated>,
    pub skipped: Vec<Skipped>,
}

/// Reads `path`: a directory (every file of a known kind in it) or one file (of the kind its name
/// says, or `kind`).
pub fn scan(path: &Path, kind: Option<&str>) -> anyhow::Result<Found> {
    let path = std::path::absolute(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let forced = match kind {
        Some(name) => Some(named(name).ok_or_else(|| {
            let kinds: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
            anyhow::anyhow!("unknown kind `{name}`; pm discover reads: {}", kinds.join(", "))
        })?),
        None => None,
    };
    let meta = std::fs::metadata(&path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let files: Vec<(PathBuf, &Kind)> = if meta.is_dir() {
        let found: Vec<(PathBuf, &Kind)> = KINDS
            .iter()
            .filter(|k| forced.is_none_or(|f| std::ptr::eq(*k, f)))
            .filter_map(|k| {
                let names = k.files.iter().filter(|f| !f.ends_with('*'));
                names.map(|f| path.join(f)).find(|p| p.is_file()).map(|p| (p, k))
            })
            .collect();
        if found.is_empty() {
            let names: Vec<&str> =
                KINDS.iter().flat_map(|k| k.files.iter().copied()).filter(|f| !f.ends_with('*')).collect();
            anyhow::bail!("{}: no file pm discover reads (it looks for {})", path.display(), names.join(", "));
        }
        found
    } else {
        let kind = forced.or_else(|| kind_of(&path)).ok_or_else(|| {
            let kinds: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
            anyhow::anyhow!(
                "{}: not a kind of file pm discover knows by its name; say which with --kind ({})",
                path.display(),
                kinds.join(", ")
            )
        })?;
        vec![(path.clone(), kind)]
    };
    let mut found = Found::default();
    let mut owner: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (file, kind) in files {
        let translated = read(&file, kind)?;
        found.files.push(file.clone());
        found
            .untranslated
            .extend(translated.untranslated.into_iter().map(|key| NotTranslated { file: file.clone(), key }));
        for (name, definition) in translated.sidecars {
            if let Some(first) = owner.get(&name) {
                let because = format!("`{name}` is already found in {}", first.display());
                found.skipped.push(Skipped { name, file: file.clone(), because });
                continue;
            }
            owner.insert(name.clone(), file.clone());
            found.sidecars.push(FoundSidecar { name, kind: kind.name, file: file.clone(), definition });
        }
    }
    Ok(found)
}

/// Reads one file with its kind's translator.
fn read(file: &Path, kind: &'static Kind) -> anyhow::Result<Translated> {
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    if size > MAX_FILE {
        anyhow::bail!("{}: {size} bytes; pm discover reads files of at most {MAX_FILE}", file.display());
    }
    let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let dir = file.parent().unwrap_or(Path::new("/"));
    Ok((kind.read)(&super::SourceFile { path: file, dir, text: &text })?)
}
