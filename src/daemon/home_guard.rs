//! Noticing that the home was removed (or moved away) under a running daemon.
//!
//! The daemon's lock is on a file in the home; after `rm -rf ~/.ward` that file is gone,
//! so the next client would find no socket, start a second daemon, and it would lock a
//! new file: two daemons for one home, each with its own apps. An inotify watch on the
//! home folder tells the daemon at once; it then recreates the home and locks it again,
//! or, if another daemon got there first, leaves without stopping anything
//! (survive.rs decides which).
//!
//! IN_DELETE_SELF on the folder is not enough: the kernel sends it only once nothing
//! holds the folder's entry, and the daemon's own open files inside (its log, the lock,
//! app logs) keep holding it. So the watch also reports the deletion of the lock file
//! (IN_DELETE, by name), and the daemon then looks a few times whether the folder itself
//! went away, giving `rm -rf` time to finish before anything is created again.

use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

pub struct HomeGuard {
    ino: Inotify,
    root: PathBuf,
    /// The folder's (device, inode) when it was watched: a folder recreated at the same
    /// path is another one.
    id: Option<(u64, u64)>,
    /// The watch on the current folder. A removed folder's watch may report long after
    /// (once the daemon lets go of its last file there): that is not news.
    wd: Option<WatchDescriptor>,
    lock_name: std::ffi::OsString,
}

/// What the pending events say.
#[derive(PartialEq, Debug)]
pub enum Seen {
    Nothing,
    /// The folder is gone or moved away.
    Gone,
    /// The lock file was deleted: the folder may follow (`rm -rf` in progress).
    LockDeleted,
}

fn ident(p: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

impl HomeGuard {
    /// Watches `root`, whose lock file is `lock`; `None` without inotify (the daemon then
    /// goes on unguarded).
    pub fn watch(root: &Path, lock: &Path) -> Option<HomeGuard> {
        let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
        let mut g = HomeGuard {
            ino,
            root: root.to_path_buf(),
            id: None,
            wd: None,
            lock_name: lock.file_name()?.to_os_string(),
        };
        g.rewatch().then_some(g)
    }

    /// Watches the (recreated) folder.
    pub fn rewatch(&mut self) -> bool {
        self.id = ident(&self.root);
        self.wd = self
            .ino
            .add_watch(
                &self.root,
                AddWatchFlags::IN_DELETE_SELF
                    | AddWatchFlags::IN_MOVE_SELF
                    | AddWatchFlags::IN_DELETE,
            )
            .ok();
        self.wd.is_some()
    }

    /// Is the watched folder no longer at its path?
    pub fn moved_or_gone(&self) -> bool {
        ident(&self.root) != self.id
    }

    /// Reads what is pending.
    pub fn read(&self) -> Seen {
        let mut seen = Seen::Nothing;
        while let Ok(events) = self.ino.read_events() {
            if events.is_empty() {
                break;
            }
            for e in events.into_iter().filter(|e| Some(e.wd) == self.wd) {
                if e.mask.intersects(
                    AddWatchFlags::IN_DELETE_SELF
                        | AddWatchFlags::IN_MOVE_SELF
                        | AddWatchFlags::IN_IGNORED,
                ) {
                    seen = Seen::Gone;
                } else if e.mask.contains(AddWatchFlags::IN_DELETE)
                    && e.name.as_deref() == Some(self.lock_name.as_os_str())
                    && seen == Seen::Nothing
                {
                    seen = Seen::LockDeleted;
                }
            }
        }
        seen
    }
}

impl AsFd for HomeGuard {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.ino.as_fd()
    }
}
