//! `--watch`: which paths each app watches, what is ignored, the debounce, and the one
//! inotify descriptor the whole daemon shares.
//!
//! The matching and debounce rules are pure (`Ignore`, `Debounce`) and tested on strings.
//! `Watcher` holds the inotify fd, created when the first app starts watching and closed
//! when the last one stops, so a daemon without watched apps has no such fd at all. The
//! daemon polls the fd, calls `read`, and turns `due` answers into `Event::Changed`.
//!
//! Choices, against pm2 (chokidar):
//! - Events: create, delete, move, close-after-write and attribute change (`touch`), not
//!   every write: a file that a program keeps open and appends to (a log) does not wake the
//!   daemon on each line, while an editor's save or `touch` is seen.
//! - Dot folders/files and `node_modules` are always ignored, as pm2's default; pm2 drops
//!   that default as soon as `ignore_watch` is given, ward adds the user's entries to it.
//! - ward's own files are never a reason to restart: every app's log files (and rotated
//!   copies next to them, which start with the same path), and everything in `WARD_HOME`.
//! - Debounce: the restart comes once no change was seen for `watch_delay` (at least
//!   `MIN_DEBOUNCE_MS`, even when 0 is given, so one save or checkout is one restart), and
//!   never later than `MAX_EXTRA_WAIT_MS` after that past the first change.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

pub const MIN_DEBOUNCE_MS: u64 = 100;
pub const MAX_EXTRA_WAIT_MS: u64 = 1000;
/// Folders added per app at registration; a tree larger than this is watched in part and
/// the daemon says so in its log.
const MAX_DIRS_PER_APP: usize = 20_000;
/// Folders added per loop turn, all walks together: `--watch /` must not keep the daemon
/// from answering for seconds (it did, for 4.6 s), so a large tree is added over many
/// turns, requests and exits handled in between.
pub const WATCH_BATCH: usize = 256;

/// One `ignore_watch` entry.
#[derive(Debug)]
enum Rule {
    /// A plain name or relative path: matches a path component or a path prefix.
    Name(String),
    /// A glob (`*.log`, `tmp/*`) or a regular expression, matched against the relative path
    /// and against the file name.
    Regex(regex_lite::Regex),
}

/// What an app does not watch, besides the defaults (dot names and `node_modules`).
#[derive(Debug, Default)]
pub struct Ignore {
    rules: Vec<Rule>,
}

fn glob_to_regex(g: &str) -> String {
    let mut r = String::from("^");
    for c in g.chars() {
        match c {
            '*' => r.push_str("[^/]*"),
            '?' => r.push_str("[^/]"),
            c => r.push_str(&regex_lite::escape(&c.to_string())),
        }
    }
    r.push('$');
    r
}

impl Ignore {
    /// Builds the rules; a bad regular expression is an error naming it.
    pub fn new(entries: &[String]) -> Result<Ignore, String> {
        let mut rules = Vec::new();
        for e in entries {
            let e = e.trim().trim_end_matches('/');
            if e.is_empty() {
                continue;
            }
            let e = e.strip_prefix("./").unwrap_or(e);
            let rule = if e.contains(['*', '?']) && !e.contains(['(', '[', '\\', '|', '^', '$']) {
                Rule::Regex(regex_lite::Regex::new(&glob_to_regex(e)).map_err(|x| x.to_string())?)
            } else if e.contains(['(', '[', '\\', '|', '^', '$', '+', '{']) {
                Rule::Regex(
                    regex_lite::Regex::new(e)
                        .map_err(|x| format!("invalid ignore_watch pattern {e:?}: {x}"))?,
                )
            } else {
                Rule::Name(e.to_string())
            };
            rules.push(rule);
        }
        Ok(Ignore { rules })
    }

    /// `rel` is the path relative to the watched root, `/`-separated.
    pub fn ignores(&self, rel: &str) -> bool {
        let mut parts = rel.split('/').filter(|p| !p.is_empty());
        if parts.any(|p| p.starts_with('.') || p == "node_modules") {
            return true;
        }
        let name = rel.rsplit('/').next().unwrap_or(rel);
        self.rules.iter().any(|r| match r {
            Rule::Name(n) => {
                rel.split('/').any(|p| p == n)
                    || rel == n
                    || rel
                        .strip_prefix(n.as_str())
                        .is_some_and(|t| t.starts_with('/'))
            }
            Rule::Regex(re) => re.is_match(rel) || re.is_match(name),
        })
    }
}

