//! `pm install`: a package from npm, PyPI, crates.io or a Docker registry (or a local artifact of
//! one of those kinds), installed by its own package manager into a directory of its own,
//! PM_HOME/packages/<name>/<version>/, and the sidecars it gives. The command line maps those
//! through `pm.sync` with the package as their source (`npm:NAME@VERSION`, …).
//!
//! An install runs in PM_HOME/packages/.staging until the package's name and version are known,
//! then moves to its own directory; anything that fails removes what was made, so a failed
//! install leaves nothing behind but the package manager's output in PM_HOME/packages/install.log.

mod cargo;
mod docker;
mod index;
mod npm;
mod pip;
mod progress;
mod spec;

pub use index::{Index, Lock, Package, Packages};
pub use progress::Progress;
pub use spec::Spec;

use crate::discover::{Found, FoundSidecar, NotTranslated, Untranslated, pm_name};
use anyhow::{Context, bail};
use pm_protocol::Definition;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which package manager a package comes through; `link` is a checkout mapped where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Npm,
    Pip,
    Cargo,
    Docker,
    Link,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Npm => "npm",
            Kind::Pip => "pip",
            Kind::Cargo => "cargo",
            Kind::Docker => "docker",
            Kind::Link => "link",
        }
    }

    /// How a definition of this package names its source: `npm:NAME@VERSION`,
    /// `docker:IMAGE:TAG`.
    pub fn source(self, package: &str, version: &str) -> String {
        match self {
            Kind::Docker if version.starts_with("sha256:") => format!("docker:{package}@{version}"),
            Kind::Docker => format!("docker:{package}:{version}"),
            Kind::Link => format!("link:{package}"),
            _ => format!("{}:{package}@{version}", self.as_str()),
        }
    }
}

/// What a package is, once its package manager has it: the name it has there (`@acme/tool`, a
/// distribution, a crate, an image) and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub package: String,
    pub version: String,
}

/// A package installed in its own directory with the sidecars it gives, not yet mapped: the
/// directory is removed when this is dropped, unless [`Installed::keep`] was called.
pub struct Installed {
    /// What the index will record (its `prefix` and `definitions` are the caller's to fill).
    pub package: Package,
    /// Its name in pm: `pm uninstall NAME`, `pm update NAME`.
    pub name: String,
    pub found: Found,
    dir: Removal,
}

impl Installed {
    /// Keeps the directory: the package is mapped.
    pub fn keep(mut self) -> Package {
        self.dir.armed = false;
        self.package
    }
}

/// Installs what `spec` names. `accept` sees the package's name in pm and what it resolved to
/// before it takes a directory, and may refuse it (already installed, the same version, …).
pub async fn install(
    packages: &Packages,
    spec: &Spec,
    name: Option<&str>,
    progress: &Progress,
    accept: impl FnOnce(&str, &Resolved) -> anyhow::Result<()>,
) -> anyhow::Result<Installed> {
    let staging = Removal::new(packages.staging()?);
    let kind = spec.kind();
    let resolved = match kind {
        Kind::Npm => npm::stage(spec, &staging.path, progress).await?,
        Kind::Pip => pip::stage(spec, &staging.path, progress).await?,
        Kind::Cargo => cargo::stage(spec, &staging.path, progress).await?,
        Kind::Docker => docker::stage(spec, progress).await?,
        Kind::Link => bail!("a link is not installed: `pm link NAME PATH`"),
    };
    let name = match name {
        Some(name) => name.to_string(),
        None => {
            let name = pm_name(resolved.package.rsplit('/').next().unwrap_or(&resolved.package));
            if let Err(why) = pm_protocol::validate_name(&name) {
                bail!("`{}` makes no pm name ({why}); give one with --name", resolved.package);
            }
            name
        }
    };
    spec::check_version(&resolved.version)
        .with_context(|| format!("{} {} cannot be installed", resolved.package, resolved.version))?;
    accept(&name, &resolved)?;
    let dir = packages.dir(&name, &resolved.version);
    let dir = staging.move_to(dir)?;
    let found = match kind {
        Kind::Npm => npm::sidecars(&dir.path, &resolved)?,
        Kind::Pip => pip::install(spec, &dir.path, &resolved, progress).await?,
        Kind::Cargo => cargo::sidecars(spec, &dir.path)?,
        Kind::Docker => docker::sidecars(&resolved),
        Kind::Link => bail!("a link is not installed"),
    };
    if found.sidecars.is_empty() {
        bail!("{} {} gives no sidecar: {}", resolved.package, resolved.version, nothing_found(kind));
    }
    progress.keep_log(&dir.path.join(progress::LOG));
    let from = match spec {
        Spec::Path { path, .. } => Some(path.clone()),
        Spec::Registry { .. } => None,
    };
    let package = Package {
        kind,
        source: kind.source(&resolved.package, &resolved.version),
        package: resolved.package,
        version: resolved.version,
        from,
        dir: dir.path.clone(),
        prefix: String::new(),
        definitions: Vec::new(),
    };
    Ok(Installed { package, name, found, dir })
}

/// What each kind's sidecars come from, for a package that gave none.
fn nothing_found(kind: Kind) -> &'static str {
    match kind {
        Kind::Npm => "its package.json has no bin, commands, main or scripts.start",
        Kind::Pip => "it has no console script ([project.scripts])",
        Kind::Cargo => "it has no binary",
        Kind::Docker | Kind::Link => "nothing to run",
    }
}

/// Removes a directory, and its parent once empty (a package's directory with no version left).
pub fn remove_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => bail!("cannot remove {}: {e}", dir.display()),
    }
    if let Some(parent) = dir.parent() {
        // Only when empty: another version may still be there.
        let _ = std::fs::remove_dir(parent);
    }
    Ok(())
}

