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
    /// Counts the writes of state.json; journal lines carry the number of the state they
    /// follow.
    #[serde(default)]
    pub seq: u64,
    /// The apps' environments, each distinct one once; `env_of[i]` is app i's
    /// (spec::config::take_shared). A state.json of before has neither, and each app's
    /// own `env`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub envs: Vec<crate::spec::config::Env>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_of: Vec<u32>,
}

/// One line of the spawn journal (`state.journal`): an app as it was right after one of
/// its processes was spawned.
///
/// state.json is written once per loop turn, but one turn may spawn a thousand apps; a
/// daemon killed in the middle would leave running apps that no table knows. So each
/// spawn appends its app, pid and start time here before the next spawn (one write(2),
/// no fsync: a killed process loses nothing already written), and the next state.json
/// makes the lines obsolete. Only lines of the current `seq` count: older ones may
/// predate what state.json says.
///
/// What a journal line says about its app.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug, Default)]
#[serde(rename_all = "snake_case")]
pub enum Entry {
    /// Written just before a spawn: if no `Spawned` line follows, the daemon died between
    /// the two, and the app may run or not (the next daemon looks for it by its
    /// environment).
    Spawning,
    /// Right after a spawn: the app with its pid and start time.
    #[default]
    Spawned,
    /// The app left the table (deleted, or taken back after a failed start).
    Removed,
}

#[derive(Serialize)]
pub struct JournalRef<'a> {
    pub seq: u64,
    pub app: &'a App,
    pub entry: Entry,
}

#[derive(Deserialize)]
struct JournalLine {
    seq: u64,
    app: App,
    #[serde(default)]
    entry: Entry,
}

/// Appends one record to the journal: one write, so a crash leaves whole lines (a torn
/// last line is skipped on replay).
pub fn journal_append(f: &mut std::fs::File, seq: u64, app: &App, entry: Entry) -> Result<()> {
    let mut line = serde_json::to_vec(&JournalRef { seq, app, entry })
        .map_err(|e| Error::unable("encode a journal line", e))?;
    line.push(b'\n');
    f.write_all(&line)
        .map_err(|e| Error::unable("write the spawn journal", os(&e)))
}

