//! What `pm install` is given: `npm:NAME[@VERSION]`, `pip:NAME[==VERSION]`,
//! `cargo:CRATE[@VERSION]`, `docker:IMAGE[:TAG]`, or a path whose kind its name or contents
//! say. Every name and version is checked here, before any package manager sees it: none may
//! pass for one of its options.

use super::Kind;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// The forms, for errors.
pub const FORMS: &str = "npm:NAME[@VERSION], pip:NAME[==VERSION], cargo:CRATE[@VERSION], docker:IMAGE[:TAG], or a \
                         path: an npm pack .tgz, a .whl, or a directory with package.json, pyproject.toml or \
                         Cargo.toml";

/// The longest spec taken.
const MAX_SPEC: usize = 512;
/// The longest version (a range, a tag, a digest).
const MAX_VERSION: usize = 128;

/// A package to install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// A registry's package, and the version asked for (none: the newest; docker: the tag).
    Registry { kind: Kind, name: String, version: Option<String> },
    /// A local artifact or directory, absolute.
    Path { kind: Kind, path: PathBuf },
}

impl Spec {
    pub fn parse(text: &str) -> anyhow::Result<Spec> {
        if text.is_empty() || text.len() > MAX_SPEC || text.chars().any(char::is_control) {
            bail!("not a package: give {FORMS}");
        }
        let Some((prefix, rest)) = text.split_once(':').filter(|(p, _)| p.chars().all(|c| c.is_ascii_alphanumeric()))
        else {
            return local(text, None);
        };
        let kind = match prefix {
            "npm" => Kind::Npm,
            "pip" => Kind::Pip,
            "cargo" => Kind::Cargo,
            "docker" => Kind::Docker,
            other => bail!("unknown registry `{other}:` in `{text}`; pm install takes {FORMS}"),
        };
        if kind != Kind::Docker && (rest.starts_with('/') || rest.starts_with('.')) {
            return local(rest, Some(kind));
        }
        registry(kind, rest).with_context(|| format!("`{text}`"))
    }

    pub fn kind(&self) -> Kind {
        match self {
            Spec::Registry { kind, .. } | Spec::Path { kind, .. } => *kind,
        }
    }

    /// The registry's `package` at `version` (none: the newest), as `pm update` asks for it.
    pub fn of(kind: Kind, package: &str, version: Option<&str>) -> anyhow::Result<Spec> {
        let kind_name = kind.as_str();
        Spec::parse(&match (kind, version) {
            (_, None) => format!("{kind_name}:{package}"),
            (Kind::Pip, Some(version)) => format!("pip:{package}=={version}"),
            (Kind::Docker, Some(digest)) if digest.starts_with("sha256:") => format!("docker:{package}@{digest}"),
            (Kind::Docker, Some(tag)) => format!("docker:{package}:{tag}"),
            (_, Some(version)) => format!("{kind_name}:{package}@{version}"),
        })
    }
}

/// `NAME[@VERSION]` (npm, cargo), `NAME[==VERSION]` (pip), `IMAGE[:TAG|@DIGEST]` (docker).
fn registry(kind: Kind, rest: &str) -> anyhow::Result<Spec> {
    let (name, version) = match kind {
        // A scope's `@` comes first: the version's is a later one.
        Kind::Npm | Kind::Cargo => match rest.rfind('@').filter(|&at| at > 0) {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        },
        Kind::Pip => match rest.split_once("==") {
            Some((name, version)) => (name, Some(version)),
            None if rest.contains(['<', '>', '=', '~', '!', '@', ' ']) => {
                bail!("pip:NAME==VERSION takes an exact version, or none for the newest")
            }
            None => (rest, None),
        },
        Kind::Docker => image(rest),
        Kind::Link => bail!("no registry of links"),
    };
    check_name(kind, name)?;
    if let Some(version) = version {
        match kind {
            Kind::Docker => check_tag(version)?,
            _ => check_version(version)?,
        }
    }
    Ok(Spec::Registry { kind, name: name.to_string(), version: version.map(str::to_string) })
}

/// An image reference split into repository and tag (or digest, `sha256:…`).
fn image(reference: &str) -> (&str, Option<&str>) {
    if let Some((repo, digest)) = reference.split_once('@') {
        return (repo, Some(digest));
    }
    // A registry's port (`host:5000/x`) comes before the last `/`; a tag after it.
    let last = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last..].rfind(':') {
        Some(colon) => (&reference[..last + colon], Some(&reference[last + colon + 1..])),
        None => (reference, None),
    }
}

