//! Compose's short syntax for ports and volumes, read into pm's own spellings.

use super::MAX_PORTS;

/// A short-syntax port, `[ip:][host[-end]:]container[-end][/protocol]`, as one pm entry per
/// port: `[ip:]host:container[/protocol]`, or `container[/protocol]` for a port the engine picks.
pub(super) fn short_port(spec: &str) -> Result<Vec<String>, String> {
    let (addresses, protocol) = match spec.rsplit_once('/') {
        Some((addresses, protocol)) if matches!(protocol, "tcp" | "udp" | "sctp") => (addresses, Some(protocol)),
        Some((_, protocol)) => return Err(format!("protocol `{protocol}` (expected tcp, udp or sctp)")),
        None => (spec, None),
    };
    let (ip, rest) = match addresses.strip_prefix('[') {
        Some(bracketed) => {
            let (ip, rest) = bracketed.split_once("]:").ok_or("expected `[ip]:host:container`")?;
            (Some(format!("[{ip}]")), rest)
        }
        None => match addresses.matches(':').count() {
            2 => {
                let (ip, rest) = addresses.split_once(':').expect("two colons");
                (Some(ip.to_string()), rest)
            }
            0 | 1 => (None, addresses),
            _ => return Err("an IPv6 address goes in brackets: `[::1]:8080:80`".into()),
        },
    };
    let (host, container) = match rest.split_once(':') {
        Some((host, container)) => (Some(host).filter(|h| !h.is_empty()), container),
        None if ip.is_some() => return Err("expected `ip:host:container`".into()),
        None => (None, rest),
    };
    let containers = range(container)?;
    let hosts = host.map(range).transpose()?;
    let pairs: Vec<(Option<u16>, u16)> = match hosts {
        None => containers.map(|c| (None, c)).collect(),
        Some(hosts) if hosts.len() == containers.len() => hosts.map(Some).zip(containers).collect(),
        Some(_) => return Err("host and container port ranges differ in length (pm publishes fixed ports)".into()),
    };
    if pairs.len() > MAX_PORTS {
        return Err(format!("more than {MAX_PORTS} ports"));
    }
    let suffix = protocol.map(|p| format!("/{p}")).unwrap_or_default();
    Ok(pairs
        .into_iter()
        .map(|(host, container)| match (&ip, host) {
            (Some(ip), host) => format!("{ip}:{}:{container}{suffix}", host.map(|h| h.to_string()).unwrap_or_default()),
            (None, Some(host)) => format!("{host}:{container}{suffix}"),
            (None, None) => format!("{container}{suffix}"),
        })
        .collect())
}

/// `80` or `8000-8010`.
fn range(text: &str) -> Result<std::ops::RangeInclusive<u16>, String> {
    let port = |p: &str| p.trim().parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(|| format!("`{p}` is not a port"));
    let (start, end) = match text.split_once('-') {
        Some((start, end)) => (port(start)?, port(end)?),
        None => (port(text)?, port(text)?),
    };
    if start > end {
        return Err(format!("`{text}` is an empty range"));
    }
    Ok(start..=end)
}

/// A short-syntax volume, `source:target[:options]`, when `source` is a host path.
pub(super) fn short_volume(spec: &str) -> Result<(String, String, Vec<String>), String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, options) = match parts.as_slice() {
        [_] => return Err("an anonymous volume: pm mounts host paths only".into()),
        [source, target] => (*source, *target, ""),
        [source, target, options] => (*source, *target, *options),
        _ => return Err("expected `source:target[:options]`".into()),
    };
    if !(source.starts_with(['/', '.', '~'])) {
        return Err(format!("named volume `{source}`: pm mounts host paths only"));
    }
    let mut kept = Vec::new();
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option {
            "ro" | "rw" | "z" | "Z" | "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                kept.push(option.to_string())
            }
            // Docker Desktop's file-sharing hints: the engine itself ignores them.
            "cached" | "delegated" | "consistent" => {}
            other => return Err(format!("mount option `{other}`")),
        }
    }
    Ok((source.to_string(), target.to_string(), kept))
}
