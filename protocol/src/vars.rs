//! The variables pm sets per instance, `${PM_NAME}`, `${PM_INSTANCE}` and, with a `port`,
//! `${PORT}` and `${PM_PORT}`: a project file keeps them as written, and they are expanded in a
//! definition's strings when each instance starts, since an `auto:` port is known only then.

use crate::definition::Readiness;
use crate::health::Probe;
use crate::{Definition, DockerSpec};

/// What the per-instance variables stand for in one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vars {
    pub name: String,
    pub index: u32,
    pub port: Option<u16>,
}

impl Vars {
    /// `(variable, value)` for every variable set in this run.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![("PM_NAME", self.name.clone()), ("PM_INSTANCE", self.index.to_string())];
        if let Some(port) = self.port {
            pairs.extend([("PORT", port.to_string()), ("PM_PORT", port.to_string())]);
        }
        pairs
    }

    /// `text` with each `${VAR}` of [`Vars::pairs`] replaced by its value.
    pub fn expand(&self, text: &str) -> String {
        if !text.contains("${") {
            return text.to_string();
        }
        self.pairs().iter().fold(text.to_string(), |t, (var, value)| t.replace(&format!("${{{var}}}"), value))
    }

    /// `def` with its variables expanded in every string a run uses.
    pub fn definition(&self, def: &Definition) -> Definition {
        let mut def = def.clone();
        self.each_string(&mut def, &mut |s| *s = self.expand(s));
        def
    }

    /// Stand-ins that make a string checkable before any instance runs: a URL with `${PORT}`
    /// must still parse.
    pub fn sample() -> Vars {
        Vars { name: "name".into(), index: 0, port: Some(1) }
    }

    fn each_string(&self, def: &mut Definition, f: &mut dyn FnMut(&mut String)) {
        def.command.iter_mut().for_each(&mut *f);
        if let Some(cwd) = &mut def.cwd {
            let mut text = cwd.to_string_lossy().into_owned();
            f(&mut text);
            *cwd = text.into();
        }
        def.env.values_mut().for_each(&mut *f);
        match &mut def.ready {
            Readiness::Log(s) | Readiness::Tcp(s) | Readiness::Http(s) => f(s),
            Readiness::Exec(argv) => argv.iter_mut().for_each(&mut *f),
            Readiness::Started | Readiness::Registered | Readiness::Exited => {}
        }
        if let Some(health) = &mut def.health {
            match &mut health.probe {
                Probe::Tcp(s) | Probe::Rpc(s) => f(s),
                Probe::Http(http) => f(&mut http.url),
                Probe::Exec(argv) => argv.iter_mut().for_each(&mut *f),
            }
        }
        let hooks = &mut def.hooks;
        for hook in [&mut hooks.pre_start, &mut hooks.post_start, &mut hooks.pre_stop, &mut hooks.post_stop]
            .into_iter()
            .flatten()
        {
            hook.command.iter_mut().for_each(&mut *f);
            hook.env.values_mut().for_each(&mut *f);
        }
        if let Some(DockerSpec { ports, volumes, workdir, .. }) = &mut def.docker {
            ports.iter_mut().chain(volumes.iter_mut()).chain(workdir.iter_mut()).for_each(&mut *f);
        }
    }
}

/// Whether `${var}` is left for [`Vars::expand`] in a definition that has (or has not) a port.
pub fn is_per_instance(var: &str, has_port: bool) -> bool {
    matches!(var, "PM_NAME" | "PM_INSTANCE") || (has_port && matches!(var, "PORT" | "PM_PORT"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_expand_in_every_string_a_run_uses() {
        let def: Definition = serde_json::from_value(serde_json::json!({
            "command": ["serve", "--port=${PORT}", "--id=${PM_INSTANCE}"],
            "env": {"URL": "http://127.0.0.1:${PM_PORT}/", "WHO": "${PM_NAME}", "KEEP": "${HOME}"},
            "ready": {"http": "http://127.0.0.1:${PORT}/ready"},
            "health": {"tcp": "127.0.0.1:${PORT}"},
            "hooks": {"pre_start": "echo ${PORT}"},
        }))
        .unwrap();
        let vars = Vars { name: "web-2".into(), index: 2, port: Some(4002) };
        let out = vars.definition(&def);
        assert_eq!(out.command, ["serve", "--port=4002", "--id=2"]);
        assert_eq!(out.env["URL"], "http://127.0.0.1:4002/");
        assert_eq!(out.env["WHO"], "web-2");
        assert_eq!(out.env["KEEP"], "${HOME}", "only pm's own variables are expanded at start");
        assert_eq!(out.ready, Readiness::Http("http://127.0.0.1:4002/ready".into()));
        assert_eq!(out.health.unwrap().probe, Probe::Tcp("127.0.0.1:4002".into()));
        assert_eq!(out.hooks.pre_start.unwrap().command, ["echo", "4002"]);
        let portless = Vars { port: None, ..vars };
        assert_eq!(portless.expand("${PORT} ${PM_INSTANCE}"), "${PORT} 2");
    }
}
