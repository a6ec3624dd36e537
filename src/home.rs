//! `Home`: every path ward reads or writes, from one place.
//!
//! `$WARD_HOME`, default `~/.ward`. A pm2-compatible layout (pm2's names under `PM2_HOME`)
//! is meant to be a change to this type alone.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct Home {
    pub root: PathBuf,
}

impl Home {
    /// The home named by the environment: `$WARD_HOME`, else `$HOME/.ward`.
    pub fn from_env() -> Result<Home> {
        if let Some(dir) = std::env::var_os("WARD_HOME").filter(|d| !d.is_empty()) {
            return Ok(Home::at(absolute(Path::new(&dir))));
        }
        match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
            Some(h) => Ok(Home::at(Path::new(&h).join(".ward"))),
            None => Err(Error::new(
                "neither WARD_HOME nor HOME is set; set WARD_HOME to the folder ward should use",
            )),
        }
    }

    pub fn at(root: PathBuf) -> Home {
        Home { root }
    }

    pub fn socket(&self) -> PathBuf {
        self.root.join("ward.sock")
    }
    pub fn pid_file(&self) -> PathBuf {
        self.root.join("ward.pid")
    }
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("ward.lock")
    }
    pub fn daemon_log(&self) -> PathBuf {
        self.root.join("ward.log")
    }
    pub fn state(&self) -> PathBuf {
        self.root.join("state.json")
    }
    pub fn dump(&self) -> PathBuf {
        self.root.join("dump.json")
    }
    pub fn holder_socket(&self) -> PathBuf {
        self.root.join("holder.sock")
    }
    pub fn holder_pid(&self) -> PathBuf {
        self.root.join("holder.pid")
    }
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// Daemon-wide settings (log rotation defaults), read at daemon start.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }

    /// Creates the home (mode 0700: the socket inside is the daemon's door) and its logs folder.
    pub fn create(&self) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        for dir in [&self.root, &self.logs()] {
            if let Err(e) = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
            {
                return Err(Error::unable(
                    format_args!("create {}", dir.display()),
                    crate::error::os(&e),
                ));
            }
        }
        Ok(())
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}
