//! What an app is, read from what users write: command-line flags turned into an
//! `AppSpec`, ecosystem files (JSON, the JavaScript literal subset, YAML), pm2 dumps, cron
//! patterns, sizes, durations and date formats.
//!
//! Pure parsers and checkers: they read text and return values or errors naming the
//! place. May not use daemon/, client/ or os/ (no syscalls: a caller passes the clock).

pub mod appkeys;
pub mod config;
pub mod cron;
pub mod datefmt;
pub mod ecosystem;
pub mod jsonish;
pub mod jsontext;
pub mod patch;
pub mod pm2dump;
pub mod pm2record;
pub mod runtime;
pub mod yaml;
