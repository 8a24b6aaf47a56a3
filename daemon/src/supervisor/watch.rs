//! `watch`: restarts a definition's running instances when files matching its globs change.
//!
//! Each definition with `watch` has one inotify watcher (through `notify`) on the directories
//! under its `cwd` that can hold a match, never on an ignored one, each watched on its own so
//! that a new directory is watched before it is listed (nothing made in it is missed). Changes
//! are matched on the watcher's thread and queued without ever blocking it: a full queue only
//! means that something changed. A task debounces them and asks the instances to restart, naming
//! the first file. Idle, it waits on the queue: no timer wakes it.

use super::hooks::Beside;
use super::instance::Command;
use super::{Inner, Supervisor};
use globset::{GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RemoveKind, RenameMode};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use pm_protocol::{Definition, State};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

/// The most globs in `watch`, and in `watch_ignore`.
pub const MAX_GLOBS: usize = 64;
/// The longest glob, in bytes.
pub const MAX_GLOB_LEN: usize = 1024;
/// The bounds of `watch_debounce`.
pub const MIN_DEBOUNCE: Duration = Duration::from_millis(10);
pub const MAX_DEBOUNCE: Duration = Duration::from_secs(3600);
/// A steady stream of changes still restarts after this many debounce periods.
const MAX_WAIT_FACTOR: u32 = 10;
/// The most directories one definition watches: each costs an inotify watch, and the user has a
/// limited number of them (`fs.inotify.max_user_watches`).
const MAX_DIRS: usize = 10_000;
/// Sightings queued between the watcher's thread and the task.
const QUEUE: usize = 256;
/// Ignored by every watch: version control, dependencies, bytecode, editors' swap and backups.
pub const ALWAYS_IGNORED: [&str; 6] =
    ["**/.git/**", "**/node_modules/**", "**/__pycache__/**", "**/*.swp", "**/*.swx", "**/*~"];