/// A directory removed when this is dropped, while armed.
struct Removal {
    path: PathBuf,
    armed: bool,
}

impl Removal {
    fn new(path: PathBuf) -> Self {
        Removal { path, armed: true }
    }

    /// Moves the directory to `to` (a leftover there, from an install that was killed, goes).
    fn move_to(mut self, to: PathBuf) -> anyhow::Result<Removal> {
        remove_dir(&to)?;
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::rename(&self.path, &to)
            .with_context(|| format!("cannot move {} to {}", self.path.display(), to.display()))?;
        self.armed = false;
        Ok(Removal::new(to))
    }
}

impl Drop for Removal {
    fn drop(&mut self) {
        if self.armed {
            let _ = remove_dir(&self.path);
        }
    }
}

/// The sidecars of the programs a package installed (`(name, path)`): each runs the installed
/// file in the package's directory. A package installed from a checkout takes the pm settings
/// its manifest gives each program (`[tool.pm]`, `[package.metadata.pm]`), read by `pm
/// discover`'s translator of that manifest; its command stays the installed program.
fn programs(
    kind: Kind,
    dir: &Path,
    programs: Vec<(String, PathBuf)>,
    manifest: Option<(PathBuf, &str)>,
) -> anyhow::Result<Found> {
    let mut found = Found::default();
    let mut settings: BTreeMap<String, Definition> = BTreeMap::new();
    let file = match manifest {
        Some((manifest, translator)) => {
            let scanned = crate::discover::scan(&manifest, Some(translator))?;
            found.untranslated = scanned.untranslated;
            settings = scanned.sidecars.into_iter().map(|s| (s.name, s.definition)).collect();
            manifest
        }
        None => dir.to_path_buf(),
    };
    found.files.push(file.clone());
    for (raw, path) in programs {
        let name = pm_name(&raw);
        let report =
            |why: String| NotTranslated { file: file.clone(), key: Untranslated::new(raw.clone(), None).because(why) };
        if name.is_empty() {
            found
                .untranslated
                .push(report(format!("`{raw}` has nothing a pm name can be made of ([a-z0-9_-]); skipped")));
            continue;
        }
        if name != raw {
            found.untranslated.push(report(format!("named `{name}` in pm")));
        }
        let mut definition = settings.remove(&name).unwrap_or_else(|| Definition::new(Vec::new()));
        definition.command = vec![path.display().to_string()];
        definition.cwd = Some(dir.to_path_buf());
        found.sidecars.push(FoundSidecar { name, kind: kind.as_str(), file: file.clone(), definition });
    }
    for name in settings.into_keys() {
        let why = "the manifest's pm settings name it, but the package installs no program of that name; not mapped";
        found.untranslated.push(NotTranslated { file: file.clone(), key: Untranslated::new(name, None).because(why) });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_name_the_package_and_version() {
        assert_eq!(Kind::Npm.source("@acme/tool", "1.2.0"), "npm:@acme/tool@1.2.0");
        assert_eq!(Kind::Pip.source("hello", "2.0"), "pip:hello@2.0");
        assert_eq!(Kind::Docker.source("ghcr.io/acme/web", "v1"), "docker:ghcr.io/acme/web:v1");
        assert_eq!(Kind::Link.source("/src/app", ""), "link:/src/app");
    }

    #[test]
    fn installed_programs_run_from_the_package_with_their_manifest_settings() {
        let checkout = tempfile::tempdir().unwrap();
        let manifest = checkout.path().join("pyproject.toml");
        std::fs::write(
            &manifest,
            "[project]\nname = \"x\"\n[project.scripts]\nserve = \"x:main\"\n\
             [tool.pm.serve]\ninstances = 2\n[tool.pm.extra]\ncommand = \"sleep 1\"\n",
        )
        .unwrap();
        let dir = Path::new("/pm/packages/x/1.0");
        let scripts = vec![
            ("serve".to_string(), dir.join("venv/bin/serve")),
            ("Other.Tool".to_string(), dir.join("venv/bin/Other.Tool")),
            ("日本".to_string(), dir.join("venv/bin/日本")),
        ];
        let found = programs(Kind::Pip, dir, scripts, Some((manifest.clone(), "pyproject"))).unwrap();
        let names: Vec<&str> = found.sidecars.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["serve", "other-tool"]);
        let serve = &found.sidecars[0].definition;
        assert_eq!(serve.command, ["/pm/packages/x/1.0/venv/bin/serve"]);
        assert_eq!((serve.instances, serve.cwd.as_deref()), (2, Some(dir)));
        assert_eq!(found.sidecars[1].definition.instances, 1);
        let keys: Vec<(&str, Option<&str>)> =
            found.untranslated.iter().map(|n| (n.key.key.as_str(), n.key.why.as_deref())).collect();
        assert_eq!(
            keys,
            [
                ("Other.Tool", Some("named `other-tool` in pm")),
                ("日本", Some("`日本` has nothing a pm name can be made of ([a-z0-9_-]); skipped")),
                (
                    "extra",
                    Some(
                        "the manifest's pm settings name it, but the package installs no program of that name; \
                         not mapped"
                    )
                ),
            ]
        );
        let plain = programs(Kind::Cargo, dir, vec![("tool".into(), dir.join("bin/tool"))], None).unwrap();
        assert_eq!(plain.files, [dir]);
        assert_eq!(plain.sidecars[0].definition.command, ["/pm/packages/x/1.0/bin/tool"]);
    }
}