/// Applies the journal's lines of `state.seq` to `state`: the apps they name replace
/// the ones of state.json (or join them, or leave). Returns how many lines were applied,
/// and the apps whose last spawn has no pid (launching, pid unknown).
pub fn journal_replay(path: &Path, state: &mut State) -> (usize, Vec<u32>) {
    let mut unsure = Vec::new();
    let Ok(bytes) = std::fs::read(path) else {
        return (0, unsure);
    };
    let mut n = 0;
    for line in bytes.split(|&b| b == b'\n') {
        let Ok(j) = crate::json::from_bytes::<JournalLine>(line) else {
            continue;
        };
        if j.seq != state.seq {
            continue;
        }
        n += 1;
        let mut app = j.app;
        unsure.retain(|&id| id != app.id);
        state.next_id = state.next_id.max(app.id + 1);
        match j.entry {
            Entry::Removed => {
                state.apps.retain(|a| a.id != app.id);
                continue;
            }
            Entry::Spawning => {
                app.run.pid = None;
                app.run.status = crate::lifecycle::Status::Launching;
                unsure.push(app.id);
            }
            Entry::Spawned => {}
        }
        match state.apps.iter_mut().find(|a| a.id == app.id) {
            Some(a) => *a = app,
            None => state.apps.push(app),
        }
    }
    (n, unsure)
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

/// Writes state.json, keeping the one it replaces as state.json.bak (a hard link: no
/// copy): should state.json ever be damaged, the daemon falls back to that one.
///
/// The link is made under a temporary name and renamed over the old copy: no file of the
/// home is deleted on the way, which the daemon's home guard would wake up for.
pub fn write_state(path: &Path, bytes: &[u8]) -> Result<()> {
    let bak = bak_path(path);
    let mut tmp = bak.clone().into_os_string();
    tmp.push(".tmp");
    if std::fs::hard_link(path, &tmp).is_err() {
        // Left by a crash, or no state.json yet.
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::hard_link(path, &tmp);
    }
    let _ = std::fs::rename(&tmp, &bak);
    write_private(path, bytes)
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
    let mut state: State = crate::json::from_bytes(&bytes)
        .map_err(|e| Error::unable(format_args!("read {}", path.display()), e))?;
    let (envs, env_of) = (
        std::mem::take(&mut state.envs),
        std::mem::take(&mut state.env_of),
    );
    crate::spec::config::put_shared(
        state.apps.iter_mut().map(|a| &mut a.spec.env),
        &envs,
        &env_of,
    )
    .map_err(|e| Error::unable(format_args!("read {}", path.display()), e))?;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_between_link_and_replace_is_settled() {
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("ward-settle-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let state = dir.join("state.json");
        std::fs::write(&state, b"{}").unwrap();
        std::fs::hard_link(&state, bak_path(&state)).unwrap();
        assert_eq!(std::fs::metadata(&state).unwrap().nlink(), 2);
        settle_backup(&state);
        assert_eq!(std::fs::metadata(&state).unwrap().nlink(), 1);
        assert!(!bak_path(&state).exists());
        // A real backup (another file) is kept.
        std::fs::write(bak_path(&state), b"{\"apps\": []}").unwrap();
        settle_backup(&state);
        assert!(bak_path(&state).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

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

    /// state.json holds each environment once; loading gives every app its own back,
    /// shared. A state.json of before (each app with its `env`) still loads.
    #[test]
    fn state_json_shares_environments() {
        let dir = std::env::temp_dir().join(format!("ward-state-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("state.json");
        std::fs::write(
            &p,
            r#"{"next_id":3,"seq":1,"envs":[{"A":"1"},{"B":"2"}],"env_of":[1,0,1],
            "apps":[{"id":0,"spec":{"name":"x"},"run":{}},{"id":1,"spec":{"name":"y"},"run":{}},
            {"id":2,"spec":{"name":"z"},"run":{}}]}"#,
        )
        .unwrap();
        let state = load_state(&p).unwrap();
        let env = |i: usize| state.apps[i].spec.env.clone();
        assert_eq!(env(0).get("B").map(String::as_str), Some("2"));
        assert_eq!(env(1).get("A").map(String::as_str), Some("1"));
        assert!(std::sync::Arc::ptr_eq(&env(0), &env(2)));
        std::fs::write(
            &p,
            r#"{"next_id":1,"apps":[{"id":0,"spec":{"name":"x","env":{"C":"3"}},"run":{}}]}"#,
        )
        .unwrap();
        let state = load_state(&p).unwrap();
        assert_eq!(
            state.apps[0].spec.env.get("C").map(String::as_str),
            Some("3")
        );
        std::fs::write(
            &p,
            r#"{"next_id":1,"envs":[],"env_of":[4],"apps":[{"id":0,"spec":{"name":"x"},"run":{}}]}"#,
        )
        .unwrap();
        assert!(load_state(&p).is_err(), "an index with no environment");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn journal_lines_of_the_current_state_are_replayed() {
        let dir = std::env::temp_dir().join(format!("ward-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.journal");
        let app = |id: u32, pid: Option<u32>| {
            let mut run = crate::lifecycle::Run::new(0);
            run.pid = pid;
            App {
                id,
                spec: crate::spec::config::AppSpec::default(),
                run,
            }
        };
        let mut f = std::fs::File::create(&path).unwrap();
        journal_append(&mut f, 2, &app(1, Some(10)), Entry::Spawned).unwrap(); // older
        journal_append(&mut f, 3, &app(5, None), Entry::Spawning).unwrap();
        journal_append(&mut f, 3, &app(5, Some(50)), Entry::Spawned).unwrap();
        journal_append(&mut f, 3, &app(6, None), Entry::Spawning).unwrap();
        journal_append(&mut f, 3, &app(7, None), Entry::Spawning).unwrap();
        journal_append(&mut f, 3, &app(7, None), Entry::Removed).unwrap();
        f.write_all(b"{\"seq\":3,\"app\":{\"id\"").unwrap(); // torn by the crash
        let mut state = State {
            next_id: 2,
            apps: vec![app(1, Some(11))],
            seq: 3,
            ..State::default()
        };
        let (n, unsure) = journal_replay(&path, &mut state);
        assert_eq!(n, 5);
        assert_eq!(unsure, [6], "6 was being spawned; 5 got its pid; 7 left");
        assert_eq!(state.next_id, 8);
        assert_eq!(state.apps.len(), 3);
        let pid = |id: u32| state.apps.iter().find(|a| a.id == id).unwrap().run.pid;
        assert_eq!(pid(1), Some(11));
        assert_eq!(pid(5), Some(50));
        assert_eq!(pid(6), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// One saved app: what the user asked for, and whether it was stopped (a stopped app is
/// registered again without being started, as pm2 does).
#[derive(Serialize, Clone, Debug)]
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

/// `write_state` links the current state.json to state.json.bak (through a `.tmp` name)
/// before it replaces state.json; a crash inside that window leaves one file under two
/// names, which the home's trust check refuses (a file with two links may be another user's
/// too). Both names then hold the same bytes, so dropping the extra name loses nothing.
/// Called before the daemon checks its home.
pub fn settle_backup(state: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(cur) = std::fs::symlink_metadata(state) else {
        return;
    };
    let bak = bak_path(state);
    let mut tmp = bak.clone().into_os_string();
    tmp.push(".tmp");
    for extra in [std::path::PathBuf::from(tmp), bak] {
        let same = std::fs::symlink_metadata(&extra)
            .is_ok_and(|m| (m.dev(), m.ino()) == (cur.dev(), cur.ino()));
        if same {
            let _ = std::fs::remove_file(&extra);
        }
    }
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
    // A dump ward may not trust (a link, another user's file) is refused outright: falling
    // back to the backup would hide the attempt (see SECURITY in ward(1)).
    for p in [path.to_path_buf(), bak_path(path)] {
        if let Err(e) = crate::os::trust::open(&p, crate::os::trust::Open::Read) {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                return Err(crate::os::trust::refusal_error(&p, e));
            }
        }
    }
    let mut notes = Vec::new();
    match read_dump(path) {
        Ok(Some(found)) => return Ok(found),
        Ok(None) => {}
        Err((e, fault)) => {
            notes.push(format!("{DUMP_UNREADABLE} {}: {e}", path.display()));
            if fault == Fault::Damaged {
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

/// Why a dump file could not be used.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// It does not parse: reported, kept as `.broken`, the backup serves (pm2's rule).
    Damaged,
    /// It could not be read: reported, the backup serves.
    Unreadable,
}

/// One dump file: `Ok(None)` when it does not exist.
fn read_dump(path: &Path) -> std::result::Result<Option<Loaded>, (Error, Fault)> {
    let bytes = match crate::os::trust::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err((
                Error::unable(format_args!("read {}", path.display()), os(&e)),
                Fault::Unreadable,
            ));
        }
    };
    let damaged = |e: serde_json::Error| (Error::new(e.to_string()), Fault::Damaged);
    let value: serde_json::Value = crate::json::from_bytes(&bytes).map_err(damaged)?;
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
    // Read again from the bytes rather than with `from_value`: one reader per type
    // (json.rs). The specs and the statuses are read in two passes: serde reads a
    // `flatten`ed field by buffering each object as a generic tree first, a third copy
    // of the spec's decoding code.
    #[derive(Deserialize)]
    struct StatusOf {
        status: crate::lifecycle::Status,
    }
    let specs: Vec<crate::spec::config::AppSpec> =
        crate::json::from_bytes(&bytes).map_err(damaged)?;
    let statuses: Vec<StatusOf> = crate::json::from_bytes(&bytes).map_err(damaged)?;
    let saved = specs
        .into_iter()
        .zip(statuses)
        .map(|(spec, s)| Saved {
            spec,
            status: s.status,
        })
        .collect();
    Ok(Some((saved, Vec::new())))
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
