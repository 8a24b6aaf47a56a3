//! supervisord's INI files, read as its Python `RawConfigParser` reads them: `[section]`
//! headers, `key = value` or `key: value` (keys lowercased), values continued on more-indented
//! lines, `;` and `#` comments (inline ones after whitespace), a section or key given twice
//! merged (the later value wins). The `[include]` of the main file adds the files its `files`
//! globs match, relative to it, in sorted order; their own `[include]` is not followed, as
//! supervisord does not.

use super::expand::{Names, Val, expand};
use crate::config::ConfigError;
use std::path::{Path, PathBuf};

/// The most files an `[include]` may add, and bytes each may have.
const MAX_INCLUDED: usize = 256;
const MAX_FILE: u64 = 4 << 20;
/// The most directory entries a glob may look at.
const MAX_LISTED: usize = 100_000;

/// The sections of a file and the files it includes, in the order first seen.
#[derive(Debug, Default)]
pub(super) struct Ini {
    pub sections: Vec<Section>,
    /// The included files, in the order read.
    pub included: Vec<PathBuf>,
    /// The `[include]` sections of included files, which supervisord does not follow.
    pub nested_includes: Vec<Place>,
}

#[derive(Debug)]
pub(super) struct Section {
    pub name: String,
    /// Where its header first is.
    pub at: Place,
    pub entries: Vec<Entry>,
}

#[derive(Debug)]
pub(super) struct Entry {
    pub key: String,
    pub value: String,
    pub at: Place,
}

/// A file and a 1-based line in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Place {
    pub file: PathBuf,
    pub line: usize,
}

impl Place {
    /// The file's directory: what `%(here)s` is in its values.
    pub fn here(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("/"))
    }
}

