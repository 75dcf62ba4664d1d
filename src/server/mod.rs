//! The server: configuration, the connection state machine, and server-level commands.

pub mod config;
