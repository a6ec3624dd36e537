//! `ward reload`: replacing an app's copies one at a time, so that some copy always serves.
//!
//! For each copy: start a new process beside the old one; wait until it is ready ('ready'
//! or READY=1 when the app has `wait_ready`; in cluster mode once it listens, or after
//! `listen_timeout` as pm2 does; otherwise at once); then the new process takes the copy's
//! place (same id) and the old one is asked to stop (its kill signal, or the message
//! `'shutdown'` with `shutdown_with_message`), and killed after `kill_timeout`. A new
//! process that exits first, or with `wait_ready` never says ready, ends the reload of
//! that app: the old copies keep serving and the reply says why.
//!
//! An app with one copy outside cluster mode is restarted, as pm2 does. A child module of
//! the loop: it starts and signals processes through the daemon's own state.

use std::collections::{BTreeMap, VecDeque};
use std::os::fd::OwnedFd;

use nix::sys::socket::UnixAddr;

use super::{Daemon, log};
use crate::lifecycle::{Event, Exit, Status, describe_exit};
use crate::os::sys;
use crate::protocol::Reply;

/// One `reload` request in progress.
pub(super) struct Job {
    to: UnixAddr,
    req: u64,
    queue: VecDeque<u32>,
    step: Option<Step>,
    /// Apps restarted instead (one copy, fork mode): the reply waits until they settle.
    waits: Vec<u32>,
    /// The processes this reload replaced: the reply waits until they are gone (or killed
    /// after `kill_timeout`), as pm2's does, so that once `reload` returns no old code
    /// serves (an old copy still accepted connections for a moment after the reply).
    retired: Vec<u32>,
    notes: Vec<String>,
    errors: Vec<String>,
}

/// The new process of the copy being replaced.
struct Step {
    id: u32,
    pid: u32,
    stdin: Option<OwnedFd>,
    deadline: u64,
    /// When it was started: monotonic and wall-clock ms.
    mono: u64,
    wall: u64,
    /// With `wait_ready`, a timeout aborts instead of going on.
    strict: bool,
    ready: bool,
}

/// A replaced process asked to stop: killed at `deadline` if still there.
pub(super) struct Retiring {
    name: String,
    pgid: u32,
    deadline: Option<u64>,
}

impl Daemon {
    pub(super) fn on_reload(
        &mut self,
        from: UnixAddr,
        id: u64,
        targets: Vec<String>,
        update_env: Option<BTreeMap<String, String>>,
        cwd: Option<String>,
    ) {
        let ids = match self.table.resolve_all_in(&targets, cwd.as_deref()) {
            Ok(ids) => ids,
            Err(e) => {
                let message = e.to_string();
                return self.reply_raw(&from, id, &Reply::Error { message });
            }
        };
        let mut job = Job {
            to: from,
            req: id,
            queue: VecDeque::new(),
            step: None,
            waits: Vec::new(),
            retired: Vec::new(),
            notes: Vec::new(),
            errors: Vec::new(),
        };
        for &app in &ids {
            if let Some(env) = &update_env {
                self.table.extend_env(app, env);
            }
            let Some(a) = self.table.get(app) else {
                continue;
            };
            let name = a.spec.name.clone();
            let rolling = a.spec.cluster || self.table.by_name(&name).len() > 1;
            log(format_args!("reload {name} (id {app}) on request"));
            if rolling {
                job.queue.push_back(app);
            } else {
                job.notes.push(format!("[{name}]({app}) ✓"));
                job.waits.push(app);
                self.apply(app, Event::Restart);
            }
        }
        self.reloads.push(job);
        self.advance_reloads();
    }

    /// The daemon is stopping: reloads end, and every process they started or replaced
    /// goes now (the apps' own processes are stopped by the lifecycle).
    pub(super) fn end_reloads(&mut self) {
        for j in 0..self.reloads.len() {
            if self.reloads[j].step.is_some() {
                self.abort_step(j, "was stopped: the daemon is stopping");
            }
            self.reloads[j].queue.clear();
        }
        for r in self.retiring.values_mut() {
            r.deadline = None;
            let _ = sys::kill_group(r.pgid, libc::SIGKILL);
        }
    }

    /// The reload step whose new process is `pid`: the app id.
    pub(super) fn reload_step_of(&self, pid: u32) -> Option<u32> {
        self.reloads
            .iter()
            .filter_map(|j| j.step.as_ref())
            .find(|s| s.pid == pid)
            .map(|s| s.id)
    }