impl Section {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

impl Ini {
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Merges a file's sections in.
    fn merge(&mut self, sections: Vec<Section>) {
        for section in sections {
            match self.sections.iter_mut().find(|s| s.name == section.name) {
                Some(known) => {
                    for entry in section.entries {
                        match known.entries.iter_mut().find(|e| e.key == entry.key) {
                            Some(old) => *old = entry,
                            None => known.entries.push(entry),
                        }
                    }
                }
                None => self.sections.push(section),
            }
        }
    }
}

/// Reads the main file's text and what its `[include]` names.
pub(super) fn load(path: &Path, text: &str) -> Result<Ini, ConfigError> {
    let mut ini = Ini::default();
    ini.merge(parse(path, text)?);
    let Some(include) = ini.section("include") else { return Ok(ini) };
    let Some(files) = include.get("files") else {
        let message = "an [include] section needs a `files` key (globs of the files to include)";
        return Err(invalid(&include.at, "include", message));
    };
    let at = files.at.clone();
    let mut names = Names::environment();
    names.set("here", Val::Text(at.here().display().to_string()));
    names.set("host_node_name", Val::Text(super::host_name()));
    let patterns = expand(&files.value, &names).map_err(|e| invalid(&at, "include.files", &e))?;
    let base = path.parent().unwrap_or(Path::new("/"));
    let mut included = Vec::new();
    for pattern in patterns.split_whitespace() {
        let mut matches = glob(&base.join(pattern));
        matches.sort();
        included.extend(matches);
        if included.len() > MAX_INCLUDED {
            return Err(invalid(&at, "include.files", &format!("includes more than {MAX_INCLUDED} files")));
        }
    }
    for file in included {
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        if size > MAX_FILE {
            let message = format!("{} has {size} bytes; pm reads files of at most {MAX_FILE}", file.display());
            return Err(invalid(&at, "include.files", &message));
        }
        let text = std::fs::read_to_string(&file).map_err(|source| ConfigError::Read { path: file.clone(), source })?;
        let (nested, sections): (Vec<Section>, Vec<Section>) =
            parse(&file, &text)?.into_iter().partition(|s| s.name == "include");
        ini.nested_includes.extend(nested.into_iter().map(|s| s.at));
        ini.merge(sections);
        ini.included.push(file);
    }
    Ok(ini)
}

fn invalid(at: &Place, key: &str, message: &str) -> ConfigError {
    ConfigError::Invalid { file: at.file.clone(), line: Some(at.line), key: key.into(), message: message.into() }
}

/// The sections of one file.
fn parse(file: &Path, text: &str) -> Result<Vec<Section>, ConfigError> {
    let error = |line: usize, message: String| ConfigError::Parse {
        file: file.to_path_buf(),
        line: Some(line),
        key: String::new(),
        message,
    };
    let mut sections: Vec<Section> = Vec::new();
    // The indentation of the key being read and its index in the last section: a more-indented
    // line continues its value.
    let mut open: Option<(usize, usize)> = None;
    let mut blanks = 0;
    for (i, raw) in text.lines().enumerate() {
        let number = i + 1;
        if raw.trim().starts_with(['#', ';']) {
            continue;
        }
        let value = strip_comment(raw);
        let indent = raw.len() - raw.trim_start().len();
        if value.trim().is_empty() {
            blanks += 1;
            continue;
        }
        if let (Some((key_indent, index)), Some(section)) = (open, sections.last_mut())
            && indent > key_indent
        {
            // A continuation line, after any blank lines it keeps.
            let entry = &mut section.entries[index];
            entry.value.push_str(&"\n".repeat(blanks + 1));
            entry.value.push_str(value.trim());
            blanks = 0;
            continue;
        }
        blanks = 0;
        let value = value.trim();
        if let Some(name) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')).filter(|n| !n.is_empty()) {
            let at = Place { file: file.to_path_buf(), line: number };
            match sections.iter().position(|s| s.name == name) {
                // Given twice in one file: read as one, as supervisord reads it.
                Some(index) => {
                    let section = sections.remove(index);
                    sections.push(section);
                }
                None => sections.push(Section { name: name.to_string(), at, entries: Vec::new() }),
            }
            open = None;
            continue;
        }
        let Some(section) = sections.last_mut() else {
            return Err(error(number, format!("`{value}` comes before any [section]")));
        };
        let Some(split) = value.find(['=', ':']) else {
            return Err(error(number, format!("`{value}` is neither a [section] nor a `key = value`")));
        };
        let key = value[..split].trim().to_lowercase();
        if key.is_empty() {
            return Err(error(number, format!("`{value}` has no key")));
        }
        let entry = Entry {
            key,
            value: value[split + 1..].trim().to_string(),
            at: Place { file: file.to_path_buf(), line: number },
        };
        let index = match section.entries.iter().position(|e| e.key == entry.key) {
            Some(index) => {
                section.entries[index] = entry;
                index
            }
            None => {
                section.entries.push(entry);
                section.entries.len() - 1
            }
        };
        open = Some((indent, index));
    }
    // A section read again in the same file went last to take its continuation lines; put the
    // sections back in the order they first came.
    sections.sort_by_key(|s| s.at.line);
    Ok(sections)
}

/// A line without its inline comment: `;` or `#` at its start or after whitespace.
fn strip_comment(line: &str) -> &str {
    let mut previous_blank = true;
    for (i, c) in line.char_indices() {
        if (c == ';' || c == '#') && previous_blank {
            return &line[..i];
        }
        previous_blank = c.is_whitespace();
    }
    line
}

