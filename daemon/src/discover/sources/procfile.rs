//! A `Procfile` (Heroku, foreman, honcho): one `name: command` line per process type.
//!
//! - Each process type becomes a sidecar that runs `sh -c COMMAND` in the Procfile's directory,
//!   as Heroku runs it (through a shell, so `$VAR`, `&&` and redirections work), restarted after
//!   every exit (`restart = "always"`: a dyno that exits is restarted) and given Heroku's 30 s
//!   between SIGTERM and SIGKILL (`stop_timeout = "30s"`).
//! - `release` is Heroku's release phase: a one-shot that must succeed before the other processes
//!   start. It becomes a sidecar with `ready = "exited"` and `restart = "never"`, and every other
//!   process type depends on it.
//! - Heroku gives each process a `PORT`; pm exports one only to a sidecar with a `port`, so a
//!   command that uses `$PORT` is reported.
//! - Blank lines and `#` comments are skipped; any other line that is not `name: command`, and a
//!   second line for a name already given, is reported with its line number.

use crate::config::ConfigError;
use crate::discover::{SourceFile, Translated, Untranslated, pm_name};
use pm_protocol::{Definition, Readiness, RestartPolicy};
use std::collections::BTreeSet;
use std::time::Duration;

/// Heroku's release phase.
const RELEASE: &str = "release";
/// How long Heroku waits after SIGTERM before SIGKILL.
const HEROKU_STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of a line a report quotes.
const QUOTE: usize = 60;

pub fn read(src: &SourceFile<'_>) -> Result<Translated, ConfigError> {
    let mut out = Translated::default();
    let mut given = BTreeSet::new();
    let text = src.text.strip_prefix('\u{feff}').unwrap_or(src.text);
    for (i, raw) in text.lines().enumerate() {
        let line = Some(i + 1);
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let Some((name, command)) = entry(content) else {
            let why = "not a `name: command` line (a name is letters, digits, `_` and `-`)";
            out.untranslated.push(Untranslated::new(quote(content), line).because(why));
            continue;
        };
        if command.is_empty() {
            out.untranslated.push(Untranslated::new(name, line).because("no command after `:`"));
            continue;
        }
        let pm = pm_name(name);
        if pm.is_empty() {
            let why = format!("`{name}` has nothing a pm name can be made of ([a-z0-9_-]); skipped");
            out.untranslated.push(Untranslated::new(name, line).because(why));
            continue;
        }
        if given.contains(&pm) {
            let why = format!("`{pm}` is given again; the first line for it is kept");
            out.untranslated.push(Untranslated::new(name, line).because(why));
            continue;
        }
        if pm != name {
            out.untranslated.push(Untranslated::new(name, line).because(format!("named `{pm}` in pm")));
        }
        given.insert(pm.clone());
        if uses_port(command) {
            let why = "uses $PORT, which Heroku sets; pm exports PORT only to a sidecar that has a `port`";
            out.untranslated.push(Untranslated::new(name, line).because(why));
        }
        let mut def = Definition::new(vec!["sh".into(), "-c".into(), command.into()]);
        def.cwd = Some(src.dir.to_path_buf());
        def.stop_timeout = HEROKU_STOP_TIMEOUT;
        if pm == RELEASE {
            def.ready = Readiness::Exited;
            def.restart = RestartPolicy::Never;
        } else {
            def.restart = RestartPolicy::Always;
        }
        out.sidecars.push((pm, def));
    }
    if given.contains(RELEASE) {
        for (name, def) in &mut out.sidecars {
            if name != RELEASE {
                def.depends_on.push(RELEASE.into());
            }
        }
    }
    Ok(out)
}

/// `name: command` (foreman's and honcho's `^([A-Za-z0-9_-]+):\s*(.+)$`), the command trimmed.
fn entry(line: &str) -> Option<(&str, &str)> {
    let (name, command) = line.split_once(':')?;
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    valid.then(|| (name, command.trim()))
}

