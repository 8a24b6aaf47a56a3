//! PM_HOME/packages: a directory per package and version, and index.json, which says what is
//! installed (or linked) under which name. The index is written whole to a temporary file and
//! renamed over the old one, so a crash leaves one or the other; the commands that change it
//! hold PM_HOME/packages/.lock while they run.

use super::Kind;
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The largest index read: it lists packages, not their contents.
const MAX_INDEX: u64 = 16 << 20;

/// PM_HOME/packages.
#[derive(Debug, Clone)]
pub struct Packages {
    root: PathBuf,
}

impl Packages {
    pub fn new(home: &crate::home::Home) -> Self {
        Packages { root: home.root().join("packages") }
    }

    /// Where version `version` of package `name` goes.
    pub fn dir(&self, name: &str, version: &str) -> PathBuf {
        self.root.join(name).join(version)
    }

    /// A new, empty directory for an install whose name and version are not known yet (what a
    /// killed install left there goes).
    pub fn staging(&self) -> anyhow::Result<PathBuf> {
        let dir = self.root.join(".staging");
        super::remove_dir(&dir)?;
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(dir)
    }

    /// The package manager's output of the install under way (kept there when it fails).
    pub fn log(&self) -> PathBuf {
        self.root.join(super::progress::LOG)
    }

    /// Whether `dir` is one of its own (what the index says is deleted only then: a link's
    /// checkout never is).
    pub fn owns(&self, dir: &Path) -> bool {
        let up = dir.components().any(|c| c == std::path::Component::ParentDir);
        dir.starts_with(&self.root) && dir != self.root && !up
    }

    fn index(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// Takes the lock that `pm install`, `update`, `uninstall`, `link` and `unlink` hold while
    /// they change packages, or says who holds it.
    pub fn lock(&self) -> anyhow::Result<Lock> {
        std::fs::create_dir_all(&self.root).with_context(|| format!("cannot create {}", self.root.display()))?;
        let path = self.root.join(".lock");
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Lock { _file: file }),
            Err(TryLockError::WouldBlock) => {
                bail!("another pm install, update, uninstall, link or unlink is running (it holds {})", path.display())
            }
            Err(TryLockError::Error(e)) => bail!("cannot lock {}: {e}", path.display()),
        }
    }
}

/// Held while packages change; the kernel releases it when the process ends, however it ends.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// One installed (or linked) package, as the index records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    pub kind: Kind,
    /// Its name in its registry (`@acme/tool`, a distribution, a crate, an image), or a link's
    /// path.
    pub package: String,
    pub version: String,
    /// The path it was installed from, when not from a registry: `pm update` reads it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<PathBuf>,
    /// Its files (a link's checkout).
    pub dir: PathBuf,
    /// The source its definitions have in the daemon: `npm:NAME@VERSION`, `link:PATH`, …
    pub source: String,
    /// Put before the names of its sidecars (`--prefix`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// The names of its definitions.
    pub definitions: Vec<String>,
}

/// index.json: the packages by name.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub packages: BTreeMap<String, Package>,
}

impl Index {
    /// The index (empty when there is none yet).
    pub fn load(packages: &Packages) -> anyhow::Result<Index> {
        let path = packages.index();
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Index::default()),
            Err(e) => bail!("cannot read {}: {e}", path.display()),
        };
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if size > MAX_INDEX {
            bail!("{}: {size} bytes; an index of packages has at most {MAX_INDEX}", path.display());
        }
        serde_json::from_reader(std::io::BufReader::new(file))
            .with_context(|| format!("{} is not a pm package index", path.display()))
    }

    pub fn save(&self, packages: &Packages) -> anyhow::Result<()> {
        let path = packages.index();
        let tmp = path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&tmp)?;
            file.write_all(&serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().with_context(|| format!("cannot write {}", path.display()))
    }

    /// The package named `name`, or an error listing those there are.
    pub fn get(&self, name: &str) -> anyhow::Result<&Package> {
        self.packages.get(name).ok_or_else(|| {
            let names: Vec<&str> = self.packages.keys().map(String::as_str).collect();
            let known = if names.is_empty() { "none".to_string() } else { names.join(", ") };
            anyhow::anyhow!("no package `{name}` is installed or linked (there are: {known})")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package() -> Package {
        Package {
            kind: Kind::Npm,
            package: "@acme/tool".into(),
            version: "1.0.0".into(),
            from: None,
            dir: "/h/packages/tool/1.0.0".into(),
            source: "npm:@acme/tool@1.0.0".into(),
            prefix: String::new(),
            definitions: vec!["tool".into()],
        }
    }

    #[test]
    fn the_index_is_saved_whole_and_read_back() {
        let home = tempfile::tempdir().unwrap();
        let packages = Packages::new(&crate::home::Home::new(home.path()));
        assert_eq!(Index::load(&packages).unwrap(), Index::default());
        let _lock = packages.lock().unwrap();
        let mut index = Index::default();
        index.packages.insert("tool".into(), package());
        index.save(&packages).unwrap();
        assert_eq!(Index::load(&packages).unwrap(), index);
        assert!(!home.path().join("packages/index.json.tmp").exists());
        let text = std::fs::read_to_string(home.path().join("packages/index.json")).unwrap();
        assert!(text.contains("\"kind\": \"npm\"") && !text.contains("prefix"), "{text}");
        assert_eq!(index.get("tool").unwrap().version, "1.0.0");
        let err = index.get("nope").unwrap_err().to_string();
        assert_eq!(err, "no package `nope` is installed or linked (there are: tool)");
    }

    #[test]
    fn a_second_writer_is_refused_and_a_broken_index_named() {
        let home = tempfile::tempdir().unwrap();
        let packages = Packages::new(&crate::home::Home::new(home.path()));
        let held = packages.lock().unwrap();
        let err = packages.lock().unwrap_err().to_string();
        assert!(err.starts_with("another pm install, update, uninstall, link or unlink is running"), "{err}");
        drop(held);
        packages.lock().unwrap();
        std::fs::write(home.path().join("packages/index.json"), "{\"packages\": 3}").unwrap();
        let err = format!("{:#}", Index::load(&packages).unwrap_err());
        assert!(err.contains("packages/index.json is not a pm package index: invalid type"), "{err}");
    }
}
