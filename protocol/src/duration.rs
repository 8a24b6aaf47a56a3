//! Human durations on the wire and in project files (`100ms`, `10s`, `2m`), via humantime.
//! At most [`MAX`]: anything longer is a mistake, and would overflow clock arithmetic.

use serde::{Deserialize, Deserializer, Serializer};
use std::time::Duration;

pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// The longest accepted duration: 100 years (humantime's years of 365.25 days, so `100y` fits).
pub const MAX: Duration = Duration::from_secs(100 * 31_557_600);

/// Parses a human duration, with an error that shows the accepted spelling.
pub fn parse(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("invalid duration `{text}` ({e}); use e.g. `100ms`, `10s`, `2m`"))?;
    check(d).map_err(|e| format!("duration `{}`: {e}", text.trim()))?;
    Ok(d)
}

/// Refuses a duration over [`MAX`].
pub fn check(d: Duration) -> Result<(), String> {
    if d > MAX {
        return Err(format!("too long: at most {}", humantime::format_duration(MAX)));
    }
    Ok(())
}

/// The same for `Option<Duration>`.
pub mod option {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?.map(|t| super::parse(&t).map_err(serde::de::Error::custom)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use std::time::Duration;

    #[test]
    fn parses_human_durations() {
        assert_eq!(parse("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert!(parse("ten seconds").unwrap_err().contains("`ten seconds`"));
    }

    #[test]
    fn durations_past_the_maximum_are_refused() {
        assert_eq!(parse("100y").unwrap(), super::MAX);
        assert_eq!(parse("500000000000y").unwrap_err(), "duration `500000000000y`: too long: at most 100years");
        assert!(parse("101y").is_err());
    }
}