/// Whether a shell command reads `$PORT` (`$PORT`, `${PORT}`, `${PORT:-5000}`, …).
fn uses_port(command: &str) -> bool {
    command.match_indices('$').any(|(at, _)| {
        let rest = &command[at + 1..];
        let rest = rest.strip_prefix('{').unwrap_or(rest);
        rest.strip_prefix("PORT")
            .is_some_and(|after| !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
    })
}

/// A line as a report quotes it: at most [`QUOTE`] characters.
fn quote(line: &str) -> String {
    match line.char_indices().nth(QUOTE) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::sources::testing::{accepted, definitions};
    use std::path::Path;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/discover/procfile/Procfile");

    fn translate(text: &str) -> Translated {
        let dir = Path::new("/srv/app");
        read(&SourceFile { path: &dir.join("Procfile"), dir, text }).unwrap()
    }

    fn sh(command: &str) -> Definition {
        let mut def = Definition::new(vec!["sh".into(), "-c".into(), command.into()]);
        def.cwd = Some("/srv/app".into());
        def.stop_timeout = HEROKU_STOP_TIMEOUT;
        def.restart = RestartPolicy::Always;
        def
    }

    #[test]
    fn the_fixture_translates_to_release_first_then_its_processes() {
        let text = std::fs::read_to_string(FIXTURE).unwrap();
        let out = translate(&text);
        let mut release = sh("echo migrating && sleep 0.2 && echo migrated > migrated.txt");
        release.ready = Readiness::Exited;
        release.restart = RestartPolicy::Never;
        let mut web = sh("python3 -m http.server ${PORT:-5000} --bind 127.0.0.1");
        web.depends_on = vec!["release".into()];
        let mut worker = sh("while true; do echo tick; sleep 1; done");
        worker.depends_on = vec!["release".into()];
        let mut clock = sh("python3 -u clock.py");
        clock.depends_on = vec!["release".into()];
        let names: Vec<&str> = out.sidecars.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["release", "web", "worker", "clock"]);
        definitions(&out, &[release, web, worker, clock]);
        assert_eq!(
            out.untranslated,
            [
                Untranslated::new("web", Some(6))
                    .because("uses $PORT, which Heroku sets; pm exports PORT only to a sidecar that has a `port`"),
                Untranslated::new("Clock", Some(8)).because("named `clock` in pm"),
            ]
        );
    }

    #[test]
    fn odd_lines_are_reported_with_their_line_and_never_fail_the_file() {
        let text = "\u{feff}web: sleep 1\r\n\n  # comment\nnot a process line\nWeb: sleep 2\nempty:\n\
                    日本: sleep 3\n:sleep 4\n_x: echo $PORTAL $PORT_B\npm: sleep 5\n__: sleep 6\n";
        let out = translate(text);
        let names: Vec<&str> = out.sidecars.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["web", "x", "pm-app"]);
        assert_eq!(out.sidecars[0].1, sh("sleep 1"));
        let why = "not a `name: command` line (a name is letters, digits, `_` and `-`)";
        assert_eq!(
            out.untranslated,
            [
                Untranslated::new("not a process line", Some(4)).because(why),
                Untranslated::new("Web", Some(5)).because("`web` is given again; the first line for it is kept"),
                Untranslated::new("empty", Some(6)).because("no command after `:`"),
                Untranslated::new("日本: sleep 3", Some(7)).because(why),
                Untranslated::new(":sleep 4", Some(8)).because(why),
                Untranslated::new("_x", Some(9)).because("named `x` in pm"),
                Untranslated::new("pm", Some(10)).because("named `pm-app` in pm"),
                Untranslated::new("__", Some(11))
                    .because("`__` has nothing a pm name can be made of ([a-z0-9_-]); skipped"),
            ]
        );
        accepted(&out);
        assert!(translate("").sidecars.is_empty());
        let long = format!("{}\n", "é".repeat(10_000));
        let out = translate(&long);
        assert_eq!(out.untranslated[0].key, format!("{}…", "é".repeat(QUOTE)));
    }

    #[test]
    fn port_uses_are_found_in_every_spelling() {
        for yes in ["x $PORT", "x ${PORT}", "x ${PORT:-5000}", "x=$PORT;", "\"$PORT\""] {
            assert!(uses_port(yes), "{yes}");
        }
        for no in ["x $PORTS", "x ${PORT_B}", "x PORT", "x $ PORT", "x $", "x ${"] {
            assert!(!uses_port(no), "{no}");
        }
    }
}
