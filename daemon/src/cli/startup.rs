//! `pm startup [--user]`: a systemd unit that runs `pm daemon` at boot (or at login, for
//! `--user`), written and enabled; `pm unstartup` takes it away. Enabling goes through
//! `systemctl` and is best effort: where systemd is not running (a container, a build machine)
//! the unit is written and pm says how to enable it later.

use crate::home::Home;
use anyhow::{Context, anyhow};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The unit's file name, for the system and for a user.
pub const UNIT: &str = "pm.service";

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Write the unit but do not enable or start it.
    #[arg(long)]
    no_enable: bool,
}

/// Where the unit goes.
#[derive(clap::Args)]
pub struct Target {
    /// A user unit (~/.config/systemd/user), started at login, instead of a system one
    /// (/etc/systemd/system), started at boot.
    #[arg(long)]
    pub user: bool,
    /// Write the unit into this directory instead (for packaging); it is not enabled.
    #[arg(long, value_name = "DIR")]
    pub unit_dir: Option<PathBuf>,
}

impl Target {
    /// The unit's path, and whether systemd may be asked to enable it.
    pub fn path(&self) -> anyhow::Result<(PathBuf, bool)> {
        if let Some(dir) = &self.unit_dir {
            return Ok((dir.join(UNIT), false));
        }
        let dir = if self.user {
            let config = std::env::var_os("XDG_CONFIG_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
                .ok_or_else(|| {
                    anyhow!("neither XDG_CONFIG_HOME nor HOME is set: where is the user's systemd directory?")
                })?;
            config.join("systemd/user")
        } else {
            PathBuf::from("/etc/systemd/system")
        };
        Ok((dir.join(UNIT), true))
    }

    /// `systemctl [--user] ARGS…`, if systemd runs this machine; what went wrong otherwise.
    pub fn systemctl(&self, args: &[&str]) -> Result<(), String> {
        // sd_booted(): systemd is PID 1 here.
        if !Path::new("/run/systemd/system").exists() {
            return Err("systemd is not running on this machine".into());
        }
        let mut cmd = std::process::Command::new("systemctl");
        if self.user {
            cmd.arg("--user");
        }
        let out = cmd.args(args).output().map_err(|e| format!("cannot run systemctl: {e}"))?;
        match out.status.success() {
            true => Ok(()),
            false => {
                Err(format!("systemctl {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
            }
        }
    }

    fn flag(&self) -> &'static str {
        if self.user { " --user" } else { "" }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (path, may_enable) = args.target.path()?;
    let exe = std::env::current_exe().context("cannot find the pm executable")?;
    // The daemon at boot uses the home this command sees, wherever it is run from.
    let home = std::path::absolute(Home::from_env().root()).context("cannot resolve PM_HOME")?;
    let unit = unit(&exe, &home, args.target.user)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let before = std::fs::read_to_string(&path).ok();
    std::fs::write(&path, &unit).with_context(|| format!("cannot write {}", path.display()))?;
    let verb = match before {
        Some(old) if old == unit => "unchanged",
        Some(_) => "updated",
        None => "wrote",
    };
    say!("{verb} {} (runs `{} daemon` with PM_HOME={})", path.display(), exe.display(), home.display());
    if !may_enable || args.no_enable {
        say!("not enabled; to enable it: systemctl{} enable --now {UNIT}", args.target.flag());
        return Ok(ExitCode::SUCCESS);
    }
    let enabled =
        args.target.systemctl(&["daemon-reload"]).and_then(|()| args.target.systemctl(&["enable", "--now", UNIT]));
    match enabled {
        Ok(()) => say!("enabled and started {UNIT}"),
        Err(why) => say!("not enabled ({why}); once systemd runs: systemctl{} enable --now {UNIT}", args.target.flag()),
    }
    Ok(ExitCode::SUCCESS)
}

/// The unit: `pm daemon` in the foreground, stopped by SIGTERM (which stops every sidecar in
/// reverse dependency order) with time for that, restarted if it fails.
fn unit(exe: &Path, home: &Path, user: bool) -> anyhow::Result<String> {
    let wanted_by = if user { "default.target" } else { "multi-user.target" };
    Ok(format!(
        "# Written by `pm startup`; `pm unstartup` removes it.\n\
         [Unit]\n\
         Description=pm: sidecars and their JSON-RPC mesh\n\
         After=network.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         Environment={}\n\
         ExecStart={} daemon\n\
         Restart=on-failure\n\
         KillMode=mixed\n\
         TimeoutStopSec=120\n\
         Delegate=yes\n\
         \n\
         [Install]\n\
         WantedBy={wanted_by}\n",
        quoted(&format!("PM_HOME={}", home.display()))?,
        quoted(&exe.display().to_string())?,
    ))
}

/// A value as systemd reads it back: in double quotes, with `\`, `"` and `%` escaped. A control
/// character (a newline would start a directive of its own) is refused, not written.
fn quoted(value: &str) -> anyhow::Result<String> {
    if value.chars().any(char::is_control) {
        anyhow::bail!("{value:?} has a control character: a systemd unit cannot hold it safely");
    }
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('%', "%%");
    Ok(format!("\"{escaped}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_quotes_paths_as_systemd_reads_them() {
        let unit = unit(Path::new("/opt/my pm/pm"), Path::new("/var/lib/pm 100%"), false).unwrap();
        assert!(unit.contains("ExecStart=\"/opt/my pm/pm\" daemon\n"), "{unit}");
        assert!(unit.contains("Environment=\"PM_HOME=/var/lib/pm 100%%\"\n"), "{unit}");
        assert!(unit.contains("WantedBy=multi-user.target\n"), "{unit}");
        assert!(super::unit(Path::new("/pm"), Path::new("/h"), true).unwrap().contains("WantedBy=default.target\n"));
        // A newline would end the line and start a directive of its own.
        let evil = Path::new("/tmp/x\nExecStartPre=/bin/sh -c evil");
        assert!(super::unit(Path::new("/pm"), evil, false).unwrap_err().to_string().contains("control character"));
    }
}
