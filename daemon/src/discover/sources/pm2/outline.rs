//! Where the keys of an ecosystem file are, for `not translated: apps[1].cron_restart (…:14)`.
//!
//! What is translated comes from the evaluated file (JSON, or what node made of the JavaScript);
//! this only finds lines. It reads object and array literals leniently, as JSON or JavaScript
//! write them (comments, quotes of any kind, bare keys, trailing commas), and skips any other
//! expression up to the next `,` of its literal. A key it cannot follow has no line.

use crate::config::Seg;

/// Literals nested deeper than this are skipped whole: ecosystem files are shallow.
const MAX_DEPTH: usize = 16;

/// A value found in the text, with the line it starts on.
#[derive(Debug, Default)]
pub(super) struct Node {
    line: usize,
    keys: Vec<(String, Node)>,
    items: Vec<Node>,
}

impl Node {
    /// The exported value: what `module.exports =` or `export default` is given, else the first
    /// literal with an `apps` key, else the document itself (JSON).
    pub(super) fn of(text: &str) -> Node {
        let mut scan = Scanner { bytes: text.as_bytes(), at: 0, line: 1 };
        for marker in ["module.exports", "export default"] {
            if let Some(start) = text.find(marker) {
                scan.seek(start + marker.len());
                scan.skip_blank();
                if marker == "export default" || scan.eat(b'=') {
                    scan.skip_blank();
                    let node = scan.value(0);
                    if !node.keys.is_empty() || !node.items.is_empty() {
                        return node;
                    }
                }
            }
        }
        scan.seek(0);
        scan.skip_blank();
        let whole = scan.value(0);
        match whole.keys.is_empty() && whole.items.is_empty() {
            // Built from variables: the first `apps: [` literal is the best guess.
            true => {
                let found = text.match_indices("apps").find_map(|(at, _)| {
                    let before = text[..at].bytes().next_back();
                    if before.is_some_and(is_word) {
                        return None;
                    }
                    scan.seek(at + 4);
                    if matches!(before, Some(b'"' | b'\'')) {
                        scan.bump();
                    }
                    scan.skip_blank();
                    if !scan.eat(b':') {
                        return None;
                    }
                    scan.skip_blank();
                    Some(vec![("apps".to_string(), scan.value(0))])
                });
                found.map_or(whole, |keys| Node { line: 1, keys, items: vec![] })
            }
            false => whole,
        }
    }

    /// The line of `path`, if it can be followed to its end.
    pub(super) fn line(&self, path: &[Seg]) -> Option<usize> {
        self.node(path).map(|node| node.line).filter(|&line| line > 0)
    }

    /// How many items the array at `path` has (to check the text matches the evaluated value).
    pub(super) fn len(&self, path: &[Seg]) -> Option<usize> {
        self.node(path).map(|node| node.items.len())
    }

