//! How the daemon survives its own death and its own upgrade: the link to the fd holder
//! (which keeps every pipe while no daemon runs, and starts a new daemon), `ward update`'s
//! re-exec in place, and taking back what a previous daemon left (state.json, live apps
//! by pid and start time, pipes from the holder). A child module of daemon.rs.

use super::*;

impl Daemon {
    /// Connects to the fd holder (starting it if needed) and returns the pipes it keeps.
    pub(super) fn connect_holder(&mut self) -> Vec<(String, OwnedFd)> {
        let link = match holder::Link::connect(&self.home) {
            Ok(l) => l,
            Err(e) => {
                log(format_args!(
                    "{e}; apps will not survive a crash of the daemon until it is back"
                ));
                return Vec::new();
            }
        };
        let held = match link.take_all() {
            Ok(h) => h,
            Err(e) => {
                log(format_args!(
                    "unable to take the pipes from the fd holder: {}",
                    e.desc()
                ));
                Vec::new()
            }
        };
        if let Err(e) = self.epoll.add(
            link.as_fd(),
            EpollEvent::new(EpollFlags::EPOLLIN, TOK_HOLDER),
        ) {
            log(format_args!("unable to watch the fd holder: {}", e.desc()));
        }
        self.holder = Some(link);
        held
    }

    /// The holder went away (killed?): start another and give it every pipe again.
    pub(super) fn on_holder_gone(&mut self) {
        if let Some(old) = self.holder.take() {
            let _ = self.epoll.delete(old.as_fd());
        }
        if self.exiting {
            return;
        }
        log("the fd holder is gone; starting a new one");
        // A new holder holds nothing; what an old one held is ours already.
        drop(self.connect_holder());
        self.hold_add = self.pipes.keys().copied().collect();
        self.hold_add_stdin = self.stdins.keys().copied().collect();
        self.hold_app_sockets();
    }

    /// Connects to the holder started for a new home, if that is still to be done (see
    /// `holder_due`); before anything is handed to it.
    pub(super) fn ensure_holder(&mut self) {
        if std::mem::take(&mut self.holder_due) {
            // It was started for us and holds nothing yet.
            drop(self.connect_holder());
        }
    }

    /// Sends the turn's pipe additions and removals to the holder.
    pub(super) fn flush_holder(&mut self) {
        self.ensure_holder();
        if self.hold_add.is_empty() && self.hold_del.is_empty() && self.hold_add_stdin.is_empty() {
            return;
        }
        let Some(link) = &self.holder else {
            self.hold_add.clear();
            self.hold_add_stdin.clear();
            self.hold_del.clear();
            return;
        };
        let mut adds: Vec<(String, i32)> = self
            .hold_add
            .drain(..)
            .filter_map(|t| {
                self.pipes
                    .get(&t)
                    .map(|p| (p.key.clone(), p.fd.as_raw_fd()))
            })
            .collect();
        adds.extend(self.hold_add_stdin.drain(..).filter_map(|id| {
            self.stdins
                .get(&id)
                .map(|(k, fd)| (k.clone(), fd.as_raw_fd()))
        }));
        let dels = std::mem::take(&mut self.hold_del);
        let res = link.add(&adds).and_then(|()| link.del(&dels));
        if let Err(e) = res {
            log(format_args!("unable to reach the fd holder: {}", e.desc()));
            self.on_holder_gone();
        }
    }

    /// `ward update`: re-execute the (possibly new) binary in place. Same pid, so the apps
    /// stay our children; the control socket and the lock survive the exec; the pipes are
    /// taken back from the holder; the table comes from state.json, written just before.
    pub(super) fn reexec(&mut self, exe: &str) {
        self.save();
        self.ensure_holder();
        if let Some(h) = &self.holder {
            h.exec();
        }
        let sock = self.server.as_fd().as_raw_fd();
        if !sys::keep_across_exec(sock) || !sys::keep_across_exec(self.lock_fd) {
            log("unable to keep the socket across exec; update abandoned");
            return;
        }
        log(format_args!("re-executing {exe} in place (ward update)"));
        use std::os::unix::process::CommandExt;
        let err = std::process::Command::new(exe)
            .arg("daemon")
            .arg("--spawned")
            .arg("--lock-fd")
            .arg(self.lock_fd.to_string())
            .arg("--sock-fd")
            .arg(sock.to_string())
            .envs(self.home.env())
            .exec();
        // exec returned: it failed. Carry on as we were, in a fresh loop, with both fds
        // closing on exec again (apps started from now on must not hold them).
        sys::set_cloexec(sock);
        sys::set_cloexec(self.lock_fd);
        log(format_args!(
            "unable to re-execute {exe}: {err}; the daemon goes on as it was"
        ));
        self.update_to = None;
        self.run_loop();
    }

