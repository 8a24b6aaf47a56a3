//! `${VAR}` interpolation the way compose, process-compose and PHPeek PM do it, with the values
//! known when `pm discover` runs: its environment and a `.env` file beside the source. Like those
//! tools, an unset variable expands to nothing; unlike them, pm says so.

use super::tree::{Doc, at};
use crate::config::{Seg, closing_brace};
use serde_yaml::Value;
use std::collections::HashMap;
use std::path::Path;

/// What a format's interpolation understands.
pub(super) struct Dialect {
    /// `$VAR` without braces.
    bare: bool,
    /// `$$` for a literal `$`.
    escape: bool,
    /// The operators besides `${VAR:-default}`: `-`, `:?`, `?`, `:+`, `+`, `:=`, `=`.
    operators: bool,
}

/// Compose's and process-compose's (bash-like) interpolation.
pub(super) const SHELL_LIKE: Dialect = Dialect { bare: true, escape: true, operators: true };
/// PHPeek PM's: `${VAR}` and `${VAR:-default}` only.
pub(super) const PHPEEK: Dialect = Dialect { bare: false, escape: false, operators: false };

/// The largest `.env` file read (it is a handful of variables, not data).
const MAX_DOTENV: u64 = 1 << 20;

/// Where variables are looked up.
pub(super) struct Vars {
    dotenv: HashMap<String, String>,
    /// Whether `.env` wins over the environment (process-compose) or the other way (compose).
    dotenv_first: bool,
}

impl Vars {
    /// The environment only.
    pub fn environment() -> Self {
        Vars { dotenv: HashMap::new(), dotenv_first: false }
    }

    /// The environment and the `.env` file in `dir`, if there is a readable one.
    pub fn with_dotenv(dir: &Path, dotenv_first: bool) -> Self {
        let path = dir.join(".env");
        let small = std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() <= MAX_DOTENV);
        let dotenv = match dotenvy::from_path_iter(&path) {
            Ok(iter) if small => iter.filter_map(Result::ok).collect(),
            _ => HashMap::new(),
        };
        Vars { dotenv, dotenv_first }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        let env = || std::env::var(name).ok();
        let file = || self.dotenv.get(name).cloned();
        if self.dotenv_first { file().or_else(env) } else { env().or_else(file) }
    }
}

/// Expands every string of `value` (keys are kept as written), reporting at its key path what
/// could not be expanded.
pub(super) fn tree(doc: &mut Doc<'_>, value: &mut Value, path: &[Seg], vars: &Vars, dialect: &Dialect) {
    match value {
        Value::String(text) if text.contains('$') => {
            let mut problems = Vec::new();
            *text = expand(text, vars, dialect, &mut problems);
            for problem in problems {
                doc.because(path, problem);
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                tree(doc, item, &at(path, i), vars, dialect);
            }
        }
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                let key = super::tree::key_text(key);
                // Extension keys are ignored, so is what they hold.
                if !super::tree::is_extension(&key) {
                    tree(doc, item, &at(path, key.as_str()), vars, dialect);
                }
            }
        }
        Value::Tagged(tagged) => tree(doc, &mut tagged.value, path, vars, dialect),
        _ => {}
    }
}

