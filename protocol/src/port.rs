//! A definition's `port`: one port, one per instance from a range, or the first free port of a
//! range at each start. Exported to the sidecar as `PORT` and `PM_PORT`.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::RangeInclusive;

/// `port = 8080`, `port = "4000-4003"` or `port = "auto:5000-5100"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortSpec {
    /// This port, for the one instance.
    Fixed(u16),
    /// `first + index` for the instance of that index; the range must hold every instance.
    Range(u16, u16),
    /// The first port of the range that is free when the instance starts.
    Auto(u16, u16),
}

impl PortSpec {
    /// The ports a definition of `instances` instances holds for itself whether it runs or not
    /// (none for `auto:`, which takes what is free).
    pub fn claimed(&self, instances: u32) -> Option<RangeInclusive<u16>> {
        match *self {
            PortSpec::Fixed(p) => Some(p..=p),
            PortSpec::Range(first, last) => {
                let count = u16::try_from(instances.saturating_sub(1)).unwrap_or(u16::MAX);
                Some(first..=first.saturating_add(count).min(last))
            }
            PortSpec::Auto(..) => None,
        }
    }

    /// Whether a definition of `instances` instances fits: a fixed port serves one instance, a
    /// range one per instance.
    pub fn check_instances(&self, instances: u32) -> Result<(), String> {
        match *self {
            PortSpec::Fixed(p) if instances > 1 => Err(format!(
                "port = {p} is one port for {instances} instances: give a range, e.g. \"{p}-{}\", or \"auto:{p}-{}\"",
                u32::from(p) + instances - 1,
                u32::from(p) + instances - 1
            )),
            PortSpec::Range(first, last) if u32::from(last - first) + 1 < instances => Err(format!(
                "port range {first}-{last} has {} ports for {instances} instances",
                u32::from(last - first) + 1
            )),
            _ => Ok(()),
        }
    }

    /// The port of the instance of `index`, when it is fixed by the definition.
    pub fn of_instance(&self, index: u32) -> Option<Result<u16, String>> {
        match *self {
            PortSpec::Fixed(p) if index == 0 => Some(Ok(p)),
            PortSpec::Fixed(p) => Some(Err(format!("port = {p} is the port of instance 0; this is instance {index}"))),
            PortSpec::Range(first, last) => Some(
                u32::from(first)
                    .checked_add(index)
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|p| *p <= last)
                    .ok_or_else(|| format!("port range {first}-{last} has no port for instance {index}")),
            ),
            PortSpec::Auto(..) => None,
        }
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSpec::Fixed(p) => write!(f, "{p}"),
            PortSpec::Range(a, b) => write!(f, "{a}-{b}"),
            PortSpec::Auto(a, b) => write!(f, "auto:{a}-{b}"),
        }
    }
}

impl std::str::FromStr for PortSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<PortSpec, String> {
        let t = text.trim();
        let (auto, range) = match t.strip_prefix("auto:") {
            Some(range) => (true, range),
            None => (false, t),
        };
        let port = |p: &str| -> Result<u16, String> {
            match p.trim().parse::<u32>() {
                Ok(n @ 1..=65535) => Ok(n as u16),
                Ok(n) => Err(format!("port {n} is out of range (1 to 65535)")),
                Err(_) => Err(format!(
                    "`{text}` is not a port: write 8080, \"4000-4003\" (one per instance) or \"auto:5000-5100\""
                )),
            }
        };
        let spec = match range.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (port(a)?, port(b)?);
                if a > b {
                    return Err(format!("port range {a}-{b} ends before it starts"));
                }
                if auto { PortSpec::Auto(a, b) } else { PortSpec::Range(a, b) }
            }
            None if auto => {
                return Err(format!("`{text}`: auto needs a range, e.g. \"auto:5000-5100\""));
            }
            None => PortSpec::Fixed(port(range)?),
        };
        Ok(spec)
    }
}

impl Serialize for PortSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PortSpec::Fixed(p) => s.serialize_u16(*p),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for PortSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PortSpec, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Number(i64),
            Text(String),
        }
        match Written::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a port: 8080, \"4000-4003\" (one per instance) or \"auto:5000-5100\"")
        })? {
            Written::Number(n) => n.to_string().parse(),
            Written::Text(t) => t.parse(),
        }
        .map_err(serde::de::Error::custom)
    }
}

