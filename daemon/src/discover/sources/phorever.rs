//! Phorever files (`phorever.json`): each process becomes a sidecar. Phorever runs `up` with
//! `sh -c 'exec …'` in the file's directory, `clones` times, and resurrects an exited process
//! `resurrect_after` seconds later, whatever its exit, without ever giving up; its `roles` are
//! what `phorever start ROLE` selects, pm's groups.

use super::tree::{Doc, at, key_text, restart_without_end, settle_cwd};
use crate::config::{ConfigError, Format, Seg, key};
use crate::discover::{SourceFile, Translated, pm_name};
use pm_protocol::definition::MAX_INSTANCES;
use pm_protocol::{Definition, RestartPolicy};
use serde_yaml::{Mapping, Value};
use std::time::Duration;

pub fn read(file: &SourceFile<'_>) -> Result<Translated, ConfigError> {
    let mut doc = Doc::new(file, Format::Json);
    let root = doc.parse()?;
    let top = doc.mapping(&root, &[], "a Phorever file (an object with `processes`)")?;
    // Phorever looks at its processes every `tick` seconds: no resurrection comes sooner.
    let mut tick = 2;
    let mut processes = None;
    for (key, value) in top {
        let key = key_text(key);
        let path = key![key.as_str()];
        match key.as_str() {
            "processes" => processes = Some(value),
            "tick" => tick = doc.number(value, &path, pm_protocol::duration::MAX.as_secs()).unwrap_or(tick),
            "pidfile" => doc.because(&path, "pm keeps its own pid file"),
            "logging" => doc.because(&path, "pm keeps its own logs"),
            "timezone" => doc.because(&path, "the time zone of Phorever's own log"),
            _ => doc.skip(&path, None),
        }
    }
    let processes = processes.ok_or_else(|| doc.src.invalid(key![], "no `processes`: not a Phorever file"))?;
    let Value::Sequence(processes) = processes else {
        return Err(doc.src.invalid(key!["processes"], "expected a list of processes"));
    };
    let mut sidecars = Vec::new();
    for (i, process) in processes.iter().enumerate() {
        let path = key!["processes", i];
        let Value::Mapping(process) = process else {
            doc.wrong(&path, "an object", process);
            continue;
        };
        if let Some((name, mut def)) = translate(&mut doc, process, &path, tick) {
            settle_cwd(&mut def, file.dir);
            sidecars.push((name, def));
        }
    }
    Ok(Translated { sidecars, untranslated: doc.untranslated() })
}