    /// Takes back what a previous daemon left: its table (state.json), its apps that still
    /// run (adopted: same pid and same start time, so a recycled pid is never taken for an
    /// app), and their output pipes (from the fd holder). Apps that died meanwhile go through
    /// the lifecycle as an exit of unknown status, so they restart if they should.
    pub(super) fn restore(&mut self) {
        let held = if self.holder_due {
            Vec::new()
        } else {
            self.connect_holder()
        };
        let had_state = self.home.state().exists();
        let mut damaged = false;
        let mut state = match store::load_state(&self.home.state()) {
            Ok(s) => s,
            Err(e) => {
                damaged = true;
                let bad = self.home.state().with_extension("json.bad");
                let _ = std::fs::rename(self.home.state(), &bad);
                let bak = store::bak_path(&self.home.state());
                match store::load_state(&bak) {
                    Ok(s) if bak.exists() => {
                        let notice = format!(
                            "{e} (kept as {}); the table was restored from the previous copy, \
                             {}",
                            bad.display(),
                            bak.display()
                        );
                        log(&notice);
                        self.notices.push(notice);
                        s
                    }
                    Ok(_) => {
                        log(format_args!(
                            "{e}; no previous copy: starting with an empty table"
                        ));
                        State::default()
                    }
                    Err(e2) => {
                        log(format_args!("{e}; {e2}; starting with an empty table"));
                        State::default()
                    }
                }
            }
        };
        let (journaled, unsure) = store::journal_replay(&self.home.journal(), &mut state);
        if journaled > 0 {
            log(format_args!(
                "{journaled} spawns since the last state.json, from {}",
                self.home.journal().display()
            ));
        }
        if !unsure.is_empty() {
            // Spawned as the last daemon died, pid never recorded: running or not.
            self.scan_home(&mut state, |id| unsure.contains(&id));
        }
        if damaged {
            // The table came from an older copy, or from nothing: whatever of this home
            // runs and is not in it runs unmanaged; say so where the user looks.
            let strays = self.scan_home(&mut state, |_| true);
            if !strays.is_empty() {
                let list: Vec<String> = strays
                    .iter()
                    .map(|(pid, id)| format!("pid {pid} (pm_id {id})"))
                    .collect();
                let notice = format!(
                    "{} was damaged: apps may be running unmanaged: {}; stop them with \
                     `kill PID` or adopt them by hand",
                    self.home.state().display(),
                    list.join(", ")
                );
                log(&notice);
                self.notices.push(notice);
            }
        }
        // A new home: nothing to write until something happens (an empty state.json says
        // what no state.json says, and its two fsyncs were a fifth of the first answer).
        let fresh = !had_state && !damaged && journaled == 0 && state.apps.is_empty();
        self.seq = state.seq;
        self.open_journal();
        if !state.apps.is_empty() {
            log(format_args!(
                "restoring {} apps from {}",
                state.apps.len(),
                self.home.state().display()
            ));
        }
        self.table = Table::from_apps(state.apps, state.next_id);
        let mut dead = Vec::new();
        let mut start = Vec::new();
        for id in self.table.ids() {
            self.open_logs(id);
            self.arm_policies(id);
            let Some(app) = self.table.get_mut(id) else {
                continue;
            };
            if let Some(d) = app.run.deadline {
                self.timers.insert((d, id));
            }
            match (app.run.status, app.run.pid) {
                (_, Some(pid)) => {
                    // Never pid 0 or 1 (init, or kill(-1) once negated), never a start time
                    // of 0 (unknown), never a process whose start time differs.
                    let stat = proc::read_stat(pid).filter(|st| {
                        pid > 1
                            && app.run.pid_start != 0
                            && st.start == app.run.pid_start
                            && st.state != 'Z'
                    });
                    if stat.is_none() && pid <= 1 {
                        log(format_args!(
                            "{} (id {id}): state.json names pid {pid}, which is never an app; \
                             not adopted",
                            app.spec.name
                        ));
                    }
                    let fd = if stat.is_some() {
                        sys::pidfd_open(pid)
                    } else {
                        None
                    };
                    match fd {
                        Some(fd) => {
                            let tok = self.next_token;
                            self.next_token += 1;
                            let _ = self
                                .epoll
                                .add(fd.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, tok));
                            self.adopted.insert(tok, Adopted { app: id, pid, fd });
                            self.pids.insert(pid, id);
                            // Its group is signalled only if it leads it, as every app
                            // ward starts does; otherwise signals go to its pid alone.
                            if stat.is_some_and(|st| st.pgrp == pid) {
                                self.groups.insert(id, pid);
                            }
                            log(format_args!(
                                "adopted {} (id {id}), pid {pid}",
                                app.spec.name
                            ));
                        }
                        None => dead.push(id),
                    }
                }
                (Status::Launching, None) => {
                    app.run.status = Status::Stopped;
                    start.push(id);
                }
                _ => {}
            }
        }
        self.warn_unheld_output(&held);
        for (key, fd) in held {
            let mut parts = key.split('.');
            let app = parts.next().and_then(|a| a.parse::<u32>().ok());
            let err = key.ends_with(".e");
            let pid = parts.next().and_then(|p| p.parse::<u32>().ok());
            match app.filter(|&a| self.table.get(a).is_some()) {
                // A cluster app's listening socket, and a Node app's IPC channel (only
                // that of a process that still runs).
                Some(app) if key.contains(".L.") => self.restore_socket(app, key, fd),
                Some(app) if key.ends_with(".c") => {
                    match pid.filter(|&p| self.table.get(app).and_then(|a| a.run.pid) == Some(p)) {
                        Some(pid) => self.watch_channel(fd, app, pid, false),
                        None => self.hold_del.push(key),
                    }
                }
                // The stdin of a process that still runs; an older one is of no use.
                Some(app) if key.ends_with(".i") => {
                    if pid.is_some() && self.table.get(app).and_then(|a| a.run.pid) == pid {
                        self.set_stdin(app, key, fd);
                    } else {
                        self.hold_del.push(key);
                    }
                }
                Some(app) => self.watch_pipe(fd, app, err, key, false),
                None => self.hold_del.push(key),
            }
        }
        self.seed_worker_ids();
        for id in dead {
            if let Some(app) = self.table.get(id) {
                log(format_args!(
                    "{} (id {id}) ended while no daemon ran",
                    app.spec.name
                ));
            }
            self.apply(
                id,
                Event::Exited {
                    exit: crate::lifecycle::Exit::Unknown,
                    wall: sys::wall_ms(),
                },
            );
        }
        for id in start {
            self.apply(id, Event::Start);
        }
        // Children that exited while a re-executed daemon was starting.
        self.on_sigchld();
        self.dirty |= !fresh;
    }

    /// Looks for this home's apps among the running processes (one pass over /proc; only
    /// after a crash left doubt): a process-group leader with this home's `WARD_HOME` and
    /// the `pm_id` of an app of `state` for which `adopt(id)` holds and whose recorded
    /// process does not run is that app's process: its pid goes into `state` (and the app
    /// is adopted with the others). Returns the other processes of this home that no app
    /// of `state` runs as: (pid, their pm_id).
    fn scan_home(&self, state: &mut State, adopt: impl Fn(u32) -> bool) -> Vec<(u32, String)> {
        let home = format!("WARD_HOME={}", self.home.root.to_string_lossy());
        let mut strays = Vec::new();
        for (pid, start, id) in proc::leaders_with_env(&home, "pm_id") {
            let runs = |a: &App| a.run.pid == Some(pid) && a.run.pid_start == start;
            if state.apps.iter().any(runs) {
                continue;
            }
            let known = id.parse::<u32>().ok().filter(|&i| adopt(i)).and_then(|i| {
                state.apps.iter_mut().find(|a| {
                    a.id == i
                        && a.run.pid.is_none_or(|p| {
                            proc::read_stat(p).is_none_or(|st| st.start != a.run.pid_start)
                        })
                })
            });
            match known {
                Some(app) => {
                    log(format_args!(
                        "found {} (id {}), pid {pid}, running but not recorded",
                        app.spec.name, app.id
                    ));
                    app.run.pid = Some(pid);
                    app.run.pid_start = start;
                    app.run.status = Status::Online;
                }
                None => strays.push((pid, id)),
            }
        }
        strays
    }

    /// Opens the spawn journal (store.rs) for appending.
    pub(super) fn open_journal(&mut self) {
        self.journal =
            match crate::os::trust::open(&self.home.journal(), crate::os::trust::Open::Append) {
                Ok(f) => Some(f),
                Err(e) => {
                    log(format_args!(
                        "unable to open {}: {}; a crash during a start may leave apps unmanaged",
                        self.home.journal().display(),
                        crate::error::os(&e)
                    ));
                    None
                }
            };
    }

    /// Something happened to the home folder (home_guard.rs).
    pub(super) fn on_home_event(&mut self) {
        use crate::daemon::home_guard::Seen;
        let seen = match &self.home_guard {
            Some(g) => g.read(),
            None => return,
        };
        match seen {
            Seen::Nothing => {}
            Seen::Gone => self.take_home_back(),
            Seen::LockDeleted => {
                let now = sys::mono_ms();
                self.home_check = Some((now + HOME_LOOK_MS, now + HOME_PATIENCE_MS));
            }
        }
    }

    /// The lock file was deleted: once the folder is gone too (`rm -rf` done), or after a
    /// while if only the lock went, the home is taken back.
    pub(super) fn check_home(&mut self, now: u64) {
        let Some((_, until)) = self.home_check else {
            return;
        };
        let gone = self.home_guard.as_ref().is_some_and(|g| g.moved_or_gone());
        if gone || now >= until {
            self.home_check = None;
            self.take_home_back();
        } else {
            self.home_check = Some((now + HOME_LOOK_MS, until));
        }
    }

    /// The home folder (or its lock) went away: recreate it and lock it again, so that
    /// the next client finds this daemon rather than starting a second one. If another
    /// daemon locked the new home first (a client raced us), this one leaves, stopping
    /// nothing: never two daemons for one home.
    fn take_home_back(&mut self) {
        let root = self.home.root.display().to_string();
        let lock = self
            .home
            .create()
            .ok()
            .and_then(|()| {
                crate::os::trust::open(&self.home.lock_file(), crate::os::trust::Open::Write).ok()
            })
            .and_then(|f| {
                nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).ok()
            });
        sys::redirect_output(&self.home.daemon_log());
        // ward.log's rotating sink still holds the removed file.
        if let Some(e) = crate::daemon::daemonlog::reopen() {
            log(e);
        }
        let Some(lock) = lock else {
            let running: Vec<String> = self
                .table
                .iter()
                .filter_map(|a| a.run.pid.map(|p| format!("{} (pid {p})", a.spec.name)))
                .collect();
            log(format_args!(
                "the home {root} was removed, and another daemon serves it now: this one \
                 (pid {}) leaves, stopping nothing; its apps run on unmanaged: {}",
                std::process::id(),
                if running.is_empty() {
                    "none".to_string()
                } else {
                    running.join(", ")
                }
            ));
            self.abandoned = true;
            return;
        };
        self.lock_fd = lock.as_raw_fd();
        self.relock = Some(lock);
        let _ = crate::os::trust::write(
            &self.home.pid_file(),
            format!("{}\n", std::process::id()).as_bytes(),
        );
        match Server::bind(&self.home.socket()) {
            Ok(server) => {
                let _ = self.epoll.delete(self.server.as_fd());
                if let Err(e) = self.epoll.add(
                    server.as_fd(),
                    EpollEvent::new(EpollFlags::EPOLLIN, TOK_SOCK),
                ) {
                    log(format_args!(
                        "unable to watch the control socket: {}",
                        e.desc()
                    ));
                }
                self.server = server;
            }
            Err(e) => log(e),
        }
        if let Some(g) = self.home_guard.as_mut() {
            g.rewatch();
        }
        // The holder's socket went with the folder: a new holder, at the new path.
        self.ensure_holder();
        if let Some(h) = &self.holder {
            h.quit();
        }
        self.on_holder_gone();
        self.open_journal();
        self.reload_logs();
        self.dirty = true;
        log(format_args!(
            "the home {root} was removed; recreated it and serving it again"
        ));
    }

    /// An adopted app whose output pipes the holder did not give back (the holder died
    /// with the daemon): its lines have no reader, and its writes fail (EPIPE) or kill it
    /// (SIGPIPE). Say so in ward.log and in `describe`, not silently.
    fn warn_unheld_output(&mut self, held: &[(String, OwnedFd)]) {
        let adopted: Vec<(u32, u32)> = self.adopted.values().map(|a| (a.app, a.pid)).collect();
        for (id, pid) in adopted {
            let missing: Vec<&str> = [("o", "stdout"), ("e", "stderr")]
                .into_iter()
                .filter(|(k, _)| !held.iter().any(|(h, _)| *h == format!("{id}.{pid}.{k}")))
                .map(|(_, name)| name)
                .collect();
            if missing.is_empty() {
                continue;
            }
            let Some(app) = self.table.get_mut(id) else {
                continue;
            };
            let w = format!(
                "the {} of pid {pid} could not be reconnected after the daemon and its fd \
                 holder died: its output from then on is lost; restart the app to capture it",
                missing.join(" and ")
            );
            log(format_args!("{} (id {id}): {w}", app.spec.name));
            app.run.warning = Some(w);
        }
    }

    /// An adopted process ended. If it happens to be our child (after `ward update`), reap
    /// it for its real status; otherwise its status cannot be known.
    pub(super) fn on_adopted_exit(&mut self, tok: u64) {
        let Some(a) = self.adopted.remove(&tok) else {
            return;
        };
        let _ = self.epoll.delete(a.fd.as_fd());
        if self.retiring.contains_key(&a.pid) {
            // An adopted copy a reload replaced (its exit status cannot be known).
            return self.on_other_exit(a.pid, crate::lifecycle::Exit::Unknown);
        }
        if self.pids.remove(&a.pid).is_none() {
            return; // already reaped through SIGCHLD
        }
        let exit = sys::reap_pid(a.pid).unwrap_or(crate::lifecycle::Exit::Unknown);
        self.log_requested_exit(a.app, exit);
        self.gone(a.app);
        self.apply(
            a.app,
            Event::Exited {
                exit,
                wall: sys::wall_ms(),
            },
        );
    }
}

