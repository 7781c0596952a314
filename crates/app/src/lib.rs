//! The `latchkey` binary as a library: the command line, configuration,
//! and the wiring of store, services and HTTP. `testkit` and the
//! benchmarks start the server through [`server::start`].

pub mod bootstrap;
pub mod cli;
pub mod commands;
pub mod config;
pub mod config_env;
pub mod connections;
pub mod context;
pub mod logging;
pub mod master_key;
pub mod server;
