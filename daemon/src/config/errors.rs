//! What can go wrong with a project file; every message is one line that says where.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A project file could not be found, read or accepted.
///
/// `Parse`, `Invalid` and `Interpolation` display as `FILE[:LINE]: [KEY: ]MESSAGE`, e.g.
/// ``pm.toml:7: sidecars.web.restart: unknown variant `sometimes`, expected one of …``.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No project file in a directory.
    #[error(
        "no project file in {}: looked for {}; create one there, or name one with `pm start -f FILE`",
        dir.display(),
        looked_for.join(", ")
    )]
    NotFound { dir: PathBuf, looked_for: Vec<&'static str> },

    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file's extension names no format pm reads.
    #[error(
        "{}: unknown project file format; name it *.toml, *.yaml, *.yml or *.json",
        path.display()
    )]
    UnknownFormat { path: PathBuf },

    /// The file is not valid TOML/YAML/JSON, or does not have the project file's shape
    /// (unknown key, wrong type, bad enum value, bad duration, bad name…).
    #[error("{}{message}", at(file, *line, key))]
    Parse {
        file: PathBuf,
        /// 1-based, when the format tells it.
        line: Option<usize>,
        /// Dotted key path, e.g. `sidecars.web.restart`; empty for the whole document.
        key: String,
        message: String,
    },

    /// A value has the right shape but is not acceptable (e.g. `instances = 0`).
    #[error("{}{message}", at(file, *line, key))]
    Invalid { file: PathBuf, line: Option<usize>, key: String, message: String },

    /// `${VAR}` interpolation failed.
    #[error("{}{problem}", at(file, *line, key))]
    Interpolation { file: PathBuf, line: Option<usize>, key: String, problem: InterpolationError },
}

/// Why a `${…}` could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolationError {
    #[error("variable `{var}` is not set; set it, or give a default with `${{{var}:-default}}`")]
    Unset { var: String },
    #[error("unterminated `${{` in `{text}`; close it with `}}`, or write `$$` for a literal `$`")]
    Unterminated { text: String },
    #[error(
        "invalid `${{{expr}}}`; write `${{NAME}}` or `${{NAME:-default}}` (NAME is letters, digits \
         and `_`), or `$$` for a literal `$`"
    )]
    Invalid { expr: String },
}

impl ConfigError {
    /// The line the error points at, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Parse { line, .. }
            | ConfigError::Invalid { line, .. }
            | ConfigError::Interpolation { line, .. } => *line,
            _ => None,
        }
    }
}

/// `FILE[:LINE]: [KEY: ]`
fn at(file: &Path, line: Option<usize>, key: &str) -> String {
    let mut out = file.display().to_string();
    if let Some(line) = line {
        let _ = write!(out, ":{line}");
    }
    out.push_str(": ");
    if !key.is_empty() {
        out.push_str(key);
        out.push_str(": ");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn located_errors_read_file_line_key_message() {
        let e = ConfigError::Invalid {
            file: "pm.toml".into(),
            line: Some(3),
            key: "sidecars.web.instances".into(),
            message: "must be at least 1".into(),
        };
        assert_eq!(e.to_string(), "pm.toml:3: sidecars.web.instances: must be at least 1");
        assert_eq!(e.line(), Some(3));
        let e = ConfigError::Parse {
            file: "pm.json".into(),
            line: None,
            key: String::new(),
            message: "EOF while parsing a value".into(),
        };
        assert_eq!(e.to_string(), "pm.json: EOF while parsing a value");
    }

    #[test]
    fn interpolation_messages_suggest_the_fix() {
        let unset = InterpolationError::Unset { var: "DB_URL".into() };
        assert_eq!(
            unset.to_string(),
            "variable `DB_URL` is not set; set it, or give a default with `${DB_URL:-default}`"
        );
        let open = InterpolationError::Unterminated { text: "a ${B".into() };
        assert_eq!(
            open.to_string(),
            "unterminated `${` in `a ${B`; close it with `}`, or write `$$` for a literal `$`"
        );
        let bad = InterpolationError::Invalid { expr: "A B".into() };
        assert!(bad.to_string().starts_with("invalid `${A B}`; write `${NAME}`"), "{bad}");
    }
}