/// What is wrong with a definition's watch keys: the key, the index in its list, the problem.
#[derive(Debug, PartialEq)]
pub struct Problem {
    pub key: &'static str,
    pub index: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(f, "{}[{i}]: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// Checks `watch`, `watch_ignore` and `watch_debounce`.
pub fn check(def: &Definition) -> Result<(), Problem> {
    for (key, globs) in [("watch", &def.watch), ("watch_ignore", &def.watch_ignore)] {
        if globs.len() > MAX_GLOBS {
            let message = format!("at most {MAX_GLOBS} globs (got {})", globs.len());
            return Err(Problem { key, index: None, message });
        }
        for (i, glob) in globs.iter().enumerate() {
            Pattern::parse(glob).map_err(|message| Problem { key, index: Some(i), message })?;
        }
    }
    if !(MIN_DEBOUNCE..=MAX_DEBOUNCE).contains(&def.watch_debounce) {
        let message = format!("must be from 10ms to 1h (got {})", humantime::format_duration(def.watch_debounce));
        return Err(Problem { key: "watch_debounce", index: None, message });
    }
    if !def.watch.is_empty() && !def.cwd.as_ref().is_some_and(|cwd| cwd.is_absolute()) {
        let message = "`watch` needs an absolute cwd: its globs are relative to it".to_string();
        return Err(Problem { key: "cwd", index: None, message });
    }
    Ok(())
}

/// A glob as written, made plain: no `.` or empty steps.
struct Pattern {
    text: String,
}

impl Pattern {
    fn parse(glob: &str) -> Result<Pattern, String> {
        if glob.len() > MAX_GLOB_LEN {
            return Err(format!("a glob is at most {MAX_GLOB_LEN} bytes (got {})", glob.len()));
        }
        if glob.starts_with('/') {
            return Err(format!("`{glob}`: globs are relative to cwd"));
        }
        let steps: Vec<&str> = split_steps(glob).into_iter().filter(|s| !s.is_empty() && *s != ".").collect();
        if steps.contains(&"..") {
            return Err(format!("`{glob}`: globs stay under cwd (no `..`)"));
        }
        if steps.is_empty() {
            return Err(format!("`{glob}`: an empty glob matches nothing"));
        }
        let text = steps.join("/");
        glob_of(&text).map_err(|e| format!("invalid glob `{glob}`: {}", e.kind()))?;
        Ok(Pattern { text })
    }

    /// Has no wildcard: it names one path (a directory names everything under it too).
    fn is_literal(&self) -> bool {
        !self.text.contains(['*', '?', '[', '{', '\\'])
    }
}

/// `glob` cut at each `/` that is not inside braces or brackets.
fn split_steps(glob: &str) -> Vec<&str> {
    let (mut steps, mut start, mut depth, mut escaped) = (Vec::new(), 0, 0u32, false);
    for (i, c) in glob.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '{' | '[' => depth += 1,
            '}' | ']' => depth = depth.saturating_sub(1),
            '/' if depth == 0 => {
                steps.push(&glob[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    steps.push(&glob[start..]);
    steps
}

/// `*` stays within one step of the path; `**` crosses them.
fn glob_of(text: &str) -> Result<globset::Glob, globset::Error> {
    GlobBuilder::new(text).literal_separator(true).build()
}

/// One step of a watch glob, to tell which directories can hold a match.
enum Step {
    /// `**` (or a step spanning directories, `{a/b,c}`): anything below can match.
    Any,
    One(GlobMatcher),
}

/// What a definition's globs say of a path relative to its cwd.
struct Matcher {
    include: GlobSet,
    ignore: GlobSet,
    /// Directories whose whole content is ignored (from `x/**` ignores): never watched.
    ignored_dirs: GlobSet,
    /// The steps of each `watch` glob.
    steps: Vec<Vec<Step>>,
    /// PM_HOME, when it is under cwd: pm's own logs are never a change.
    home: Option<PathBuf>,
}

impl Matcher {
    fn new(def: &Key, home: &Path) -> Result<Matcher, String> {
        let mut include = GlobSetBuilder::new();
        let mut steps = Vec::new();
        for glob in &def.watch {
            let pattern = Pattern::parse(glob)?;
            let mut all = vec![pattern.text.clone()];
            if pattern.is_literal() {
                all.push(format!("{}/**", pattern.text));
            }
            for text in all {
                include.add(glob_of(&text).map_err(|e| e.to_string())?);
                steps.push(split_steps(&text).into_iter().map(step).collect());
            }
        }
        let mut ignore = GlobSetBuilder::new();
        let mut ignored_dirs = GlobSetBuilder::new();
        let given = def.ignore.iter().map(String::as_str);
        for glob in ALWAYS_IGNORED.into_iter().chain(given) {
            let text = Pattern::parse(glob)?.text;
            if let Some(dir) = text.strip_suffix("/**") {
                ignored_dirs.add(glob_of(dir).map_err(|e| e.to_string())?);
            }
            ignore.add(glob_of(&text).map_err(|e| e.to_string())?);
        }
        let built = |set: GlobSetBuilder| set.build().map_err(|e| e.to_string());
        Ok(Matcher {
            include: built(include)?,
            ignore: built(ignore)?,
            ignored_dirs: built(ignored_dirs)?,
            steps,
            home: home.strip_prefix(&def.cwd).ok().map(Path::to_path_buf),
        })
    }

    fn is_home(&self, rel: &Path) -> bool {
        self.home.as_ref().is_some_and(|home| rel.starts_with(home))
    }

    fn ignored(&self, rel: &Path) -> bool {
        self.ignore.is_match(rel) || self.is_home(rel)
    }

    /// Whether a change of `rel` restarts.
    fn matches(&self, rel: &Path) -> bool {
        self.include.is_match(rel) && !self.ignored(rel)
    }

    /// Whether the directory `rel` can hold a match: some glob's leading steps match its path and
    /// go deeper. Only such directories are watched.
    fn may_hold(&self, rel: &Path) -> bool {
        if self.ignored_dirs.is_match(rel) || self.ignored(rel) {
            return false;
        }
        let names: Vec<&std::ffi::OsStr> = rel.iter().collect();
        self.steps.iter().any(|steps| {
            for (i, name) in names.iter().enumerate() {
                match steps.get(i) {
                    None => return false,
                    Some(Step::Any) => return true,
                    Some(Step::One(glob)) if !glob.is_match(name) => return false,
                    Some(Step::One(_)) => {}
                }
            }
            steps.len() > names.len()
        })
    }
}

fn step(text: &str) -> Step {
    if text == "**" || text.contains('/') {
        return Step::Any;
    }
    // Any step of a valid glob compiles; were one not to, watching more is the safe side.
    glob_of(text).map_or(Step::Any, |glob| Step::One(glob.compile_matcher()))
}

/// What the watcher's thread saw, for the task.
enum Seen {
    /// A matching path changed (relative to cwd).
    Changed(PathBuf),
    /// A directory appeared (made, or moved in): to watch, and to look into.
    Dir(PathBuf),
    /// A directory went away (removed, or moved out).
    Gone(PathBuf),
}

/// The watcher's side: sorts events out on its thread, and queues what matters.
struct Sink {
    name: String,
    cwd: PathBuf,
    matcher: Arc<Matcher>,
    tx: mpsc::Sender<Seen>,
    /// Set when something could not be queued (or the kernel's own queue overflowed).
    missed: Arc<AtomicBool>,
}

impl Sink {
    fn handle(&self, event: notify::Result<notify::Event>) {
        let event = match event {
            Ok(event) => event,
            Err(e) => return tracing::warn!("{}: watch: {e}", self.name),
        };
        if event.need_rescan() {
            return self.missed.store(true, Ordering::SeqCst);
        }
        let (appears, leaves) = match event.kind {
            EventKind::Create(CreateKind::Folder) | EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
                (true, false)
            }
            EventKind::Remove(RemoveKind::File) => (false, false),
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From)) => (false, true),
            // Its `From` and `To` halves come as events of their own.
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => return,
            EventKind::Create(_) | EventKind::Modify(_) => (false, false),
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => (false, false),
            // Opening and reading change nothing.
            _ => return,
        };
        for path in event.paths {
            let Ok(rel) = path.strip_prefix(&self.cwd) else { continue };
            if self.matcher.ignored(rel) {
                continue;
            }
            if self.matcher.matches(rel) {
                self.queue(Seen::Changed(rel.to_path_buf()));
            }
            if appears && path.is_dir() && self.matcher.may_hold(rel) {
                self.queue(Seen::Dir(path));
            } else if leaves {
                self.queue(Seen::Gone(path));
            }
        }
    }

    /// Never waits: the watcher's thread must keep reading the kernel's queue.
    fn queue(&self, seen: Seen) {
        if self.tx.try_send(seen).is_err() {
            self.missed.store(true, Ordering::SeqCst);
        }
    }
}

/// What a watch is built from: when a redefinition changes none of it, the watch is kept.
#[derive(Debug, Clone, PartialEq)]
struct Key {
    cwd: PathBuf,
    watch: Vec<String>,
    ignore: Vec<String>,
    debounce: Duration,
}

impl Key {
    /// None: the definition watches nothing.
    fn of(def: &Definition) -> Option<Key> {
        if def.watch.is_empty() {
            return None;
        }
        Some(Key {
            cwd: def.cwd.clone()?,
            watch: def.watch.clone(),
            ignore: def.watch_ignore.clone(),
            debounce: def.watch_debounce,
        })
    }

    fn is_of(&self, def: &Definition) -> bool {
        Some(&self.cwd) == def.cwd.as_ref()
            && self.watch == def.watch
            && self.ignore == def.watch_ignore
            && self.debounce == def.watch_debounce
    }
}

/// A definition's watch: its task owns the watcher, and dropping this ends both (the inotify
/// descriptor is closed with the watcher).
pub(super) struct Watch {
    key: Key,
    _task: Beside,
}

/// The task's side: the watcher, the directories it watches, and the debounce.
struct Task {
    name: String,
    cwd: PathBuf,
    debounce: Duration,
    matcher: Arc<Matcher>,
    watcher: RecommendedWatcher,
    dirs: HashSet<PathBuf>,
    missed: Arc<AtomicBool>,
    /// Said once: no more directories can be watched.
    full: bool,
}

impl Task {
    /// Watches `dir` and the directories under it that can hold a match, each before it is
    /// listed. With `report`, returns the first matching path found in them: made before their
    /// watch was in place, it would be missed otherwise.
    fn add_tree(&mut self, dir: PathBuf, report: bool) -> Option<PathBuf> {
        let mut found = None;
        let mut todo = vec![dir];
        while let Some(dir) = todo.pop() {
            if self.full || self.dirs.contains(&dir) {
                continue;
            }
            if self.dirs.len() >= MAX_DIRS {
                tracing::warn!("{}: watch: more than {MAX_DIRS} directories; not watching more", self.name);
                self.full = true;
                continue;
            }
            match self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {}
                // Gone already.
                Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => continue,
                Err(e) => {
                    tracing::warn!("{}: watch: cannot watch {}: {e}", self.name, dir.display());
                    self.full = matches!(e.kind, notify::ErrorKind::MaxFilesWatch);
                    continue;
                }
            }
            self.dirs.insert(dir.clone());
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(rel) = path.strip_prefix(&self.cwd) else { continue };
                if report && found.is_none() && self.matcher.matches(rel) {
                    found = Some(rel.to_path_buf());
                }
                // Symbolic links are not followed: they could lead out of cwd, or in circles.
                if entry.file_type().is_ok_and(|t| t.is_dir()) && self.matcher.may_hold(rel) {
                    todo.push(path);
                }
            }
        }
        found
    }

