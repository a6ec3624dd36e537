//! What apps say to the daemon and the daemon to apps: Node's IPC channel (readiness,
//! cluster requests, messages to apps) and sd_notify datagrams on `NOTIFY_SOCKET`.
//!
//! A child module of the loop (it shares the daemon's private state); the buffers and the
//! meaning of a line are daemon/ipc.rs's, the cluster sockets daemon/cluster.rs's.

use std::os::fd::{AsFd, OwnedFd};

use nix::sys::epoll::{EpollEvent, EpollFlags};
use serde_json::Value;

use super::{Daemon, log};
use crate::daemon::cluster::Answer;
use crate::daemon::ipc::Msg;
use crate::lifecycle::{Event, Status};
use crate::protocol::{AppMsg, Reply};

/// Datagrams taken from the notify socket per loop turn.
const NOTIFY_TURN: usize = 64;
/// How long `trigger` waits for the apps' answers.
const TRIGGER_PATIENCE_MS: u64 = 10_000;
/// Metrics kept per app (`axm:monitor`): an app cannot grow the daemon without bound.
const AXM_METRICS_KEPT: usize = 64;
const AXM_ACTIONS_KEPT: usize = 64;

/// A `trigger` request waiting for the apps' `axm:reply`.
pub(super) struct TriggerWait {
    to: nix::sys::socket::UnixAddr,
    req: u64,
    action: String,
    /// (pid, app id) that have not answered yet.
    waiting: Vec<(u32, u32)>,
    notes: Vec<String>,
    deadline: u64,
}

/// Who a message came from.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum Sender {
    /// The app's current process.
    Main(u32),
    /// The new process a reload started for the app, not yet in the old one's place.
    Next(u32),
}

impl Daemon {
    /// Watches a process's channel. A copy goes to the fd holder (`hold`, unless it came
    /// from there), so that the channel stays open while no daemon runs: a Node cluster
    /// worker exits when its channel closes.
    pub(super) fn watch_channel(&mut self, fd: OwnedFd, app: u32, pid: u32, hold: bool) {
        let key = format!("{app}.{pid}.c");
        if hold {
            self.ensure_holder();
        }
        if let (true, Some(link)) = (hold, &self.holder) {
            use std::os::fd::AsRawFd;
            if let Err(e) = link.add(&[(key.clone(), fd.as_raw_fd())]) {
                log(format_args!(
                    "unable to hand an IPC channel to the fd holder: {}",
                    e.desc()
                ));
            }
        }
        let Some(tok) = self.poll_new(fd.as_fd(), "an IPC channel") else {
            return;
        };
        self.channels.add(tok, fd, app, pid, key);
    }

    fn close_channel(&mut self, tok: u64) {
        if let Some((fd, key)) = self.channels.remove(tok) {
            let _ = self.epoll.delete(fd.as_fd());
            self.hold_del.push(key);
        }
    }

    /// The process `pid` is gone: what its channel still holds is read, then it closes.
    pub(super) fn close_channel_of(&mut self, pid: u32) {
        if let Some(tok) = self.channels.token_of(pid) {
            self.on_channel(tok);
            self.close_channel(tok);
        }
    }

    /// The app of a process and whether it is the app's current one.
    pub(super) fn sender(&self, pid: u32) -> Option<(u32, Sender)> {
        if let Some(&id) = self.pids.get(&pid) {
            return Some((id, Sender::Main(pid)));
        }
        self.reload_step_of(pid).map(|id| (id, Sender::Next(pid)))
    }

