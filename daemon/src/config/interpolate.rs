//! `${VAR}`, `${VAR:-default}` and `$$` in project-file strings.
//!
//! - `${VAR}`: the variable's value; an error when it is unset.
//! - `${VAR:-default}`: the default when VAR is unset or empty (POSIX `:-`); `${VAR-default}`
//!   only when it is unset. The default may itself use `${…}` and `$$`.
//! - `$$`: a literal `$`.
//! - Any other `$` is kept as it is, so `$HOME` in `sh -c '…'` and `ready$` in a regex reach the
//!   program unchanged.

use super::errors::InterpolationError;

/// Expands `text`, looking variables up with `env`.
pub fn interpolate(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, InterpolationError> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end =
                closing_brace(body, true).ok_or_else(|| InterpolationError::Unterminated { text: text.to_string() })?;
            out.push_str(&expand(&body[..end], env)?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Byte index of the `}` closing a `${` whose body starts `body`, skipping nested `${…}`, and
/// `$$` when `escapes` (pm's files; `pm discover` passes `false` for the other tools' files).
pub(crate) fn closing_brace(body: &str, escapes: bool) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if escapes && bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Expands the inside of one `${…}`.
fn expand(expr: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, InterpolationError> {
    let name_len = expr.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(expr.len());
    let (name, modifier) = expr.split_at(name_len);
    let invalid = || InterpolationError::Invalid { expr: expr.to_string() };
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(invalid());
    }
    let value = env(name);
    if modifier.is_empty() {
        return value.ok_or_else(|| InterpolationError::Unset { var: name.to_string() });
    }
    let (default, use_default) = if let Some(default) = modifier.strip_prefix(":-") {
        (default, value.as_deref().is_none_or(str::is_empty))
    } else if let Some(default) = modifier.strip_prefix('-') {
        (default, value.is_none())
    } else {
        return Err(invalid());
    };
    match value {
        Some(value) if !use_default => Ok(value),
        _ => interpolate(default, env),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::env;

    fn ok(text: &str) -> String {
        interpolate(text, &env).unwrap()
    }

    #[test]
    fn set_variables_are_substituted() {
        assert_eq!(ok("${HOME}/app"), "/home/ada/app");
        assert_eq!(ok("127.0.0.1:${PORT}"), "127.0.0.1:8080");
        assert_eq!(ok("${HOME}${PORT}"), "/home/ada8080");
        assert_eq!(ok("${PORT:-1}"), "8080", "a set variable wins over its default");
        assert_eq!(ok("no dollars"), "no dollars");
    }

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        assert_eq!(ok("${NOPE:-fallback}"), "fallback");
        assert_eq!(ok("${EMPTY:-fallback}"), "fallback");
        assert_eq!(ok("${NOPE:-}"), "");
        assert_eq!(ok("${EMPTY-fallback}"), "", "`-` without `:` keeps an empty value");
        assert_eq!(ok("${NOPE-fallback}"), "fallback");
        assert_eq!(ok("${NOPE:-${PORT}}"), "8080", "defaults are interpolated too");
        assert_eq!(ok("${NOPE:-a:b-c d}"), "a:b-c d");
    }

    #[test]
    fn double_dollar_is_a_literal_dollar_and_lone_dollars_stay() {
        assert_eq!(ok("$$"), "$");
        assert_eq!(ok("cost: $$5"), "cost: $5");
        assert_eq!(ok("$${HOME}"), "${HOME}");
        assert_eq!(ok("echo $HOME"), "echo $HOME");
        assert_eq!(ok("^ready$"), "^ready$");
        assert_eq!(ok("$"), "$");
        assert_eq!(ok("${NOPE:-$$}"), "$");
    }

    #[test]
    fn unset_without_default_is_an_error_naming_the_variable() {
        assert_eq!(
            interpolate("postgres://${DB_HOST}/x", &env),
            Err(InterpolationError::Unset { var: "DB_HOST".into() })
        );
        assert_eq!(
            interpolate("${NOPE:-${ALSO_NOPE}}", &env),
            Err(InterpolationError::Unset { var: "ALSO_NOPE".into() })
        );
    }

    #[test]
    fn unterminated_and_malformed_expressions_are_errors() {
        assert_eq!(interpolate("a ${HOME", &env), Err(InterpolationError::Unterminated { text: "a ${HOME".into() }));
        assert_eq!(interpolate("${A:-${B}", &env), Err(InterpolationError::Unterminated { text: "${A:-${B}".into() }));
        for bad in ["${}", "${1X}", "${A B}", "${A:?x}", "${A.B}"] {
            assert!(matches!(interpolate(bad, &env), Err(InterpolationError::Invalid { .. })), "{bad}");
        }
    }
}