    fn node(&self, path: &[Seg]) -> Option<&Node> {
        let mut node = self;
        for seg in path {
            node = match seg {
                Seg::Key(key) => &node.keys.iter().find(|(k, _)| k == key)?.1,
                Seg::Index(i) => node.items.get(*i)?,
            };
        }
        Some(node)
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
    line: usize,
}

impl Scanner<'_> {
    fn seek(&mut self, to: usize) {
        if to < self.at {
            self.at = 0;
            self.line = 1;
        }
        while self.at < to.min(self.bytes.len()) {
            self.bump();
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn bump(&mut self) {
        if self.peek() == Some(b'\n') {
            self.line += 1;
        }
        self.at += 1;
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.bump();
        }
        hit
    }

    /// Skips whitespace and comments.
    fn skip_blank(&mut self) {
        loop {
            match (self.peek(), self.bytes.get(self.at + 1)) {
                (Some(b' ' | b'\t' | b'\r' | b'\n'), _) => self.bump(),
                (Some(b'/'), Some(b'/')) => {
                    while self.peek().is_some_and(|b| b != b'\n') {
                        self.bump();
                    }
                }
                (Some(b'/'), Some(b'*')) => {
                    self.bump();
                    self.bump();
                    while self.peek().is_some()
                        && !(self.peek() == Some(b'*') && self.bytes.get(self.at + 1) == Some(&b'/'))
                    {
                        self.bump();
                    }
                    self.bump();
                    self.bump();
                }
                _ => return,
            }
        }
    }

    /// A quoted string starting here (`"`, `'` or `` ` ``), unescaped as far as keys need.
    fn string(&mut self) -> String {
        let Some(quote) = self.peek() else { return String::new() };
        self.bump();
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            if b == quote {
                break;
            }
            if b == b'\\' {
                self.bump();
            }
            if let Some(b) = self.peek() {
                out.push(b);
            }
            self.bump();
        }
        self.bump();
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The value starting here: a literal read into a node, anything else skipped.
    fn value(&mut self, depth: usize) -> Node {
        let line = self.line;
        match self.peek() {
            Some(b'{') if depth < MAX_DEPTH => {
                self.bump();
                let mut node = Node { line, ..Node::default() };
                self.members(
                    b'}',
                    |scan, node| {
                        let key_line = scan.line;
                        let key = match scan.peek() {
                            Some(b'"' | b'\'' | b'`') => scan.string(),
                            Some(b) if is_word(b) => scan.word(),
                            _ => return,
                        };
                        scan.skip_blank();
                        if scan.eat(b':') {
                            scan.skip_blank();
                            let mut value = scan.value(depth + 1);
                            // A key's line is its own, not its value's.
                            value.line = key_line;
                            node.keys.push((key, value));
                        }
                    },
                    &mut node,
                );
                node
            }
            Some(b'[') if depth < MAX_DEPTH => {
                self.bump();
                let mut node = Node { line, ..Node::default() };
                self.members(
                    b']',
                    |scan, node| {
                        let item = scan.value(depth + 1);
                        node.items.push(item);
                    },
                    &mut node,
                );
                node
            }
            _ => {
                self.skip_expression();
                Node { line, ..Node::default() }
            }
        }
    }

    /// The members of a literal up to `close`: `member` reads one, then the rest of it up to its
    /// `,` is skipped.
    fn members(&mut self, close: u8, mut member: impl FnMut(&mut Self, &mut Node), node: &mut Node) {
        loop {
            self.skip_blank();
            match self.peek() {
                None => return,
                Some(b) if b == close => {
                    self.bump();
                    return;
                }
                Some(b',') => {
                    self.bump();
                    continue;
                }
                Some(b'.') => {}
                Some(_) => member(self, node),
            }
            let before = self.at;
            self.skip_expression();
            if self.at == before && self.peek().is_some_and(|b| b != close && b != b',') {
                // A stray closing bracket: step over it rather than loop.
                self.bump();
            }
        }
    }

    fn word(&mut self) -> String {
        let start = self.at;
        while self.peek().is_some_and(is_word) {
            self.bump();
        }
        String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned()
    }

    /// Skips an expression up to (not over) the `,`, `}`, `]` or `)` that ends it.
    fn skip_expression(&mut self) {
        let mut open = 0usize;
        loop {
            self.skip_blank();
            match self.peek() {
                None => return,
                Some(b'"' | b'\'' | b'`') => {
                    self.string();
                }
                Some(b'{' | b'[' | b'(') => {
                    open += 1;
                    self.bump();
                }
                Some(b'}' | b']' | b')') if open == 0 => return,
                Some(b'}' | b']' | b')') => {
                    open -= 1;
                    self.bump();
                }
                Some(b',') if open == 0 => return,
                Some(_) => self.bump(),
            }
        }
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::key;

    fn line(node: &Node, path: Vec<Seg>) -> Option<usize> {
        node.line(&path)
    }

    fn len(node: &Node, path: Vec<Seg>) -> Option<usize> {
        node.len(&path)
    }

    #[test]
    fn json_keys_and_items_have_their_lines() {
        let text = "{\n  \"apps\": [\n    {\n      \"name\": \"a\",\n      \"env\": {\"X\": 1}\n    },\n    {\"name\": \"b\", \"watch\": true}\n  ],\n  \"deploy\": {}\n}\n";
        let node = Node::of(text);
        assert_eq!(line(&node, key!["apps"]), Some(2));
        assert_eq!(line(&node, key!["apps", 0]), Some(3));
        assert_eq!(line(&node, key!["apps", 0, "env"]), Some(5));
        assert_eq!(line(&node, key!["apps", 0, "env", "X"]), Some(5));
        assert_eq!(line(&node, key!["apps", 1, "watch"]), Some(7));
        assert_eq!(line(&node, key!["deploy"]), Some(9));
        assert_eq!(line(&node, key!["apps", 2]), None);
        assert_eq!(len(&node, key!["apps"]), Some(2));
    }

    #[test]
    fn javascript_literals_are_followed_through_code() {
        let text = "// comment with { and 'quote\nconst port = process.env.PORT || 3000;\n\
                    module.exports = {\n  apps: [{\n    name: `web`, /* { */\n    args: ['--port', String(port)],\n\
                    \"cron_restart\": '0 0 * * *',\n    watch: f({a: [1, 2]}),\n    env_production: { NODE_ENV: \"production\" },\n  }],\n};\n";
        let node = Node::of(text);
        assert_eq!(line(&node, key!["apps", 0, "name"]), Some(5));
        assert_eq!(line(&node, key!["apps", 0, "cron_restart"]), Some(7));
        assert_eq!(line(&node, key!["apps", 0, "env_production"]), Some(9));
        assert_eq!(line(&node, key!["apps", 0, "env_production", "NODE_ENV"]), Some(9));
        assert_eq!(len(&node, key!["apps"]), Some(1));
    }

    #[test]
    fn exports_built_from_variables_fall_back_to_the_apps_literal() {
        let text =
            "const apps = [];\nconst config = {\n  apps: [\n    { name: 'a' },\n  ],\n};\nmodule.exports = config;\n";
        let node = Node::of(text);
        assert_eq!(line(&node, key!["apps", 0, "name"]), Some(4));
    }

    #[test]
    fn odd_text_never_panics_or_loops() {
        for text in [
            "",
            "{",
            "[",
            "}",
            "]]]",
            "{'a",
            "{\"a\": [",
            "/*",
            "{a: /x/}",
            "{]",
            "[}",
            "module.exports =",
            "{a:{b:{c:",
        ] {
            let node = Node::of(text);
            let _ = line(&node, key!["a", 0, "b"]);
        }
        let deep = "[".repeat(10_000);
        let _ = Node::of(&deep);
    }
}
