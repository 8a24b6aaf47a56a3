//! Project files: `pm.toml`, `pm.yaml` / `pm.yml` or `pm.json` (DESIGN §3).
//!
//! ```toml
//! [daemon]
//! listen = ["tcp://127.0.0.1:7700"]
//!
//! [sidecars.web]
//! command = "python3 -m http.server ${PORT:-8000}"
//! env = { DB_URL = "${DB_URL}" }
//! ready = { tcp = "127.0.0.1:${PORT:-8000}" }
//! ```
//!
//! [`find`] picks the file in a directory, [`load`] reads, parses, validates and interpolates it
//! into a [`Project`]. Every error names the file, the key path and, where it can be found, the
//! line. An akala config (`{"containers": {…}, "mapping": {…}}`) is imported as well.

mod akala;
mod document;
mod errors;
mod interpolate;
mod load;
mod locate;
mod schema;
#[cfg(test)]
pub(crate) mod tests;

use pm_protocol::Definition;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub use errors::{ConfigError, InterpolationError};
pub use interpolate::interpolate;
pub use load::{FILE_NAMES, find, load, parse};
pub use schema::json_schema;
// For the translators of `pm discover`, which read other tools' files the same way.
pub(crate) use akala::translate_all as translate_akala;
pub(crate) use interpolate::closing_brace;
pub(crate) use load::{Format, Source, anchored};
pub(crate) use locate::{Seg, display as key_path, from_serde as serde_key_path, key, line as key_line};

/// A loaded project file.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    /// The project file, made absolute.
    pub path: PathBuf,
    /// The optional `[daemon]` table.
    pub daemon: DaemonSection,
    /// The `[sidecars.<name>]` tables, by name. Every name passed
    /// [`pm_protocol::validate_name`], every string is interpolated, `cwd` and `env_file` are
    /// absolute (`cwd` defaults to the project file's directory).
    pub sidecars: BTreeMap<String, Definition>,
}

/// The `[daemon]` table of a project file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonSection {
    /// Endpoints the daemon listens on besides its Unix socket, e.g. `tcp://127.0.0.1:7700`,
    /// `tls://0.0.0.0:7701`, `ws://127.0.0.1:7702/`.
    pub listen: Vec<String>,
}