    pub(super) fn reload_deadline(&self) -> Option<u64> {
        let steps = self
            .reloads
            .iter()
            .filter_map(|j| j.step.as_ref())
            .filter(|s| !s.ready)
            .map(|s| s.deadline);
        let retiring = self.retiring.values().filter_map(|r| r.deadline);
        steps.chain(retiring).min()
    }

    /// The new process `pid` is ready (`why`: "ready" or "listening").
    pub(super) fn step_ready(&mut self, pid: u32, why: &str) {
        for j in &mut self.reloads {
            if let Some(s) = j.step.as_mut().filter(|s| s.pid == pid) {
                if !s.ready {
                    log(format_args!("reload: new process {pid} is {why}"));
                }
                s.ready = true;
            }
        }
    }

    pub(super) fn fire_reload_timers(&mut self, now: u64) {
        let mut kill = Vec::new();
        for (&pid, r) in self.retiring.iter_mut() {
            if r.deadline.is_some_and(|d| d <= now) {
                r.deadline = None;
                log(format_args!(
                    "{}: the replaced process {pid} did not stop in time: SIGKILL to its group",
                    r.name
                ));
                kill.push(r.pgid);
            }
        }
        for g in kill {
            let _ = sys::kill_group(g, libc::SIGKILL);
        }
        for j in 0..self.reloads.len() {
            let Some(s) = self.reloads[j].step.as_mut() else {
                continue;
            };
            if s.ready || s.deadline > now {
                continue;
            }
            if s.strict {
                let id = s.id;
                let limit = self.table.get(id).map_or(0, |a| a.spec.listen_timeout);
                self.abort_step(j, &format!("did not say ready within {limit} ms"));
            } else {
                // pm2: no 'listening' within listen_timeout, and the reload goes on.
                s.ready = true;
            }
        }
    }

    /// A process that is not an app's current one exited: a replaced one, or the new one
    /// of a reload step (which ends that app's reload).
    pub(super) fn on_other_exit(&mut self, pid: u32, exit: Exit) {
        if let Some(r) = self.retiring.remove(&pid) {
            log(format_args!(
                "{}: the replaced process {pid} {}",
                r.name,
                describe_exit(exit)
            ));
            // What is left of its group goes with it, as after any stop.
            let _ = sys::kill_group(r.pgid, libc::SIGKILL);
            return;
        }
        let Some(j) = self
            .reloads
            .iter()
            .position(|j| j.step.as_ref().is_some_and(|s| s.pid == pid))
        else {
            return;
        };
        let _ = sys::kill_group(pid, libc::SIGKILL);
        self.abort_step(j, &format!("{} before it was ready", describe_exit(exit)));
        // Already reaped: nothing to retire.
        self.retiring.remove(&pid);
    }

    /// Ends the reload of the step's app: its new process is killed, the old copies stay.
    fn abort_step(&mut self, j: usize, what: &str) {
        let Some(s) = self.reloads[j].step.take() else {
            return;
        };
        let name = self.app_name_of(s.id);
        let _ = sys::kill_group(s.pid, libc::SIGKILL);
        self.close_channel_of(s.pid);
        self.retiring.insert(
            s.pid,
            Retiring {
                name: name.clone(),
                pgid: s.pid,
                deadline: None,
            },
        );
        let why = format!("its new process (pid {}) {what}", s.pid);
        self.stop_app_reload(j, &name, &why);
    }

    /// Ends job `j`'s reload of the app `name`: its other copies are left as they are.
    fn stop_app_reload(&mut self, j: usize, name: &str, why: &str) {
        let message = format!("reload of {name} stopped: {why}; the old copies still serve");
        log(&message);
        let job = &mut self.reloads[j];
        job.errors.push(message);
        let table = &self.table;
        job.queue
            .retain(|&i| table.get(i).is_some_and(|a| a.spec.name != name));
    }

    fn app_name_of(&self, id: u32) -> String {
        self.table
            .get(id)
            .map(|a| a.spec.name.clone())
            .unwrap_or_default()
    }

