//! supervisord's expansions: Python's `%(name)s` formatting over the names it defines
//! (`here`, `program_name`, `group_name`, `host_node_name`, `process_num`, `numprocs`,
//! `ENV_X`), with `%%` for a literal `%`.

use std::collections::HashMap;

/// The widest field a format may ask for (`%(process_num)05d`): more is no config.
const MAX_WIDTH: usize = 256;

/// What a name expands to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Val {
    Text(String),
    Int(i64),
    /// The number of the instance, known only when it starts: pm's `${PM_INSTANCE}`.
    Instance,
    /// A name pm cannot give a value, and why.
    Missing(String),
}

/// The names of one expansion.
#[derive(Debug, Default, Clone)]
pub(super) struct Names(HashMap<String, Val>);

impl Names {
    pub fn set(&mut self, name: impl Into<String>, value: Val) {
        self.0.insert(name.into(), value);
    }

    /// `ENV_X` for every variable of the environment.
    pub fn environment() -> Names {
        let mut names = Names::default();
        for (var, value) in std::env::vars_os() {
            if let (Some(var), Some(value)) = (var.to_str(), value.to_str()) {
                names.set(format!("ENV_{var}"), Val::Text(value.to_string()));
            }
        }
        names
    }
}

/// `text` with its `%(name)…` expanded, or why it cannot be.
pub(super) fn expand(text: &str, names: &Names) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('%') {
            out.push('%');
            rest = after;
            continue;
        }
        let Some(inner) = rest.strip_prefix('(') else {
            return Err(format!("a `%` with no `(name)` in `{text}`: write `%%` for a literal `%`"));
        };
        let Some(close) = inner.find(')') else {
            return Err(format!("an unclosed `%(` in `{text}`"));
        };
        let name = &inner[..close];
        let (spec, conversion, after) = conversion(&inner[close + 1..])
            .ok_or_else(|| format!("`%({name})` has no conversion in `{text}` (e.g. `%({name})s`)"))?;
        let value = names.0.get(name).ok_or_else(|| unknown(name))?;
        out.push_str(&format(name, value, spec, conversion)?);
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

fn unknown(name: &str) -> String {
    match name.strip_prefix("ENV_") {
        Some(var) => format!("`%({name})s`: the environment variable {var} is not set"),
        None => format!("`%({name})s`: supervisord has no such name here"),
    }
}

/// A format's flags, width and precision, its conversion character, and what follows it.
fn conversion(text: &str) -> Option<(&str, char, &str)> {
    let end = text.find(|c: char| !(c.is_ascii_digit() || "#0- +.*hlL".contains(c)))?;
    let conversion = text[end..].chars().next()?;
    Some((&text[..end], conversion, &text[end + conversion.len_utf8()..]))
}

fn format(name: &str, value: &Val, spec: &str, conversion: char) -> Result<String, String> {
    let plain = spec.is_empty();
    let text = match (value, conversion) {
        (Val::Missing(why), _) => return Err(format!("`%({name}){spec}{conversion}`: {why}")),
        (Val::Instance, 's' | 'd' | 'i' | 'u') if plain => return Ok("${PM_INSTANCE}".into()),
        (Val::Instance, _) => {
            return Err(format!(
                "`%({name}){spec}{conversion}`: pm numbers instances itself, as plain numbers (`%({name})d`)"
            ));
        }
        (Val::Text(s), 's') => s.clone(),
        (Val::Int(n), 's' | 'd' | 'i' | 'u') => n.to_string(),
        (Val::Text(_), 'd' | 'i' | 'u') => return Err(format!("`%({name})d`: `{name}` is not a number")),
        _ => return Err(format!("`%({name}){spec}{conversion}`: pm expands `s` and `d` formats only")),
    };
    pad(name, text, spec)
}

/// Applies a width (`%(n)3d`), zero padding (`%(n)03d`) and left alignment (`%(n)-3s`).
fn pad(name: &str, text: String, spec: &str) -> Result<String, String> {
    let flags: String = spec.chars().take_while(|c| "#0- +".contains(*c)).collect();
    let rest = &spec[flags.len()..];
    if rest.contains(['.', '*', 'h', 'l', 'L']) || flags.contains(['#', ' ', '+']) {
        return Err(format!("`%({name}){spec}…`: pm expands widths and zero padding only"));
    }
    let width: usize = match rest {
        "" => 0,
        digits => {
            digits.parse().ok().filter(|w| *w <= MAX_WIDTH).ok_or_else(|| format!("`%({name}){spec}…`: too wide"))?
        }
    };
    let fill = width.saturating_sub(text.chars().count());
    Ok(match (flags.contains('-'), flags.contains('0')) {
        (true, _) => format!("{text}{}", " ".repeat(fill)),
        (false, true) => match text.strip_prefix('-') {
            Some(digits) => format!("-{}{digits}", "0".repeat(fill)),
            None => format!("{}{text}", "0".repeat(fill)),
        },
        (false, false) => format!("{}{text}", " ".repeat(fill)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        let mut names = Names::default();
        names.set("program_name", Val::Text("web".into()));
        names.set("process_num", Val::Int(3));
        names.set("ENV_HOME", Val::Text("/home/me".into()));
        names
    }

    #[test]
    fn names_expand_as_python_formats_them() {
        let n = names();
        assert_eq!(expand("%(program_name)s-%(process_num)d", &n).unwrap(), "web-3");
        assert_eq!(expand("%(program_name)s_%(process_num)02d", &n).unwrap(), "web_03");
        assert_eq!(expand("[%(process_num)-3d]", &n).unwrap(), "[3  ]");
        assert_eq!(expand("[%(program_name)5s]", &n).unwrap(), "[  web]");
        assert_eq!(expand("%(ENV_HOME)s/app 100%%", &n).unwrap(), "/home/me/app 100%");
        assert_eq!(expand("no names", &n).unwrap(), "no names");
        assert_eq!(expand("%(process_num)s", &n).unwrap(), "3");
    }

    #[test]
    fn what_cannot_be_expanded_says_why() {
        let n = names();
        assert_eq!(expand("%(ENV_NOPE)s", &n).unwrap_err(), "`%(ENV_NOPE)s`: the environment variable NOPE is not set");
        assert_eq!(expand("%(nope)s", &n).unwrap_err(), "`%(nope)s`: supervisord has no such name here");
        assert!(expand("50%", &n).unwrap_err().contains("write `%%` for a literal `%`"));
        assert!(expand("%(program_name", &n).unwrap_err().contains("unclosed"));
        assert!(expand("%(program_name)", &n).unwrap_err().contains("has no conversion"));
        assert!(expand("%(program_name)d", &n).unwrap_err().contains("is not a number"));
        assert!(expand("%(process_num)x", &n).unwrap_err().contains("`s` and `d` formats only"));
        assert!(expand("%(process_num)99999d", &n).unwrap_err().contains("too wide"));
        assert!(expand("%(process_num).2d", &n).unwrap_err().contains("widths and zero padding only"));
    }

    #[test]
    fn the_instance_number_is_pm_s_own_variable() {
        let mut n = names();
        n.set("process_num", Val::Instance);
        assert_eq!(expand("--port=80%(process_num)d", &n).unwrap(), "--port=80${PM_INSTANCE}");
        assert!(expand("%(process_num)02d", &n).unwrap_err().contains("pm numbers instances itself"));
    }

    #[test]
    fn odd_text_never_panics() {
        let n = names();
        for text in ["%", "%%%", "%(", "%()", "%()s", "%(é)s", "%(program_name)é", "%(process_num)-0d", "%(a)%(b)"] {
            let _ = expand(text, &n);
        }
    }
}
