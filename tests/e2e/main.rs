//! Black-box tests: the real `pm` binary, a temporary PM_HOME each, real processes and signals.
//! Every wait is on a condition with a deadline; nothing sleeps and hopes.

mod support;

mod cli;
mod containers;
mod containment;
mod dependencies;
mod discover;
mod discover_da;
mod discover_db;
mod discover_managers;
mod diskfull;
mod dispatch_properties;
mod durability;
mod engine;
mod extremes;
mod groups;
mod health;
mod hooks;
mod info;
mod install;
mod isolation;
mod lifecycle;
mod logs;
mod mesh;
mod monit;
mod notify;
mod order;
mod persistence;
mod ports;
mod priority;
mod privilege;
mod protocol;
mod reload;
mod resources;
mod run;
mod scale;
mod supervision;
mod tasks;
mod transports;
mod watch;
