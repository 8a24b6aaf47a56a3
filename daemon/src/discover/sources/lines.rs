//! The line a key path is on in YAML or JSON text, list items included (`ports[1].target`,
//! `processes[2].up`), for the reports of the tree translators: the project-file locator stops
//! at the first list index, and other tools' files are mostly lists.

use crate::config::{Format, Seg};

/// 1-based line of `path` in `text`, or of the deepest part of it that could be followed.
pub(super) fn line(format: Format, text: &str, path: &[Seg]) -> Option<usize> {
    match format {
        Format::Json => json(text, path),
        Format::Yaml => yaml(text, path),
        Format::Toml => crate::config::key_line(format, text, path).map(|(line, _)| line),
    }
}

/// Follows block YAML by indentation; `- ` items count as entries of the list they are in.
fn yaml(text: &str, path: &[Seg]) -> Option<usize> {
    // (indent, content) of each line; a list item's line is rewritten to its content once entered.
    let mut lines: Vec<(usize, &str)> =
        text.lines().map(|l| (l.len() - l.trim_start().len(), l.trim_start())).collect();
    let mut from = 0;
    let mut parent: Option<usize> = None;
    let mut found = None;
    for seg in path {
        let mut indent_of_entries = None;
        let mut seen = 0;
        let mut hit = None;
        for (i, &(indent, content)) in lines.iter().enumerate().skip(from) {
            if content.is_empty() || content.starts_with('#') || content.starts_with("---") {
                continue;
            }
            let item = content == "-" || content.starts_with("- ");
            // A list may sit at its key's own indentation.
            let inside = parent.is_none_or(|p| indent > p || (indent == p && item && matches!(seg, Seg::Index(_))));
            if !inside {
                break;
            }
            if indent != *indent_of_entries.get_or_insert(indent) {
                continue;
            }
            match seg {
                Seg::Key(key) if is_key(content, key) => {
                    hit = Some(i);
                    break;
                }
                Seg::Key(_) => {}
                Seg::Index(n) if item => {
                    if seen == *n {
                        hit = Some(i);
                        break;
                    }
                    seen += 1;
                }
                Seg::Index(_) => break,
            }
        }
        let Some(i) = hit else { return found };
        found = Some(i + 1);
        let (indent, content) = lines[i];
        match seg {
            Seg::Key(_) => {
                parent = Some(indent);
                from = i + 1;
            }
            Seg::Index(_) => {
                // The item's own content (`- target: 80`) is its first entry, one level in.
                let rest = content[1..].trim_start();
                lines[i] = (indent + content.len() - rest.len(), rest);
                parent = Some(indent);
                from = i;
            }
        }
    }
    found
}

/// Whether a YAML line starts with the mapping key `key`, plain or quoted.
fn is_key(content: &str, key: &str) -> bool {
    let rest = [("", ""), ("\"", "\""), ("'", "'")]
        .iter()
        .find_map(|(open, close)| content.strip_prefix(open)?.strip_prefix(key)?.strip_prefix(close));
    rest.and_then(|r| r.strip_prefix(':')).is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t']))
}

/// Follows JSON value by value.
fn json(text: &str, path: &[Seg]) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = skip_space(bytes, 0);
    let mut found = None;
    for seg in path {
        let next = match seg {
            Seg::Key(key) => member(bytes, at, key),
            Seg::Index(n) => element(bytes, at, *n),
        };
        let Some((line_at, value_at)) = next else { break };
        found = Some(line_at);
        at = value_at;
    }
    found.map(|at| text[..at].matches('\n').count() + 1)
}

/// In the object at `at`: where `key`'s name is, and where its value starts.
fn member(bytes: &[u8], at: usize, key: &str) -> Option<(usize, usize)> {
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    let mut i = skip_space(bytes, at + 1);
    while bytes.get(i) == Some(&b'"') {
        let name_end = string_end(bytes, i)?;
        let name: String = serde_json::from_slice(&bytes[i..name_end]).ok()?;
        let colon = skip_space(bytes, name_end);
        if bytes.get(colon) != Some(&b':') {
            return None;
        }
        let value = skip_space(bytes, colon + 1);
        if name == key {
            return Some((i, value));
        }
        i = skip_space(bytes, value_end(bytes, value)?);
        if bytes.get(i) == Some(&b',') {
            i = skip_space(bytes, i + 1);
        }
    }
    None
}

/// In the array at `at`: where element `n` starts (twice, as [`member`] answers).
fn element(bytes: &[u8], at: usize, n: usize) -> Option<(usize, usize)> {
    if bytes.get(at) != Some(&b'[') {
        return None;
    }
    let mut i = skip_space(bytes, at + 1);
    for _ in 0..n {
        if matches!(bytes.get(i), None | Some(b']')) {
            return None;
        }
        i = skip_space(bytes, value_end(bytes, i)?);
        if bytes.get(i) != Some(&b',') {
            return None;
        }
        i = skip_space(bytes, i + 1);
    }
    (!matches!(bytes.get(i), None | Some(b']'))).then_some((i, i))
}

/// Just past the value that starts at `at`.
fn value_end(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at)? {
        b'"' => string_end(bytes, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match bytes.get(i)? {
                    b'"' => {
                        i = string_end(bytes, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let len = bytes[at..].iter().position(|b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace());
            Some(at + len.unwrap_or(bytes.len() - at))
        }
    }
}

/// Just past the string that starts at `at` (its opening quote).
fn string_end(bytes: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    loop {
        match bytes.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

fn skip_space(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::key;

    #[test]
    fn yaml_list_items_are_followed() {
        let text = "services:\n  web:\n    ports:\n      - \"80\"\n      - target: 8443\n        host_ip: x\n    \
                    env:\n    - A=1\n    - B\n  db: {}\n";
        let at = |p: Vec<Seg>| yaml(text, &p);
        assert_eq!(at(key!["services", "web", "ports", 1]), Some(5));
        assert_eq!(at(key!["services", "web", "ports", 1, "target"]), Some(5));
        assert_eq!(at(key!["services", "web", "ports", 1, "host_ip"]), Some(6));
        assert_eq!(at(key!["services", "web", "ports", 2]), Some(3));
        assert_eq!(at(key!["services", "web", "env", 1]), Some(9), "items at their key's indentation");
        assert_eq!(at(key!["services", "db"]), Some(10));
        assert_eq!(at(key!["services", "db", "image"]), Some(10));
        assert_eq!(at(key!["nope"]), None);
    }

    #[test]
    fn json_values_are_followed() {
        let text = "{\n \"a\": {\"x\": [1, \"]\"]},\n \"processes\": [\n  {\"name\": \"w\"},\n  {\n   \"name\": \"v\",\n   \
                    \"up\": 2\n  }\n ]\n}\n";
        let at = |p: Vec<Seg>| json(text, &p);
        assert_eq!(at(key!["processes"]), Some(3));
        assert_eq!(at(key!["processes", 1]), Some(5));
        assert_eq!(at(key!["processes", 1, "up"]), Some(7));
        assert_eq!(at(key!["processes", 0, "up"]), Some(4), "the deepest part found");
        assert_eq!(at(key!["processes", 9]), Some(3));
        assert_eq!(at(key!["a", "x", 1]), Some(2));
        let cut = key!["a", 5];
        assert_eq!(json("{\"a\": [1, 2", &cut), Some(1), "cut short: no panic");
    }
}
