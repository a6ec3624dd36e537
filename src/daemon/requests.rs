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
            let msg = match self.reasm.feed(&from, &self.dgram[..d.len], now) {
                Ok(Some(m)) => m,
                Ok(None) => continue,
                Err(e) => {
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
            match serde_json::from_slice::<Request>(&body) {
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
                let apps = self.views(env);
                self.reply_raw(&from, id, &Reply::List { apps });
            }
            Request::Table => {
                let rows = self.views(false).iter().map(protocol::Row::of).collect();
                self.reply_raw(&from, id, &Reply::Table { rows });
            }
            Request::Start { items } => self.on_start(from, id, items),
            Request::Act {
                verb,
                targets,
                update_env,
            } => self.on_act(from, id, verb, targets, update_env),
            Request::Scale { name, to } => self.on_scale(from, id, name, to),
            Request::Kill => self.begin_kill(Some((from, id))),
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
            Request::Control { op, targets } => self.on_control(from, id, op, targets),
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
            Request::Update { exe } => {
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
            if let Err(e) = crate::spec::config::check_name(&name) {
                notes.push(format!("skipped an app of the dump: {e}"));
                continue;
            }
            let mut spec = s.spec;
            // The saved log paths are final (per copy already); only the slot is new.
            spec.instance = self.free_instance(&name);
            let app = self.table.add(spec, Run::new(sys::wall_ms()));
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
    ) {
        let ids = match self.table.resolve_all(&targets) {
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
                if let Some(a) = self.table.get_mut(app) {
                    std::sync::Arc::make_mut(&mut a.spec.env)
                        .extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
            let event = match verb {
                Verb::Stop => Event::Stop,
                Verb::Restart | Verb::Reload => Event::Restart,
                Verb::Delete => Event::Delete,
            };
            self.apply(app, event);
        }
        self.reply_when_settled(from, id, ids, notes);
    }

    pub(super) fn on_start(&mut self, from: UnixAddr, id: u64, items: Vec<StartItem>) {
        enum Plan {
            /// Registered apps to (re)start, with variables to merge into their environment.
            Existing(Vec<u32>, Option<BTreeMap<String, String>>),
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
                        .map(|s| (*s.env).clone());
                    Plan::Existing(ids, env)
                }
                Ok(None) => match item.spec {
                    Some(spec) => {
                        if let Err(e) = crate::spec::config::check_name(&spec.name) {
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
                Plan::Existing(ids, env) => {
                    for app in ids {
                        if let (Some(env), Some(a)) = (&env, self.table.get_mut(app)) {
                            std::sync::Arc::make_mut(&mut a.spec.env)
                                .extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
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
                                failures.push(format!("unable to start {name}: {why}"));
                                break;
                            }
                            None => {
                                // Opened after the spawn, so that an app refused at spawn
                                // leaves no log files; its pipes are first read on the next
                                // loop turn.
                                self.open_logs(app);
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

    /// Adds an app to the table under the next id, in the lowest free instance slot of its
    /// name, with its log files open.
    pub(super) fn register(&mut self, mut spec: AppSpec) -> u32 {
        spec.instance = self.free_instance(&spec.name);
        let app = self.table.add(spec, Run::new(sys::wall_ms()));
        let logs_dir = self.home.logs();
        if let Some(a) = self.table.get_mut(app) {
            let (out, err, all) = instances::log_paths(&logs_dir, &a.spec, app);
            a.spec.out_file = out;
            a.spec.error_file = err;
            a.spec.log_file = all;
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
            self.apply(app, Event::Start);
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
        if let Ok(n) = t.parse::<u32>() {
            if self.table.get(n).is_some() {
                return Ok(Some(vec![n]));
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
        let (out, n1) = Sink::open(&paths.out, rotation);
        let (err, n2) = Sink::open(&paths.err, rotation);
        let (all, n3) = match &paths.all {
            Some(p) => {
                let (s, n) = Sink::open(p, rotation);
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
        let shared = spec.merge_logs && spec.instances > 1;
        self.io.insert(
            id,
            Io {
                out,
                err,
                all,
                stamp,
                shared,
            },
        );
    }

    pub(super) fn begin_kill(&mut self, to: Option<(UnixAddr, u64)>) {
        self.exiting = true;
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
                ready.push((p.to, p.id, std::mem::take(&mut p.notes), p.kill));
                false
            } else {
                true
            }
        });
        for (to, id, notes, kill) in ready {
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

    /// The table with live CPU and memory, one pass over /proc for all apps.
    pub(super) fn views(&mut self, with_env: bool) -> Vec<AppView> {
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
            let mut view = AppView {
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
                cpu: 0.0,
                memory: 0,
                cpu_time: 0.0,
            };
            let (Some(pid), Some(g)) = (app.run.pid, self.groups.get(&app.id)) else {
                out.push(view);
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
                view.cpu = s.cpu;
                view.memory = s.rss;
                view.cpu_time = s.ticks as f64 / self.clk_tck as f64;
            }
            out.push(view);
        }
        out
    }

    // ---- replies ----------------------------------------------------------------------

    pub(super) fn reply_raw(&mut self, to: &UnixAddr, id: u64, reply: &Reply) {
        let body = match serde_json::to_vec(reply) {
            Ok(b) => b,
            Err(e) => {
                log(format_args!("unable to encode a reply: {e}"));
                return;
            }
        };
        let frames = protocol::frames(id, &body, protocol::FRAME);
        self.outbox.push(to, frames, sys::mono_ms());
        self.flush_outbox();
    }

    /// Sends what is queued without waiting; a client whose queue is full gets the rest on
    /// a later turn, and one that takes nothing for `OUTBOX_PATIENCE_MS` gets nothing more.
    /// Each client has its own queue: one that reads nothing delays no one else.
    pub(super) fn flush_outbox(&mut self) {
        let server = &self.server;
        let stalled = self
            .outbox
            .flush(sys::mono_ms(), OUTBOX_PATIENCE_MS, |to, d| {
                loop {
                    match server.send(to, d) {
                        Ok(()) => return Sent::Ok,
                        Err(Errno::EAGAIN) | Err(Errno::ENOBUFS) => return Sent::Full,
                        Err(Errno::EINTR) => continue,
                        Err(_) => return Sent::Gone,
                    }
                }
            });
        if stalled > 0 {
            log(format_args!(
                "{stalled} client(s) took no reply for {} s: dropping their replies",
                OUTBOX_PATIENCE_MS / 1000
            ));
        }
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
