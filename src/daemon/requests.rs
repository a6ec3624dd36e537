//! The daemon's answers to requests: reading the control socket, start/stop/restart/
//! delete/scale, save and resurrect, the table with live figures, and sending replies
//! without ever waiting on a client. A child module of daemon.rs: it shares the daemon's
//! state; decisions about apps still go through `apply` and lifecycle.rs.

use super::*;

impl Daemon {
    /// Answers once every app in `waits` has settled (online, stopped, errored, gone...),
    /// with the table then.
    pub(super) fn reply_when_settled(
        &mut self,
        to: UnixAddr,
        id: u64,
        waits: Vec<u32>,
        notes: Vec<String>,
    ) {
        self.pending.push(Pending {
            to,
            id,
            waits,
            notes,
            kill: false,
            told: Vec::new(),
        });
    }

    // ---- requests ----------------------------------------------------------------------

    pub(super) fn on_socket(&mut self) {
        for _ in 0..SOCK_TURN {
            let d = match self.server.recv(&mut self.dgram) {
                Ok(Some(d)) => d,
                Ok(None) => return,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    log(format_args!("control socket: {}", e.desc()));
                    return;
                }
            };
            let Some(from) = d.from else {
                continue; // nobody to answer, nobody to act for
            };
            if from.path().is_none() && from.as_abstract().is_none() {
                continue;
            }
            match d.uid {
                Some(uid) if uid == self.uid || uid == 0 => {}
                _ => {
                    self.reply_raw(
                        &from,
                        0,
                        &Reply::Error {
                            message: "permission denied: this daemon serves its own user only"
                                .into(),
                        },
                    );
                    continue;
                }
            }
            if d.truncated {
                self.reply_raw(
                    &from,
                    0,
                    &Reply::Error {
                        message: "datagram too large".into(),
                    },
                );
                continue;
            }
            let now = sys::mono_ms();
            let held = self.reasm.held();
            let msg = match self.reasm.feed(&from, &self.dgram[..d.len], now) {
                Ok(Some(m)) => m,
                Ok(None) => continue,
                Err(e) => {
                    let freed = held - self.reasm.held().min(held);
                    self.trim_due |= freed >= TRIM_AT;
                    if freed >= TRIM_AT || e.to_string() == protocol::TOO_MUCH {
                        log(format_args!(
                            "refused a request from {} ({freed} bytes dropped): {e}",
                            client_name(&from)
                        ));
                    }
                    self.reply_raw(
                        &from,
                        0,
                        &Reply::Error {
                            message: format!("bad request: {e}"),
                        },
                    );
                    continue;
                }
            };
            let (id, body) = msg;
            self.trim_due |= body.len() >= TRIM_AT;
            match crate::json::from_bytes::<Request>(&body) {
                Ok(req) => self.on_request(from, id, req),
                Err(e) => self.reply_raw(
                    &from,
                    id,
                    &Reply::Error {
                        message: format!("bad request: {e}"),
                    },
                ),
            }
        }
    }

    pub(super) fn on_request(&mut self, from: UnixAddr, id: u64, req: Request) {
        if self.exiting && !matches!(req, Request::Ping | Request::List { .. }) {
            self.reply_raw(
                &from,
                id,
                &Reply::Error {
                    message: "the daemon is shutting down".into(),
                },
            );
            return;
        }
        match req {
            Request::Ping => self.reply_raw(
                &from,
                id,
                &Reply::Pong {
                    pid: std::process::id(),
                    version: env!("CARGO_PKG_VERSION").into(),
                },
            ),
            Request::List { env } => {
                let mut apps = self.views(env);
                let (envs, env_of) = if env {
                    crate::spec::config::take_shared(apps.iter_mut().map(|v| &mut v.app.spec.env))
                } else {
                    Default::default()
                };
                self.reply_raw(&from, id, &Reply::List { apps, envs, env_of });
            }
            Request::Table => {
                let rows = self.rows();
                self.reply_raw(&from, id, &Reply::Table { rows });
            }
            Request::Start { items } => self.on_start(from, id, items),
            Request::Act {
                verb: Verb::Reload,
                targets,
                update_env,
                cwd,
                patch,
                // pm2's reload does not toggle watching.
                toggle_watch: _,
            } => {
                // Options given with reload are the app's new settings, checked for all
                // before any is set; then the copies are replaced one at a time.
                if let Some(patch) = &patch {
                    let ids = self.table.resolve_all_in(&targets, cwd.as_deref());
                    if let Err(message) = self.apply_patch(&ids.unwrap_or_default(), patch) {
                        return self.reply_raw(&from, id, &Reply::Error { message });
                    }
                }
                self.on_reload(from, id, targets, update_env, cwd)
            }
            Request::Act {
                verb,
                targets,
                update_env,
                cwd,
                patch,
                toggle_watch,
            } => {
                // An unknown target is reported by on_act; settings and the watch toggle
                // go to the apps found, the settings checked for all before any is set.
                let ids = self.table.resolve_all_in(&targets, cwd.as_deref());
                let ids = ids.unwrap_or_default();
                if let (Verb::Restart | Verb::Reload, Some(patch)) = (verb, &patch) {
                    if let Err(message) = self.apply_patch(&ids, patch) {
                        return self.reply_raw(&from, id, &Reply::Error { message });
                    }
                }
                if toggle_watch {
                    // pm2 toggles on restart with --watch (Client.js:519-522).
                    for &app in &ids {
                        let off = self.table.get(app).is_some_and(|a| a.spec.watch.is_empty());
                        self.set_watching(app, off);
                    }
                }
                self.on_act(from, id, verb, targets, update_env, cwd)
            }
            Request::Scale { name, to } => self.on_scale(from, id, name, to),
            Request::Kill => self.begin_kill(Some((from, id))),
            Request::Events => self.on_events(from, id),
            Request::Flush { targets } => {
                let ids = if targets.is_empty() {
                    Ok(self.table.ids())
                } else {
                    self.table.resolve_all(&targets)
                };
                match ids {
                    Ok(ids) => {
                        let notes = self.flush_logs(&ids, targets.is_empty());
                        self.reply_raw(&from, id, &Reply::Notes { notes });
                    }
                    Err(e) => self.reply_raw(
                        &from,
                        id,
                        &Reply::Error {
                            message: e.to_string(),
                        },
                    ),
                }
            }
            Request::ReloadLogs => {
                let n = self.reload_logs();
                log(format_args!("reloadLogs: re-opened {n} log files"));
                self.reply_raw(
                    &from,
                    id,
                    &Reply::Notes {
                        notes: vec![format!("Reloading {n} log files")],
                    },
                );
            }
            Request::Control { op, targets, cwd } => {
                self.on_control(from, id, op, targets, cwd.as_deref())
            }
            Request::Save { force } => self.on_save(from, id, force),
            Request::Resurrect => self.on_resurrect(from, id),
            Request::Send { target, line } => {
                let res = self.table.resolve(&target).map_err(|e| e.to_string());
                let res = res.and_then(|ids| match ids.as_slice() {
                    [one] => self.send_line(*one, &line),
                    _ => Err(format!(
                        "{target} names {} apps; send writes to one (use its id)",
                        ids.len()
                    )),
                });
                let reply = match res {
                    Ok(()) => Reply::Done {
                        notes: vec![],
                        apps: vec![],
                    },
                    Err(message) => Reply::Error { message },
                };
                self.reply_raw(&from, id, &reply);
            }
            Request::AppMessage { targets, msg } => self.on_app_message(from, id, targets, msg),
            Request::Update { exe } => {
                if self.runtime.is_some() {
                    // Said at once: the client would otherwise wait for a new image that
                    // never comes, and report the old one as updated.
                    let message = "`update` does not apply to a container runtime: its new \
                                   version comes with a new image"
                        .to_string();
                    return self.reply_raw(&from, id, &Reply::Error { message });
                }
                if let Err(message) = survive::check_update(&exe, self.uid) {
                    log(format_args!("update refused: {message}"));
                    return self.reply_raw(&from, id, &Reply::Error { message });
                }
                // Answer first; the exec happens once the reply is out.
                self.reply_raw(
                    &from,
                    id,
                    &Reply::Pong {
                        pid: std::process::id(),
                        version: env!("CARGO_PKG_VERSION").into(),
                    },
                );
                self.update_to = Some(exe);
            }
            Request::ClearDump => {
                let reply = match store::save_dump(&self.home.dump(), &[]) {
                    Ok(()) => Reply::Saved {
                        count: 0,
                        path: self.home.dump().to_string_lossy().into_owned(),
                    },
                    Err(e) => Reply::Error {
                        message: e.to_string(),
                    },
                };
                self.reply_raw(&from, id, &reply);
            }
        }
    }

    pub(super) fn on_save(&mut self, from: UnixAddr, id: u64, force: bool) {
        if self.table.is_empty() && !force {
            // pm2 warns and succeeds here; a script's `pm2 save` must not fail on it.
            return self.reply_raw(
                &from,
                id,
                &Reply::Warning {
                    message: "no app is registered, so nothing was saved (the dump is kept); \
                          `ward save --force` saves an empty list"
                        .into(),
                },
            );
        }
        let saved: Vec<store::Saved> = self
            .table
            .iter()
            .map(|a| store::Saved {
                spec: a.spec.clone(),
                status: a.run.status,
            })
            .collect();
        let written = if self.home.pm2 {
            // pm2's own format, so that pm2 (or a script reading dump.pm2) can use it.
            let home = self.home.root.to_string_lossy().into_owned();
            let user = sys::user_name();
            let envs = self
                .views(true)
                .iter()
                .map(|v| crate::spec::pm2record::entry(v, &home, &user)["pm2_env"].clone())
                .collect();
            store::save_pm2_dump(&self.home.dump(), envs)
        } else {
            store::save_dump(&self.home.dump(), &saved)
        };
        let reply = match written {
            Ok(()) => Reply::Saved {
                count: saved.len(),
                path: self.home.dump().to_string_lossy().into_owned(),
            },
            Err(e) => Reply::Error {
                message: e.to_string(),
            },
        };
        self.reply_raw(&from, id, &reply);
    }

    pub(super) fn on_resurrect(&mut self, from: UnixAddr, id: u64) {
        match self.resurrect() {
            Ok((notes, waits)) => self.reply_when_settled(from, id, waits, notes),
            Err(e) => self.reply_raw(
                &from,
                id,
                &Reply::Error {
                    message: e.to_string(),
                },
            ),
        }
    }

    /// Registers and starts the dump's apps; returns what happened and the apps started.
    pub(super) fn resurrect(&mut self) -> Result<(Vec<String>, Vec<u32>)> {
        let (saved, mut notes) = store::load_dump(&self.home.dump())?;
        let mut waits = Vec::new();
        // Names registered before: those are not started again. (Several saved copies of
        // one name, instances, all come back.)
        let before: std::collections::HashSet<String> =
            self.table.iter().map(|a| a.spec.name.clone()).collect();
        for s in saved {
            let name = s.spec.name.clone();
            if before.contains(&name) {
                notes.push(format!("[{name}] is already registered: not started again"));
                continue;
            }
            let known = self.table.iter().map(|a| a.spec.name.as_str());
            if let Err(e) = crate::spec::config::check_name(&name)
                .and_then(|()| crate::spec::config::check_stem_clash(&name, known))
            {
                notes.push(format!("skipped an app of the dump: {e}"));
                continue;
            }
            let mut spec = s.spec;
            // The saved log paths are final (per copy already); only the slot is new.
            spec.instance = self.free_instance(&name);
            let app = self.table.add(spec, Run::new(sys::wall_ms()));
            if let Some(a) = self.table.get_mut(app) {
                a.spec.pid_file = instances::pid_for(&a.spec.pid_file, app);
            }
            self.open_logs(app);
            if s.status == Status::Stopped {
                notes.push(format!(
                    "[{name}]({app}) registered, stopped as it was saved"
                ));
            } else {
                self.apply(app, Event::Start);
                notes.push(format!("[{name}]({app}) started ✓"));
                waits.push(app);
            }
        }
        if notes.is_empty() {
            notes.push(format!("{} holds no app", self.home.dump().display()));
        }
        Ok((notes, waits))
    }

    pub(super) fn on_act(
        &mut self,
        from: UnixAddr,
        id: u64,
        verb: Verb,
        targets: Vec<String>,
        update_env: Option<BTreeMap<String, String>>,
        cwd: Option<String>,
    ) {
        let ids = match self.table.resolve_all_in(&targets, cwd.as_deref()) {
            Ok(ids) => ids,
            Err(e) => {
                self.reply_raw(
                    &from,
                    id,
                    &Reply::Error {
                        message: e.to_string(),
                    },
                );
                return;
            }
        };
        let mut notes = Vec::new();
        let mut told = Vec::new();
        for &app in &ids {
            if let Some(a) = self.table.get(app) {
                log(format_args!(
                    "{} {} (id {app}) on request",
                    verb.as_str(),
                    a.spec.name
                ));
                notes.push(format!("[{}]({app}) ✓", a.spec.name));
            }
            if let (Verb::Restart | Verb::Reload, Some(env)) = (verb, &update_env) {
                // pm2 extends the stored environment; nothing is removed.
                self.table.extend_env(app, env);
            }
            if matches!(verb, Verb::Stop | Verb::Delete) {
                // pm2 stops watching on any stop or delete (Client.js:507-514).
                self.set_watching(app, false);
            }
            let event = match verb {
                Verb::Stop => Event::Stop,
                Verb::Restart | Verb::Reload => Event::Restart,
                Verb::Delete => Event::Delete,
            };
            // pm2's CLI tells the daemon what it did (notifyGod), once done; the name now,
            // as a deleted app is gone by then.
            if let Some(a) = self.table.get(app) {
                told.push((verb.as_str(), a.spec.name.clone()));
            }
            self.apply(app, event);
        }
        self.pending.push(Pending {
            to: from,
            id,
            waits: ids,
            notes,
            kill: false,
            told,
        });
    }

    /// Settings given to existing apps (pm2's `extendMix`): every app's new spec is
    /// checked before any is changed.
    pub(super) fn apply_patch(
        &mut self,
        ids: &[u32],
        patch: &crate::spec::patch::Patch,
    ) -> std::result::Result<(), String> {
        let mut new = Vec::with_capacity(ids.len());
        for &app in ids {
            let Some(a) = self.table.get(app) else {
                continue;
            };
            let mut spec = crate::spec::patch::apply(&a.spec, patch)
                .map_err(|e| format!("{} (id {app}): {e}", a.spec.name))?;
            check_policies(&spec)?;
            if spec.name != a.spec.name && spec.pid_file.is_empty() {
                // pm2 keeps the pid path it gave the app (pm_pid_path) across a rename.
                spec.pid_file = self.pid_path(app).to_string_lossy().into_owned();
            }
            new.push((app, spec));
        }
        for (app, spec) in new {
            self.table.set_spec(app, spec);
            // Cron and watch follow the new settings.
            self.arm_policies(app);
            self.dirty = true;
        }
        Ok(())
    }

    pub(super) fn on_start(&mut self, from: UnixAddr, id: u64, items: Vec<StartItem>) {
        enum Plan {
            /// Registered apps to (re)start, with variables to merge into their environment,
            /// whether `--watch` toggles their watching (pm2's start of a registered app
            /// is a restart, and a restart with --watch toggles), and their new settings.
            Existing(
                Vec<u32>,
                // An ecosystem file's environment (with its `name_var` mark), to merge.
                Option<(crate::spec::config::Env, bool)>,
                bool,
                Vec<(u32, AppSpec)>,
            ),
            New(Box<AppSpec>),
        }
        // Decide everything first: one bad item fails the request before anything runs.
        let mut plans = Vec::new();
        for item in items {
            let plan = match self.plan_start(&item) {
                Ok(Some(ids)) => {
                    let env = item
                        .spec
                        .as_ref()
                        .filter(|_| item.ecosystem)
                        .map(|s| (s.env.clone(), s.name_var));
                    let mut specs = Vec::new();
                    let patch = item.patch.as_ref();
                    for (a, p) in ids
                        .iter()
                        .filter_map(|&i| self.table.get(i))
                        .filter_map(|a| Some((a, patch?)))
                    {
                        let app = a.id;
                        match crate::spec::patch::apply(&a.spec, p) {
                            Ok(s) => specs.push((app, s)),
                            Err(e) => {
                                let message = format!("{} (id {app}): {e}", a.spec.name);
                                return self.reply_raw(&from, id, &Reply::Error { message });
                            }
                        }
                    }
                    Plan::Existing(ids, env, item.watch_toggle, specs)
                }
                Ok(None) => match item.spec {
                    Some(spec) => {
                        let earlier = plans.iter().filter_map(|p| match p {
                            Plan::New(s) => Some(s.name.as_str()),
                            Plan::Existing(..) => None,
                        });
                        let known = self.table.iter().map(|a| a.spec.name.as_str());
                        if let Err(e) = crate::spec::config::check_name(&spec.name).and_then(|()| {
                            crate::spec::config::check_stem_clash(&spec.name, known.chain(earlier))
                        }) {
                            return self.reply_raw(
                                &from,
                                id,
                                &Reply::Error {
                                    message: e.to_string(),
                                },
                            );
                        }
                        if let Err(message) = check_policies(&spec) {
                            return self.reply_raw(&from, id, &Reply::Error { message });
                        }
                        if (spec.uid.is_some() || spec.gid.is_some()) && self.uid != 0 {
                            // pm2: "To use --uid and --gid please run pm2 as root".
                            let message = format!(
                                "{}: --uid and --gid need the daemon to run as root (it runs                                  as uid {}); nothing was started",
                                spec.name, self.uid
                            );
                            return self.reply_raw(&from, id, &Reply::Error { message });
                        }
                        Plan::New(Box::new(spec))
                    }
                    None => {
                        let message = item
                            .spec_error
                            .unwrap_or_else(|| format!("no app or script named {}", item.target));
                        return self.reply_raw(&from, id, &Reply::Error { message });
                    }
                },
                Err(message) => return self.reply_raw(&from, id, &Reply::Error { message }),
            };
            plans.push(plan);
        }
        let mut waits = Vec::new();
        let mut notes = Vec::new();
        let mut failures = Vec::new();
        // New apps first: one that cannot be spawned fails the request before any
        // registered app is restarted, and the new ones already started are taken back.
        plans.sort_by_key(|p| matches!(p, Plan::Existing(..)));
        for plan in plans {
            match plan {
                Plan::Existing(..) if !failures.is_empty() => break,
                Plan::Existing(ids, env, toggle, specs) => {
                    for (app, spec) in specs {
                        self.table.set_spec(app, spec);
                        self.arm_policies(app);
                        self.dirty = true;
                    }
                    for app in ids {
                        if toggle {
                            let on = self.table.get(app).is_some_and(|a| a.spec.watch.is_empty());
                            self.set_watching(app, on);
                        }
                        if let Some((env, mark)) = &env {
                            self.table.extend_env(app, env);
                            if let Some(a) = self.table.get_mut(app) {
                                a.spec.name_var |= mark;
                            }
                        }
                        let running = self
                            .table
                            .get(app)
                            .is_some_and(|a| a.run.status.is_running());
                        let name = self.table.get(app).map(|a| a.spec.name.clone());
                        notes.push(format!(
                            "[{}]({app}) {}",
                            name.unwrap_or_default(),
                            if running {
                                "restarted ✓"
                            } else {
                                "started ✓"
                            }
                        ));
                        self.apply(
                            app,
                            if running {
                                Event::Restart
                            } else {
                                Event::Start
                            },
                        );
                        waits.push(app);
                    }
                }
                Plan::New(spec) => {
                    let name = spec.name.clone();
                    for _ in 0..spec.instances.max(1) {
                        let app = self.register((*spec).clone());
                        if !spec.autostart {
                            self.open_logs(app);
                            notes.push(format!(
                                "[{name}]({app}) registered, not started (autostart off)"
                            ));
                            continue;
                        }
                        match self.start_new(app) {
                            Err(why) => {
                                failures.push(format!("unable to start {name}: {why}"));
                                break;
                            }
                            Ok(()) => {
                                // Opened after the spawn, so that an app refused at spawn
                                // leaves no log files; its pipes are first read on the next
                                // loop turn.
                                self.open_logs(app);
                                self.event("start", &name);
                                notes.push(format!("[{name}]({app}) started ✓"));
                                waits.push(app);
                            }
                        }
                    }
                }
            }
        }
        if !failures.is_empty() {
            for app in waits {
                self.apply(app, Event::Delete);
            }
            return self.reply_raw(
                &from,
                id,
                &Reply::Error {
                    message: failures.join("\n"),
                },
            );
        }
        self.reply_when_settled(from, id, waits, notes);
    }

    /// Starts an app just registered. One that cannot even be spawned is not kept: it is
    /// removed and the reason returned, so that the caller stops there and rolls back (a
    /// mass start or `scale 100000` that hits a file or process limit ends at the first
    /// failure instead of filling the table with errored copies).
    pub(super) fn start_new(&mut self, app: u32) -> std::result::Result<(), String> {
        self.apply(app, Event::Start);
        let failed = self
            .table
            .get(app)
            // Refused at spawn: errored, or waiting to try again.
            .filter(|a| !a.run.status.is_running())
            .and_then(|a| a.run.last_error.clone());
        match failed {
            Some(why) => {
                // A new app that cannot even start is not kept.
                self.remove(app);
                Err(why)
            }
            None => Ok(()),
        }
    }

    /// Adds an app to the table under the next id, in the lowest free instance slot of its
    /// name, with its log files open.
    pub(super) fn register(&mut self, mut spec: AppSpec) -> u32 {
        spec.instance = self.free_instance(&spec.name);
        if let Some(var) = spec.increment_var.clone() {
            // pm2 (God.js:629-645): one more than the last copy of this name, or the
            // environment's value (0 when unset) for the first.
            let last = self
                .table
                .by_name(&spec.name)
                .iter()
                .filter_map(|&i| self.table.get(i))
                .filter_map(|a| a.spec.env.get(&var)?.parse::<i64>().ok())
                .max();
            let n = match last {
                Some(n) => n + 1,
                None => spec.env.get(&var).and_then(|v| v.parse().ok()).unwrap_or(0),
            };
            std::sync::Arc::make_mut(&mut spec.env).insert(var, n.to_string());
        }
        let app = self.table.add(spec, Run::new(sys::wall_ms()));
        let logs_dir = self.home.logs();
        if let Some(a) = self.table.get_mut(app) {
            let (out, err, all) = instances::log_paths(&logs_dir, &a.spec, app);
            a.spec.out_file = out;
            a.spec.error_file = err;
            a.spec.log_file = all;
            a.spec.pid_file = instances::pid_for(&a.spec.pid_file, app);
        }
        self.arm_policies(app);
        // The caller opens the log files once the app has started (or is registered
        // stopped), so that an app refused at spawn leaves none behind.
        app
    }

    /// The lowest instance slot (`NODE_APP_INSTANCE`) no app of this name holds.
    pub(super) fn free_instance(&self, name: &str) -> u32 {
        let used: Vec<u32> = self
            .table
            .by_name(name)
            .iter()
            .filter_map(|&i| self.table.get(i))
            .map(|a| a.spec.instance)
            .collect();
        instances::free_slot(&used)
    }

    /// `ward scale NAME N`: new copies take the first copy's spec; the newest copies go.
    pub(super) fn on_scale(&mut self, from: UnixAddr, id: u64, name: String, to: ScaleTo) {
        let mut ids = self.table.by_name(&name).to_vec();
        ids.sort_unstable();
        let Some(first) = ids.first().and_then(|&i| self.table.get(i)) else {
            let message = format!("process {name} not found");
            return self.reply_raw(&from, id, &Reply::Error { message });
        };
        let template = first.spec.clone();
        let (add, remove) = match instances::plan_scale(&ids, to, &name) {
            Ok(p) => p,
            Err(message) => return self.reply_raw(&from, id, &Reply::Error { message }),
        };
        let target = ids.len() as u32 + add - remove.len() as u32;
        for &app in &ids {
            if let Some(a) = self.table.get_mut(app) {
                a.spec.instances = target;
            }
        }
        let mut waits = Vec::new();
        let mut notes = Vec::new();
        for _ in 0..add {
            let mut spec = template.clone();
            spec.instances = target;
            spec.out_file = strip_copy(&template.out_file, ids[0], template.merge_logs);
            spec.error_file = strip_copy(&template.error_file, ids[0], template.merge_logs);
            spec.log_file = strip_copy(&template.log_file, ids[0], template.merge_logs);
            let app = self.register(spec);
            if let Err(why) = self.start_new(app) {
                // As `start` does: stop at the first failure and take back what was added.
                for &copy in &waits {
                    self.apply(copy, Event::Delete);
                }
                for &app in &ids {
                    if let Some(a) = self.table.get_mut(app) {
                        a.spec.instances = template.instances;
                    }
                }
                let message = format!(
                    "unable to start {name}: {why}; {} new copies were taken back, {name} \
                     runs {} as before",
                    waits.len() + 1,
                    ids.len()
                );
                log(&message);
                return self.reply_raw(&from, id, &Reply::Error { message });
            }
            self.open_logs(app);
            notes.push(format!("[{name}]({app}) started ✓"));
            waits.push(app);
        }
        for app in remove {
            notes.push(format!("[{name}]({app}) deleted ✓"));
            self.apply(app, Event::Delete);
            waits.push(app);
        }
        if notes.is_empty() {
            notes.push(format!("{name} already runs {target} copies"));
        }
        self.reply_when_settled(from, id, waits, notes);
    }

    /// pm2's order: an id, then a name (for a word that looks like no file), then the same
    /// script under the same name. `Ok(None)`: register a new app.
    pub(super) fn plan_start(
        &self,
        item: &StartItem,
    ) -> std::result::Result<Option<Vec<u32>>, String> {
        let t = item.target.as_str();
        if item.ecosystem {
            // An ecosystem app is known by its name alone (pm2's `_startJson`).
            let ids = self.table.by_name(t);
            return Ok((!ids.is_empty()).then(|| ids.to_vec()));
        }
        if t.parse::<u32>().is_ok() {
            // A name, then a namespace, then an id (pm2's order for a number).
            if let Ok(ids) = self.table.resolve(t) {
                return Ok(Some(ids));
            }
        }
        if crate::table::regex_target(t).is_some() && item.spec.is_none() {
            // `/re/` names apps already registered; it can never be a script to start.
            return match self.table.resolve(t) {
                Ok(ids) => Ok(Some(ids)),
                Err(e) => Err(format!(
                    "{e}: a /regex/ target names apps already registered; to start a new \
                     app, give start its script"
                )),
            };
        }
        let looks_like_file = t.contains('/') || std::path::Path::new(t).extension().is_some();
        if !looks_like_file && !item.force {
            if let Ok(ids) = self.table.resolve(t) {
                return Ok(Some(ids));
            }
        }
        let Some(spec) = &item.spec else {
            return Ok(None);
        };
        if item.force {
            return Ok(None);
        }
        let same: Vec<&App> = self
            .table
            .iter()
            .filter(|a| a.spec.script == spec.script && a.spec.name == spec.name)
            .collect();
        if same.is_empty() {
            return Ok(None);
        }
        if same.iter().any(|a| a.run.status.is_running()) {
            return Err(format!(
                "script already launched as {} (id {}); add -f to start another copy",
                spec.name, same[0].id
            ));
        }
        Ok(Some(same.iter().map(|a| a.id).collect()))
    }

    pub(super) fn open_logs(&mut self, id: u32) {
        let Some(app) = self.table.get(id) else {
            return;
        };
        let spec = &app.spec;
        let paths = logs::app_paths(&self.home.logs(), spec);
        let rotation = self
            .log_defaults
            .rotation(spec.max_log_size, spec.log_retain);
        // Files in the home are opened without following links; the user's own paths
        // (-o, -e, -l) as they named them.
        let home = &self.home.root;
        let open = |p: &std::path::Path| {
            if p.starts_with(home) {
                Sink::open_private(p, rotation)
            } else {
                Sink::open(p, rotation)
            }
        };
        let (out, n1) = open(&paths.out);
        let (err, n2) = open(&paths.err);
        let (all, n3) = match &paths.all {
            Some(p) => {
                let (s, n) = open(p);
                (Some(s), n)
            }
            None => (None, None),
        };
        // ward's own files are never a reason for a watched app to restart.
        self.watcher.add_own_file(paths.out.clone());
        self.watcher.add_own_file(paths.err.clone());
        if let Some(all) = &paths.all {
            self.watcher.add_own_file(all.clone());
        }
        if spec.pid_file.starts_with('/') {
            self.watcher.add_own_file(spec.pid_file.clone().into());
        }
        for n in [n1, n2, n3].into_iter().flatten() {
            log(n);
        }
        let stamp = spec
            .date_format()
            .map(crate::spec::datefmt::DateFormat::parse);
        self.io.insert(
            id,
            Io {
                out,
                err,
                all,
                stamp,
                shared: spec.merge_logs && spec.instances > 1,
                json: (spec.log_type.as_deref() == Some("json")).then(|| (id, spec.name.clone())),
            },
        );
    }

    pub(super) fn begin_kill(&mut self, to: Option<(UnixAddr, u64)>) {
        self.exiting = true;
        self.end_reloads();
        let ids = self.table.ids();
        for &app in &ids {
            self.apply(app, Event::Delete);
        }
        if let Some((to, id)) = to {
            self.pending.push(Pending {
                to,
                id,
                waits: ids,
                notes: Vec::new(),
                kill: true,
                told: Vec::new(),
            });
        }
    }

    pub(super) fn answer_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut ready = Vec::new();
        let table = &self.table;
        self.pending.retain_mut(|p| {
            p.waits
                .retain(|&id| table.get(id).is_some_and(|a| !a.run.settled()));
            if p.waits.is_empty() {
                ready.push((
                    p.to,
                    p.id,
                    std::mem::take(&mut p.notes),
                    p.kill,
                    std::mem::take(&mut p.told),
                ));
                false
            } else {
                true
            }
        });
        for (to, id, notes, kill, told) in ready {
            for (status, name) in told {
                self.event(status, &name);
            }
            let reply = if kill {
                Reply::Killed
            } else {
                Reply::Done {
                    notes,
                    apps: self.views(false),
                }
            };
            self.reply_raw(&to, id, &reply);
        }
    }

    /// Every app, in the table's order, with its live figures.
    pub(super) fn views(&mut self, with_env: bool) -> Vec<AppView> {
        let figures = self.figures();
        self.table
            .iter()
            .zip(figures)
            .map(|(app, f)| AppView {
                app: if with_env {
                    app.clone()
                } else {
                    App {
                        id: app.id,
                        spec: AppSpec {
                            env: Default::default(),
                            ..app.spec.clone()
                        },
                        run: app.run.clone(),
                    }
                },
                cpu: f.cpu,
                memory: f.memory,
                cpu_time: f.cpu_time,
            })
            .collect()
    }

    /// `ls`'s rows, built from the table without a copy of each app's settings.
    pub(super) fn rows(&mut self) -> Vec<protocol::Row> {
        let figures = self.figures();
        self.table
            .iter()
            .zip(figures)
            .map(|(app, f)| protocol::Row::new(app, f.cpu, f.memory))
            .collect()
    }

    /// The live CPU and memory of every app, in the table's order: one pass over /proc
    /// for all apps.
    fn figures(&mut self) -> Vec<Figures> {
        let now = sys::mono_ms();
        // Sample only the running apps whose last sample is older than SAMPLE_MS (or of an
        // earlier process): one walk over their processes in /proc, none over the machine.
        let stale: HashMap<u32, ()> = self
            .table
            .iter()
            .filter_map(|a| Some((a, a.run.pid?, *self.groups.get(&a.id)?)))
            .filter(|(a, pid, _)| {
                // A sample taken while the process was still loading (its first
                // YOUNG_MS) is not reused: its memory was not there yet.
                self.samples.get(&a.id).is_none_or(|s| {
                    s.pid != *pid
                        || now.saturating_sub(s.at) >= SAMPLE_MS
                        || s.at.saturating_sub(a.run.started_mono) < YOUNG_MS
                })
            })
            .map(|(_, _, g)| (g, ()))
            .collect();
        let usage = proc::usage_by_group(&stale);
        let mut out = Vec::with_capacity(self.table.len());
        for app in self.table.iter() {
            let mut f = Figures::default();
            let (Some(pid), Some(g)) = (app.run.pid, self.groups.get(&app.id)) else {
                out.push(f);
                continue;
            };
            if stale.contains_key(g) {
                match usage.get(g) {
                    Some(u) => {
                        // CPU over the interval since the previous sample of this process,
                        // or since it started.
                        let (since_ticks, since_ms) = match self.samples.get(&app.id) {
                            Some(s) if s.pid == pid => (s.ticks, s.at),
                            _ => (0, app.run.started_mono),
                        };
                        let dt = now.saturating_sub(since_ms).max(1) as f64 / 1000.0;
                        let dticks = u.ticks.saturating_sub(since_ticks) as f64;
                        let cpu = (dticks / self.clk_tck as f64 / dt * 100.0).max(0.0);
                        self.samples.insert(
                            app.id,
                            Sample {
                                pid,
                                at: now,
                                ticks: u.ticks,
                                cpu: (cpu * 10.0).round() / 10.0,
                                rss: u.rss,
                            },
                        );
                    }
                    // Its processes are gone: 0, never stale numbers.
                    None => {
                        self.samples.remove(&app.id);
                    }
                }
            }
            if let Some(s) = self.samples.get(&app.id).filter(|s| s.pid == pid) {
                f = Figures {
                    cpu: s.cpu,
                    memory: s.rss,
                    cpu_time: s.ticks as f64 / self.clk_tck as f64,
                };
            }
            out.push(f);
        }
        out
    }

    // ---- replies ----------------------------------------------------------------------

    pub(super) fn reply_raw(&mut self, to: &UnixAddr, id: u64, reply: &Reply) {
        let noted;
        let reply = if self.notices.is_empty() || id == 0 || matches!(reply, Reply::Pong { .. }) {
            reply
        } else {
            noted = Reply::Noted {
                notices: std::mem::take(&mut self.notices),
                then: Box::new(reply.clone()),
            };
            &noted
        };
        // Into the buffer of the replies before, kept until the daemon goes idle: a
        // reply of 1,000 apps is megabytes, which musl's allocator maps and unmaps for
        // each one (each new page costs a fault).
        let mut body = std::mem::take(&mut self.reply_buf);
        body.clear();
        if let Err(e) = serde_json::to_writer(&mut body, reply) {
            log(format_args!("unable to encode a reply: {e}"));
            self.reply_buf = body;
            return;
        }
        self.trim_due |= body.len() >= TRIM_AT;
        // What a client is told is in state.json first: a daemon killed right after a
        // reply (a `jlist` showing `stopping`, a `start` answered) leaves a state that
        // says the same, and its successor carries on from there. The turn would write it
        // anyway; this writes it before the reply instead of after.
        if self.dirty && !self.exiting {
            self.save();
            self.last_save = sys::mono_ms();
        }
        let frames = protocol::frames_from(id, &body, protocol::FRAME, &mut self.frame_pool);
        self.reply_buf = body;
        if self.spare.is_empty() && !self.peers.contains_key(to) {
            self.reclaim_channels();
        }
        self.outbox.push(to, frames, sys::mono_ms());
        self.flush_outbox();
    }

    /// Moves the reply sockets of the latest clients that have read everything to the
    /// spares, so that a client that comes right after another (a shell loop of `ward ls`)
    /// reuses its socket instead of waiting for the next sweep. Looks at `RECENT_PEERS`
    /// clients at most.
    fn reclaim_channels(&mut self) {
        let (peers, outbox) = (&mut self.peers, &self.outbox);
        let spare = &mut self.spare;
        self.recent.retain(|to| {
            if outbox.holds(to) {
                return true;
            }
            match peers.get(to) {
                None => false,
                Some(p) if p.ch.unread() == 0 => {
                    if let Some(p) = peers.remove(to)
                        && spare.len() < SPARE_CHANNELS
                    {
                        spare.push(p.ch);
                    }
                    false
                }
                Some(_) => true,
            }
        });
    }

    /// Sends what is queued without waiting, each client through its own reply socket
    /// (os/reply.rs), so that what one client leaves unread is charged to it alone. A
    /// client whose backlog is full gets the rest on a later turn; one that takes nothing
    /// for `OUTBOX_PATIENCE_MS` gets nothing more, and the log names it.
    pub(super) fn flush_outbox(&mut self) {
        let now = sys::mono_ms();
        let (server, peers, spare) = (&self.server, &mut self.peers, &mut self.spare);
        let recent = &mut self.recent;
        let name = self.home.reply_socket();
        let mut fresh = false;
        let pool = &mut self.frame_pool;
        let stalled = self.outbox.flush(
            now,
            OUTBOX_PATIENCE_MS,
            |to, d| {
                let res = match peers.entry(*to) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut().ch.send(d),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        let reused = match spare.pop() {
                            Some(ch) => match ch.reconnect(to) {
                                Ok(()) => Some(Ok(ch)),
                                Err(e) => {
                                    spare.push(ch);
                                    Some(Err(e))
                                }
                            },
                            None => None,
                        };
                        match reused.unwrap_or_else(|| crate::os::reply::Channel::open(to, &name)) {
                            Ok(ch) => {
                                fresh = true;
                                if recent.len() >= RECENT_PEERS {
                                    recent.pop_front();
                                }
                                recent.push_back(*to);
                                v.insert(Peer {
                                    ch,
                                    unread: 0,
                                    since: now,
                                })
                                .ch
                                .send(d)
                            }
                            Err(Errno::ECONNREFUSED) => Err(Errno::ECONNREFUSED),
                            // Out of descriptors, home gone...: the control socket still answers.
                            Err(_) => server.send(to, d),
                        }
                    }
                };
                match res {
                    Ok(()) => Sent::Ok,
                    Err(Errno::EAGAIN) | Err(Errno::ENOBUFS) => Sent::Full,
                    Err(_) => Sent::Gone,
                }
            },
            |d| {
                if pool.len() < FRAME_POOL {
                    pool.push(d);
                }
            },
        );
        if fresh && self.peers.len() == 1 {
            self.peer_sweep = now + PEER_SWEEP_MS;
        }
        for to in stalled {
            log(format_args!(
                "client {} does not read its replies: took nothing for {} s; what it was \
                 still owed is dropped",
                client_name(&to),
                OUTBOX_PATIENCE_MS / 1000
            ));
            self.peers.remove(&to);
        }
    }

    /// Closes the reply sockets of clients that have read everything (or are gone: their
    /// unread datagrams went with them). One whose backlog has not gone down for
    /// `OUTBOX_PATIENCE_MS` is named in the log and let go: what it holds stays in its
    /// own queue, and its next request starts a fresh account.
    pub(super) fn sweep_peers(&mut self, now: u64) {
        let outbox = &self.outbox;
        let mut stuck = Vec::new();
        let mut done = Vec::new();
        self.peers.retain(|to, p| {
            if outbox.holds(to) {
                return true;
            }
            let unread = p.ch.unread();
            if unread == 0 {
                // Kept in the map until it is moved to the spares below.
                done.push(*to);
                return true;
            }
            if unread < p.unread {
                p.since = now;
            }
            p.unread = unread;
            if now.saturating_sub(p.since) > OUTBOX_PATIENCE_MS {
                stuck.push((client_name(to), unread));
                return false;
            }
            true
        });
        for to in done {
            if let Some(p) = self.peers.remove(&to)
                && self.spare.len() < SPARE_CHANNELS
            {
                self.spare.push(p.ch);
            }
        }
        for (name, unread) in stuck {
            log(format_args!(
                "client {name} does not read its replies: {unread} bytes unread for {} s",
                OUTBOX_PATIENCE_MS / 1000
            ));
        }
        self.peer_sweep = now + PEER_SWEEP_MS;
    }
}

