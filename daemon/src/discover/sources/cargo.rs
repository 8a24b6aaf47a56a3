//! A `Cargo.toml`: each binary of the package becomes a sidecar that runs it from the checkout,
//! `cargo run -q --release --bin NAME` in the package's directory (cargo builds it first when it
//! has changed, so the sidecar is `started` before it is built: give it a readiness if others
//! depend on it).
//!
//! - The binaries are the `[[bin]]` entries, then, unless `autobins = false`, those cargo finds
//!   by itself: `src/main.rs` (named after the package), `src/bin/NAME.rs` and
//!   `src/bin/NAME/main.rs`. A bin's `required-features` are passed as `--features`.
//! - `[package.metadata.pm]` holds pm settings (see [`super::manifest`]), for every binary, and
//!   per binary in `[package.metadata.pm.NAME]`.
//! - A workspace (`[workspace] members`, globs per path step, minus `exclude`) gives the binaries
//!   of each member package too (at most [`MAX_MEMBERS`]), each run in its own directory with its
//!   own settings. What a member's file leaves untranslated is reported as
//!   `crates/api/Cargo.toml:LINE: KEY`.

use super::manifest::{Names, Settings, line};
use crate::config::{ConfigError, Format, Seg, Source, key, key_path};
use crate::discover::{SourceFile, Translated, Untranslated};
use pm_protocol::Definition;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The most member packages of a workspace read.
const MAX_MEMBERS: usize = 256;
/// The most binaries found under one package's `src/bin`.
const MAX_AUTO_BINS: usize = 256;
/// The most entries of one directory looked at when following a member glob.
const MAX_DIR_ENTRIES: usize = 4096;
/// The most path steps of a member glob followed (a symbolic link may loop).
const MAX_STEPS: usize = 32;
/// The largest member Cargo.toml read.
const MAX_MANIFEST: u64 = 1 << 20;

