//! What the translators' tests share: checks of what a translation gives, and a translator read
//! from its fixture or from a text.

use super::super::{Read, SourceFile, Translated};
use crate::config::ConfigError;
use pm_protocol::Definition;
use std::path::{Path, PathBuf};

/// A translator under test: how it reads, the file name it reads, and its fixture's folder
/// below `tests/fixtures/discover`.
pub struct Subject {
    pub read: Read,
    pub file: &'static str,
    pub fixture: &'static str,
}

impl Subject {
    pub fn fixture_dir(&self) -> PathBuf {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/discover");
        fixtures.join(self.fixture).components().collect()
    }

    /// `text` read as the subject's file in `dir`.
    pub fn translate(&self, dir: &Path, text: &str) -> Result<Translated, ConfigError> {
        (self.read)(&SourceFile { path: &dir.join(self.file), dir, text })
    }

    /// The fixture's folder and its translation, which pm accepts.
    pub fn fixture(&self) -> (PathBuf, Translated) {
        let dir = self.fixture_dir();
        let text = std::fs::read_to_string(dir.join(self.file)).unwrap();
        let t = self.translate(&dir, &text).unwrap();
        accepted(&t);
        (dir, t)
    }

    /// `text` as a file in /srv/app: its translation, which pm accepts, and what it lists.
    pub fn one(&self, text: &str) -> (Translated, Vec<String>) {
        let t = self.translate(Path::new("/srv/app"), text).unwrap_or_else(|e| panic!("{e}"));
        accepted(&t);
        let listed = listed(&t);
        (t, listed)
    }

    /// Each text, as a file in /srv/app, is an error naming the file and saying the message.
    pub fn errors(&self, cases: &[(&str, &str)]) {
        let file = Path::new("/srv/app").join(self.file);
        for (text, message) in cases {
            let e = self.translate(Path::new("/srv/app"), text).unwrap_err().to_string();
            assert!(e.starts_with(&*file.to_string_lossy()), "{e}");
            assert!(e.contains(message), "{text:?}: {e}");
        }
    }
}

pub fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// What the translators' tests check of every sidecar: pm accepts it, and it travels to the
/// daemon (JSON) unchanged.
pub fn accepted(t: &Translated) {
    for (name, def) in &t.sidecars {
        crate::supervisor::validate(name, def).unwrap_or_else(|e| panic!("{name}: {e}"));
        let json = serde_json::to_string(def).unwrap();
        let back: Definition = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{name}: {e}: {json}"));
        assert_eq!(&back, def, "{name} round-trips");
    }
}

/// The untranslated list as `key (line): why` lines, to compare whole.
pub fn listed(t: &Translated) -> Vec<String> {
    t.untranslated
        .iter()
        .map(|u| {
            let line = u.line.map_or_else(|| "-".to_string(), |l| l.to_string());
            match &u.why {
                Some(why) => format!("{} ({line}): {why}", u.key),
                None => format!("{} ({line})", u.key),
            }
        })
        .collect()
}

/// The sidecars' names, in order.
pub fn names(t: &Translated) -> Vec<&str> {
    t.sidecars.iter().map(|(name, _)| name.as_str()).collect()
}

/// The definition of the sidecar `name`, which must be there.
pub fn sidecar<'t>(t: &'t Translated, name: &str) -> &'t Definition {
    &t.sidecars.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no sidecar `{name}`")).1
}

/// The sidecars' definitions are `want`, in order, and pm accepts each.
pub fn definitions(t: &Translated, want: &[Definition]) {
    let got: Vec<&Definition> = t.sidecars.iter().map(|(_, def)| def).collect();
    assert_eq!(got, want.iter().collect::<Vec<_>>());
    accepted(t);
}