    /// Forgets a directory that went away, and those under it.
    fn forget(&mut self, dir: &Path) {
        let gone: Vec<PathBuf> = self.dirs.iter().filter(|d| d.starts_with(dir)).cloned().collect();
        for d in gone {
            // A directory moved out is still watched under its old name: stop that.
            let _ = self.watcher.unwatch(&d);
            self.dirs.remove(&d);
        }
    }

    /// What a sighting means: a change (what changed, to say so), or nothing to restart for.
    fn take(&mut self, seen: Seen) -> Option<String> {
        let change = match seen {
            Seen::Changed(rel) => Some(format!("{} changed", rel.display())),
            Seen::Dir(dir) => self.add_tree(dir, true).map(|rel| format!("{} changed", rel.display())),
            Seen::Gone(dir) => {
                self.forget(&dir);
                None
            }
        };
        if self.missed.swap(false, Ordering::SeqCst) {
            // Whatever was missed, every directory is watched again, and it counts as a change.
            self.dirs.clear();
            self.full = false;
            self.add_tree(self.cwd.clone(), false);
            return change.or_else(|| Some("files changed (too many to name)".into()));
        }
        change
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Seen>, sup: Weak<Inner>) {
        loop {
            let why = loop {
                let Some(seen) = rx.recv().await else { return };
                if let Some(why) = self.take(seen) {
                    break why;
                }
            };
            // A burst restarts once: after a pause of `debounce`, or at the latest after ten.
            let latest = Instant::now() + self.debounce * MAX_WAIT_FACTOR;
            let mut quiet = Instant::now() + self.debounce;
            loop {
                tokio::select! {
                    seen = rx.recv() => match seen {
                        None => return,
                        Some(seen) => {
                            if self.take(seen).is_some() {
                                quiet = Instant::now() + self.debounce;
                            }
                        }
                    },
                    _ = sleep_until(quiet.min(latest)) => break,
                }
            }
            let Some(inner) = sup.upgrade() else { return };
            Supervisor { inner }.changed(&self.name, why).await;
        }
    }
}