#[derive(Deserialize)]
struct CargoToml {
    package: Option<Package>,
    #[serde(default)]
    bin: Vec<Bin>,
    workspace: Option<Workspace>,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    autobins: Option<bool>,
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Deserialize, Default)]
struct Metadata {
    pm: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
struct Bin {
    name: Option<String>,
    path: Option<String>,
    #[serde(default, rename = "required-features")]
    required_features: Vec<String>,
}

#[derive(Deserialize)]
struct Workspace {
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
}

pub fn read(src: &SourceFile<'_>) -> Result<Translated, ConfigError> {
    let source = Source { file: src.path, text: src.text, format: Format::Toml };
    let manifest: CargoToml = source.parse()?;
    let mut names = Names::default();
    let mut out = Translated::default();
    if manifest.package.is_some() {
        out = package(&source, src.dir, &manifest, &mut names)?;
    }
    if let Some(workspace) = &manifest.workspace {
        for dir in members(src.dir, workspace, &source, &mut out.untranslated) {
            let member = member(&dir, &mut names, &mut out.untranslated)?;
            let rel = dir.strip_prefix(src.dir).unwrap_or(&dir).join("Cargo.toml");
            out.sidecars.extend(member.sidecars);
            out.untranslated.extend(member.untranslated.into_iter().map(|u| {
                let key = match u.line {
                    Some(line) => format!("{}:{line}: {}", rel.display(), u.key),
                    None => format!("{}: {}", rel.display(), u.key),
                };
                Untranslated { key, line: None, why: u.why }
            }));
        }
    }
    // Settings tables of two members may define sidecars of one name.
    let mut seen = BTreeSet::new();
    let (sidecars, clashes): (Vec<_>, Vec<_>) =
        out.sidecars.into_iter().partition(|(name, _)| seen.insert(name.clone()));
    for (name, _) in clashes {
        let why = format!("`{name}` is defined by two packages of the workspace; the first is kept");
        out.untranslated.push(
            Untranslated::new("workspace.members", line(&source, &[Seg::from("workspace"), Seg::from("members")]))
                .because(why),
        );
    }
    out.sidecars = sidecars;
    Ok(out)
}

/// The sidecars of the member package in `dir`.
fn member(dir: &Path, names: &mut Names, untranslated: &mut Vec<Untranslated>) -> Result<Translated, ConfigError> {
    let path = dir.join("Cargo.toml");
    let mut text = String::new();
    let read = std::fs::File::open(&path).and_then(|f| f.take(MAX_MANIFEST + 1).read_to_string(&mut text));
    read.map_err(|source| ConfigError::Read { path: path.clone(), source })?;
    if text.len() as u64 > MAX_MANIFEST {
        let why = format!("{} is larger than {MAX_MANIFEST} bytes; not read", path.display());
        untranslated.push(Untranslated::new("workspace.members", None).because(why));
        return Ok(Translated::default());
    }
    let source = Source { file: &path, text: &text, format: Format::Toml };
    let manifest: CargoToml = source.parse()?;
    if manifest.package.is_none() {
        let why = format!("{} has no [package]", path.display());
        untranslated.push(Untranslated::new("workspace.members", None).because(why));
        return Ok(Translated::default());
    }
    package(&source, dir, &manifest, names)
}

/// The sidecars of a package's binaries (`manifest` has a `[package]`).
fn package(src: &Source<'_>, dir: &Path, manifest: &CargoToml, names: &mut Names) -> Result<Translated, ConfigError> {
    let Some(package) = &manifest.package else { return Ok(Translated::default()) };
    let mut untranslated = Vec::new();
    // A [[bin]] of a name or path cargo would find by itself takes its place.
    let explicit: BTreeSet<String> = manifest
        .bin
        .iter()
        .flat_map(|bin| bin.name.iter().cloned().chain(bin.path.iter().map(|p| p.trim_start_matches("./").to_string())))
        .collect();
    let mut found = Vec::new();
    if package.autobins != Some(false) {
        found = found_bins(dir, &package.name);
        found.retain(|(name, path, _)| !explicit.contains(name) && !explicit.contains(path));
    }
    // The package's own binary first, then the [[bin]] entries, then the others cargo finds.
    let own = found.iter().position(|(_, path, _)| path == "src/main.rs").map(|i| found.remove(i));
    let mut derived = Vec::new();
    let auto = |(raw, path, at): AutoBin, names: &mut Names, untranslated: &mut Vec<Untranslated>| {
        let at = at.unwrap_or_else(|| vec![Seg::from(path.as_str())]);
        names.claim(src, &raw, &at, untranslated).map(|name| (name, Definition::new(run(&raw, &[]))))
    };
    derived.extend(own.and_then(|own| auto(own, names, &mut untranslated)));
    for (i, bin) in manifest.bin.iter().enumerate() {
        let Some(raw) = &bin.name else {
            let at = key!["bin", i];
            untranslated.push(Untranslated::new(key_path(&at), line(src, &at)).because("a [[bin]] without a name"));
            continue;
        };
        if let Some(name) =
            names.claim(src, raw, &[Seg::from("bin"), Seg::from(i), Seg::from("name")], &mut untranslated)
        {
            derived.push((name, Definition::new(run(raw, &bin.required_features))));
        }
    }
    for bin in found {
        derived.extend(auto(bin, names, &mut untranslated));
    }
    let settings = Settings::new(src, dir, key!["package", "metadata", "pm"], package.metadata.pm.clone())?;
    Ok(Translated { sidecars: settings.apply(derived)?, untranslated })
}

/// A binary cargo finds by itself: its name, its path from the package's directory, and the key
/// of its name in the manifest (for `src/main.rs`, named after the package).
type AutoBin = (String, String, Option<Vec<Seg>>);

/// The binaries cargo finds by itself in `dir`.
fn found_bins(dir: &Path, package: &str) -> Vec<AutoBin> {
    let mut found = Vec::new();
    if dir.join("src/main.rs").is_file() {
        found.push((package.to_string(), "src/main.rs".to_string(), Some(key!["package", "name"])));
    }
    let Ok(entries) = std::fs::read_dir(dir.join("src/bin")) else { return found };
    let mut bins: Vec<(String, String)> = entries
        .flatten()
        .take(MAX_DIR_ENTRIES)
        .filter_map(|entry| {
            let file = entry.file_name().into_string().ok()?;
            let path = entry.path();
            match file.strip_suffix(".rs") {
                Some(stem) if path.is_file() => Some((stem.to_string(), format!("src/bin/{file}"))),
                None if path.join("main.rs").is_file() => Some((file.clone(), format!("src/bin/{file}/main.rs"))),
                _ => None,
            }
        })
        .collect();
    bins.sort();
    bins.truncate(MAX_AUTO_BINS);
    found.extend(bins.into_iter().map(|(name, path)| (name, path, None)));
    found
}

/// `cargo run -q --release --bin NAME [--features A,B]`.
fn run(bin: &str, features: &[String]) -> Vec<String> {
    let mut argv: Vec<String> = ["cargo", "run", "-q", "--release", "--bin", bin].map(String::from).into();
    if !features.is_empty() {
        argv.extend(["--features".to_string(), features.join(",")]);
    }
    argv
}

/// The member directories of a workspace rooted at `root`, in the order its `members` give them.
fn members(root: &Path, workspace: &Workspace, src: &Source<'_>, untranslated: &mut Vec<Untranslated>) -> Vec<PathBuf> {
    let excluded: BTreeSet<PathBuf> =
        workspace.exclude.iter().flat_map(|pattern| expand(root, pattern).unwrap_or_default()).collect();
    let mut seen = BTreeSet::from([root.to_path_buf()]);
    let mut out = Vec::new();
    for (i, pattern) in workspace.members.iter().enumerate() {
        let at = key!["workspace", "members", i];
        let report = |why: String| Untranslated::new(key_path(&at), line(src, &at)).because(why);
        let dirs = match expand(root, pattern) {
            Ok(dirs) => dirs,
            Err(why) => {
                untranslated.push(report(why));
                continue;
            }
        };
        if dirs.is_empty() {
            untranslated.push(report(format!("`{pattern}` matches no directory")));
        }
        for dir in dirs {
            if excluded.contains(&dir) || !seen.insert(dir.clone()) {
                continue;
            }
            if !dir.join("Cargo.toml").is_file() {
                untranslated.push(report(format!("no Cargo.toml in {}", dir.display())));
                continue;
            }
            if out.len() == MAX_MEMBERS {
                untranslated.push(report(format!("more than {MAX_MEMBERS} members; the rest are not read")));
                return out;
            }
            out.push(dir);
        }
    }
    out
}

/// The directories a member path matches: each step a name or a glob (`crates/*`, `tools/*-cli`).
fn expand(root: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let mut dirs = vec![root.to_path_buf()];
    let steps: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    if steps.len() > MAX_STEPS {
        return Err(format!("`{pattern}`: more than {MAX_STEPS} path steps"));
    }
    for step in steps {
        if step == "**" {
            return Err(format!("`{pattern}`: `**` is not followed; list the members' directories"));
        }
        if step == ".." || !step.contains(['*', '?', '[']) {
            dirs = dirs.into_iter().map(|d| d.join(step)).collect();
            continue;
        }
        let glob = globset::Glob::new(step).map_err(|e| format!("`{pattern}`: {e}"))?.compile_matcher();
        let mut next = Vec::new();
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            let mut names: Vec<_> = entries
                .flatten()
                .take(MAX_DIR_ENTRIES)
                .filter(|e| e.path().is_dir() && glob.is_match(e.file_name()))
                .map(|e| e.path())
                .collect();
            names.sort();
            next.extend(names);
        }
        dirs = next;
        if dirs.len() > MAX_MEMBERS {
            dirs.truncate(MAX_MEMBERS + 1);
        }
    }
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::sources::testing::definitions;
    use pm_protocol::{Readiness, RestartPolicy};
    use std::time::Duration;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/discover/cargo");

