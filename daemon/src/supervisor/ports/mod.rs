//! The ports of running instances, and each run's port: its own from the definition, or the
//! first free one of an `auto:` range. Only TCP ports are checked.

mod holder;

use pm_protocol::{Definition, PortSpec};
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Ports {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Port → the instance whose run holds it.
    held: BTreeMap<u16, String>,
    /// Ports definitions hold whether they run or not, which `auto:` ranges pass over:
    /// first port → (last port, definition). Never overlapping (`define` refuses that).
    claims: BTreeMap<u16, (u16, String)>,
}

/// A run's port, given back when the run ends.
pub struct Lease {
    ports: Arc<Ports>,
    port: u16,
}

impl Lease {
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.ports.lock().held.remove(&self.port);
    }
}

impl Ports {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes note of the ports every definition claims, after definitions changed.
    pub fn set_claims<'a>(&self, defs: impl Iterator<Item = (&'a String, &'a Arc<Definition>)>) {
        let claims = defs
            .filter_map(|(name, def)| def.port?.claimed(def.instances).map(|r| (*r.start(), (*r.end(), name.clone()))))
            .collect();
        self.lock().claims = claims;
    }

    /// The port of a run of `instance` (of `definition`, at `index`), held until the lease drops;
    /// or why it cannot have one, naming what holds it.
    pub fn take(
        self: &Arc<Self>,
        instance: &str,
        definition: &str,
        spec: PortSpec,
        index: u32,
    ) -> Result<Lease, String> {
        let mut inner = self.lock();
        let port = match spec.of_instance(index) {
            Some(port) => {
                let port = port?;
                if let Some(other) = inner.held.get(&port) {
                    return Err(format!("port {port} is held by instance `{other}`"));
                }
                if !bindable(port)? {
                    return Err(format!("port {port} is in use by {}", holder::describe(port)));
                }
                port
            }
            None => inner.first_free(definition, spec)?,
        };
        inner.held.insert(port, instance.to_string());
        Ok(Lease { ports: self.clone(), port })
    }
}

impl Inner {
    /// The first port of an `auto:` range that no run holds, no other definition claims and no
    /// socket of the machine listens on.
    fn first_free(&self, definition: &str, spec: PortSpec) -> Result<u16, String> {
        let PortSpec::Auto(first, last) = spec else { unreachable!("only auto ranges are chosen from") };
        let (mut held, mut claimed, mut busy) = (0, 0, 0);
        for port in first..=last {
            if self.held.contains_key(&port) {
                held += 1;
            } else if self.claimed_by(port).is_some_and(|owner| owner != definition) {
                claimed += 1;
            } else if bindable(port).unwrap_or(false) {
                return Ok(port);
            } else {
                busy += 1;
            }
        }
        Err(format!(
            "no free port in {spec}: {held} held by pm instances, {claimed} claimed by other definitions, {busy} in use"
        ))
    }

    fn claimed_by(&self, port: u16) -> Option<&str> {
        let (_, (last, owner)) = self.claims.range(..=port).next_back()?;
        (port <= *last).then_some(owner.as_str())
    }
}

/// Whether a listener could bind `port` now: on `[::]`, which also covers IPv4 on a dual-stack
/// machine, else on `0.0.0.0`. An error other than "in use" (no IPv6, a privileged port) is the
/// sidecar's to meet, not a reason to refuse.
fn bindable(port: u16) -> Result<bool, String> {
    match TcpListener::bind((Ipv6Addr::UNSPECIFIED, port)) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AddrInUse => Ok(false),
        Err(_) => match TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::AddrInUse => Ok(false),
            Err(_) => Ok(true),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports() -> Arc<Ports> {
        Arc::new(Ports::default())
    }

    #[test]
    fn a_port_held_by_a_socket_is_refused_naming_the_process() {
        let socket = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        let err = ports().take("web", "web", PortSpec::Fixed(port), 0).err().unwrap();
        assert!(err.starts_with(&format!("port {port} is in use by pid {}", std::process::id())), "{err}");
    }

    #[test]
    fn runs_hold_their_port_until_the_lease_drops() {
        let ports = ports();
        let free = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let lease = ports.take("a", "a", PortSpec::Fixed(free), 0).unwrap();
        assert_eq!(
            ports.take("b", "b", PortSpec::Fixed(free), 0).err().unwrap(),
            format!("port {free} is held by instance `a`")
        );
        drop(lease);
        assert!(ports.take("b", "b", PortSpec::Fixed(free), 0).is_ok());
    }

    #[test]
    fn auto_takes_the_first_port_nobody_holds_claims_or_listens_on() {
        let ports = ports();
        let busy = TcpListener::bind("0.0.0.0:0").unwrap();
        let b = busy.local_addr().unwrap().port();
        // A range around a port a socket holds, others claim and another run holds.
        let (first, last) = (b.saturating_sub(2).max(1), b.saturating_add(3));
        let spec = PortSpec::Auto(first, last);
        let claimed = Arc::new(Definition { port: Some(PortSpec::Fixed(first)), ..Definition::new(vec!["x".into()]) });
        ports.set_claims([(&"other".to_string(), &claimed)].into_iter());
        let mut leases = Vec::new();
        while let Ok(lease) = ports.take(&format!("i{}", leases.len()), "pool", spec, 0) {
            assert_ne!(lease.port(), b, "in use");
            assert_ne!(lease.port(), first, "claimed by `other`");
            leases.push(lease);
        }
        let err = ports.take("last", "pool", spec, 0).err().unwrap();
        assert!(
            err.starts_with(&format!(
                "no free port in auto:{first}-{last}: {} held by pm instances, 1 claimed",
                leases.len()
            )),
            "{err}"
        );
    }
}