/// The pending restart of one app: the first path that changed, and when changes came.
#[derive(Debug, Clone, PartialEq)]
pub struct Debounce {
    pub path: String,
    pub first: u64,
    pub last: u64,
}

impl Debounce {
    pub fn due_at(&self, delay: u64) -> u64 {
        let d = delay.max(MIN_DEBOUNCE_MS);
        (self.last + d).min(self.first + d + MAX_EXTRA_WAIT_MS)
    }
}

/// Notes one change for an app: starts or extends its pending restart.
pub fn note_change(pending: &mut Option<Debounce>, path: &str, now: u64) {
    match pending {
        Some(p) => p.last = now,
        None => {
            *pending = Some(Debounce {
                path: path.to_string(),
                first: now,
                last: now,
            })
        }
    }
}

struct AppWatch {
    roots: Vec<PathBuf>,
    ignore: Ignore,
    delay: u64,
    pending: Option<Debounce>,
}

struct Dir {
    path: PathBuf,
    /// Apps watching this folder (or file), with the root it belongs to.
    apps: Vec<(u32, usize)>,
}

/// A tree being added for one app root, a batch per loop turn.
struct Walk {
    id: u32,
    root: usize,
    /// Folders still to add.
    stack: Vec<PathBuf>,
    /// Folders this walk may still add (`MAX_DIRS_PER_APP` for a whole root).
    budget: usize,
    /// The root, for the note when the budget runs out.
    shown: PathBuf,
}

#[derive(Default)]
pub struct Watcher {
    /// Trees still being added, oldest first.
    walks: std::collections::VecDeque<Walk>,
    ino: Option<Inotify>,
    dirs: HashMap<WatchDescriptor, Dir>,
    apps: HashMap<u32, AppWatch>,
    /// Files ward writes (log files of every app); never a reason to restart.
    own_files: HashSet<PathBuf>,
    /// Folders ward owns (WARD_HOME): never watched.
    own_dirs: Vec<PathBuf>,
}

fn mask() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DELETE_SELF
}

impl Watcher {
    pub fn new(own_dirs: Vec<PathBuf>) -> Watcher {
        Watcher {
            own_dirs,
            ..Watcher::default()
        }
    }

