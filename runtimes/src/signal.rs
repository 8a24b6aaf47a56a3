//! Signal names as users write them in project files and on the command line.

use nix::sys::signal::Signal;

/// Parses `SIGTERM`, `TERM`, `sigterm` or `15`.
pub fn parse_signal(name: &str) -> Result<Signal, String> {
    let trimmed = name.trim();
    let parsed = match trimmed.parse::<i32>() {
        Ok(number) => Signal::try_from(number).ok(),
        Err(_) => {
            let upper = trimmed.to_ascii_uppercase();
            let full = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
            full.parse().ok()
        }
    };
    parsed.ok_or_else(|| format!("unknown signal `{name}` (expected a name or number such as SIGTERM, TERM, INT, 15)"))
}

/// `SIGKILL` for 9; `signal 99` for numbers that name no signal.
pub fn signal_name(signo: i32) -> String {
    match Signal::try_from(signo) {
        Ok(signal) => signal.as_str().to_string(),
        Err(_) => format!("signal {signo}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_short_names_any_case_and_numbers() {
        for text in ["SIGTERM", "TERM", "sigterm", "term", "15", " SIGTERM "] {
            assert_eq!(parse_signal(text), Ok(Signal::SIGTERM), "{text}");
        }
        assert_eq!(parse_signal("HUP"), Ok(Signal::SIGHUP));
        assert_eq!(parse_signal("SIGUSR1"), Ok(Signal::SIGUSR1));
        assert_eq!(parse_signal("9"), Ok(Signal::SIGKILL));
    }

    #[test]
    fn rejects_unknown_names_and_numbers_with_examples() {
        for text in ["SIGFOO", "", "0", "999", "-15", "SIG"] {
            let error = parse_signal(text).unwrap_err();
            assert!(error.contains(&format!("`{text}`")), "{error}");
            assert!(error.contains("SIGTERM"), "{error}");
        }
    }

    #[test]
    fn names_signal_numbers() {
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(99), "signal 99");
        assert_eq!(signal_name(0), "signal 0");
    }
}
