//! `state.json`: definitions and instances, so a restarted daemon carries on where it was.
//!
//! Writes are atomic (temp file, fsync, rename) and keep the previous copy as `state.json.bak`.
//! One writer task coalesces bursts: a change only asks for a write, and the writer takes the
//! state when it is free to write it, so 1,000 instances starting cost a few writes, not 1,000
//! snapshots of everything. Callers that must not answer before the state is on disk await
//! [`Store::saved`], which also tells them when the write failed.

use pm_protocol::Definition;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

/// What is persisted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    /// Shared with the registry: taking the state copies no definition.
    pub definitions: BTreeMap<String, Arc<Definition>>,
    pub instances: BTreeMap<String, InstanceRecord>,
    /// Definition → where it came from (`pm.sync`), so a prune touches only its own source's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, String>,
}

/// One instance as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub definition: String,
    /// Arguments appended to the definition's command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Whether it should be running: started by hand or by autostart, and not stopped since.
    pub wanted: bool,
    /// The process group it had when the state was written, to clean up after a daemon crash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start_time: Option<u64>,
    /// Why pm gave up on it, if it is failed: a restarted daemon shows that and does not resume it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{} is corrupt ({source}) and so is its backup {}: fix or remove them", path.display(), backup.display())]
    Corrupt { path: PathBuf, backup: PathBuf, source: serde_json::Error },
    #[error("{} is missing and its backup {} is corrupt ({source}): fix or remove it", path.display(), backup.display())]
    CorruptBackup { path: PathBuf, backup: PathBuf, source: serde_json::Error },
    #[error("cannot set aside the corrupt {}: {source}", path.display())]
    SetAside { path: PathBuf, source: std::io::Error },
}

/// A write of the state that failed, with the OS reason (`No space left on device (os error 28)`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot write {}: {reason}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    pub reason: String,
}

/// How the state was loaded.
#[derive(Debug, PartialEq)]
pub enum Loaded {
    Fresh,
    Primary,
    /// The primary was missing or corrupt and the backup was used: a sentence saying so, for
    /// the daemon log and the CLI.
    FromBackup(String),
}

/// Loads the state: the primary, else (when missing or corrupt) the backup, never silently
/// empty.
pub fn load(path: &Path, backup: &Path) -> Result<(StateFile, Loaded), StoreError> {
    let read = |p: &Path| match std::fs::read(p) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Read { path: p.to_path_buf(), source }),
    };
    let primary_err = match read(path)? {
        Some(bytes) => match serde_json::from_slice(&bytes) {
            Ok(state) => return Ok((state, Loaded::Primary)),
            Err(e) => Some(e),
        },
        None => None,
    };
    let backup_state = read(backup)?.map(|bytes| serde_json::from_slice::<StateFile>(&bytes));
    let (path, backup) = (path.to_path_buf(), backup.to_path_buf());
    let (state, why) = match (backup_state, primary_err) {
        (None, None) => return Ok((StateFile::default(), Loaded::Fresh)),
        (Some(Ok(state)), None) => (state, "was missing".to_string()),
        (Some(Ok(state)), Some(e)) => (state, set_aside(&path, e)?),
        (None | Some(Err(_)), Some(source)) => return Err(StoreError::Corrupt { path, backup, source }),
        (Some(Err(source)), None) => return Err(StoreError::CorruptBackup { path, backup, source }),
    };
    let notice = format!(
        "{} {why}; restored from {} (the state before the last save: the last change may be lost)",
        path.display(),
        backup.display()
    );
    Ok((state, Loaded::FromBackup(notice)))
}

/// Renames a corrupt primary to `state.json.corrupt`, so the next write cannot copy it over the
/// good backup; says so.
fn set_aside(path: &Path, e: serde_json::Error) -> Result<String, StoreError> {
    let aside = path.with_extension("json.corrupt");
    std::fs::rename(path, &aside).map_err(|source| StoreError::SetAside { path: path.to_path_buf(), source })?;
    Ok(format!("was corrupt ({e}; kept as {})", aside.display()))
}

/// Writes `state` atomically, keeping the previous file as the backup.
pub fn write(path: &Path, backup: &Path, state: &StateFile) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    // Private: definitions carry env values, which may be secrets.
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    // Compact, serialized first: straight to the file, every token would be a write(2).
    let mut text = serde_json::to_vec(state)?;
    text.push(b'\n');
    file.write_all(&text)?;
    file.sync_all()?;
    keep_as_backup(path, backup)?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Makes the current file the backup without copying it: a second name for it, renamed over the
