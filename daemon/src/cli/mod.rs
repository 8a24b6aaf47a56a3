//! The `pm` command line. One file per subcommand; they reach the daemon only through the typed
//! `pm.*` client. Those that change things start the daemon when it is not running; those that
//! only look (status, info, monit, ls, log, events, connect, token) and `pm stop` never do.

/// `println!` for a command's output: when its reader has gone (`pm status | head`), the command
/// ends quietly with 141, as a Unix tool killed by SIGPIPE would, instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::output::say(format_args!($($arg)*))
    };
}

mod call;
mod completions;
mod connect;
mod connect_cmd;
mod daemon;
mod daemon_log;
mod delete;
mod diff;
mod discover;
mod events;
mod exit;
mod flush;
mod info;
mod install;
mod link;
mod log;
mod log_writer;
mod ls;
mod man;
mod map;
mod monit;
mod output;
mod reload;
mod restart;
mod run;
mod scale;
mod schema;
mod start;
mod startup;
mod status;
mod stop;
mod tls_cert;
mod token;
mod uninstall;
mod unstartup;
mod update;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// pm supervises sidecars (native processes) in dependency order and is the hub of their
/// JSON-RPC mesh.
#[derive(Parser)]
#[command(name = "pm", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `defer`: a subcommand's arguments are built only when it is the one given, not all of them
/// on every run (`pm --version` and the daemon's start touched every subcommand's code).
#[derive(Subcommand)]
#[command(defer = true)]
enum Command {
    /// Run the daemon in the foreground (`pm start pm` runs it in the background).
    Daemon(daemon::Args),
    /// Run a project in the foreground: prefixed output, ordered stop on SIGTERM, exit code (a container's entrypoint).
    Run(Box<run::Args>),
    /// Start sidecars with their dependencies; no name: the project file's (`pm start pm`: the daemon).
    Start(start::Args),
    /// Stop sidecars, their dependents first (`pm stop pm`: everything, then the daemon).
    Stop(stop::Args),
    /// Stop every sidecar, then the daemon (same as `pm stop pm`).
    Shutdown,
    /// Stop then start sidecars.
    Restart(Targets),
    /// Empty sidecars' log files (the current ones cut to nothing, rotated ones deleted).
    Flush(Targets),
    /// Replace running instances one at a time, each ready before the next one stops.
    Reload(Targets),
    /// Give a definition N instances: adds or removes some and leaves the others running.
    Scale(scale::Args),
    /// Map the sidecars a project's own files describe: pm.toml, Procfile, compose, package.json, PM2, supervisord…
    Discover(discover::Args),
    /// Install a package and map its sidecars: npm:NAME, pip:NAME, cargo:CRATE, docker:IMAGE, or a .tgz/.whl/project dir.
    Install(install::Args),
    /// Stop and delete an installed package's sidecars, then its files.
    Uninstall(uninstall::Args),
    /// Install another version beside the old one, then replace its instances one at a time (rolled back on failure).
    Update(update::Args),
    /// Map a local checkout's sidecars where it is, for development (nothing is copied).
    Link(link::Args),
    /// Delete the sidecars of a `pm link` (the checkout stays).
    Unlink(link::UnlinkArgs),
    /// What `pm start -f` (or `pm discover`) would change in the daemon's definitions.
    Diff(diff::Args),
    /// Define a sidecar: `pm map web -- python3 -m http.server 8080`.
    Map(Box<map::Args>),
    /// List definitions and their instances.
    Ls(ls::Args),
    /// Show instances: state, pid, uptime, restarts, last exit, readiness.
    Status(status::Args),
    /// Everything about an instance: state, process, health, definition, recent states and exits, logs.
    Info(Target),
    /// A live table of the instances, refreshed every --interval, with keys to restart, stop, show logs.
    Monit(monit::Args),
    /// Show a sidecar's log lines, and follow new ones with -f.
    #[command(alias = "logs")]
    Log(log::Args),
    /// Follow state changes of every instance as they happen.
    Events(events::Args),
    /// Stop and forget a sidecar definition (with its instances) or one instance.
    Delete(delete::Args),
    /// Call a sidecar's method through the daemon: `pm call calc.add '[1, 2]'`.
    Call(call::Args),
    /// How to reach a sidecar: through the daemon, and directly if it serves an endpoint.
    Connect(Target),
    /// Print the daemon's token (for tcp/tls/ws clients).
    Token,
    /// Write a self-signed certificate and key for tls:// and wss:// (to PM_HOME/tls).
    TlsCert(tls_cert::Args),
    /// Print the JSON Schema of project files (pm.toml / pm.yaml / pm.json).
    Schema(schema::Args),
    /// Print the shell completion script for pm (`pm completions bash > /etc/bash_completion.d/pm`).
    Completions(completions::Args),
    /// Write and enable a systemd unit that runs the daemon at boot (`--user`: at login).
    Startup(startup::Args),
    /// Stop, disable and remove the unit `pm startup` wrote.
    Unstartup(unstartup::Args),
    /// Print pm's manual page (`pm man | man -l -`), or write every page into a directory.
    Man(man::Args),
}

/// What several subcommands take: a definition or instance, and whether to print JSON.
#[derive(clap::Args)]
pub struct Target {
    /// Definition (all its instances) or instance.
    pub name: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// What `restart` and `reload` take: names to act on one after the other, and whether to print
/// JSON.
#[derive(clap::Args)]
pub struct Targets {
    /// Definitions, instances or `@group`s, one after the other.
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return exit::fail(anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Daemon(args) => daemon::run(args).await,
            Command::Run(args) => run::run(*args).await,
            Command::Start(args) => start::run(args).await,
            Command::Stop(args) => stop::run(args).await,
            Command::Shutdown => stop::daemon().await,
            Command::Restart(args) => restart::run(args).await,
            Command::Flush(args) => flush::run(args).await,
            Command::Reload(args) => reload::run(args).await,
            Command::Scale(args) => scale::run(args).await,
            Command::Discover(args) => discover::run(args).await,
            Command::Install(args) => install::run(args).await,
            Command::Uninstall(args) => uninstall::run(args).await,
            Command::Update(args) => update::run(args).await,
            Command::Link(args) => link::run(args).await,
            Command::Unlink(args) => link::unlink(args).await,
            Command::Diff(args) => diff::run(args).await,
            Command::Map(args) => map::run(*args).await,
            Command::Ls(args) => ls::run(args).await,
            Command::Status(args) => status::run(args).await,
            Command::Info(args) => info::run(args).await,
            Command::Monit(args) => monit::run(args).await,
            Command::Log(args) => log::run(args).await,
            Command::Events(args) => events::run(args).await,
            Command::Delete(args) => delete::run(args).await,
            Command::Call(args) => call::run(args).await,
            Command::Connect(args) => connect_cmd::run(args).await,
            Command::Token => token::run().await,
            Command::TlsCert(args) => tls_cert::run(args),
            Command::Schema(args) => schema::run(args),
            Command::Completions(args) => completions::run(args),
            Command::Man(args) => man::run(args),
            Command::Startup(args) => startup::run(args),
            Command::Unstartup(args) => unstartup::run(args),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => exit::fail(e),
    }
}

#[cfg(test)]
mod tests {
    /// clap checks a command's definition only when it is parsed: check every subcommand here.
    #[test]
    fn every_subcommand_is_well_formed() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