/// A registry's package name, as its package manager allows it.
pub(super) fn check_name(kind: Kind, name: &str) -> anyhow::Result<()> {
    let word = |w: &str, extra: &str| {
        w.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && w.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    let (ok, max, what) = match kind {
        Kind::Npm => {
            let ok = match name.strip_prefix('@') {
                Some(scoped) => scoped.split_once('/').is_some_and(|(s, n)| word(s, "._~-") && word(n, "._~-")),
                None => word(name, "._~-"),
            };
            (ok, 214, "npm names are [@scope/]name of letters, digits and ._~-")
        }
        Kind::Pip => (word(name, "._-"), 128, "Python distribution names are letters, digits and ._-"),
        Kind::Cargo => (word(name, "_-"), 64, "crate names are letters, digits, _ and -"),
        Kind::Docker => {
            let ok = name.split('/').all(|part| word(part, "._-:")) && !name.chars().any(|c| c.is_ascii_uppercase());
            (ok, 255, "image names are lowercase letters, digits and ._-/ (and a registry's host:port)")
        }
        Kind::Link => (false, 0, "no such registry"),
    };
    if name.is_empty() {
        bail!("no package name");
    }
    if !ok || name.len() > max {
        bail!("`{name}` is not a package name: {what}, at most {max} bytes");
    }
    Ok(())
}

/// A version as a package manager takes it (`1.2.3`, `^1.2`, `next`, a digest), never an
/// option; also a directory's name.
pub fn check_version(version: &str) -> anyhow::Result<()> {
    let ok = version.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || "^~<>=*".contains(c))
        && version.chars().all(|c| c.is_ascii_alphanumeric() || "._+-~^*<>=!:".contains(c));
    if !ok || version.len() > MAX_VERSION {
        bail!("`{version}` is not a version: letters, digits and ._+-~^*<>=!:, at most {MAX_VERSION} bytes");
    }
    Ok(())
}

/// A tag (`v1.2`), or a digest (`sha256:<hex>`).
fn check_tag(tag: &str) -> anyhow::Result<()> {
    let digest =
        tag.strip_prefix("sha256:").is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()));
    let plain = tag.len() <= 128
        && tag.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !digest && !plain {
        bail!("`{tag}` is not an image tag ([A-Za-z0-9_.-], at most 128) or digest (sha256:…)");
    }
    Ok(())
}

/// A path: its kind said (`npm:./x.tgz`), or told by its name (`.tgz`, `.whl`) or, for a
/// directory, by the manifest in it.
fn local(text: &str, kind: Option<Kind>) -> anyhow::Result<Spec> {
    let path = std::path::absolute(text).with_context(|| format!("`{text}`"))?;
    let meta = std::fs::metadata(&path).map_err(|e| {
        let hint = if kind.is_none() { format!("; pm install takes {FORMS}") } else { String::new() };
        anyhow::anyhow!("`{text}`: {e}{hint}")
    })?;
    let kind = match kind {
        Some(said) if meta.is_dir() && !MANIFESTS.iter().any(|(f, k)| *k == said && path.join(f).is_file()) => {
            let files: Vec<&str> = MANIFESTS.iter().filter(|(_, k)| *k == said).map(|(f, _)| *f).collect();
            bail!("`{text}` has no {} (a {} project has one)", files.join(" or "), said.as_str())
        }
        Some(said) => Some(said),
        None if meta.is_dir() => manifest_kind(&path)?,
        None => artifact_kind(&path),
    }
    .ok_or_else(|| anyhow::anyhow!("`{text}`: not a package pm install knows; it takes {FORMS}"))?;
    Ok(Spec::Path { kind, path })
}

/// The kind of an artifact, by its name.
fn artifact_kind(path: &Path) -> Option<Kind> {
    let name = path.file_name()?.to_str()?;
    if name.ends_with(".tgz") || name.ends_with(".tar.gz") {
        Some(Kind::Npm)
    } else if name.ends_with(".whl") {
        Some(Kind::Pip)
    } else {
        None
    }
}

/// The manifests that say a directory's kind.
const MANIFESTS: [(&str, Kind); 4] =
    [("package.json", Kind::Npm), ("pyproject.toml", Kind::Pip), ("setup.py", Kind::Pip), ("Cargo.toml", Kind::Cargo)];

