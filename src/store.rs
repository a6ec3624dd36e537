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
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let fail = |what: &str, e: std::io::Error| {
        let _ = std::fs::remove_file(&tmp);
        Error::unable(format_args!("{what} {}", path.display()), os(&e))
    };
    let mut f = std::fs::File::create(&tmp).map_err(|e| fail("write", e))?;
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
    let bytes = match std::fs::read(path) {
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
    write_atomic(path, &bytes)
}

pub fn bak_path(path: &Path) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".bak");
    s.into()
}

/// pm2's words for a dump it could not read, and for no dump at all (API/Startup.js).
pub const DUMP_UNREADABLE: &str = "Failed to parse dump file in";
pub const NO_DUMP: &str = "No processes saved; DUMP file doesn't exist";

/// Reads the dump, falling back to its backup as pm2 does (API/Startup.js:556-586): a dump
/// that does not parse is reported and the backup is read instead; so is a missing one.
/// pm2 deletes the damaged file; ward keeps it as `NAME.broken` (nothing is lost). With
/// neither file readable the list is empty; the notes say why.
pub fn load_dump(path: &Path) -> Result<(Vec<Saved>, Vec<String>)> {
    let mut notes = Vec::new();
    match read_dump(path) {
        Ok(Some(found)) => return Ok(found),
        Ok(None) => {}
        Err((e, parse)) => {
            notes.push(format!("{DUMP_UNREADABLE} {}: {e}", path.display()));
            if parse {
                let mut broken = path.as_os_str().to_owned();
                broken.push(".broken");
                match std::fs::rename(path, &broken) {
                    Ok(()) => notes.push(format!(
                        "the damaged dump is kept as {}",
                        Path::new(&broken).display()
                    )),
                    Err(e) => {
                        notes.push(format!("unable to rename {}: {}", path.display(), os(&e)))
                    }
                }
            }
        }
    }
    let bak = bak_path(path);
    match read_dump(&bak) {
        Ok(Some((saved, more))) => {
            notes.push(format!("restoring from the backup {}", bak.display()));
            notes.extend(more);
            Ok((saved, notes))
        }
        // Nothing was ever saved: an empty list, nothing to report.
        Ok(None) if notes.is_empty() => Ok((Vec::new(), notes)),
        Ok(None) => {
            notes.push(NO_DUMP.into());
            Ok((Vec::new(), notes))
        }
        Err((e, _)) => {
            notes.push(format!("{DUMP_UNREADABLE} {}: {e}", bak.display()));
            notes.push(NO_DUMP.into());
            Ok((Vec::new(), notes))
        }
    }
}

/// A dump's apps and the notes about them.
type Loaded = (Vec<Saved>, Vec<String>);

/// One dump file: `Ok(None)` when it does not exist; `Err((why, true))` when it does
/// not parse, `Err((why, false))` when it could not be read.
fn read_dump(path: &Path) -> std::result::Result<Option<Loaded>, (Error, bool)> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err((
                Error::unable(format_args!("read {}", path.display()), os(&e)),
                false,
            ));
        }
    };
    let damaged = |e: serde_json::Error| (Error::new(e.to_string()), true);
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
        return Ok(Some((saved, notes)));
    }
    Ok(Some((
        serde_json::from_value(value).map_err(damaged)?,
        Vec::new(),
    )))
}

/// Writes a dump in pm2's format (pm2 mode), keeping the previous one as `.bak`.
pub fn save_pm2_dump(path: &Path, pm2_envs: Vec<serde_json::Value>) -> Result<()> {
    let v = crate::spec::pm2dump::encode(pm2_envs);
    let bytes = serde_json::to_vec_pretty(&v).map_err(|e| Error::unable("encode the dump", e))?;
    keep_bak(path)?;
    write_atomic(path, &bytes)
}

fn keep_bak(path: &Path) -> Result<()> {
    if path.exists() {
        let old = std::fs::read(path)
            .map_err(|e| Error::unable(format_args!("read {}", path.display()), os(&e)))?;
        write_atomic(&bak_path(path), &old)?;
    }
    Ok(())
}