    /// Moves every reload on: swaps ready steps, starts the next copy, answers finished
    /// requests.
    pub(super) fn advance_reloads(&mut self) {
        let mut j = 0;
        while j < self.reloads.len() {
            loop {
                if let Some(s) = self.reloads[j].step.take_if(|s| s.ready) {
                    self.swap(j, s);
                    continue;
                }
                if self.reloads[j].step.is_some() {
                    break; // the new process is not ready yet
                }
                let Some(id) = self.reloads[j].queue.pop_front() else {
                    break;
                };
                self.begin_step(j, id);
            }
            let job = &self.reloads[j];
            let table = &self.table;
            let retiring = &self.retiring;
            let settled = job
                .waits
                .iter()
                .all(|&i| table.get(i).is_none_or(|a| a.run.settled()))
                && job
                    .retired
                    .iter()
                    .all(|p| !retiring.contains_key(p) || !crate::os::proc::running(*p));
            if job.step.is_none() && job.queue.is_empty() && settled {
                let job = self.reloads.remove(j);
                let reply = if job.errors.is_empty() {
                    Reply::Done {
                        notes: job.notes,
                        apps: self.views(false),
                    }
                } else {
                    Reply::Error {
                        message: job.errors.join("\n"),
                    }
                };
                self.reply_raw(&job.to, job.req, &reply);
            } else {
                j += 1;
            }
        }
    }

    fn begin_step(&mut self, j: usize, id: u32) {
        let Some(a) = self.table.get(id) else {
            return;
        };
        let name = a.spec.name.clone();
        let running =
            matches!(a.run.status, Status::Online | Status::Launching) && a.run.pid.is_some();
        if !running {
            // Nothing to keep serving: a plain restart (pm2 starts a stopped app here too).
            self.reloads[j].notes.push(format!("[{name}]({id}) ✓"));
            self.reloads[j].waits.push(id);
            self.apply(id, Event::Restart);
            return;
        }
        let (wait_ready, cluster, timeout) =
            (a.spec.wait_ready, a.spec.cluster, a.spec.listen_timeout);
        match self.launch(id) {
            Ok(l) => {
                log(format_args!(
                    "reload {name} (id {id}): new process {} started beside {}",
                    l.pid,
                    a_pid(self, id)
                ));
                self.reloads[j].step = Some(Step {
                    id,
                    pid: l.pid,
                    stdin: Some(l.stdin),
                    deadline: sys::mono_ms() + timeout,
                    mono: sys::mono_ms(),
                    wall: sys::wall_ms(),
                    strict: wait_ready,
                    // Without a readiness protocol a fork-mode copy counts as ready once
                    // started.
                    ready: !wait_ready && !cluster,
                });
            }
            Err(why) => {
                let why = format!("unable to start a new process: {why}");
                self.stop_app_reload(j, &name, &why);
            }
        }
    }

    /// The new process takes the copy's place; the old one is asked to stop.
    fn swap(&mut self, j: usize, mut s: Step) {
        let id = s.id;
        let Some(a) = self.table.get(id) else {
            let _ = sys::kill_group(s.pid, libc::SIGKILL);
            return;
        };
        let name = a.spec.name.clone();
        let (old, status) = (a.run.pid, a.run.status);
        if !matches!(status, Status::Online | Status::Launching) {
            // Stopped or restarted meanwhile: the user's word wins; the new one goes.
            self.reloads[j].step = Some(s);
            self.abort_step(j, "was not needed any more (the app was stopped meanwhile)");
            return;
        }
        let (shutdown, sig, kill_timeout) = (
            a.spec.shutdown_with_message,
            a.spec.kill_signal,
            a.spec.kill_timeout,
        );
        if let Some(old) = old {
            self.pids.remove(&old);
            let pgid = self.groups.get(&id).copied().unwrap_or(old);
            let _ = std::fs::remove_file(self.pid_path(id));
            let mut by_message = false;
            if shutdown && self.channels.has_pid(old) {
                by_message = self
                    .send_to(old, &serde_json::Value::from("shutdown"), None)
                    .is_ok();
            }
            if !by_message {
                let _ = sys::kill_group(pgid, sig);
                let _ = sys::kill_group(pgid, libc::SIGCONT);
            }
            self.retiring.insert(
                old,
                Retiring {
                    name: name.clone(),
                    pgid,
                    deadline: Some(sys::mono_ms() + kill_timeout),
                },
            );
            self.reloads[j].retired.push(old);
        }
        let stdin = s.stdin.take();
        if let Some(stdin) = stdin {
            self.adopt_process(id, super::Launched { pid: s.pid, stdin });
        }
        self.apply(
            id,
            Event::Replaced {
                pid: s.pid,
                wall: s.wall,
                started: s.mono,
            },
        );
        log(format_args!(
            "reload {name} (id {id}): pid {} replaced pid {}",
            s.pid,
            old.map_or("none".into(), |p| p.to_string())
        ));
        self.reloads[j].notes.push(format!("[{name}]({id}) ✓"));
    }
}

fn a_pid(d: &Daemon, id: u32) -> String {
    d.table
        .get(id)
        .and_then(|a| a.run.pid)
        .map_or("none".into(), |p| format!("pid {p}"))
}
