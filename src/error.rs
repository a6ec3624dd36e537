//! `Error`: what we tried, on what, and why, as one line in skarnet's "unable to" form.
//!
//! Only main.rs prints errors; the daemon turns them into reply messages or log lines.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(msg: impl Into<String>) -> Error {
        Error(msg.into())
    }

    /// `unable to <what>: <why>`
    pub fn unable(what: impl fmt::Display, why: impl fmt::Display) -> Error {
        Error(format!("unable to {what}: {why}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<lexopt::Error> for Error {
    fn from(e: lexopt::Error) -> Error {
        Error(e.to_string())
    }
}

/// Renders an OS error without Rust's " (os error N)" suffix, as C tools print it.
pub fn os(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    }
}
