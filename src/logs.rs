//! Where an app's output goes: its log files, opened for appending.
//!
//! A write that fails (full disk, unwritable file) never stops the daemon or the app: the
//! bytes are counted as dropped, the failure is reported once, and writing resumes when the
//! file accepts data again.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::log_stem;
use crate::error::os;

pub struct Sink {
    pub path: PathBuf,
    file: Option<File>,
    pub dropped: u64,
    failing: bool,
}

impl Sink {
    pub fn open(path: &Path) -> (Sink, Option<String>) {
        let mut s = Sink {
            path: path.to_path_buf(),
            file: None,
            dropped: 0,
            failing: false,
        };
        let note = s.reopen();
        (s, note)
    }

    /// (Re)opens the file; returns a message when that failed.
    pub fn reopen(&mut self) -> Option<String> {
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            Ok(f) => {
                self.file = Some(f);
                None
            }
            Err(e) => {
                self.file = None;
                Some(format!(
                    "unable to open {}: {}",
                    self.path.display(),
                    os(&e)
                ))
            }
        }
    }

    /// Appends `data`; returns a message the first time a write fails and when writing
    /// works again.
    pub fn write(&mut self, data: &[u8]) -> Option<String> {
        if self.file.is_none() && self.failing {
            // Try again: the folder may have come back.
            self.reopen();
        }
        let res = match &mut self.file {
            Some(f) => f.write_all(data),
            None => Err(std::io::Error::from_raw_os_error(libc::EBADF)),
        };
        match res {
            Ok(()) if self.failing => {
                self.failing = false;
                Some(format!(
                    "writing to {} works again; {} bytes were dropped",
                    self.path.display(),
                    self.dropped
                ))
            }
            Ok(()) => None,
            Err(e) => {
                self.dropped += data.len() as u64;
                if self.failing {
                    None
                } else {
                    self.failing = true;
                    Some(format!(
                        "unable to write to {}: {}; dropping output until it works",
                        self.path.display(),
                        os(&e)
                    ))
                }
            }
        }
    }
}

/// pm2's default log paths: `logs/NAME-out.log`, `logs/NAME-error.log`.
pub fn default_paths(logs: &Path, name: &str) -> (PathBuf, PathBuf) {
    let stem = log_stem(name);
    (
        logs.join(format!("{stem}-out.log")),
        logs.join(format!("{stem}-error.log")),
    )
}