/// The kind of a project directory, by its manifest; more than one kind is ambiguous.
fn manifest_kind(dir: &Path) -> anyhow::Result<Option<Kind>> {
    let mut found: Vec<(&str, Kind)> = MANIFESTS.into_iter().filter(|(file, _)| dir.join(file).is_file()).collect();
    found.dedup_by_key(|(_, kind)| *kind);
    match found.as_slice() {
        [] => Ok(None),
        [(_, kind)] => Ok(Some(*kind)),
        [(a, ka), (b, kb), ..] => {
            let dir = dir.display();
            bail!("{dir} has both {a} and {b}: say which with {}:{dir} or {}:{dir}", ka.as_str(), kb.as_str())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(kind: Kind, name: &str, version: Option<&str>) -> Spec {
        Spec::Registry { kind, name: name.into(), version: version.map(Into::into) }
    }

    #[test]
    fn registry_forms() {
        assert_eq!(Spec::parse("npm:left-pad").unwrap(), reg(Kind::Npm, "left-pad", None));
        assert_eq!(Spec::parse("npm:left-pad@1.3.0").unwrap(), reg(Kind::Npm, "left-pad", Some("1.3.0")));
        assert_eq!(Spec::parse("npm:@acme/tool@^2").unwrap(), reg(Kind::Npm, "@acme/tool", Some("^2")));
        assert_eq!(Spec::parse("npm:@acme/tool").unwrap(), reg(Kind::Npm, "@acme/tool", None));
        assert_eq!(Spec::parse("pip:httpie==3.2.2").unwrap(), reg(Kind::Pip, "httpie", Some("3.2.2")));
        assert_eq!(Spec::parse("pip:zope.interface").unwrap(), reg(Kind::Pip, "zope.interface", None));
        assert_eq!(Spec::parse("cargo:ripgrep@14.1.0").unwrap(), reg(Kind::Cargo, "ripgrep", Some("14.1.0")));
        assert_eq!(Spec::parse("docker:redis").unwrap(), reg(Kind::Docker, "redis", None));
        assert_eq!(Spec::parse("docker:redis:7").unwrap(), reg(Kind::Docker, "redis", Some("7")));
        assert_eq!(
            Spec::parse("docker:localhost:5000/team/web:v2").unwrap(),
            reg(Kind::Docker, "localhost:5000/team/web", Some("v2"))
        );
        assert_eq!(Spec::parse("docker:localhost:5000/web").unwrap(), reg(Kind::Docker, "localhost:5000/web", None));
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(Spec::parse(&format!("docker:web@{digest}")).unwrap(), reg(Kind::Docker, "web", Some(&digest)));
    }

    #[test]
    fn bad_names_and_versions_never_reach_a_package_manager() {
        let err = |text: &str| format!("{:#}", Spec::parse(text).unwrap_err());
        assert!(err("gem:rails").starts_with("unknown registry `gem:` in `gem:rails`; pm install takes npm:NAME"));
        assert_eq!(err("npm:"), "`npm:`: no package name");
        assert!(err("npm:--global").contains("`--global` is not a package name"), "{}", err("npm:--global"));
        assert!(err("npm:x@--registry=evil").contains("`--registry=evil` is not a version"));
        assert!(err("pip:x>=1").contains("pip:NAME==VERSION takes an exact version"));
        assert!(err("pip:x==1 2").contains("`1 2` is not a version"));
        assert!(err("cargo:a/b").contains("`a/b` is not a package name"));
        assert!(err("docker:Web").contains("`Web` is not a package name"));
        assert!(err("docker:web:-x").contains("`-x` is not an image tag"));
        assert!(err("docker:web@sha256:zz").contains("not an image tag"));
        assert!(err(&format!("npm:{}", "a".repeat(300))).contains("at most 214 bytes"));
        assert!(err(&"a".repeat(600)).starts_with("not a package"));
        assert!(err("x\ny").starts_with("not a package"));
        assert!(err("").starts_with("not a package"));
        assert!(err("npm:日本").contains("is not a package name"));
    }

    #[test]
    fn paths_by_their_name_or_their_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        std::fs::write(at("tool-1.0.0.tgz"), "").unwrap();
        std::fs::write(at("tool-1.0-py3-none-any.whl"), "").unwrap();
        std::fs::write(at("notes.txt"), "").unwrap();
        for (sub, manifest) in
            [("js", "package.json"), ("py", "pyproject.toml"), ("rs", "Cargo.toml"), ("both", "Cargo.toml")]
        {
            std::fs::create_dir_all(at(sub)).unwrap();
            std::fs::write(at(sub).join(manifest), "").unwrap();
        }
        std::fs::write(at("both/package.json"), "").unwrap();
        let path = |name: &str| at(name).display().to_string();
        let kind = |text: &str| Spec::parse(text).unwrap().kind();
        assert_eq!(kind(&path("tool-1.0.0.tgz")), Kind::Npm);
        assert_eq!(kind(&path("tool-1.0-py3-none-any.whl")), Kind::Pip);
        assert_eq!(kind(&path("js")), Kind::Npm);
        assert_eq!(kind(&path("py")), Kind::Pip);
        assert_eq!(kind(&path("rs")), Kind::Cargo);
        assert_eq!(kind(&format!("cargo:{}", path("both"))), Kind::Cargo);
        assert_eq!(Spec::parse(&path("rs")).unwrap(), Spec::Path { kind: Kind::Cargo, path: at("rs") });
        let err = |text: &str| format!("{:#}", Spec::parse(text).unwrap_err());
        assert!(err(&path("both")).contains("has both package.json and Cargo.toml: say which with npm:"));
        assert!(err(&path("notes.txt")).contains("not a package pm install knows; it takes npm:NAME"));
        assert!(err(&path("missing")).contains("No such file or directory"));
        assert!(
            err(&format!("pip:{}", path("rs"))).ends_with("has no pyproject.toml or setup.py (a pip project has one)")
        );
        assert_eq!(kind(&format!("npm:{}", path("tool-1.0-py3-none-any.whl"))), Kind::Npm, "said is said");
        assert!(err("express").contains("No such file or directory (os error 2); pm install takes npm:NAME"));
    }
}