impl Watch {
    fn start(name: &str, key: Key, home: &Path, sup: Weak<Inner>) -> Result<Watch, String> {
        if !key.cwd.is_dir() {
            return Err(format!("cwd {} is not a directory", key.cwd.display()));
        }
        let matcher = Arc::new(Matcher::new(&key, home)?);
        let (tx, rx) = mpsc::channel(QUEUE);
        let missed = Arc::new(AtomicBool::new(false));
        let sink =
            Sink { name: name.to_string(), cwd: key.cwd.clone(), matcher: matcher.clone(), tx, missed: missed.clone() };
        let watcher = notify::recommended_watcher(move |event| sink.handle(event)).map_err(|e| e.to_string())?;
        let mut task = Task {
            name: name.to_string(),
            cwd: key.cwd.clone(),
            debounce: key.debounce,
            matcher,
            watcher,
            dirs: HashSet::new(),
            missed,
            full: false,
        };
        task.add_tree(key.cwd.clone(), false);
        tracing::debug!("{name}: watching {} directories under {}", task.dirs.len(), key.cwd.display());
        Ok(Watch { key, _task: Beside::spawn(task.run(rx, sup)) })
    }
}

/// States with a run to restart, or one coming (a watch never starts what was stopped).
fn restartable(state: State) -> bool {
    matches!(state, State::Starting | State::Running | State::Ready | State::Unhealthy | State::Backoff)
}