    fn translate_in(dir: &Path) -> Result<Translated, ConfigError> {
        let text = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        read(&SourceFile { path: &dir.join("Cargo.toml"), dir, text: &text })
    }

    fn cargo_run(bin: &str, dir: &Path) -> Definition {
        let mut def = Definition::new(run(bin, &[]));
        def.cwd = Some(dir.to_path_buf());
        def
    }

    #[test]
    fn the_fixture_workspace_gives_each_members_binaries() {
        let root = Path::new(FIXTURE);
        let out = translate_in(root).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = out.sidecars.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["relay", "relay-admin", "ticker", "tick_audit"]);

        let relay_dir = root.join("crates/relay");
        let mut relay = cargo_run("relay", &relay_dir);
        relay.ready = Readiness::Log("^relay listening".into());
        relay.ready_timeout = Duration::from_secs(300);
        relay.stop_timeout = Duration::from_secs(5);
        let mut admin = cargo_run("relay-admin", &relay_dir);
        admin.command.extend(["--features".to_string(), "admin,tls".to_string()]);
        admin.autostart = false;
        admin.stop_timeout = Duration::from_secs(5);
        let ticker_dir = root.join("crates/ticker");
        let mut ticker = cargo_run("ticker", &ticker_dir);
        ticker.depends_on = vec!["relay".into()];
        ticker.restart = RestartPolicy::Always;
        let audit = cargo_run("Tick_Audit", &ticker_dir);
        definitions(&out, &[relay, admin, ticker, audit]);
        assert_eq!(
            out.untranslated,
            [Untranslated::new("crates/ticker/Cargo.toml: src/bin/Tick_Audit.rs", None)
                .because("named `tick_audit` in pm")]
        );
    }

    #[test]
    fn a_package_alone_its_autobins_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("src/main.rs", "fn main() {}");
        write("src/bin/b.rs", "fn main() {}");
        write("src/bin/c/main.rs", "fn main() {}");
        write("src/bin/notes.txt", "");
        write(
            "Cargo.toml",
            "[package]\nname = \"app\"\n\n[[bin]]\nname = \"b\"\npath = \"src/bin/b.rs\"\nrequired-features = [\"x\"]\n[[bin]]\npath = \"y.rs\"\n",
        );
        let out = translate_in(dir.path()).unwrap();
        let argv: Vec<(&str, String)> = out.sidecars.iter().map(|(n, d)| (n.as_str(), d.command.join(" "))).collect();
        assert_eq!(
            argv,
            [
                ("app", "cargo run -q --release --bin app".to_string()),
                ("b", "cargo run -q --release --bin b --features x".to_string()),
                ("c", "cargo run -q --release --bin c".to_string()),
            ]
        );
        assert_eq!(out.untranslated, [Untranslated::new("bin[1]", Some(8)).because("a [[bin]] without a name")]);

        write("Cargo.toml", "[package]\nname = \"app\"\nautobins = false\n");
        assert!(translate_in(dir.path()).unwrap().sidecars.is_empty());
        write("Cargo.toml", "[package]\nname = \"app\"\n[package.metadata.pm.app]\nready = \"sometimes\"\n");
        let err = translate_in(dir.path()).unwrap_err().to_string();
        assert!(err.contains("Cargo.toml:4: package.metadata.pm.app.ready: unknown variant `sometimes`"), "{err}");
        write("Cargo.toml", "[package]\nversion = \"1\"\n");
        let err = translate_in(dir.path()).unwrap_err().to_string();
        assert!(err.contains("Cargo.toml:1: package: missing field `name`"), "{err}");
        write("Cargo.toml", "[workspace]\nmembers = [\"**\", \"[\", \"nope\", \"src/*\", \"none/*\"]\n");
        let out = translate_in(dir.path()).unwrap();
        let whys: Vec<&str> = out.untranslated.iter().filter_map(|u| u.why.as_deref()).collect();
        let base = dir.path().display();
        assert_eq!(
            whys,
            [
                "`**`: `**` is not followed; list the members' directories".to_string(),
                "`[`: error parsing glob '[': unclosed character class; missing ']'".to_string(),
                format!("no Cargo.toml in {base}/nope"),
                format!("no Cargo.toml in {base}/src/bin"),
                "`none/*` matches no directory".to_string(),
            ]
        );
        write("Cargo.toml", "");
        assert!(translate_in(dir.path()).unwrap().sidecars.is_empty());
        write("Cargo.toml", "[package");
        assert!(translate_in(dir.path()).is_err());
    }
}
