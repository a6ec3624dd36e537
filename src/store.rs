//! state.json (the live table, for crashes) and atomic file writes.
//!
//! A file is replaced by writing a temporary file beside it, fsyncing it, renaming it over
//! the old one and fsyncing the folder, so a crash leaves the old or the new file, whole.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, os};
use crate::table::App;

#[derive(Serialize, Deserialize, Default)]
pub struct State {
    pub next_id: u32,
    pub apps: Vec<App>,
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    replace(path, bytes, 0o644)
}

/// `write_atomic` for files in the home that hold environments (state, dump): 0600.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    replace(path, bytes, 0o600)
}

fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let fail = |what: &str, e: std::io::Error| {
        let _ = std::fs::remove_file(&tmp);
        Error::unable(format_args!("{what} {}", path.display()), os(&e))
    };
    // A leftover of a crashed writer with our pid goes; the new file is created afresh
    // (O_EXCL, no symlink followed), so its mode is ours whatever was there.
    let _ = std::fs::remove_file(&tmp);
    let mut f = crate::os::trust::create_new(&tmp, mode).map_err(|e| fail("write", e))?;
    f.write_all(bytes).map_err(|e| fail("write", e))?;
    f.sync_all().map_err(|e| fail("sync", e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| fail("replace", e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads state.json; a missing file is an empty table.
pub fn load_state(path: &Path) -> Result<State> {
    let bytes = match crate::os::trust::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
        Err(e) => {
            return Err(Error::unable(
                format_args!("read {}", path.display()),
                os(&e),
            ));
        }
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::unable(format_args!("read {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_replace() {
        let dir = std::env::temp_dir().join(format!("ward-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("state.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
        assert!(load_state(&dir.join("none.json")).unwrap().apps.is_empty());
        std::fs::write(&p, b"{broken").unwrap();
        assert!(load_state(&p).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// One saved app: what the user asked for, and whether it was stopped (a stopped app is
/// registered again without being started, as pm2 does).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Saved {
    #[serde(flatten)]
    pub spec: crate::spec::config::AppSpec,
    pub status: crate::lifecycle::Status,
}

/// Writes dump.json, keeping the previous one as dump.json.bak.
pub fn save_dump(path: &Path, apps: &[Saved]) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(apps).map_err(|e| Error::unable("encode the dump", e))?;
    keep_bak(path)?;
    write_private(path, &bytes)
}

pub fn bak_path(path: &Path) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".bak");
    s.into()
}

/// Reads dump.json. A missing dump is an empty list; a damaged one is an error that leaves
/// the file as it is.
pub fn load_dump(path: &Path) -> Result<(Vec<Saved>, Vec<String>)> {
    let bytes = match crate::os::trust::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => {
            return Err(Error::unable(
                format_args!("read {}", path.display()),
                os(&e),
            ));
        }
    };
    let damaged = |e: serde_json::Error| {
        let hint = if bak_path(path).exists() {
            format!(
                "; it was left as it is, and the previous dump is in {}",
                bak_path(path).display()
            )
        } else {
            "; it was left as it is".to_string()
        };
        Error::new(format!("unable to read {}: {e}{hint}", path.display()))
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(damaged)?;
    // A dump written by pm2 (or by ward in pm2 mode): pm2_env objects.
    if crate::spec::pm2dump::is_pm2(&value) {
        let (apps, mut notes) = crate::spec::pm2dump::read_all(&value);
        let saved = apps
            .into_iter()
            .map(|i| {
                notes.extend(i.notes);
                Saved {
                    spec: i.spec,
                    status: i.status,
                }
            })
            .collect();
        return Ok((saved, notes));
    }
    Ok((serde_json::from_value(value).map_err(damaged)?, Vec::new()))
}

/// Writes a dump in pm2's format (pm2 mode), keeping the previous one as `.bak`.
pub fn save_pm2_dump(path: &Path, pm2_envs: Vec<serde_json::Value>) -> Result<()> {
    let v = crate::spec::pm2dump::encode(pm2_envs);
    let bytes = serde_json::to_vec_pretty(&v).map_err(|e| Error::unable("encode the dump", e))?;
    keep_bak(path)?;
    write_private(path, &bytes)
}

fn keep_bak(path: &Path) -> Result<()> {
    if path.exists() {
        let old = crate::os::trust::read(path)
            .map_err(|e| Error::unable(format_args!("read {}", path.display()), os(&e)))?;
        write_private(&bak_path(path), &old)?;
    }
    Ok(())
}