    pub(super) fn on_channel(&mut self, tok: u64) {
        let Some(batch) = self.channels.read(tok, &mut self.buf) else {
            return;
        };
        let mut garbage = 0;
        for msg in batch.msgs {
            let Some((id, who)) = self.sender(batch.pid) else {
                break; // a process that is no longer ours: nothing it says matters
            };
            match msg {
                Msg::Ready => self.on_ready(id, who),
                Msg::Cluster(m) => self.on_cluster(id, who, &m),
                Msg::Other(v) => self.on_app_says(id, who, v),
                Msg::Internal => {}
                Msg::Garbage => garbage += 1,
            }
        }
        if garbage > 0 {
            // Logged when the total passes a power of two: an app that sends garbage
            // without end cannot fill the daemon's log.
            let before = self.ipc_garbage;
            self.ipc_garbage += garbage;
            if before.checked_ilog2() != self.ipc_garbage.checked_ilog2() {
                let name = self.app_name(batch.app);
                log(format_args!(
                    "{name} (pid {}) sent {garbage} unreadable message(s) on its IPC channel; \
                     dropped ({} so far from all apps)",
                    batch.pid, self.ipc_garbage
                ));
            }
        }
        if batch.closed {
            self.close_channel(tok);
        }
    }

    /// Messages of pm2's in-app library `@pm2/io`: metrics, actions, answers to actions.
    fn on_app_says(&mut self, id: u32, who: Sender, v: Value) {
        let Sender::Main(pid) = who else {
            return; // a process a reload has not put in place yet speaks for no one
        };
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "axm:monitor" => {
                let (Some(app), Some(Value::Object(data))) =
                    (self.table.get_mut(id), v.get("data"))
                else {
                    return;
                };
                // Object.assign, as pm2 does; not a state change worth a write.
                for (k, val) in data {
                    if app.run.axm_monitor.len() < AXM_METRICS_KEPT
                        || app.run.axm_monitor.contains_key(k)
                    {
                        app.run.axm_monitor.insert(k.clone(), val.clone());
                    }
                }
            }
            "axm:action" => {
                let (Some(app), Some(data)) = (self.table.get_mut(id), v.get("data")) else {
                    return;
                };
                let name = data.get("action_name");
                if name.is_some()
                    && app.run.axm_actions.len() < AXM_ACTIONS_KEPT
                    && !app
                        .run
                        .axm_actions
                        .iter()
                        .any(|a| a.get("action_name") == name)
                {
                    app.run.axm_actions.push(data.clone());
                }
            }
            "axm:reply" => {
                let Some(a) = self.table.get(id) else {
                    return;
                };
                let label = format!("[{}:{id}:{}]", a.spec.name, a.spec.namespace);
                let ret = v
                    .get("data")
                    .and_then(|d| d.get("return"))
                    .cloned()
                    .unwrap_or(Value::Null);
                let mut done = Vec::new();
                for (i, t) in self.triggers.iter_mut().enumerate() {
                    if let Some(pos) = t.waiting.iter().position(|&(p, _)| p == pid) {
                        t.waiting.remove(pos);
                        t.notes.push(format!("{label}={ret}"));
                        if t.waiting.is_empty() {
                            done.push(i);
                        }
                    }
                }
                for i in done.into_iter().rev() {
                    let t = self.triggers.remove(i);
                    self.finish_trigger(t);
                }
            }
            _ => {}
        }
    }

    fn finish_trigger(&mut self, mut t: TriggerWait) {
        for (pid, id) in std::mem::take(&mut t.waiting) {
            t.notes.push(format!(
                "[{}:{id}] (pid {pid}) did not answer {} within {} s",
                self.app_name(id),
                t.action,
                TRIGGER_PATIENCE_MS / 1000
            ));
        }
        let reply = Reply::Done {
            notes: t.notes,
            apps: Vec::new(),
        };
        self.reply_raw(&t.to, t.req, &reply);
    }

    pub(super) fn trigger_deadline(&self) -> Option<u64> {
        self.triggers.iter().map(|t| t.deadline).min()
    }

    pub(super) fn fire_trigger_timers(&mut self, now: u64) {
        while let Some(i) = self.triggers.iter().position(|t| t.deadline <= now) {
            let t = self.triggers.remove(i);
            self.finish_trigger(t);
        }
    }

    /// `sendDataToProcessId` and `trigger`.
    pub(super) fn on_app_message(
        &mut self,
        from: nix::sys::socket::UnixAddr,
        req: u64,
        targets: Vec<String>,
        msg: AppMsg,
    ) {
        let ids = match self.table.resolve_all(&targets) {
            Ok(ids) => ids,
            Err(e) => {
                let message = e.to_string();
                return self.reply_raw(&from, req, &Reply::Error { message });
            }
        };
        // (id, pid) of the apps that can hear it now.
        let reachable = |d: &Daemon, id: u32| {
            d.table.get(id).and_then(|a| {
                let pid = a.run.pid?;
                let up = matches!(a.run.status, Status::Online | Status::Launching);
                (up && d.channels.has_pid(pid)).then_some(pid)
            })
        };
        match msg {
            AppMsg::Data { topic, data } => {
                // All or nothing, as every request.
                let deaf: Vec<String> = ids
                    .iter()
                    .filter(|&&i| reachable(self, i).is_none())
                    .map(|&i| format!("{} (id {i})", self.app_name(i)))
                    .collect();
                if !deaf.is_empty() {
                    let message = format!(
                        "not online with an IPC channel (a Node app ward started): {}; nothing was sent",
                        deaf.join(", ")
                    );
                    return self.reply_raw(&from, req, &Reply::Error { message });
                }
                let mut errors = Vec::new();
                for &i in &ids {
                    let Some(pid) = reachable(self, i) else {
                        continue;
                    };
                    let packet = serde_json::json!({
                        "type": "process:msg", "topic": topic, "data": data, "id": i,
                    });
                    if let Err(e) = self.send_to(pid, &packet, None) {
                        errors.push(e);
                    }
                }
                let reply = if errors.is_empty() {
                    Reply::Done {
                        notes: Vec::new(),
                        apps: Vec::new(),
                    }
                } else {
                    Reply::Error {
                        message: errors.join("\n"),
                    }
                };
                self.reply_raw(&from, req, &reply);
            }
            AppMsg::Trigger { action, params } => {
                let offers = |d: &Daemon, i: u32| {
                    d.table.get(i).is_some_and(|a| {
                        a.run
                            .axm_actions
                            .iter()
                            .any(|x| x.get("action_name").and_then(Value::as_str) == Some(&action))
                    })
                };
                let chosen: Vec<(u32, u32)> = ids
                    .iter()
                    .filter(|&&i| offers(self, i))
                    .filter_map(|&i| reachable(self, i).map(|p| (p, i)))
                    .collect();
                if chosen.is_empty() {
                    let message = format!(
                        "no online app among {} offers the action {action:?} (apps declare \
                         actions with @pm2/io's io.action())",
                        targets.join(" ")
                    );
                    return self.reply_raw(&from, req, &Reply::Error { message });
                }
                let packet = match &params {
                    None => Value::String(action.clone()),
                    Some(p) => serde_json::json!({ "msg": action, "opts": p }),
                };
                let mut waiting = Vec::new();
                for (pid, i) in chosen {
                    match self.send_to(pid, &packet, None) {
                        Ok(()) => waiting.push((pid, i)),
                        Err(e) => log(format_args!("trigger {action}: {e}")),
                    }
                }
                let notes = vec![format!(
                    "{} processes have received command {action}",
                    waiting.len()
                )];
                self.triggers.push(TriggerWait {
                    to: from,
                    req,
                    action,
                    waiting,
                    notes,
                    deadline: crate::os::sys::mono_ms() + TRIGGER_PATIENCE_MS,
                });
                if self.triggers.last().is_some_and(|t| t.waiting.is_empty()) {
                    if let Some(t) = self.triggers.pop() {
                        self.finish_trigger(t);
                    }
                }
            }
        }
    }

    pub(super) fn flush_channel(&mut self, tok: u64) {
        if !self.channels.flush(tok) {
            self.watch_out(tok, false);
        }
    }

    /// Watches a channel for room to write while something is queued for it.
    fn watch_out(&mut self, tok: u64, on: bool) {
        if let Some(fd) = self.channels.fd(tok) {
            let mut flags = EpollFlags::EPOLLIN;
            if on {
                flags |= EpollFlags::EPOLLOUT;
            }
            let _ = self.epoll.modify(fd, &mut EpollEvent::new(flags, tok));
        }
    }

    /// Sends one message to a process over its IPC channel.
    pub(super) fn send_to(
        &mut self,
        pid: u32,
        msg: &Value,
        handle: Option<std::os::fd::BorrowedFd>,
    ) -> Result<(), String> {
        let queued = self.channels.send(pid, msg, handle)?;
        if queued {
            if let Some(tok) = self.channels.token_of(pid) {
                self.watch_out(tok, true);
            }
        }
        Ok(())
    }

    fn app_name(&self, id: u32) -> String {
        self.table
            .get(id)
            .map(|a| a.spec.name.clone())
            .unwrap_or_default()
    }

    fn on_ready(&mut self, id: u32, who: Sender) {
        match who {
            Sender::Main(_) => {
                if self
                    .table
                    .get(id)
                    .is_some_and(|a| a.run.status == Status::Launching)
                {
                    log(format_args!("{} (id {id}) is ready", self.app_name(id)));
                }
                self.apply(id, Event::Ready);
            }
            Sender::Next(pid) => self.step_ready(pid, "ready"),
        }
    }

    fn on_cluster(&mut self, id: u32, who: Sender, m: &Value) {
        let (name, cluster) = match self.table.get(id) {
            Some(a) => (a.spec.name.clone(), a.spec.cluster),
            None => return,
        };
        if !cluster {
            return; // not started as a worker: it has no business with a primary
        }
        let pid = match who {
            Sender::Main(p) | Sender::Next(p) => p,
        };
        let (answer, note) = self.cluster.answer(id, &name, m);
        if let Some(n) = note {
            log(n);
        }
        // A socket just bound goes to the fd holder too: after a crash of the daemon,
        // the next one serves new copies from it instead of failing to bind the port.
        let fresh = self.cluster.take_fresh();
        if !fresh.is_empty() {
            self.ensure_holder();
        }
        if let (false, Some(link)) = (fresh.is_empty(), &self.holder) {
            if let Err(e) = link.add(&fresh) {
                log(format_args!(
                    "unable to hand a listening socket to the fd holder: {}",
                    e.desc()
                ));
            }
        }
        match answer {
            Answer::Reply(reply, handle) => {
                // The socket is borrowed from `self.cluster` while `send_to` needs `self`
                // whole: a duplicate goes along and is closed once sent.
                let dup = handle.and_then(|_| {
                    self.cluster
                        .socket(&name, m)
                        .and_then(|fd| fd.try_clone_to_owned().ok())
                });
                if let Err(e) = self.send_to(pid, &reply, dup.as_ref().map(|f| f.as_fd())) {
                    log(format_args!("{name}: {e}"));
                }
            }
            Answer::Listening => {
                if let Sender::Next(p) = who {
                    self.step_ready(p, "listening");
                }
            }
            Answer::Nothing => {}
        }
    }

    /// sd_notify datagrams: accepted only from a process ward supervises (an app's main
    /// process or a process in its group, e.g. `systemd-notify` run by the app).
    pub(super) fn on_notify(&mut self) {
        let Some(n) = &self.notify else {
            return;
        };
        let mut buf = [0u8; 4096];
        let notes = n.read(&mut buf, NOTIFY_TURN);
        for (pid, _uid, note) in notes {
            let who = self.sender(pid).or_else(|| {
                let g = crate::os::ipc::pgid_of(pid)?;
                self.sender(g).or_else(|| {
                    self.groups
                        .iter()
                        .find(|&(_, &pg)| pg == g)
                        .map(|(&id, &pg)| (id, Sender::Main(pg)))
                })
            });
            let Some((id, who)) = who else {
                // Logged 1, 2, 4, 8... times: a process that floods the socket cannot
                // flood the daemon's log.
                self.notify_ignored += 1;
                if self.notify_ignored.is_power_of_two() {
                    log(format_args!(
                        "ignored a NOTIFY_SOCKET message from pid {pid}: not a process ward \
                         supervises ({} ignored so far)",
                        self.notify_ignored
                    ));
                }
                continue;
            };
            if let Some(text) = note.status {
                if let (Sender::Main(_), Some(a)) = (who, self.table.get_mut(id)) {
                    a.run.status_text = Some(text);
                    self.dirty = true;
                }
            }
            if note.ready {
                self.on_ready(id, who);
            }
        }
    }

    /// `shutdown_with_message`: the message `'shutdown'` instead of the kill signal; an
    /// app with no channel gets the signal after all.
    pub(super) fn shutdown_app(&mut self, id: u32, main_pid: Option<u32>) {
        let Some(app) = self.table.get(id) else {
            return;
        };
        let (sig, name) = (app.spec.kill_signal, app.spec.name.clone());
        if let Some(pid) = main_pid.filter(|&p| self.channels.has_pid(p)) {
            match self.send_to(pid, &Value::from("shutdown"), None) {
                Ok(()) => return,
                Err(e) => log(format_args!("{name}: {e}; sending the kill signal instead")),
            }
        }
        if let Some(&pgid) = self.groups.get(&id) {
            let _ = crate::os::sys::kill_group(pgid, sig);
            let _ = crate::os::sys::kill_group(pgid, libc::SIGCONT);
        }
    }

    /// Every IPC channel and cluster socket to a new fd holder.
    pub(super) fn hold_app_sockets(&mut self) {
        let mut items = self.channels.held();
        items.extend(self.cluster.held());
        if !items.is_empty() {
            self.ensure_holder();
        }
        if let (false, Some(link)) = (items.is_empty(), &self.holder) {
            if let Err(e) = link.add(&items) {
                log(format_args!(
                    "unable to hand IPC channels to the fd holder: {}",
                    e.desc()
                ));
            }
        }
    }

    /// Adopted cluster workers keep their `NODE_UNIQUE_ID`; new ones continue after them.
    pub(super) fn seed_worker_ids(&mut self) {
        let ids: Vec<u64> = self
            .table
            .iter()
            .filter(|a| a.spec.cluster)
            .filter_map(|a| crate::os::proc::start_env(a.run.pid?, "NODE_UNIQUE_ID"))
            .filter_map(|v| v.parse().ok())
            .collect();
        for id in ids {
            self.cluster.seen_worker_id(id);
        }
    }

    /// A listening socket an earlier daemon bound, back from the fd holder.
    pub(super) fn restore_socket(&mut self, app: u32, key: String, fd: OwnedFd) {
        let name = self.app_name(app);
        match crate::daemon::cluster::held_socket(&key) {
            Some((_, handle)) if !name.is_empty() => self.cluster.restore(&name, key, handle, fd),
            _ => self.hold_del.push(key),
        }
    }

    /// A cluster app's listening sockets close once none of its copies runs.
    pub(super) fn release_if_idle(&mut self, id: u32) {
        if let Some(name) = self
            .table
            .get(id)
            .filter(|a| a.spec.cluster)
            .map(|a| a.spec.name.clone())
        {
            self.release_name(&name);
        }
    }

    pub(super) fn release_name(&mut self, name: &str) {
        let alive = self.table.by_name(name).iter().any(|&i| {
            self.table.get(i).is_some_and(|a| {
                a.run.status.is_running() || a.run.status == Status::WaitingRestart
            })
        });
        if !alive {
            let keys = self.cluster.release(name);
            let n = keys.len();
            self.hold_del.extend(keys);
            if n > 0 {
                log(format_args!(
                    "{name}: no copy runs; closed its {n} listening socket(s)"
                ));
            }
        }
    }
}