    /// The inotify fd, while some app watches.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.ino.as_ref().map(|i| i.as_fd())
    }

    /// A file ward writes to (an app's log).
    pub fn add_own_file(&mut self, p: PathBuf) {
        self.own_files.insert(p);
    }

    fn is_own(&self, p: &Path) -> bool {
        if self.own_dirs.iter().any(|d| p.starts_with(d)) {
            return true;
        }
        // Rotated copies start with the log file's path (`api-out.log.1`, `api-out.log-…`).
        let s = p.as_os_str().as_encoded_bytes();
        // ward's own rotation renames to `api-out__STAMP.log` (logs.rs).
        self.own_files.iter().any(|f| {
            s.starts_with(f.as_os_str().as_encoded_bytes()) || crate::logs::is_rotated_of(f, p)
        })
    }

    /// Starts watching for one app. Returns notes for the daemon's log (folders that could
    /// not be watched). Errors: no inotify at all, or a bad ignore pattern.
    pub fn add(
        &mut self,
        id: u32,
        roots: Vec<PathBuf>,
        ignore: &[String],
        delay: u64,
    ) -> Result<Vec<String>, String> {
        let ignore = Ignore::new(ignore)?;
        self.remove(id);
        if self.ino.is_none() {
            let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
                .map_err(|e| format!("unable to start inotify: {}", e.desc()))?;
            self.ino = Some(ino);
        }
        self.apps.insert(
            id,
            AppWatch {
                roots: roots.clone(),
                ignore,
                delay,
                pending: None,
            },
        );
        let mut notes = Vec::new();
        for (i, root) in roots.iter().enumerate() {
            if std::fs::symlink_metadata(root).is_err() {
                notes.push(format!(
                    "{}: no such file or folder; not watched",
                    root.display()
                ));
                continue;
            }
            self.walks.push_back(Walk {
                id,
                root: i,
                stack: vec![root.clone()],
                budget: MAX_DIRS_PER_APP,
                shown: root.clone(),
            });
        }
        // The first batch at once: a small tree is watched before the reply goes out.
        notes.extend(self.work());
        Ok(notes)
    }

    /// Trees remain to be added: the loop should come back without waiting.
    pub fn busy(&self) -> bool {
        !self.walks.is_empty()
    }

    /// Adds up to `WATCH_BATCH` folders of the pending walks; notes for the daemon's log.
    pub fn work(&mut self) -> Vec<String> {
        let mut notes = Vec::new();
        let mut left = WATCH_BATCH;
        while left > 0 {
            let Some(mut walk) = self.walks.pop_front() else {
                break;
            };
            self.add_tree(&mut walk, &mut left, &mut notes);
            if walk.stack.is_empty() {
                continue;
            }
            if walk.budget == 0 {
                notes.push(format!(
                    "{}: more than {MAX_DIRS_PER_APP} folders; the rest is not watched",
                    walk.shown.display()
                ));
                continue;
            }
            self.walks.push_front(walk);
        }
        notes
    }

    /// Adds folders of `walk` (not ignored ones), at most `left` of them.
    fn add_tree(&mut self, walk: &mut Walk, left: &mut usize, notes: &mut Vec<String>) {
        let (id, root) = (walk.id, walk.root);
        let stack = &mut walk.stack;
        let budget = &mut walk.budget;
        while *left > 0 {
            let Some(d) = stack.pop() else { return };
            if *budget == 0 {
                stack.push(d);
                return;
            }
            if self.is_own(&d) {
                continue;
            }
            let Some(ino) = &self.ino else { return };
            let wd = match ino.add_watch(&d, mask()) {
                Ok(wd) => wd,
                Err(Errno::ENOENT) => continue, // gone meanwhile
                Err(e) => {
                    notes.push(format!("unable to watch {}: {}", d.display(), e.desc()));
                    if e == Errno::ENOSPC {
                        notes
                            .push("raise fs.inotify.max_user_watches to watch more folders".into());
                        *budget = 0;
                    }
                    continue;
                }
            };
            *budget -= 1;
            *left -= 1;
            let entry = self.dirs.entry(wd).or_insert_with(|| Dir {
                path: d.clone(),
                apps: Vec::new(),
            });
            if !entry.apps.contains(&(id, root)) {
                entry.apps.push((id, root));
            }
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue; // a file, or unreadable
            };
            let Some(app) = self.apps.get(&id) else {
                return;
            };
            let Some(base) = app.roots.get(root) else {
                return;
            };
            for e in rd.flatten() {
                if !e.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let p = e.path();
                if app.ignore.ignores(&rel(base, &p)) {
                    continue;
                }
                stack.push(p);
            }
        }
    }

    /// Stops watching for one app; closes the inotify fd when no app watches any more.
    pub fn remove(&mut self, id: u32) {
        if self.apps.remove(&id).is_none() {
            return;
        }
        self.walks.retain(|w| w.id != id);
        let mut gone = Vec::new();
        for (wd, dir) in self.dirs.iter_mut() {
            dir.apps.retain(|&(a, _)| a != id);
            if dir.apps.is_empty() {
                gone.push(*wd);
            }
        }
        for wd in gone {
            self.dirs.remove(&wd);
            if let Some(ino) = &self.ino {
                let _ = ino.rm_watch(wd);
            }
        }
        if self.apps.is_empty() {
            self.ino = None;
            self.dirs.clear();
        }
    }

    /// Reads every queued event and notes changes per app; new folders get a first batch
    /// of watches at once (a `mkdir` followed by a write is seen).
    pub fn read(&mut self, now: u64) -> Vec<String> {
        let mut notes = self.read_events(now);
        notes.extend(self.work());
        notes
    }

    fn read_events(&mut self, now: u64) -> Vec<String> {
        let mut notes = Vec::new();
        loop {
            let Some(ino) = &self.ino else { return notes };
            let events = match ino.read_events() {
                Ok(ev) if !ev.is_empty() => ev,
                Ok(_) | Err(Errno::EAGAIN) => return notes,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    notes.push(format!("reading inotify events failed: {}", e.desc()));
                    return notes;
                }
            };
            for ev in events {
                if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    for app in self.apps.values_mut() {
                        note_change(
                            &mut app.pending,
                            "(many files: the event queue overflowed)",
                            now,
                        );
                    }
                    continue;
                }
                if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                    self.dirs.remove(&ev.wd);
                    continue;
                }
                let Some(dir) = self.dirs.get(&ev.wd) else {
                    continue;
                };
                let path = match &ev.name {
                    Some(n) => dir.path.join(n),
                    None => dir.path.clone(),
                };
                if self.is_own(&path) {
                    continue;
                }
                let is_dir = ev.mask.contains(AddWatchFlags::IN_ISDIR);
                let new_dir = is_dir
                    && ev
                        .mask
                        .intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO);
                // A folder's own attribute change (its mtime moves with every entry) says
                // nothing new.
                if is_dir && ev.mask == AddWatchFlags::IN_ATTRIB | AddWatchFlags::IN_ISDIR {
                    continue;
                }
                // A folder made to hold ward's own files (a log folder inside the tree,
                // created when the app first starts) is ward's doing, not a change.
                let own_folder = is_dir && self.own_files.iter().any(|f| f.starts_with(&path));
                let watchers = dir.apps.clone();
                for (id, root) in watchers {
                    let Some(app) = self.apps.get_mut(&id) else {
                        continue;
                    };
                    let Some(base) = app.roots.get(root) else {
                        continue;
                    };
                    if app.ignore.ignores(&rel(base, &path)) {
                        continue;
                    }
                    if !own_folder {
                        note_change(&mut app.pending, &path.to_string_lossy(), now);
                    }
                    if new_dir {
                        // Added by `work`, right after this read in the same loop turn.
                        self.walks.push_back(Walk {
                            id,
                            root,
                            stack: vec![path.clone()],
                            budget: MAX_DIRS_PER_APP,
                            shown: path.clone(),
                        });
                    }
                }
            }
        }
    }

    /// The nearest debounce deadline, if any change is pending.
    pub fn next_deadline(&self) -> Option<u64> {
        self.apps
            .values()
            .filter_map(|a| a.pending.as_ref().map(|p| p.due_at(a.delay)))
            .min()
    }

    /// Apps whose debounce has passed, with the path that changed first.
    pub fn due(&mut self, now: u64) -> Vec<(u32, String)> {
        let mut out = Vec::new();
        for (&id, app) in self.apps.iter_mut() {
            if app
                .pending
                .as_ref()
                .is_some_and(|p| p.due_at(app.delay) <= now)
            {
                if let Some(p) = app.pending.take() {
                    out.push((id, p.path));
                }
            }
        }
        out.sort();
        out
    }
}

