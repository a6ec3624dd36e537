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
    }

    /// Sends the turn's pipe additions and removals to the holder.
    pub(super) fn flush_holder(&mut self) {
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
        // exec returned: it failed. Carry on as we were, in a fresh loop.
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
        let held = self.connect_holder();
        let state = match store::load_state(&self.home.state()) {
            Ok(s) => s,
            Err(e) => {
                log(format_args!("{e}; starting with an empty table"));
                let bad = self.home.state().with_extension("json.bad");
                let _ = std::fs::rename(self.home.state(), bad);
                State::default()
            }
        };
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
                    let same = proc::read_stat(pid)
                        .is_some_and(|st| st.start == app.run.pid_start && st.state != 'Z');
                    let fd = if same { sys::pidfd_open(pid) } else { None };
                    match fd {
                        Some(fd) => {
                            let tok = self.next_token;
                            self.next_token += 1;
                            let _ = self
                                .epoll
                                .add(fd.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, tok));
                            self.adopted.insert(tok, Adopted { app: id, pid, fd });
                            self.pids.insert(pid, id);
                            self.groups.insert(id, pid);
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
        self.dirty = true;
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