/// old backup, so the backup is whole at every instant.
fn keep_as_backup(path: &Path, backup: &Path) -> std::io::Result<()> {
    let linked = backup.with_extension("bak.tmp");
    let _ = std::fs::remove_file(&linked);
    match std::fs::hard_link(path, &linked) {
        Ok(()) => std::fs::rename(&linked, backup),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes that nobody waits for (pids recorded as a burst of runs starts, exits) go out at most
/// this often: back to back, a start of 1,000 re-serialized the whole state hundreds of times,
/// a third of the daemon's CPU. A write that someone waits for (a command's answer) goes out at
/// once. Nothing relies on the others' timing: a daemon killed in between finds its leftovers by
/// cgroup and marker, not by the pids on disk.
const SPACING: Duration = Duration::from_millis(20);

/// The coalescing writer.
#[derive(Clone)]
pub struct Store {
    path: PathBuf,
    /// The last version asked for: a write that takes the state after this was bumped holds it.
    requested: Arc<watch::Sender<u64>>,
    /// The highest version someone waits for: the writer does not hold that one back.
    awaited: Arc<watch::Sender<u64>>,
    written: watch::Receiver<Written>,
}

/// What the writer has done so far.
#[derive(Clone, Default)]
struct Written {
    /// The last version it tried to write.
    tried: u64,
    /// The last version that reached the disk: it holds every earlier version's changes too.
    saved: u64,
    /// Why the last write failed, if it did.
    error: Option<WriteError>,
}

impl Store {
    /// Starts the writer task for `path`. It takes the state from `source` when it writes, and
    /// ends when `source` gives none (its owner is gone) or the last `Store` clone is dropped.
    pub fn spawn(path: PathBuf, backup: PathBuf, source: impl Fn() -> Option<StateFile> + Send + 'static) -> Store {
        let (requested, mut requests) = watch::channel(0u64);
        let (awaited, mut waits) = watch::channel(0u64);
        let (written_tx, written) = watch::channel(Written::default());
        let target = path.clone();
        tokio::spawn(async move {
            let (mut tried, mut last) = (0u64, None::<Instant>);
            while requests.changed().await.is_ok() {
                if let Some(next) = last.map(|at| at + SPACING) {
                    // A gone `Store` cannot be waited on: nothing to hold back for then.
                    tokio::select! {
                        _ = sleep_until(next) => {}
                        _ = waits.wait_for(|&v| v > tried) => {}
                    }
                }
                // Taken before the state: every request up to here is in what is written.
                let version = *requests.borrow_and_update();
                let Some(state) = source() else { return };
                let (p, b) = (path.clone(), backup.clone());
                let result = match tokio::task::spawn_blocking(move || write(&p, &b, &state)).await {
                    Ok(result) => result.map_err(|e| e.to_string()),
                    Err(e) => Err(format!("the writer failed ({e})")),
                };
                let error = result.err().map(|reason| WriteError { path: path.clone(), reason });
                if let Some(e) = &error {
                    tracing::error!("{e}");
                }
                written_tx.send_modify(|w| {
                    w.tried = version;
                    if error.is_none() {
                        w.saved = version;
                    }
                    w.error = error;
                });
                (tried, last) = (version, Some(Instant::now()));
            }
        });
        Store { path: target, requested: Arc::new(requested), awaited: Arc::new(awaited), written }
    }

    /// Asks for a write of the state as it is now; returns its version.
    pub fn request(&self) -> u64 {
        let mut version = 0;
        self.requested.send_modify(|v| {
            *v += 1;
            version = *v;
        });
        version
    }

    /// Waits until the writer has tried `version` (or a later one): Ok once it is on disk, else
    /// why not.
    pub async fn saved(&self, version: u64) -> Result<(), WriteError> {
        self.awaited.send_if_modified(|v| {
            let later = version > *v;
            if later {
                *v = version;
            }
            later
        });
        let mut written = self.written.clone();
        let gone = written.wait_for(|w| w.tried >= version).await.is_err();
        let w = written.borrow();
        match &w.error {
            _ if w.saved >= version => Ok(()),
            Some(e) if !gone => Err(e.clone()),
            _ => Err(WriteError { path: self.path.clone(), reason: "the state writer has stopped".into() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StateFile {
        let mut s = StateFile::default();
        s.sources.insert("web".into(), "/p/pm.toml".into());
        s.definitions.insert("web".into(), Arc::new(Definition::new(vec!["sleep".into(), "9".into()])));
        s.instances.insert(
            "web".into(),
            InstanceRecord {
                definition: "web".into(),
                args: vec![],
                wanted: true,
                pid: None,
                pid_start_time: None,
                failed: None,
            },
        );
        s
    }

    #[test]
    fn writes_atomically_and_keeps_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let (p, b) = (dir.path().join("state.json"), dir.path().join("state.json.bak"));
        assert_eq!(load(&p, &b).unwrap(), (StateFile::default(), Loaded::Fresh));
        write(&p, &b, &StateFile::default()).unwrap();
        write(&p, &b, &sample()).unwrap();
        assert_eq!(load(&p, &b).unwrap(), (sample(), Loaded::Primary));
        assert_eq!(load(&b, &p).unwrap().0, StateFile::default(), "backup holds the previous state");
    }

    #[test]
    fn corrupt_primary_falls_back_to_backup_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let (p, b) = (dir.path().join("state.json"), dir.path().join("state.json.bak"));
        write(&p, &b, &sample()).unwrap();
        write(&p, &b, &sample()).unwrap();
        std::fs::write(&p, "{ not json").unwrap();
        let (state, how) = load(&p, &b).unwrap();
        assert_eq!(state, sample());
        let Loaded::FromBackup(notice) = how else { panic!("{how:?}") };
        assert!(notice.contains("state.json was corrupt (") && notice.contains("restored from"), "{notice}");
        let aside = dir.path().join("state.json.corrupt");
        assert_eq!(std::fs::read_to_string(&aside).unwrap(), "{ not json", "set aside, not copied over the backup");
        assert!(!p.exists());
        std::fs::write(&p, "{ not json").unwrap();
        std::fs::write(&b, "also bad").unwrap();
        let err = load(&p, &b).unwrap_err().to_string();
        assert!(err.contains("state.json is corrupt") && err.contains("fix or remove"), "{err}");
    }

    #[test]
    fn missing_primary_is_restored_from_the_backup_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let (p, b) = (dir.path().join("state.json"), dir.path().join("state.json.bak"));
        write(&p, &b, &sample()).unwrap();
        write(&p, &b, &sample()).unwrap();
        std::fs::remove_file(&p).unwrap();
        let (state, how) = load(&p, &b).unwrap();
        assert_eq!(state, sample());
        let Loaded::FromBackup(notice) = how else { panic!("{how:?}") };
        assert!(notice.contains("state.json was missing; restored from"), "{notice}");
        std::fs::write(&b, "bad").unwrap();
        let err = load(&p, &b).unwrap_err().to_string();
        assert!(err.contains("state.json is missing and its backup") && err.contains("fix or remove"), "{err}");
    }

    /// Time is paused: it moves only while the writer sleeps on its spacing.
    #[tokio::test(start_paused = true)]
    async fn writes_nobody_waits_for_are_spaced_and_an_awaited_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        let store = Store::spawn(p.clone(), p.with_extension("json.bak"), || Some(sample()));
        // The clock does not run on while a write is on the blocking pool: only the spacing
        // can move it this far.
        let limit = Duration::from_secs(10);
        let first = store.request();
        tokio::time::timeout(limit, store.saved(first)).await.expect("written").unwrap();

        let began = Instant::now();
        let unawaited = store.request();
        let mut written = store.written.clone();
        tokio::time::timeout(limit, written.wait_for(|w| w.tried >= unawaited)).await.expect("written").unwrap();
        assert!(began.elapsed() >= SPACING, "held back {:?}", began.elapsed());

        let began = Instant::now();
        let awaited = store.request();
        tokio::time::timeout(limit, store.saved(awaited)).await.expect("written").unwrap();
        assert!(began.elapsed() < SPACING, "an awaited write waited {:?}", began.elapsed());
    }

    #[tokio::test]
    async fn save_waits_until_written() {
        let dir = tempfile::tempdir().unwrap();
        let (p, b) = (dir.path().join("state.json"), dir.path().join("state.json.bak"));
        let store = Store::spawn(p.clone(), b.clone(), || Some(sample()));
        let saved = store.saved(store.request());
        tokio::time::timeout(std::time::Duration::from_secs(10), saved).await.unwrap().unwrap();
        assert_eq!(load(&p, &b).unwrap().0, sample());
    }

    #[tokio::test]
    async fn a_failed_write_is_an_error_with_the_path_and_the_os_reason() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing").join("state.json");
        let store = Store::spawn(p.clone(), p.with_extension("json.bak"), || Some(sample()));
        let saved = store.saved(store.request());
        let err = tokio::time::timeout(std::time::Duration::from_secs(10), saved).await.unwrap().unwrap_err();
        let expected = format!("cannot write {}: No such file or directory (os error 2)", p.display());
        assert_eq!(err.to_string(), expected);
        // Once the directory exists, the next write succeeds and says so.
        std::fs::create_dir(p.parent().unwrap()).unwrap();
        let saved = store.saved(store.request());
        tokio::time::timeout(std::time::Duration::from_secs(10), saved).await.unwrap().unwrap();
    }

    #[test]
    fn old_state_files_without_the_failed_flag_still_load() {
        let old = r#"{"definitions": {}, "instances": {"web": {"definition": "web", "wanted": true}}}"#;
        let state: StateFile = serde_json::from_str(old).unwrap();
        assert_eq!(state.instances["web"].failed, None);
    }
}
