//! Key paths (`sidecars.web.env.DB_URL`, `daemon.listen[0]`) and the line a key is on.
//!
//! TOML is located exactly from its own spans. YAML and JSON carry no spans once parsed, so a
//! key path is followed through the text: by indentation for block YAML, by `"key":` for JSON.
//! When a key cannot be followed (flow style, say), the deepest key found gives the line.

use super::load::Format;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

impl From<&str> for Seg {
    fn from(key: &str) -> Self {
        Seg::Key(key.to_string())
    }
}

impl From<usize> for Seg {
    fn from(index: usize) -> Self {
        Seg::Index(index)
    }
}

/// Builds a key path: `key!["sidecars", name, "env_file", 0]` (needs `Seg` in scope, so the
/// module works wherever it is mounted).
macro_rules! key {
    ($($seg:expr),* $(,)?) => {
        vec![$(Seg::from($seg)),*]
    };
}
pub(crate) use key;

/// `a.b[0].c`, like `serde_path_to_error` prints it.
pub(crate) fn display(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Seg::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// The known part of a `serde_path_to_error` path (it ends at the first unknown step).
pub(crate) fn from_serde(path: &serde_path_to_error::Path) -> (Vec<Seg>, bool) {
    use serde_path_to_error::Segment;
    let mut out = Vec::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push(Seg::Index(*index)),
            Segment::Map { key } => out.push(Seg::Key(key.clone())),
            Segment::Enum { variant } => out.push(Seg::Key(variant.clone())),
            Segment::Unknown => return (out, false),
        }
    }
    (out, true)
}

/// 1-based line of `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The line `path` is on, and whether the whole path was followed.
pub(crate) fn line(format: Format, text: &str, path: &[Seg]) -> Option<(usize, bool)> {
    if path.is_empty() {
        // The document itself: its first line that is not blank or a comment.
        let content = |l: &&str| !l.trim().is_empty() && !l.trim_start().starts_with('#');
        return text.lines().position(|l| content(&l)).map(|i| (i + 1, true));
    }
    match format {
        Format::Toml => toml_line(text, path),
        Format::Yaml => yaml_line(text, path),
        Format::Json => json_line(text, path),
    }
}

fn toml_line(text: &str, path: &[Seg]) -> Option<(usize, bool)> {
    use toml::de::{DeTable, DeValue};
    fn lookup<'a, 'i>(table: &'a DeTable<'i>, key: &str) -> Option<(usize, &'a DeValue<'i>)> {
        let (k, v) = table.iter().find(|(k, _)| k.get_ref() == key)?;
        Some((k.span().start, v.get_ref()))
    }
    let root = DeTable::parse(text).ok()?;
    let mut current: Option<&DeValue<'_>> = None;
    let mut found = None;
    for seg in path {
        let step = match (seg, current) {
            (Seg::Key(key), None) => lookup(root.get_ref(), key),
            (Seg::Key(key), Some(DeValue::Table(table))) => lookup(table, key),
            (Seg::Index(i), Some(DeValue::Array(array))) => array.get(*i).map(|v| (v.span().start, v.get_ref())),
            _ => None,
        };
        let Some((at, value)) = step else {
            return found.map(|at| (line_of(text, at), false));
        };
        found = Some(at);
        current = Some(value);
    }
    found.map(|at| (line_of(text, at), true))
}

fn yaml_line(text: &str, path: &[Seg]) -> Option<(usize, bool)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0;
    let mut parent_indent: Option<usize> = None;
    let mut found = None;
    'path: for seg in path {
        let Seg::Key(key) = seg else {
            return found.map(|l| (l, false));
        };
        let mut child_indent = None;
        for (i, line) in lines.iter().enumerate().skip(from) {
            let content = line.trim_start();
            if content.is_empty() || content.starts_with('#') || content.starts_with("---") {
                continue;
            }
            let indent = line.len() - content.len();
            if parent_indent.is_some_and(|p| indent <= p) {
                break;
            }
            if indent == *child_indent.get_or_insert(indent) && yaml_key_is(content, key) {
                found = Some(i + 1);
                from = i + 1;
                parent_indent = Some(indent);
                continue 'path;
            }
        }
        return found.map(|l| (l, false));
    }
    found.map(|l| (l, true))
}