/// One process; `None` (reported) without a name or an `up` command.
fn translate(doc: &mut Doc<'_>, process: &Mapping, path: &[Seg], tick: u64) -> Option<(String, Definition)> {
    let mut def = Definition::new(Vec::new());
    let (mut name, mut up, mut resurrect) = (None, None, 5);
    for (key, value) in process {
        let key = key_text(key);
        let at = at(path, key.as_str());
        match key.as_str() {
            "name" => name = doc.text(value, &at).and_then(|raw| doc.name(&raw, &at)),
            // Phorever runs it with `exec` through `sh -c`.
            "up" => up = doc.text(value, &at).filter(|up| !up.trim().is_empty()),
            "roles" => {
                for (i, role) in doc.strings(value, &at, false).unwrap_or_default().iter().enumerate() {
                    let group = pm_name(role);
                    let at_role = super::tree::at(&at, i);
                    if group.is_empty() {
                        doc.because(&at_role, format!("`{role}` makes no pm group name"));
                        continue;
                    }
                    // Phorever matches roles without case.
                    if group != role.to_lowercase() {
                        doc.because(&at_role, format!("group `{group}` in pm"));
                    }
                    if !def.groups.contains(&group) {
                        def.groups.push(group);
                    }
                }
            }
            "clones" => def.instances = doc.number(value, &at, MAX_INSTANCES.into()).map_or(1, |n| n.max(1) as u32),
            "resurrect_after" => resurrect = doc.number(value, &at, pm_protocol::duration::MAX.as_secs()).unwrap_or(5),
            "log_forwarding" | "stdout_file" | "stderr_file" => doc.because(&at, "pm keeps its own logs"),
            _ => doc.skip(&at, None),
        }
    }
    let Some(up) = up else {
        doc.because(path, "no `up` command: nothing to run");
        return None;
    };
    let Some(name) = name else {
        if !process.contains_key("name") {
            doc.because(path, "no `name`");
        }
        return None;
    };
    def.command = vec!["sh".into(), "-c".into(), format!("exec {up}")];
    restart_without_end(&mut def, RestartPolicy::Always);
    def.backoff_initial = Duration::from_secs(resurrect.max(tick));
    def.backoff_max = def.backoff_initial;
    Some((name, def))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::discover::sources::testing::{Subject, accepted, listed};

    pub const SUBJECT: Subject = Subject { read, file: "phorever.json", fixture: "phorever" };
    use std::path::Path;

    fn resurrected(up: &str, groups: &[&str], every: u64, dir: &Path) -> Definition {
        let mut def = Definition::new(vec!["sh".into(), "-c".into(), format!("exec {up}")]);
        def.groups = groups.iter().map(|g| g.to_string()).collect();
        def.restart = RestartPolicy::Always;
        def.max_restarts = u32::MAX;
        def.backoff_initial = Duration::from_secs(every);
        def.backoff_max = Duration::from_secs(every);
        def.cwd = Some(dir.to_path_buf());
        def
    }

    #[test]
    fn the_fixture_translates_process_by_process() {
        let (dir, t) = SUBJECT.fixture();
        let web = resurrected("python3 -m http.server 0 --bind 127.0.0.1", &["web", "frontend"], 5, &dir);
        let mut mailer =
            resurrected("sh -c 'echo \"mailer up\" >> record.log; exec sleep 3600'", &["workers"], 10, &dir);
        mailer.instances = 2;
        let flaky = resurrected("./flaky.sh --once", &["workers", "batch-jobs"], 1, &dir);
        let want = [("web-server", web), ("mailer", mailer), ("flaky", flaky)].map(|(n, d)| (n.to_string(), d));
        assert_eq!(t.sidecars, want);
        assert_eq!(
            listed(&t),
            [
                "pidfile (2): pm keeps its own pid file",
                "timezone (3): the time zone of Phorever's own log",
                "logging (4): pm keeps its own logs",
                "processes[0].name (10): named `web-server` in pm",
                "processes[0].log_forwarding (13): pm keeps its own logs",
                "processes[1].stdout_file (21): pm keeps its own logs",
                "processes[2].roles[1] (25): group `batch-jobs` in pm",
            ]
        );
    }

    #[test]
    fn files_that_are_not_phorever_files_are_errors_and_odd_entries_are_reported() {
        let dir = Path::new("/srv/app");
        SUBJECT.errors(&[
            ("", "EOF while parsing a value"),
            ("[]", "expected a Phorever file (an object with `processes`), found a list"),
            ("{\"tick\": 1}", "no `processes`: not a Phorever file"),
            ("{\"processes\": {}}", "processes: expected a list of processes"),
            ("{\"processes\": []} x", "trailing characters"),
        ]);
        let text = "{\"processes\": [5, {\"name\": \"a\"}, {\"up\": \"x\"}, {\"name\": \"???\", \"up\": \"x\"},\n \
                    {\"name\": \"b\", \"up\": \"x\", \"clones\": 1e9, \"roles\": \"r\", \"resurrect_after\": -1, \"extra\": 1}]}";
        let t = SUBJECT.translate(dir, text).unwrap();
        accepted(&t);
        assert_eq!(t.sidecars.len(), 1);
        assert_eq!((t.sidecars[0].1.instances, t.sidecars[0].1.backoff_initial), (1, Duration::from_secs(5)));
        assert_eq!(
            listed(&t),
            [
                "processes[0] (1): expected an object, found a number",
                "processes[1] (1): no `up` command: nothing to run",
                "processes[2] (1): no `name`",
                "processes[3].name (1): `???` makes no pm name (letters, digits, `-` and `_`)",
                "processes[4].clones (2): expected a whole number, found a number",
                "processes[4].roles (2): expected a list of strings, found a string",
                "processes[4].resurrect_after (2): expected a whole number, found a number",
                "processes[4].extra (2)",
            ]
        );
    }
}
