//! `Home`: every path ward reads or writes, from one place.
//!
//! `$WARD_HOME`, default `~/.ward`. A pm2-compatible layout (pm2's names under `PM2_HOME`)
//! is meant to be a change to this type alone. Also which of those paths must be trusted
//! before use (`check`, `secure`); how a path is checked lives in os/trust.rs.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::os::trust;

#[derive(Debug, Clone)]
pub struct Home {
    pub root: PathBuf,
    /// pm2 mode (installed as `pm2`): pm2's home and file names, so scripts that read
    /// `~/.pm2/pm2.pid` or `dump.pm2` keep working.
    pub pm2: bool,
}

impl Home {
    /// The home named by the environment. ward mode: `$WARD_HOME`, else `~/.ward`.
    /// pm2 mode: `$PM2_HOME`, else `~/.pm2` (a daemon started by a pm2-mode client gets
    /// the folder in `WARD_HOME` and the mode in `WARD_MODE=pm2`).
    pub fn from_env(pm2: bool) -> Result<Home> {
        let pm2 = pm2 || std::env::var_os("WARD_MODE").is_some_and(|m| m == "pm2");
        let (var, folder) = if pm2 && std::env::var_os("WARD_MODE").is_none() {
            ("PM2_HOME", ".pm2")
        } else if pm2 {
            ("WARD_HOME", ".pm2")
        } else {
            ("WARD_HOME", ".ward")
        };
        if let Some(dir) = std::env::var_os(var).filter(|d| !d.is_empty()) {
            return Ok(Home::at(absolute(Path::new(&dir)), pm2));
        }
        match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
            Some(h) => Ok(Home::at(Path::new(&h).join(folder), pm2)),
            None => Err(Error::new(format!(
                "neither {var} nor HOME is set; set {var} to the folder to use"
            ))),
        }
    }

    pub fn at(root: PathBuf, pm2: bool) -> Home {
        Home { root, pm2 }
    }

    /// What a daemon or holder started for this home needs in its environment.
    pub fn env(&self) -> [(&'static str, std::ffi::OsString); 2] {
        [
            ("WARD_HOME", self.root.clone().into_os_string()),
            ("WARD_MODE", if self.pm2 { "pm2" } else { "ward" }.into()),
        ]
    }

    pub fn socket(&self) -> PathBuf {
        self.root.join("ward.sock")
    }
    /// The name every reply socket of the daemon has (bound, then unlinked at once: see
    /// os/reply.rs): with `socket()`, the source addresses a client accepts a reply from.
    pub fn reply_socket(&self) -> PathBuf {
        self.root.join("ward.reply")
    }
    pub fn pid_file(&self) -> PathBuf {
        if self.pm2 {
            if let Some(p) = std::env::var_os("PM2_PID_FILE_PATH").filter(|p| !p.is_empty()) {
                return PathBuf::from(p);
            }
            return self.root.join("pm2.pid");
        }
        self.root.join("ward.pid")
    }
    /// pm2's per-app pid files: `pids/NAME-ID.pid`.
    pub fn pids(&self) -> PathBuf {
        self.root.join("pids")
    }
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("ward.lock")
    }
    pub fn daemon_log(&self) -> PathBuf {
        self.root
            .join(if self.pm2 { "pm2.log" } else { "ward.log" })
    }
    pub fn state(&self) -> PathBuf {
        self.root.join("state.json")
    }
    /// Spawns since the last state.json (see store.rs).
    pub fn journal(&self) -> PathBuf {
        self.root.join("state.journal")
    }
    pub fn dump(&self) -> PathBuf {
        self.root
            .join(if self.pm2 { "dump.pm2" } else { "dump.json" })
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
        for dir in [&self.root, &self.logs(), &self.pids()] {
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

impl Home {
    /// The top-level files ward reads or writes here (not the folders).
    fn own_files(&self) -> Vec<PathBuf> {
        let mut v = vec![
            self.socket(),
            self.lock_file(),
            self.daemon_log(),
            self.state(),
            self.state().with_extension("json.bad"),
            self.dump(),
            crate::store::bak_path(&self.dump()),
            self.holder_socket(),
            self.holder_pid(),
            self.root.join("holder.lock"),
            self.config(),
        ];
        let pid = self.pid_file();
        if pid.parent() == Some(self.root.as_path()) {
            v.push(pid);
        }
        v
    }

    /// Writes a small file (pid files): through `trust::write` inside the home, plainly at a
    /// path the user chose elsewhere (`PM2_PID_FILE_PATH`, an app's `pid_file`).
    pub fn write_file(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        if path.starts_with(&self.root) {
            trust::write(path, bytes)
        } else {
            std::fs::write(path, bytes)
        }
    }

    /// What a client checks before it talks to the daemon: the folders above the home,
    /// the home and its folders belong to this user (see os/trust.rs). A few `lstat`s.
    pub fn check(&self) -> Result<()> {
        let me = trust::euid();
        trust::check_ancestors(&self.root, me)?;
        for dir in [&self.root, &self.logs(), &self.pids()] {
            trust::check_dir(dir, me)?;
        }
        for f in [self.socket(), self.daemon_log()] {
            trust::check_entry(&f, me)?;
        }
        Ok(())
    }

    /// What the daemon does once at start: `check`, then every file ward uses here and
    /// everything in logs/ and pids/ must be this user's, and what is ours is made private
    /// (folders 0700, files 0600: state and dump hold every app's environment). Returns a
    /// line saying what was made private, if anything was.
    pub fn secure(&self) -> Result<Option<String>> {
        self.check()?;
        let me = trust::euid();
        let mut fixed = Vec::new();
        for dir in [self.root.clone(), self.logs(), self.pids()] {
            if let Some(m) = trust::check_dir(&dir, me)? {
                if trust::restrict(&dir, &m, 0o700) {
                    fixed.push(format!("{} (was {:04o})", dir.display(), m.mode() & 0o7777));
                }
            }
        }
        let mut found = Vec::new();
        for f in self.own_files() {
            if let Some(m) = trust::check_entry(&f, me)? {
                found.push((f, m));
            }
        }
        for dir in [self.logs(), self.pids()] {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            // The entry's own lstat (relative to the folder): thousands of log files cost
            // one short syscall each, not a walk of their whole path.
            for e in rd.flatten() {
                let path = e.path();
                let Ok(m) = e.metadata() else { continue };
                trust::check_meta(&path, &m, me)?;
                found.push((path, m));
            }
        }
        for (f, m) in found {
            if m.is_file() && trust::restrict(&f, &m, 0o600) {
                fixed.push(format!("{} (was {:04o})", f.display(), m.mode() & 0o7777));
            }
        }
        if fixed.is_empty() {
            return Ok(None);
        }
        let n = fixed.len();
        fixed.truncate(5);
        Ok(Some(format!(
            "made {n} paths of {} private to {} (folders 0700, files 0600): {}{}",
            self.root.display(),
            trust::who(me),
            fixed.join(", "),
            if n > 5 { ", ..." } else { "" }
        )))
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