/// How long `BINARY --version` may take before an update is refused.
const VERSION_PATIENCE_MS: u64 = 5_000;

/// `ward update` re-executes the daemon from the binary the request names: it must be a
/// file only root or the daemon's user can have written (owned by one of them, not writable
/// by group or others, as is every folder above it) and it must answer `--version` like
/// ward does (exit 0, a version number), so neither someone else's program nor a wrong
/// path (`/bin/false` cost a 5 s outage) replaces the daemon. Returns that version.
pub(super) fn check_update(exe: &str, uid: u32) -> std::result::Result<String, String> {
    use std::os::unix::fs::MetadataExt;
    let path = std::path::Path::new(exe);
    if !path.is_absolute() {
        return Err(format!("cannot update to {exe}: not an absolute path"));
    }
    if let Err(e) = crate::os::trust::check_ancestors(path, uid) {
        return Err(format!("cannot update to {exe}: {e}"));
    }
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot update to {exe}: {}", crate::error::os(&e)))?;
    if meta.uid() != 0 && meta.uid() != uid {
        return Err(format!(
            "cannot update to {exe}: it belongs to {}, not to root or {}",
            crate::os::trust::who(meta.uid()),
            crate::os::trust::who(uid)
        ));
    }
    if !meta.is_file() || meta.mode() & 0o111 == 0 {
        return Err(format!("cannot update to {exe}: not an executable file"));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "cannot update to {exe}: other users may write it (mode {:04o})",
            meta.mode() & 0o7777
        ));
    }
    let version = version_of(exe)?;
    log(format_args!("{exe} answers --version with {version}"));
    Ok(version)
}

