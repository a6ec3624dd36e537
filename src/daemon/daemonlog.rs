//! The daemon's own log (`ward.log`, `pm2.log` in pm2 mode): where every `log` line goes,
//! rotated by size like the apps' logs, so that a long crash loop (about 17 MB an hour)
//! cannot fill the disk.
//!
//! The file is the daemon's stderr (the client that starts the daemon opens it). Once the
//! daemon knows config.json's `max_log_size` and `log_retain`, its lines go through a
//! `logs::Sink` with that rotation (or `DEFAULT_MAX_SIZE` and `DEFAULT_RETAIN`), and after
//! each rotation stderr is pointed at the fresh file, so that anything else written there
//! (a panic message) lands in the current file too. A daemon whose stderr is a terminal
//! (run in the foreground) writes there, unrotated.

use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::logs::{Defaults, Rotation, Sink};
use crate::os::sys;

/// ward.log's size limit when config.json gives none.
pub const DEFAULT_MAX_SIZE: u64 = 10 << 20;
/// Rotated ward.log files kept when config.json gives no `log_retain`.
pub const DEFAULT_RETAIN: u32 = 5;

thread_local! {
    // The daemon is single-threaded; this is its one log file.
    static SINK: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

/// Takes over the daemon's log file `path` when it is the daemon's stderr.
pub fn init(path: &Path, defaults: &Defaults) {
    // The file fd 2 is open on (the link is followed).
    let Ok(stderr) = std::fs::metadata("/proc/self/fd/2") else {
        return;
    };
    let same = std::fs::metadata(path)
        .is_ok_and(|m| m.is_file() && (m.dev(), m.ino()) == (stderr.dev(), stderr.ino()));
    if !same {
        return;
    }
    let rotation = defaults.rotation(None, None).unwrap_or(Rotation {
        max_size: DEFAULT_MAX_SIZE,
        retain: defaults.log_retain.unwrap_or(DEFAULT_RETAIN),
    });
    let (sink, _) = Sink::open(path, Some(rotation));
    SINK.with_borrow_mut(|s| *s = Some(sink));
}

/// Writes one line, stamped with the local time.
pub fn line(msg: impl std::fmt::Display) {
    let text = format!("{} {msg}\n", sys::local_timestamp());
    let taken = SINK.with_borrow_mut(|s| {
        let Some(sink) = s else { return false };
        // A failure has nowhere to be reported but here; the sink counts what it drops.
        let _ = sink.write(text.as_bytes());
        if sink.take_rotated() {
            point_stderr_at(&sink.path);
        }
        true
    });
    if !taken {
        eprint!("{text}");
    }
}

/// Opens ward.log again by its path (`reloadLogs`, SIGUSR2: after an external rotation);
/// a message when that failed.
pub fn reopen() -> Option<String> {
    SINK.with_borrow_mut(|s| {
        let sink = s.as_mut()?;
        let note = sink.reopen();
        if note.is_none() {
            point_stderr_at(&sink.path);
        }
        note
    })
}

fn point_stderr_at(path: &Path) {
    if let Ok(f) = std::fs::File::options().append(true).open(path) {
        let _ = nix::unistd::dup2(f.as_raw_fd(), 2);
    }
}
