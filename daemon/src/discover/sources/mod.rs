//! The kinds of files `pm discover` reads, each translated by its own module.

mod akala;
mod cargo;
mod compose;
mod expand;
mod lines;
mod manifest;
mod package_json;
mod phorever;
mod phpeek;
mod pm;
mod pm2;
mod process_compose;
mod procfile;
mod pyproject;
mod supervisord;
#[cfg(test)]
mod testing;
mod tree;
mod waits;

use super::Read;
use std::path::Path;

/// One kind of source file.
pub struct Kind {
    /// How output and `--kind` name it.
    pub name: &'static str,
    /// The file names it is found by in a directory, in order of preference; one ending in `*`
    /// (`Procfile.*`) is a prefix, matched only for a file named on the command line.
    pub files: &'static [&'static str],
    pub read: Read,
}

/// Every kind, in the order a directory is read: pm's own file first, so its names win a clash.
pub const KINDS: &[Kind] = &[
    Kind { name: "pm", files: &["pm.toml", "pm.yaml", "pm.yml", "pm.json"], read: pm::read },
    Kind { name: "akala", files: &[".pm.config.json", ".akala.json"], read: akala::read },
    Kind { name: "package.json", files: &["package.json"], read: package_json::read },
    Kind { name: "cargo", files: &["Cargo.toml"], read: cargo::read },
    Kind { name: "pyproject", files: &["pyproject.toml"], read: pyproject::read },
    Kind { name: "procfile", files: &["Procfile", "Procfile.*"], read: procfile::read },
    Kind {
        name: "compose",
        files: &["compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"],
        read: compose::read,
    },
    Kind {
        name: "process-compose",
        files: &["process-compose.yaml", "process-compose.yml"],
        read: process_compose::read,
    },
    Kind { name: "phpeek", files: &["phpeek-pm.yaml", "phpeek-pm.yml"], read: phpeek::read },
    Kind { name: "phorever", files: &["phorever.json"], read: phorever::read },
    Kind {
        name: "pm2",
        files: &["ecosystem.config.json", "ecosystem.json", "ecosystem.config.js", "ecosystem.config.cjs"],
        read: pm2::read,
    },
    Kind { name: "supervisord", files: &["supervisord.conf"], read: supervisord::read },
];

/// The kind a file is, by its name.
pub fn kind_of(file: &Path) -> Option<&'static Kind> {
    let name = file.file_name()?.to_str()?;
    let fits = |pattern: &&str| match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == *pattern,
    };
    KINDS.iter().find(|k| k.files.iter().any(fits))
}

/// The kind named `name` (for `--kind`).
pub fn named(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}
