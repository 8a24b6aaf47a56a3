//! Which program runs a PM2 script: PM2's interpreter by extension, or the script itself.

use std::path::Path;

/// PM2's interpreter for a script's extension.
pub(super) fn by_extension(extension: Option<&str>) -> Option<String> {
    let interpreter = match extension? {
        ".js" | ".cjs" | ".mjs" => "node",
        ".sh" => "bash",
        // PM2 falls back to python3 when there is no python.
        ".py" => return Some(if !on_path("python") && on_path("python3") { "python3" } else { "python" }.into()),
        ".rb" => "ruby",
        ".php" => "php",
        ".pl" => "perl",
        ".coffee" => "coffee",
        ".ls" => "lsc",
        ".ts" | ".tsx" => "bun",
        _ => return None,
    };
    Some(interpreter.into())
}

/// Whether `program` is an executable file in a directory of PATH.
pub(super) fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join(program)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Whether a file looks binary (PM2 runs a text file without a known extension with node).
pub(super) fn is_binary(file: &Path) -> bool {
    use std::io::Read;
    let mut head = Vec::with_capacity(512);
    let read = std::fs::File::open(file).and_then(|f| f.take(512).read_to_end(&mut head));
    if read.is_err() {
        return false;
    }
    let odd = head.iter().filter(|b| **b < 7 || (**b > 14 && **b < 32)).count();
    head.contains(&0) || odd * 10 > head.len()
}
