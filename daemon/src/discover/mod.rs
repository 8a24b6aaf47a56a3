//! `pm discover`: sidecar definitions from the files a project already has (a Procfile, a
//! docker-compose file, a package.json, a PM2 ecosystem file, a supervisord.conf, …), each
//! translated by its own module in [`sources`], with every key pm has no equivalent for reported
//! by name and line, never dropped without a word.

mod scan;
pub mod sources;

pub use scan::{Found, FoundSidecar, NotTranslated, Skipped, scan};

use crate::config::ConfigError;
use pm_protocol::Definition;
use serde::Serialize;
use std::path::Path;

/// One file to translate.
pub struct SourceFile<'a> {
    /// The file, absolute.
    pub path: &'a Path,
    /// Its directory: relative paths in it (cwd, env files, volumes) are anchored here, and a
    /// definition without a `cwd` runs here.
    pub dir: &'a Path,
    pub text: &'a str,
}

/// What a file says, in pm's terms.
#[derive(Debug, Default)]
pub struct Translated {
    /// The sidecars, by pm name (see [`pm_name`]), in the file's order.
    pub sidecars: Vec<(String, Definition)>,
    /// What has no pm equivalent (yet), each by the key path of the file's own format.
    pub untranslated: Vec<Untranslated>,
}

/// A key of a source file pm did not translate: `not translated: services.web.deploy
/// (compose.yaml:12)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Untranslated {
    /// The key path, e.g. `services.web.deploy` or `program:web.umask`.
    pub key: String,
    /// 1-based line in the file, when it can be found.
    pub line: Option<usize>,
    /// Why, when the key alone does not say (a value pm cannot express, say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

impl Untranslated {
    pub fn new(key: impl Into<String>, line: Option<usize>) -> Self {
        Untranslated { key: key.into(), line, why: None }
    }

    pub fn because(mut self, why: impl Into<String>) -> Self {
        self.why = Some(why.into());
        self
    }
}

/// Reads a source file: its sidecars, or an error naming the file (and line and key where known).
pub type Read = fn(&SourceFile<'_>) -> Result<Translated, ConfigError>;

/// A name a source gave, made a valid pm name: lowercase, each run of characters other than
/// `[a-z0-9_-]` turned to one `-`, leading `-`/`_` dropped, cut to 64 bytes; `pm` (the daemon's
/// own name) becomes `pm-app`. Empty when nothing is left (the caller reports that).
pub fn pm_name(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut name: String = out.trim_start_matches(['-', '_']).trim_end_matches('-').to_string();
    name.truncate(crate::supervisor::MAX_DEFINITION_NAME_LEN);
    if name == pm_protocol::DAEMON_NAME {
        name = "pm-app".into();
    }
    name
}

#[cfg(test)]
mod tests {
    use super::pm_name;

    #[test]
    fn source_names_become_pm_names() {
        assert_eq!(pm_name("web"), "web");
        assert_eq!(pm_name("Web.App"), "web-app");
        assert_eq!(pm_name("my app (v2)"), "my-app-v2");
        assert_eq!(pm_name("_worker"), "worker");
        assert_eq!(pm_name("pm"), "pm-app");
        assert_eq!(pm_name("日本"), "");
        assert_eq!(pm_name(&"a".repeat(300)).len(), 64);
    }
}
