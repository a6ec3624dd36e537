//! Trusting what is on disk: who owns a path, who else may write it, and opening files in
//! the home without following symbolic links.
//!
//! A root daemon must not be steered by another local user through its home: a file that
//! user planted there (a symlink to /etc/..., a dump naming their command, a state.json
//! naming pid 1) is refused, as ssh refuses an `authorized_keys` others could write. The
//! rule: what ward reads or writes in its home belongs to the process's effective uid and
//! nobody else may write it; every folder above the home belongs to root or that uid and
//! is not writable by others unless sticky (/tmp). Which paths are checked is home.rs's
//! business; how, is this file's.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{Error as IoError, ErrorKind};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The uid whose files ward trusts: the process's effective uid.
pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// `name (uid N)`, or `uid N` for a uid without a name.
pub fn who(uid: u32) -> String {
    match crate::os::users::name_of(uid) {
        Some(name) => format!("{name} (uid {uid})"),
        None => format!("uid {uid}"),
    }
}

/// Why a path ward uses must be refused, given its `lstat`: `None` when it may be used.
fn refusal(meta: &Metadata, me: u32) -> Option<String> {
    if meta.uid() != me {
        return Some(format!(
            "it belongs to {}, not to {}",
            who(meta.uid()),
            who(me)
        ));
    }
    if meta.file_type().is_file() && meta.nlink() > 1 {
        return Some(format!(
            "it has {} hard links, so it may be another file too",
            meta.nlink()
        ));
    }
    None
}

/// The refusal of a file `open` would not use, in the words of the home's checks.
pub fn refusal_error(path: &Path, e: IoError) -> Error {
    refused(path, e)
}

fn refused(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::new(format!(
        "refusing {}: {why}; ward uses only files of its own user that no other user can \
         write (see SECURITY in ward(1))",
        path.display()
    ))
}

/// Checks every folder above `path` (not `path` itself): each belongs to root or to `me`,
/// and no one else may write it unless it is sticky (a user who can rename entries of a
/// folder could swap the home for one of their own). Symbolic links on the way are checked
/// as links and then followed.
pub fn check_ancestors(path: &Path, me: u32) -> Result<()> {
    let mut seen = Vec::new();
    for p in [path.to_path_buf(), canonical(path)] {
        if seen.contains(&p) {
            continue;
        }
        for a in p.ancestors().skip(1) {
            if a.as_os_str().is_empty() {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(a) else {
                continue; // not there yet: created by us, below a checked folder
            };
            if meta.uid() != 0 && meta.uid() != me {
                return Err(refused(
                    path,
                    format_args!(
                        "{} belongs to {}, who could replace what is inside",
                        a.display(),
                        who(meta.uid())
                    ),
                ));
            }
            let mode = meta.mode();
            if meta.is_dir() && mode & 0o022 != 0 && mode & 0o1000 == 0 {
                return Err(refused(
                    path,
                    format_args!(
                        "{} may be written by other users (mode {:04o})",
                        a.display(),
                        mode & 0o7777
                    ),
                ));
            }
        }
        seen.push(p);
    }
    Ok(())
}

/// The path with every symbolic link resolved, as far as it exists.
fn canonical(path: &Path) -> PathBuf {
    for a in path.ancestors() {
        if let Ok(c) = std::fs::canonicalize(a) {
            let rest = path.strip_prefix(a).unwrap_or(Path::new(""));
            return c.join(rest);
        }
    }
    path.to_path_buf()
}

/// Checks one folder of the home (following a symbolic link the user made to it, which
/// must be theirs too). `Ok(None)` when it does not exist.
pub fn check_dir(path: &Path, me: u32) -> Result<Option<Metadata>> {
    let lmeta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::unable(
                format_args!("look at {}", path.display()),
                crate::error::os(&e),
            ));
        }
    };
    if let Some(why) = refusal(&lmeta, me) {
        return Err(refused(path, why));
    }
    let meta = if lmeta.file_type().is_symlink() {
        let m = std::fs::metadata(path).map_err(|e| {
            Error::unable(
                format_args!("look at {}", path.display()),
                crate::error::os(&e),
            )
        })?;
        if let Some(why) = refusal(&m, me) {
            return Err(refused(path, why));
        }
        m
    } else {
        lmeta
    };
    if !meta.is_dir() {
        return Err(refused(path, "it is not a folder"));
    }
    Ok(Some(meta))
}