/// How the log names a client: its socket's address (a ward client binds
/// `@ward-client-PID-NANOS`, so the pid is in it).
pub(super) fn client_name(a: &UnixAddr) -> String {
    if let Some(p) = a.path() {
        return p.display().to_string();
    }
    match a.as_abstract() {
        Some(name) => format!("@{}", String::from_utf8_lossy(name)),
        None => "an unnamed client".into(),
    }
}

/// What the client checks too, checked again for specs that come from elsewhere (an
/// ecosystem file): a bad cron expression or ignore pattern fails the start.
pub(super) fn check_policies(spec: &AppSpec) -> std::result::Result<(), String> {
    if let Some(c) = spec.cron_restart.as_ref().filter(|c| c.trim() != "0") {
        crate::spec::cron::Schedule::parse(c)
            .map_err(|e| format!("invalid cron_restart {c:?} for {}: {e}", spec.name))?;
    }
    crate::daemon::watch::Ignore::new(&spec.ignore_watch)
        .map_err(|e| format!("invalid ignore_watch for {}: {e}", spec.name))?;
    Ok(())
}

/// A copy's own log path (`out-3.log`) back to the group's (`out.log`), so that a new copy
/// gets its own `-ID` instead of `out-3-7.log`.
pub(super) fn strip_copy(path: &str, id: u32, merged: bool) -> String {
    if merged {
        return path.to_string();
    }
    let p = std::path::Path::new(path);
    let suffix = format!("-{id}");
    match (
        p.file_stem().and_then(|s| s.to_str()),
        p.extension().and_then(|e| e.to_str()),
    ) {
        (Some(stem), Some(ext)) if stem.ends_with(&suffix) => p
            .with_file_name(format!("{}.{ext}", &stem[..stem.len() - suffix.len()]))
            .to_string_lossy()
            .into_owned(),
        _ => path.strip_suffix(&suffix).unwrap_or(path).to_string(),
    }
}

/// An app's live figures, from the latest sample of its process group.
#[derive(Clone, Copy, Default)]
struct Figures {
    cpu: f64,
    memory: u64,
    cpu_time: f64,
}
