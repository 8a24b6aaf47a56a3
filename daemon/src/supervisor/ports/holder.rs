//! Who listens on a TCP port, from /proc: for an error that names both sides of a clash.

use std::collections::BTreeSet;

/// `pid N (`command line`)` of a process listening on `port`, or why that is unknown.
pub fn describe(port: u16) -> String {
    let inodes = listening_inodes(port);
    match owner(&inodes) {
        Some((pid, cmdline)) => format!("pid {pid} (`{cmdline}`)"),
        None => "a socket of another user or namespace".into(),
    }
}

/// Inodes of the sockets listening on `port`, IPv4 and IPv6.
fn listening_inodes(port: u16) -> BTreeSet<u64> {
    let mut inodes = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let (Some(local), Some(state), Some(inode)) = (fields.get(1), fields.get(3), fields.get(9)) else {
                continue;
            };
            let listening = *state == "0A";
            let on_port = local.rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok()) == Some(port);
            if listening
                && on_port
                && let Ok(inode) = inode.parse()
            {
                inodes.insert(inode);
            }
        }
    }
    inodes
}

/// The first process with one of `inodes` among its open files, with its command line.
fn owner(inodes: &BTreeSet<u64>) -> Option<(u32, String)> {
    if inodes.is_empty() {
        return None;
    }
    let names: BTreeSet<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for proc in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(proc.path().join("fd")) else { continue };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|target| names.contains(target.to_string_lossy().as_ref()))
        });
        if holds {
            let raw = std::fs::read(proc.path().join("cmdline")).unwrap_or_default();
            let words: Vec<String> =
                raw.split(|b| *b == 0).filter(|w| !w.is_empty()).map(|w| String::from_utf8_lossy(w).into()).collect();
            // One line, whatever the arguments hold.
            let mut cmdline: String = words.join(" ").chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
            if cmdline.chars().count() > 80 {
                cmdline = cmdline.chars().take(79).chain(['…']).collect();
            }
            return Some((pid, cmdline));
        }
    }
    None
}
