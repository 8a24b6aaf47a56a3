//! Finding a bare program name on the child's PATH in the daemon, as `execvp` would in the child.
//!
//! Searched in the child, each directory before the right one costs a failed `execve` while the
//! daemon's thread waits on the vfork (nine of them for `sleep` on a common root PATH), and a
//! definition that sets its own PATH makes the standard library fork instead of posix_spawn.
//! A `stat` here is cheaper than either.

use nix::unistd::{AccessFlags, access};
use std::ffi::OsString;
use std::path::PathBuf;

/// Where `program` is on the PATH the child will have (`env`'s, else the daemon's). `None` when
/// the child must search itself: a name with a slash, a relative or empty PATH entry (they
/// depend on the child's working directory), or nothing found (the child's search gives the
/// error).
pub(super) fn on_path(program: &str, env: &[(String, String)]) -> Option<PathBuf> {
    if program.contains('/') {
        return None;
    }
    let path = match env.iter().rev().find(|(key, _)| key == "PATH") {
        Some((_, value)) => OsString::from(value),
        None => std::env::var_os("PATH")?,
    };
    for dir in std::env::split_paths(&path) {
        if !dir.is_absolute() {
            return None;
        }
        let candidate = dir.join(program);
        // What `execve` itself checks: a regular file this process may execute.
        if candidate.is_file() && access(&candidate, AccessFlags::X_OK).is_ok() {
            return Some(candidate);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn path(dirs: &[&std::path::Path]) -> Vec<(String, String)> {
        let joined = std::env::join_paths(dirs).expect("joins");
        vec![("PATH".to_string(), joined.to_string_lossy().into_owned())]
    }

    #[test]
    fn the_first_executable_file_on_the_childs_path_as_execvp_finds_it() {
        let (a, b) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
        // Not executable, then a directory of the same name: both skipped, as execvp skips them.
        std::fs::write(a.path().join("tool"), "#!/bin/sh\n").expect("writes");
        std::fs::create_dir(b.path().join("tool")).expect("makes");
        let c = tempfile::tempdir().expect("dir");
        let tool = c.path().join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").expect("writes");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmods");
        if nix::unistd::geteuid().is_root() {
            // Root may execute a file with any x bit; this one has none.
            assert_eq!(on_path("tool", &path(&[a.path()])), None);
        }
        assert_eq!(on_path("tool", &path(&[a.path(), b.path(), c.path()])), Some(tool));
        assert_eq!(on_path("missing", &path(&[a.path(), c.path()])), None);
    }

    #[test]
    fn names_with_a_slash_and_relative_entries_are_left_to_the_child() {
        let dir = tempfile::tempdir().expect("dir");
        assert_eq!(on_path("./tool", &path(&[dir.path()])), None);
        assert_eq!(on_path("sleep", &[("PATH".into(), "bin:/usr/bin".into())]), None);
        assert_eq!(on_path("sleep", &[("PATH".into(), ":/usr/bin".into())]), None);
    }
}