/// Whether a YAML line's content starts with the mapping key `key` (plain or quoted).
fn yaml_key_is(content: &str, key: &str) -> bool {
    let rest = [("", ""), ("\"", "\""), ("'", "'")]
        .iter()
        .find_map(|(open, close)| content.strip_prefix(open)?.strip_prefix(key)?.strip_prefix(close));
    rest.and_then(|r| r.strip_prefix(':')).is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t']))
}

fn json_line(text: &str, path: &[Seg]) -> Option<(usize, bool)> {
    let mut pos = 0;
    let mut found = None;
    for seg in path {
        let Seg::Key(key) = seg else {
            return found.map(|at| (line_of(text, at), false));
        };
        let needle = serde_json::to_string(key).ok()?;
        let mut search = pos;
        let hit = loop {
            let Some(i) = text[search..].find(&needle).map(|i| i + search) else {
                break None;
            };
            let end = i + needle.len();
            if text[end..].trim_start().starts_with(':') {
                break Some((i, end));
            }
            search = end;
        };
        match hit {
            Some((at, end)) => {
                found = Some(at);
                pos = end;
            }
            None => return found.map(|at| (line_of(text, at), false)),
        }
    }
    found.map(|at| (line_of(text, at), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(path: Vec<Seg>) -> String {
        display(&path)
    }

    #[test]
    fn paths_display_like_serde_path_to_error() {
        assert_eq!(shown(key!["sidecars", "web", "env", "DB_URL"]), "sidecars.web.env.DB_URL");
        assert_eq!(shown(key!["daemon", "listen", 0]), "daemon.listen[0]");
        assert_eq!(shown(vec![]), "");
    }

    #[test]
    fn toml_keys_are_located_exactly() {
        let text = "[daemon]\nlisten = [\n  'a',\n  'b',\n]\n\n[sidecars.web]\ncommand = 'x'\n\
                    env = { A = '1' }\n[sidecars.web.ready]\nlog = 'up'\n";
        let at = |p: Vec<Seg>| toml_line(text, &p);
        assert_eq!(at(key!["daemon", "listen"]), Some((2, true)));
        assert_eq!(at(key!["daemon", "listen", 1]), Some((4, true)));
        assert_eq!(at(key!["sidecars", "web", "env", "A"]), Some((9, true)));
        assert_eq!(at(key!["sidecars", "web", "ready", "log"]), Some((11, true)));
        assert_eq!(at(key!["sidecars", "web", "nope"]), Some((7, false)));
        assert_eq!(at(key!["nope"]), None);
    }

    #[test]
    fn yaml_keys_are_followed_by_indentation() {
        let text = "sidecars:\n  api:\n    env:\n      web: not-this\n  web:\n    # note\n    \
                    command: x\n    env: {A: '1'}\n    instances: 0\n";
        let at = |p: Vec<Seg>| yaml_line(text, &p);
        assert_eq!(at(key!["sidecars", "web"]), Some((5, true)));
        assert_eq!(at(key!["sidecars", "web", "instances"]), Some((9, true)));
        assert_eq!(at(key!["sidecars", "web", "env", "A"]), Some((8, false)));
        assert_eq!(at(key!["sidecars", "api", "instances"]), Some((2, false)));
        assert_eq!(at(key!["daemon"]), None);
    }

    #[test]
    fn json_keys_are_followed_in_order() {
        let text = "{\n \"sidecars\": {\n  \"api\": {\"command\": \"web\"},\n  \"web\": {\n   \
                    \"command\": \"x\",\n   \"instances\": 0\n  }\n }\n}\n";
        let at = |p: Vec<Seg>| json_line(text, &p);
        assert_eq!(at(key!["sidecars", "web"]), Some((4, true)));
        assert_eq!(at(key!["sidecars", "web", "instances"]), Some((6, true)));
        assert_eq!(at(key!["sidecars", "web", "command", 0]), Some((5, false)));
    }
}