/// The files a glob matches (`*`, `?`, `[…]` in any step; names starting with `.` only when the
/// step does), as Python's `glob` finds them.
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::from("/")];
    let mut listed = 0;
    for step in pattern.components().skip(1) {
        let step = step.as_os_str().to_string_lossy();
        let wild = step.contains(['*', '?', '[']);
        let matcher = match wild {
            true => match globset::GlobBuilder::new(&step).literal_separator(true).build() {
                Ok(glob) => Some(glob.compile_matcher()),
                Err(_) => return Vec::new(),
            },
            false => None,
        };
        let mut next = Vec::new();
        for dir in found {
            match &matcher {
                None => {
                    let path = dir.join(step.as_ref());
                    if path.exists() {
                        next.push(path);
                    }
                }
                Some(matcher) => {
                    let Ok(entries) = std::fs::read_dir(&dir) else { continue };
                    for entry in entries.flatten() {
                        listed += 1;
                        if listed > MAX_LISTED {
                            return Vec::new();
                        }
                        let name = entry.file_name();
                        let hidden = name.to_string_lossy().starts_with('.') && !step.starts_with('.');
                        if !hidden && matcher.is_match(&name) {
                            next.push(entry.path());
                        }
                    }
                }
            }
        }
        found = next;
    }
    found.retain(|p| p.is_file());
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(text: &str) -> Vec<Section> {
        parse(Path::new("/x/supervisord.conf"), text).unwrap()
    }

    #[test]
    fn sections_keys_comments_and_continuations_read_as_python_reads_them() {
        let text = "; top comment\n[program:web]\nCommand = python3 app.py ; inline\ndirectory: /srv\n\
                    environment=\n    A=\"1\",\n\n    B=2\n# comment\nurl=http://x/#frag\n[group:g]\nprograms=web\n";
        let s = sections(text);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].name.as_str(), s[0].at.line), ("program:web", 2));
        let got: Vec<(&str, &str, usize)> =
            s[0].entries.iter().map(|e| (e.key.as_str(), e.value.as_str(), e.at.line)).collect();
        assert_eq!(
            got,
            [
                ("command", "python3 app.py", 3),
                ("directory", "/srv", 4),
                ("environment", "\nA=\"1\",\n\nB=2", 5),
                ("url", "http://x/#frag", 10),
            ]
        );
        assert_eq!(s[1].get("programs").map(|e| e.value.as_str()), Some("web"));
    }

    #[test]
    fn a_section_or_key_given_twice_is_merged() {
        let s = sections("[a]\nx=1\ny=2\n[b]\nz=3\n[a]\nx=4\n");
        assert_eq!(s.len(), 2);
        let a: Vec<(&str, &str)> = s[0].entries.iter().map(|e| (e.key.as_str(), e.value.as_str())).collect();
        assert_eq!(a, [("x", "4"), ("y", "2")]);
    }

    #[test]
    fn what_is_not_ini_is_an_error_with_its_line() {
        let err = |text: &str| parse(Path::new("/x/s.conf"), text).unwrap_err().to_string();
        assert_eq!(err("x=1\n"), "/x/s.conf:1: `x=1` comes before any [section]");
        assert_eq!(err("[a]\n\njust words\n"), "/x/s.conf:3: `just words` is neither a [section] nor a `key = value`");
        assert_eq!(err("[a]\n= 5\n"), "/x/s.conf:2: `= 5` has no key");
    }

    #[test]
    fn includes_are_globbed_beside_the_main_file() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("conf.d");
        std::fs::create_dir(&conf).unwrap();
        std::fs::write(conf.join("b.conf"), "[program:b]\ncommand=sleep 2\n").unwrap();
        std::fs::write(conf.join("a.conf"), "[program:a]\ncommand=sleep 1\n[include]\nfiles=nested/*.conf\n").unwrap();
        std::fs::write(conf.join(".hidden.conf"), "[program:h]\ncommand=sleep 3\n").unwrap();
        std::fs::write(conf.join("c.txt"), "[program:c]\ncommand=sleep 4\n").unwrap();
        let main = dir.path().join("supervisord.conf");
        let text = "[supervisord]\n[include]\nfiles = conf.d/*.conf %(here)s/missing/*.conf\n";
        let ini = load(&main, text).unwrap();
        let names: Vec<&str> = ini.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["supervisord", "include", "program:a", "program:b"]);
        assert_eq!(ini.included, [conf.join("a.conf"), conf.join("b.conf")]);
        let a = ini.section("program:a").unwrap();
        assert_eq!(a.at, Place { file: conf.join("a.conf"), line: 1 });
        // An included file's own [include] is not followed.
        assert_eq!(ini.nested_includes, [Place { file: conf.join("a.conf"), line: 3 }]);

        let err = load(&main, "[include]\n").unwrap_err().to_string();
        assert!(
            err.ends_with(
                "supervisord.conf:1: include: an [include] section needs a `files` key (globs of the files to include)"
            ),
            "{err}"
        );
        std::fs::write(conf.join("bad.conf"), "oops\n").unwrap();
        let err = load(&main, text).unwrap_err().to_string();
        assert_eq!(err, format!("{}:1: `oops` comes before any [section]", conf.join("bad.conf").display()));
    }

    #[test]
    fn odd_text_never_panics() {
        for text in [
            "",
            "[",
            "[]",
            "[a",
            "[a]\n  x\n",
            "[a]\n=\n",
            "[a]\n:\n",
            "\u{feff}[a]",
            "[a]\nk=\u{1F600}\n  \u{1F600}\n",
        ] {
            let _ = parse(Path::new("/x"), text);
        }
    }
}
