//! Reading an ecosystem file as PM2 does, with node: `require()` for `.js` / `.cjs` (an ES
//! module through `import()`), a JavaScript expression for a `.json` that is not plain JSON
//! (comments, bare keys). Its value comes back as JSON; functions and `undefined` drop out.

use crate::discover::SourceFile;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long node may take: a config file that does more is not one pm reads.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The most JSON it may print.
const MAX_OUTPUT: u64 = 4 << 20;
/// The most of its error output kept.
const MAX_ERRORS: u64 = 64 << 10;

/// How the file is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum How {
    /// A module: its `module.exports` (or default export).
    Module,
    /// `(text)` as one JavaScript expression, as PM2 reads a `.json` file.
    Expression,
}

/// Prints the file's value as JSON, or its error's first line then its stack.
const SCRIPT: &str = r#"
const [file, how] = process.argv.slice(1);
const fail = (e) => {
  const head = e && e.name ? `${e.name}: ${e.message}` : String(e);
  process.stderr.write(head.split('\n')[0] + '\n' + String((e && e.stack) || ''), () => process.exit(1));
};
(async () => {
  if (how === 'expression') {
    const text = require('fs').readFileSync(file, 'utf8');
    return require('vm').runInThisContext('(' + text + ')', { filename: file, timeout: 1000 });
  }
  try {
    const m = require(file);
    return m && m[Symbol.toStringTag] === 'Module' ? m.default : m;
  } catch (e) {
    if (!e || e.code !== 'ERR_REQUIRE_ESM') throw e;
    return (await import(require('url').pathToFileURL(file).href)).default;
  }
})().then((value) => {
  process.stdout.write(JSON.stringify(value === undefined ? null : value) ?? 'null', () => process.exit(0));
}, fail);
"#;

/// Why node gave no value.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Failure {
    /// `node` is not on PATH.
    Missing,
    /// It failed: the message, and the line of the file it points at.
    Failed { message: String, line: Option<usize> },
}

/// The file's value, as node evaluates it in the file's directory.
pub(super) fn evaluate(src: &SourceFile<'_>, how: How) -> Result<serde_json::Value, Failure> {
    run("node", src, how, TIMEOUT)
}

fn run(node: &str, src: &SourceFile<'_>, how: How, timeout: Duration) -> Result<serde_json::Value, Failure> {
    let mode = match how {
        How::Module => "module",
        How::Expression => "expression",
    };
    let spawned = Command::new(node)
        .args(["-e", SCRIPT, "--"])
        .arg(src.path)
        .arg(mode)
        .current_dir(src.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Failure::Missing),
        Err(e) => return Err(failed(format!("cannot run node: {e}"), None)),
    };
    let deadline = Instant::now() + timeout;
    let stdout = drain(child.stdout.take(), MAX_OUTPUT);
    let stderr = drain(child.stderr.take(), MAX_ERRORS);
    let status = wait(&mut child, deadline);
    // Once node is gone its pipes close, unless something it started still holds them.
    let grace = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
    let out = stdout.recv_timeout(grace).unwrap_or_default();
    let err = stderr.recv_timeout(grace).unwrap_or_default();
    let Some(status) = status else {
        return Err(failed(format!("node took more than {}s to evaluate it", timeout.as_secs()), None));
    };
    if !status.success() {
        let err = String::from_utf8_lossy(&err);
        let message = err.lines().next().filter(|l| !l.trim().is_empty()).unwrap_or("node failed").to_string();
        return Err(failed(message, line_in(&err, src)));
    }
    if out.len() as u64 > MAX_OUTPUT {
        return Err(failed(format!("its value is more than {} MiB of JSON", MAX_OUTPUT >> 20), None));
    }
    serde_json::from_slice(&out).map_err(|e| failed(format!("node printed no JSON value: {e}"), None))
}

fn failed(message: String, line: Option<usize>) -> Failure {
    Failure::Failed { message, line }
}

/// Reads a pipe to its end (up to `max + 1` bytes) on a thread of its own.
fn drain(pipe: Option<impl Read + Send + 'static>, max: u64) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(pipe) = pipe {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.take(max + 1).read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
    }
    rx
}

/// Its exit status, or `None` once it was killed at `deadline`.
fn wait(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// The line of the file an error's stack points at (`/path/ecosystem.config.js:12`).
fn line_in(errors: &str, src: &SourceFile<'_>) -> Option<usize> {
    let needle = format!("{}:", src.path.display());
    errors.match_indices(&needle).find_map(|(at, _)| {
        let digits: String = errors[at + needle.len()..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn evaluated(name: &str, text: &str, how: How) -> (tempfile::TempDir, Result<serde_json::Value, Failure>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let src = SourceFile { path: &path, dir: dir.path(), text };
        let value = evaluate(&src, how);
        (dir, value)
    }

    fn have_node() -> bool {
        let found = std::process::Command::new("node").arg("--version").output().is_ok();
        if !found {
            eprintln!("SKIPPED: node is not on PATH");
        }
        found
    }

    #[test]
    fn without_node_the_failure_says_so() {
        let src = SourceFile { path: Path::new("/nonexistent/ecosystem.config.js"), dir: Path::new("/"), text: "" };
        assert_eq!(run("pm-test-no-such-node", &src, How::Module, TIMEOUT), Err(Failure::Missing));
    }

    #[test]
    fn modules_and_expressions_give_their_value() {
        if !have_node() {
            return;
        }
        let js = "const n = 2 + 1;\nmodule.exports = { apps: [{ name: 'a', instances: n, f() {}, u: undefined }] };\n";
        let (_dir, value) = evaluated("ecosystem.config.js", js, How::Module);
        assert_eq!(value, Ok(serde_json::json!({"apps": [{"name": "a", "instances": 3}]})));
        let esm = "export default { apps: [{ name: 'esm' }] };\n";
        let (_dir, value) = evaluated("ecosystem.config.mjs", esm, How::Module);
        assert_eq!(value, Ok(serde_json::json!({"apps": [{"name": "esm"}]})));
        let json5 = "{\n  // a comment\n  apps: [{ name: 'c', }],\n}\n";
        let (_dir, value) = evaluated("ecosystem.json", json5, How::Expression);
        assert_eq!(value, Ok(serde_json::json!({"apps": [{"name": "c"}]})));
    }

    #[test]
    fn errors_give_their_message_and_line() {
        if !have_node() {
            return;
        }
        let (_dir, value) =
            evaluated("ecosystem.config.js", "const a = 1;\n\nmodule.exports = nope(a);\n", How::Module);
        let Err(Failure::Failed { message, line }) = value else { panic!("{value:?}") };
        assert_eq!(message, "ReferenceError: nope is not defined");
        assert_eq!(line, Some(3));
        let (_dir, value) = evaluated("ecosystem.config.js", "module.exports = {\n  apps: [,,\n  }\n", How::Module);
        let Err(Failure::Failed { message, line }) = value else { panic!("{value:?}") };
        assert!(message.starts_with("SyntaxError: "), "{message}");
        assert_eq!(line, Some(3), "{message}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ecosystem.config.js");
        std::fs::write(&path, "while (true) {}\n").unwrap();
        let src = SourceFile { path: &path, dir: dir.path(), text: "" };
        let value = run("node", &src, How::Module, Duration::from_secs(1));
        assert_eq!(value, Err(failed("node took more than 1s to evaluate it".into(), None)));
    }
}