/// A TCP port, or a range of them.
#[derive(JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Port")]
#[allow(dead_code)] // only its shape matters
pub enum Schema {
    /// One port.
    Number(#[schemars(range(min = 1, max = 65535))] u16),
    /// `"4000-4003"`: one port per instance, in order; `"auto:5000-5100"`: the first free one
    /// at each start.
    Text(#[schemars(pattern(r"^(auto:)?[0-9]{1,5}(-[0-9]{1,5})?$"))] String),
}

/// Two definitions that claim the same port: `(port, first, second)` for the first such pair in
/// `claims` (definition name, its spec, its instance count), in name order.
pub fn first_conflict<'a>(
    claims: impl IntoIterator<Item = (&'a str, PortSpec, u32)>,
) -> Option<(u16, &'a str, &'a str)> {
    let mut ranges: Vec<(u16, u16, &str)> = claims
        .into_iter()
        .filter_map(|(name, spec, n)| spec.claimed(n).map(|r| (*r.start(), *r.end(), name)))
        .collect();
    ranges.sort_unstable();
    // Sorted by start: a range overlaps an earlier one only if it starts before the furthest end
    // seen so far, so one pass finds a clash.
    let mut furthest: Option<(u16, &str)> = None;
    for (start, end, name) in ranges {
        if let Some((reach, owner)) = furthest
            && start <= reach
        {
            let (first, second) = if owner <= name { (owner, name) } else { (name, owner) };
            return Some((start, first, second));
        }
        if furthest.is_none_or(|(reach, _)| end > reach) {
            furthest = Some((end, name));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_parse_and_round_trip() {
        for (json, want) in [
            ("8080", PortSpec::Fixed(8080)),
            (r#""8080""#, PortSpec::Fixed(8080)),
            (r#""4000-4003""#, PortSpec::Range(4000, 4003)),
            (r#""auto:5000-5100""#, PortSpec::Auto(5000, 5100)),
        ] {
            let spec: PortSpec = serde_json::from_str(json).unwrap();
            assert_eq!(spec, want, "{json}");
            let back: PortSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
            assert_eq!(back, spec);
        }
    }

    #[test]
    fn bad_ports_are_refused_with_the_reason() {
        for (json, says) in [
            ("0", "port 0 is out of range"),
            ("70000", "port 70000 is out of range"),
            ("-1", "is not a port"),
            (r#""http""#, "is not a port"),
            (r#""4003-4000""#, "ends before it starts"),
            (r#""auto:5000""#, "auto needs a range"),
            ("1.5", "expected a port"),
            (r#""99999999999999999999""#, "is not a port"),
        ] {
            let err = serde_json::from_str::<PortSpec>(json).unwrap_err().to_string();
            assert!(err.contains(says), "{json}: {err}");
        }
    }

    #[test]
    fn instances_get_ports_in_order_and_must_fit() {
        let range = PortSpec::Range(4000, 4003);
        assert_eq!(range.of_instance(3), Some(Ok(4003)));
        assert!(range.of_instance(4).unwrap().unwrap_err().contains("no port for instance 4"));
        assert!(range.check_instances(4).is_ok());
        assert_eq!(range.check_instances(5).unwrap_err(), "port range 4000-4003 has 4 ports for 5 instances");
        assert!(PortSpec::Fixed(80).check_instances(2).unwrap_err().contains("\"80-81\""));
        assert_eq!(PortSpec::Auto(1, 2).of_instance(7), None);
        assert_eq!(PortSpec::Range(65534, 65535).of_instance(u32::MAX).unwrap().ok(), None);
    }

    #[test]
    fn conflicts_name_both_definitions() {
        let none = [("a", PortSpec::Range(4000, 4003), 2), ("b", PortSpec::Fixed(4002), 1)];
        assert_eq!(first_conflict(none), None, "a holds only 4000-4001 with two instances");
        let clash = [("web", PortSpec::Range(4000, 4003), 4), ("api", PortSpec::Fixed(4002), 1)];
        assert_eq!(first_conflict(clash), Some((4002, "api", "web")));
        let autos = [("a", PortSpec::Auto(5000, 5100), 3), ("b", PortSpec::Auto(5000, 5100), 3)];
        assert_eq!(first_conflict(autos), None, "auto ranges take what is free and may overlap");
        let nested = [("x", PortSpec::Range(1000, 2000), 1000), ("y", PortSpec::Fixed(1200), 1)];
        assert_eq!(first_conflict(nested), Some((1200, "x", "y")));
    }
}