impl Supervisor {
    /// Gives each definition with `watch` its watch, made anew where its watch keys changed, and
    /// drops those of definitions gone or no longer watching. Directories are walked outside the
    /// lock.
    pub(super) fn rewatch(&self) {
        let wanted: Vec<(String, Key)> = {
            let mut guard = self.lock();
            let reg = &mut *guard;
            let definitions = &reg.definitions;
            reg.watches.retain(|name, watch| definitions.get(name).is_some_and(|d| watch.key.is_of(d)));
            let new = definitions.iter().filter(|(name, _)| !reg.watches.contains_key(*name));
            new.filter_map(|(name, def)| Some((name.clone(), Key::of(def)?))).collect()
        };
        let home = self.inner.ctx.logs.home().root().to_path_buf();
        for (name, key) in wanted {
            let watch = match Watch::start(&name, key, &home, Arc::downgrade(&self.inner)) {
                Ok(watch) => watch,
                Err(e) => {
                    tracing::warn!("{name}: not watching files: {e}");
                    continue;
                }
            };
            // A definition changed meanwhile has its own watch made by the change.
            let mut reg = self.lock();
            if reg.definitions.get(&name).is_some_and(|d| watch.key.is_of(d)) {
                reg.watches.insert(name, watch);
            }
        }
    }