/// Runs `EXE --version` for at most VERSION_PATIENCE_MS. The daemon waits for it (this
/// happens only on `ward update`); the child is reaped here, so the loop never sees it.
fn version_of(exe: &str) -> std::result::Result<String, String> {
    use std::io::Read;
    let mut child = std::process::Command::new(exe)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot update to {exe}: {}", crate::error::os(&e)))?;
    let until = sys::mono_ms() + VERSION_PATIENCE_MS;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if sys::mono_ms() < until => {
                std::thread::sleep(std::time::Duration::from_millis(5))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.by_ref().take(4096).read_to_string(&mut out);
    }
    let answer = out.trim();
    match status {
        None => Err(format!(
            "cannot update to {exe}: `{exe} --version` did not answer within {} s",
            VERSION_PATIENCE_MS / 1000
        )),
        Some(st) if !st.success() => Err(format!(
            "cannot update to {exe}: `{exe} --version` failed ({st}); is it ward?"
        )),
        Some(_) if !is_version(answer) => Err(format!(
            "cannot update to {exe}: `{exe} --version` answered {:?}, not a ward version",
            answer.chars().take(80).collect::<String>()
        )),
        Some(_) => Ok(answer.to_string()),
    }
}

/// ward's `--version` prints its version alone: `0.1.0`.
fn is_version(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(is_version("0.1.0"));
        assert!(is_version("1.2.3-rc.1+git"));
        assert!(!is_version(""));
        assert!(!is_version("echo (GNU coreutils) 9.1"));
        assert!(!is_version("--version"));
    }

    #[test]
    fn update_refuses_what_is_not_ward() {
        let uid = sys::uid();
        assert!(check_update("ward", uid).unwrap_err().contains("absolute"));
        let e = check_update("/bin/false", uid).unwrap_err();
        assert!(e.contains("failed"), "{e}");
        let e = check_update("/bin/echo", uid).unwrap_err();
        assert!(e.contains("not a ward version"), "{e}");
        let e = check_update("/nonexistent/ward", uid).unwrap_err();
        assert!(e.contains("No such file"), "{e}");
    }
}
