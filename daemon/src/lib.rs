//! pm: a daemon that supervises sidecars and routes their JSON-RPC mesh, and the CLI that drives
//! it. The daemon is a library too: [`Daemon::builder`] runs it in-process, with your own tasks.

pub use daemon::{Daemon, DaemonConfig};
pub use pm_runtimes::task::{Task, TaskContext, TaskError};

pub mod api;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod discover;
pub mod grants;
pub mod home;
pub mod lock;
pub mod logs;
pub mod mesh;
pub mod outbox;
pub mod packages;
pub mod runtimes;
pub mod server;
pub mod store;
pub mod supervisor;
pub mod tasks;