/// `p` relative to `base`, `/`-separated; `p` itself when it is not below `base`.
fn rel(base: &Path, p: &Path) -> String {
    let r = p.strip_prefix(base).unwrap_or(p);
    if r.as_os_str().is_empty() {
        return p
            .file_name()
            .map(OsStr::to_string_lossy)
            .unwrap_or_default()
            .into_owned();
    }
    r.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ig(entries: &[&str]) -> Ignore {
        Ignore::new(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn defaults_ignore_dot_names_and_node_modules() {
        let i = ig(&[]);
        assert!(i.ignores(".git"));
        assert!(i.ignores(".git/objects/ab"));
        assert!(i.ignores("src/.index.js.swp"));
        assert!(i.ignores("node_modules/x/index.js"));
        assert!(i.ignores("packages/a/node_modules"));
        assert!(!i.ignores("src/index.js"));
        assert!(!i.ignores("server.js"));
    }

    #[test]
    fn names_paths_globs_and_regexes() {
        let i = ig(&["logs", "client/img", "*.log", "^tmp_"]);
        assert!(i.ignores("logs"));
        assert!(i.ignores("logs/app.txt"));
        assert!(i.ignores("a/logs/b"));
        assert!(!i.ignores("logsx/b"));
        assert!(i.ignores("client/img"));
        assert!(i.ignores("client/img/a.png"));
        assert!(!i.ignores("client/imgs/a.png"));
        assert!(i.ignores("out.log"));
        assert!(i.ignores("sub/out.log"));
        assert!(!i.ignores("out.logs"));
        assert!(i.ignores("tmp_1"));
        assert!(!i.ignores("src/a.js"));
        // Defaults stay with user entries.
        assert!(i.ignores("node_modules/a"));
        assert!(Ignore::new(&["(".into()]).is_err());
    }

    #[test]
    fn debounce_waits_for_quiet_and_caps_the_wait() {
        let mut p = None;
        note_change(&mut p, "/a", 1000);
        assert_eq!(p.as_ref().unwrap().due_at(0), 1000 + MIN_DEBOUNCE_MS);
        assert_eq!(p.as_ref().unwrap().due_at(500), 1500);
        note_change(&mut p, "/b", 1400);
        let d = p.as_ref().unwrap();
        assert_eq!(d.path, "/a");
        assert_eq!(d.due_at(500), 1900);
        // A stream of changes does not postpone it forever.
        note_change(&mut p, "/c", 5000);
        assert_eq!(
            p.as_ref().unwrap().due_at(500),
            1000 + 500 + MAX_EXTRA_WAIT_MS
        );
    }

    #[test]
    fn watches_a_tree_and_new_folders_but_not_own_files() {
        let base = std::env::temp_dir().join(format!("ward-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("src")).unwrap();
        std::fs::create_dir_all(base.join("node_modules/x")).unwrap();
        let mut w = Watcher::new(vec![base.join("home")]);
        w.add_own_file(base.join("logs/api-out.log"));
        w.add(1, vec![base.clone()], &["ignored".into()], 0)
            .unwrap();
        assert!(w.fd().is_some());
        // root, src; not node_modules.
        assert_eq!(w.dirs.len(), 2);
        // The log folder made after the start (as ward does on the first spawn).
        std::fs::create_dir_all(base.join("logs")).unwrap();

        std::fs::write(base.join("logs/api-out.log"), "x").unwrap();
        std::fs::write(base.join("logs/api-out.log.1"), "x").unwrap();
        std::fs::write(base.join("node_modules/x/a.js"), "x").unwrap();
        // WARD_HOME inside the watched tree: not even watched.
        std::fs::create_dir_all(base.join("home/logs")).unwrap();
        std::fs::write(base.join("home/logs/other-out.log"), "x").unwrap();
        std::fs::write(base.join("home/state.json"), "{}").unwrap();
        w.read(0);
        assert_eq!(w.next_deadline(), None);

        std::fs::create_dir(base.join("src/new")).unwrap();
        w.read(10);
        // root, src, logs/ (made after the start), src/new; home/ is ward's: its
        // new-folder event is ignored and nothing below it is watched.
        assert_eq!(w.dirs.len(), 4);
        assert_eq!(
            w.due(10_000),
            vec![(1, base.join("src/new").to_string_lossy().into_owned())]
        );
        std::fs::write(base.join("src/new/b.js"), "x").unwrap();
        w.read(20);
        assert_eq!(w.next_deadline(), Some(20 + MIN_DEBOUNCE_MS));
        assert_eq!(w.due(20), vec![]);
        assert_eq!(
            w.due(20 + MIN_DEBOUNCE_MS),
            vec![(1, base.join("src/new/b.js").to_string_lossy().into_owned())]
        );

        w.remove(1);
        assert!(w.fd().is_none());
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn a_large_tree_is_added_in_batches() {
        let base = std::env::temp_dir().join(format!("ward-watch-big-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let n = WATCH_BATCH * 2 + 10;
        for i in 0..n {
            std::fs::create_dir_all(base.join(format!("d{i}"))).unwrap();
        }
        let mut w = Watcher::new(vec![]);
        w.add(1, vec![base.clone()], &[], 0).unwrap();
        assert_eq!(w.dirs.len(), WATCH_BATCH, "one batch at once");
        assert!(w.busy());
        w.work();
        assert_eq!(w.dirs.len(), WATCH_BATCH * 2);
        w.work();
        assert_eq!(w.dirs.len(), n + 1, "root and every folder");
        assert!(!w.busy());
        // Removing the app mid-walk drops its walk.
        w.add(2, vec![base.clone()], &[], 0).unwrap();
        assert!(w.busy());
        w.remove(2);
        assert!(!w.busy());
        w.remove(1);
        let _ = std::fs::remove_dir_all(&base);
    }
}