    /// A watched file changed: restarts the definition's instances that run or are about to.
    async fn changed(&self, definition: &str, why: String) {
        if self.inner.closing.load(Ordering::SeqCst) {
            return;
        }
        let instances: Vec<_> = {
            let reg = self.lock();
            let entries = reg.instances_of(definition).into_iter().filter_map(|name| reg.instances.get(&name));
            entries.filter(|e| restartable(e.instance.snapshot().state)).map(|e| e.instance.clone()).collect()
        };
        if instances.is_empty() {
            tracing::info!("{definition}: {why}; nothing running to restart");
            return;
        }
        tracing::info!("{definition}: {why}; restarting {} instance(s)", instances.len());
        for instance in instances {
            instance.send(Command::Restart(why.clone())).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(watch: &[&str], ignore: &[&str]) -> Key {
        Key {
            cwd: "/p".into(),
            watch: watch.iter().map(|s| s.to_string()).collect(),
            ignore: ignore.iter().map(|s| s.to_string()).collect(),
            debounce: Duration::from_millis(500),
        }
    }

    fn matcher(watch: &[&str], ignore: &[&str]) -> Matcher {
        Matcher::new(&key(watch, ignore), Path::new("/p/.pm")).unwrap()
    }

    #[test]
    fn globs_match_relative_paths_and_ignores_win() {
        let m = matcher(&["src/**/*.py", "./config.toml"], &["src/tmp/**"]);
        for yes in ["src/app.py", "src/a/b/c.py", "config.toml"] {
            assert!(m.matches(Path::new(yes)), "{yes}");
        }
        for no in ["app.py", "src/tmp/x.py", "notes.txt", "src/.git/x.py", "src/__pycache__/a.py", "src/a.py~"] {
            assert!(!m.matches(Path::new(no)), "{no}");
        }
        let home = matcher(&["**"], &[]);
        assert!(home.matches(Path::new("app.log")));
        assert!(!home.matches(Path::new(".pm/logs/web.out.log")), "pm's own files never count");
    }

    #[test]
    fn a_literal_directory_names_everything_under_it() {
        let m = matcher(&["lib"], &[]);
        assert!(m.matches(Path::new("lib")) && m.matches(Path::new("lib/a/b.rb")));
        assert!(!m.matches(Path::new("library.rb")));
    }

    #[test]
    fn only_directories_that_can_hold_a_match_are_watched() {
        let m = matcher(&["src/**/*.py", "*.toml", "{web,api}/*.js"], &["src/tmp/**"]);
        for yes in ["src", "src/a", "src/a/b", "web", "api"] {
            assert!(m.may_hold(Path::new(yes)), "{yes}");
        }
        for no in ["docs", "src/tmp", "src/tmp/deeper", "web/sub", "src/node_modules", ".git", ".pm"] {
            assert!(!m.may_hold(Path::new(no)), "{no}");
        }
        assert!(matcher(&["{a/b,c}/*.py"], &[]).may_hold(Path::new("a/b")));
    }

    #[test]
    fn bad_keys_are_named_with_their_index() {
        let mut def = Definition::new(vec!["x".into()]);
        def.cwd = Some("/p".into());
        def.watch = vec!["src/*.py".into(), "src/[".into()];
        let p = check(&def).unwrap_err();
        assert_eq!((p.key, p.index), ("watch", Some(1)));
        assert_eq!(p.to_string(), "watch[1]: invalid glob `src/[`: unclosed character class; missing ']'");
        def.watch = vec!["../up/*.py".into()];
        assert_eq!(check(&def).unwrap_err().to_string(), "watch[0]: `../up/*.py`: globs stay under cwd (no `..`)");
        def.watch = vec!["/etc/*".into()];
        assert_eq!(check(&def).unwrap_err().message, "`/etc/*`: globs are relative to cwd");
        def.watch = vec!["src".into()];
        def.watch_ignore = vec!["./".into()];
        assert_eq!(check(&def).unwrap_err().to_string(), "watch_ignore[0]: `./`: an empty glob matches nothing");
        def.watch_ignore = vec!["x".into(); MAX_GLOBS + 1];
        assert_eq!(check(&def).unwrap_err().to_string(), "watch_ignore: at most 64 globs (got 65)");
        def.watch_ignore.clear();
        def.watch_debounce = Duration::from_millis(5);
        assert_eq!(check(&def).unwrap_err().to_string(), "watch_debounce: must be from 10ms to 1h (got 5ms)");
        def.watch_debounce = Duration::from_millis(10);
        def.cwd = None;
        assert!(check(&def).unwrap_err().to_string().starts_with("cwd: `watch` needs an absolute cwd"));
        def.cwd = Some("/p".into());
        assert_eq!(check(&def), Ok(()));
    }

    #[test]
    fn steps_split_outside_braces_and_brackets() {
        assert_eq!(split_steps("a/{b/c,d}/[/]x/e"), ["a", "{b/c,d}", "[/]x", "e"]);
        assert_eq!(split_steps(r"a\{/b"), [r"a\{", "b"]);
    }
}