/// Checks one entry of the home (a file, socket or link) by its `lstat`: it must belong
/// to `me`.
pub fn check_meta(path: &Path, meta: &Metadata, me: u32) -> Result<()> {
    match refusal(meta, me) {
        Some(why) => Err(refused(path, why)),
        None => Ok(()),
    }
}

/// `check_meta` by path. `Ok(None)` when it does not exist.
pub fn check_entry(path: &Path, me: u32) -> Result<Option<Metadata>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => check_meta(path, &m, me).map(|()| Some(m)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::unable(
            format_args!("look at {}", path.display()),
            crate::error::os(&e),
        )),
    }
}

/// Sets `mode` on a path of ours when it allows more; true when it changed something.
pub fn restrict(path: &Path, meta: &Metadata, mode: u32) -> bool {
    let now = meta.mode() & 0o7777;
    if now & !mode == 0 {
        return false;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).is_ok()
}

/// How a file in the home is opened.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Open {
    Read,
    /// Created if missing (0600), written at the end.
    Append,
    /// Created if missing (0600), written from the start; not truncated (see `write`).
    Write,
}

/// Opens a file in the home: never through a symbolic link (O_NOFOLLOW), created 0600, and
/// only if it is a regular file of this uid with one link; a group- or world-accessible
/// file of ours is made 0600. The error names the file and its owner.
pub fn open(path: &Path, how: Open) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    match how {
        Open::Read => o.read(true),
        Open::Append => o.append(true).create(true).mode(0o600),
        Open::Write => o.write(true).create(true).mode(0o600),
    };
    let f = o
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                IoError::new(
                    ErrorKind::PermissionDenied,
                    "it is a symbolic link, which ward does not follow in its home",
                )
            } else {
                e
            }
        })?;
    let meta = f.metadata()?;
    if let Some(why) = refusal(&meta, euid()) {
        return Err(IoError::new(ErrorKind::PermissionDenied, why));
    }
    if !meta.is_file() {
        return Err(IoError::new(
            ErrorKind::PermissionDenied,
            "it is not a regular file",
        ));
    }
    if meta.mode() & 0o077 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
}

/// Replaces a small file's content in place (pid files), through `open`.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = open(path, Open::Write)?;
    // A file just created is empty already; truncating it anyway costs a writeback at
    // close on ext4 (auto_da_alloc: a file truncated to 0 is flushed when closed), which
    // was 8% of the daemon's time starting 100 apps.
    if f.metadata()?.len() > 0 {
        f.set_len(0)?;
    }
    f.write_all(bytes)
}

/// Reads a whole file through `open`.
pub fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut v = Vec::new();
    open(path, Open::Read)?.read_to_end(&mut v)?;
    Ok(v)
}

/// Creates a new file that no one else can have prepared (O_EXCL, O_NOFOLLOW), with `mode`.
pub fn create_new(path: &Path, mode: u32) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ward-trust-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn open_refuses_links_and_makes_files_private() {
        let d = temp("open");
        let target = d.join("target");
        std::fs::write(&target, "keep").unwrap();
        let link = d.join("link.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = open(&link, Open::Append).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(write(&link, b"x").is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");

        let hard = d.join("hard");
        std::fs::hard_link(&target, &hard).unwrap();
        let e = open(&hard, Open::Read).unwrap_err();
        assert!(e.to_string().contains("hard links"), "{e}");

        let p = d.join("state.json");
        std::fs::write(&p, "{}").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(read(&p).unwrap(), b"{}");
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        write(&d.join("new.pid"), b"42").unwrap();
        let m = std::fs::metadata(d.join("new.pid")).unwrap();
        assert_eq!(m.mode() & 0o777, 0o600);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn ancestors_writable_by_others_are_refused_unless_sticky() {
        let d = temp("anc");
        let open_dir = d.join("open");
        std::fs::create_dir(&open_dir).unwrap();
        std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_ancestors(&open_dir.join("home"), euid()).unwrap_err();
        assert!(
            e.to_string().contains("may be written by other users"),
            "{e}"
        );
        std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        check_ancestors(&open_dir.join("home"), euid()).unwrap();
        // Not ours, not root's: refused (only testable when some other uid owns a folder).
        let e = check_ancestors(&d.join("home"), euid().wrapping_add(1));
        if std::fs::metadata(&d).unwrap().uid() != 0 {
            assert!(e.unwrap_err().to_string().contains("belongs to"));
        }
        std::fs::remove_dir_all(&d).unwrap();
    }
}