/// Expands `text`; each thing that could not be expanded is added to `problems`.
pub(super) fn expand(text: &str, vars: &Vars, dialect: &Dialect, problems: &mut Vec<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if dialect.escape && after.starts_with('$') {
            out.push('$');
            rest = &after[1..];
        } else if let Some(body) = after.strip_prefix('{') {
            // A `$$` inside `${…}` does not hide a `}` here, in any dialect.
            let Some(end) = closing_brace(body, false) else {
                problems.push(format!("unterminated `${{` in `{text}`: kept as written"));
                out.push_str(&rest[dollar..]);
                return out;
            };
            out.push_str(&braced(&body[..end], vars, dialect, problems));
            rest = &body[end + 1..];
        } else if dialect.bare && after.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            let len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            out.push_str(&lookup(&after[..len], vars, problems));
            rest = &after[len..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The value of a variable; nothing, and a problem said, when it is unset.
fn lookup(name: &str, vars: &Vars, problems: &mut Vec<String>) -> String {
    vars.get(name).unwrap_or_else(|| {
        unset(name, problems);
        String::new()
    })
}

fn unset(name: &str, problems: &mut Vec<String>) {
    let problem = format!("variable `{name}` is not set: empty here");
    if !problems.contains(&problem) {
        problems.push(problem);
    }
}

/// The inside of one `${…}`.
fn braced(expr: &str, vars: &Vars, dialect: &Dialect, problems: &mut Vec<String>) -> String {
    let len = expr.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(expr.len());
    let (name, op) = expr.split_at(len);
    let kept = |problems: &mut Vec<String>, why: &str| {
        problems.push(format!("`${{{expr}}}`: {why}: kept as written"));
        format!("${{{expr}}}")
    };
    if name.is_empty() {
        return kept(problems, "not a variable");
    }
    let value = vars.get(name);
    let empty = value.as_deref().is_none_or(str::is_empty);
    // (operator, its argument, whether an empty value counts as unset)
    let (operator, arg, colon) = match op.strip_prefix(':') {
        Some(rest) if !rest.is_empty() => {
            let (operator, arg) = first_char(rest);
            (operator, arg, true)
        }
        None => {
            let (operator, arg) = first_char(op);
            (operator, arg, false)
        }
        Some(_) => return kept(problems, "unknown operator"),
    };
    if !dialect.operators && !operator.is_empty() && (operator != "-" || !colon) {
        return kept(problems, "only `${VAR}` and `${VAR:-default}` are expanded in this format");
    }
    let missing = if colon { empty } else { value.is_none() };
    match operator {
        "" => lookup(name, vars, problems),
        "-" | "=" if missing => expand(arg, vars, dialect, problems),
        "?" if missing => {
            problems.push(format!("variable `{name}` is not set ({arg}): empty here"));
            String::new()
        }
        "-" | "=" | "?" => value.unwrap_or_default(),
        "+" if missing => String::new(),
        "+" => expand(arg, vars, dialect, problems),
        _ => kept(problems, "unknown operator"),
    }
}

/// `text` split after its first character.
fn first_char(text: &str) -> (&str, &str) {
    text.split_at(text.chars().next().map_or(0, char::len_utf8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let dotenv = [("FROM_FILE", "file"), ("EMPTY", "")].map(|(k, v)| (k.to_string(), v.to_string()));
        Vars { dotenv: dotenv.into_iter().collect(), dotenv_first: false }
    }

    fn run(text: &str, dialect: &Dialect) -> (String, Vec<String>) {
        let mut problems = Vec::new();
        let out = expand(text, &vars(), dialect, &mut problems);
        (out, problems)
    }

    fn ok(text: &str) -> String {
        let (out, problems) = run(text, &SHELL_LIKE);
        assert!(problems.is_empty(), "{text}: {problems:?}");
        out
    }

    #[test]
    fn shell_like_forms() {
        assert_eq!(ok("${FROM_FILE}/$FROM_FILE"), "file/file");
        assert_eq!(ok("${NOPE_X:-a b}"), "a b");
        assert_eq!(ok("${EMPTY:-d}|${EMPTY-d}"), "d|");
        assert_eq!(ok("${NOPE_X-${FROM_FILE}}"), "file");
        assert_eq!(ok("${FROM_FILE:+yes}${NOPE_X:+no}"), "yes");
        assert_eq!(ok("$$HOME $${X} 5$ $1"), "$HOME ${X} 5$ $1");
        let (out, problems) = run("a${NOPE_X}b$NOPE_X", &SHELL_LIKE);
        assert_eq!(out, "ab");
        assert_eq!(problems, ["variable `NOPE_X` is not set: empty here"]);
        let (out, problems) = run("${NOPE_X:?needed}", &SHELL_LIKE);
        assert_eq!((out.as_str(), problems[0].as_str()), ("", "variable `NOPE_X` is not set (needed): empty here"));
    }

    #[test]
    fn odd_forms_are_kept_and_said() {
        for text in ["${}", "${A B}", "${A#x}", "${A:}", "${.}", "${A:é}", "${Aé}"] {
            let (out, problems) = run(text, &SHELL_LIKE);
            assert_eq!(out, text);
            assert_eq!(problems.len(), 1, "{text}");
        }
        let (out, problems) = run("x ${OPEN", &SHELL_LIKE);
        assert_eq!((out.as_str(), problems.len()), ("x ${OPEN", 1));
    }

    #[test]
    fn phpeek_reads_only_braces_and_defaults() {
        let (out, problems) = run("$FROM_FILE $$ ${FROM_FILE} ${NOPE_X:-d} ${A-b}", &PHPEEK);
        assert_eq!(out, "$FROM_FILE $$ file d ${A-b}");
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn dotenv_order() {
        // PATH is set wherever tests run; it is only read.
        let path = std::env::var("PATH").unwrap();
        let mut v = vars();
        v.dotenv.insert("PATH".into(), "from-file".into());
        assert_eq!(v.get("PATH"), Some(path));
        v.dotenv_first = true;
        assert_eq!(v.get("PATH").as_deref(), Some("from-file"));
    }
}
