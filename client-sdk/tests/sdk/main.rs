//! pm-client against the real `pm` daemon (target/<profile>/pm, built by
//! `cargo build -p pm-daemon`) and against a fake one, each test with its own PM_HOME.

mod support;

mod daemon_api;
mod load;
mod mesh;
mod serve_loop;
mod transports;
