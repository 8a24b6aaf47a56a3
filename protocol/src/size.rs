//! Sizes in project files: a number of bytes, or a string with a binary unit (`512M`, `1.5G`,
//! `64KiB`), as `max_memory` takes them.

use serde::{Deserialize, Deserializer, Serializer};

/// The smallest and largest accepted sizes: below a MiB no process runs; above a PiB is a typo.
pub const MIN: u64 = 1 << 20;
pub const MAX: u64 = 1 << 50;

pub fn serialize<S: Serializer>(bytes: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(bytes) => s.serialize_str(&format(*bytes)),
        None => s.serialize_none(),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Bytes(u64),
        Text(String),
    }
    let bytes = match Option::<Written>::deserialize(d)? {
        None => return Ok(None),
        Some(Written::Bytes(bytes)) => bytes,
        Some(Written::Text(text)) => parse(&text).map_err(serde::de::Error::custom)?,
    };
    check(bytes).map(Some).map_err(serde::de::Error::custom)
}

/// `512M`, `1.5G`, `64KiB`, `1048576`: binary units (K = 1024).
pub fn parse(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("invalid size `{text}`: use e.g. `512M`, `1.5G` or a number of bytes")),
    };
    let number: f64 = number.parse().map_err(|_| format!("invalid size `{text}`: use e.g. `512M`, `1.5G`"))?;
    let bytes = number * scale as f64;
    if !bytes.is_finite() || bytes > MAX as f64 {
        return Err(format!("size `{text}` is too large: at most {}", format(MAX)));
    }
    Ok(bytes as u64)
}

fn check(bytes: u64) -> Result<u64, String> {
    match bytes {
        MIN..=MAX => Ok(bytes),
        _ => Err(format!("a size must be from {} to {}, not {bytes} bytes", format(MIN), format(MAX))),
    }
}

/// `512.0M`, `1.5G`: one decimal, binary units.
pub fn format(bytes: u64) -> String {
    let units = [("P", 1u64 << 50), ("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)];
    match units.iter().find(|(_, scale)| bytes >= *scale) {
        Some((unit, scale)) => format!("{:.1}{unit}", bytes as f64 / *scale as f64),
        None => format!("{bytes}B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units_and_are_bounded() {
        assert_eq!(parse("512M"), Ok(512 << 20));
        assert_eq!(parse("1.5G"), Ok(3 << 29));
        assert_eq!(parse("64KiB"), Ok(64 << 10));
        assert_eq!(parse(" 2 GB "), Ok(2 << 30));
        assert_eq!(parse("1048576"), Ok(1 << 20));
        assert!(parse("12Q").unwrap_err().contains("invalid size"));
        assert!(parse("M").unwrap_err().contains("invalid size"));
        assert!(parse("1e400G").is_err());
        assert!(parse("99999999999999999999T").unwrap_err().contains("too large"));
        assert!(check(5).unwrap_err().contains("from 1.0M"));
        assert_eq!(format(512 << 20), "512.0M");
    }
}
