//! One app's lifecycle: start, stop escalation, restart, backoff, errored.
//!
//! Pure: no syscalls, no clock, no files. The daemon turns fds and timers into `Event`s,
//! calls `Run::handle` with the monotonic time in milliseconds, and carries out the `Action`s
//! it gets back (feeding the outcome of a `Spawn` back in as `Spawned` or `SpawnFailed`).
//! `Run` keeps what the user wants (`then`, the intent after a stop) apart from what is
//! (`status`), as runit's `want`/`state` do.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::spec::config::AppSpec;

/// pm2's cap on the exponential backoff delay, and the uptime after which it resets.
pub const BACKOFF_CAP_MS: u64 = 15_000;
pub const BACKOFF_RESET_MS: u64 = 30_000;
/// The shortest wait before trying again to start an app that could not be started.
pub const SPAWN_RETRY_MS: u64 = 1000;
/// How many exits `describe` remembers per app.
pub const EXITS_KEPT: usize = 10;

/// pm2's process states; their spellings live in `as_str`.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    #[serde(rename = "launching")]
    Launching,
    #[serde(rename = "online")]
    Online,
    #[serde(rename = "stopping")]
    Stopping,
    #[serde(rename = "stopped")]
    Stopped,
    #[serde(rename = "errored")]
    Errored,
    #[serde(rename = "waiting restart")]
    WaitingRestart,
    #[serde(rename = "one-launch-status")]
    OneLaunch,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Launching => "launching",
            Status::Online => "online",
            Status::Stopping => "stopping",
            Status::Stopped => "stopped",
            Status::Errored => "errored",
            Status::WaitingRestart => "waiting restart",
            Status::OneLaunch => "one-launch-status",
        }
    }

    /// A process of the app exists (or is being started).
    pub fn is_running(self) -> bool {
        matches!(self, Status::Launching | Status::Online | Status::Stopping)
    }
}

/// What the user wants once the current stop completes.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Then {
    Rest,
    Start,
    Delete,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// The process was adopted by a later daemon (not its parent), so its exit status
    /// could not be known.
    Unknown,
}

/// Why an app stopped or restarted; shown by `describe` and logged.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Crashed,
    Exited,
    Restart,
    Stop,
    Delete,
    SpawnFailed,
    /// The process group used more memory than `max_memory_restart`.
    MemoryLimit,
    /// `cron_restart` came due.
    Cron,
    /// A watched path changed (the path is in the record's `detail`).
    Watch,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Crashed => "crashed",
            Reason::Exited => "exited",
            Reason::Restart => "manual restart",
            Reason::Stop => "stop",
            Reason::Delete => "delete",
            Reason::SpawnFailed => "spawn failed",
            Reason::MemoryLimit => "memory limit",
            Reason::Cron => "cron",
            Reason::Watch => "watched path changed",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ExitRecord {
    /// Wall-clock time of the exit, ms since the epoch.
    pub at: u64,
    pub exit: Exit,
    pub uptime: u64,
    pub reason: Reason,
    /// What exactly: the path that changed, the memory used, the cron expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, PartialEq)]
pub enum Event {
    /// The user wants it up (`start` of a registered app).
    Start,
    Stop,
    Restart,
    Delete,
    Spawned {
        pid: u32,
        wall: u64,
    },
    SpawnFailed(String),
    Exited {
        exit: Exit,
        wall: u64,
    },
    /// The deadline armed by the last `Arm` has passed.
    Deadline,
    /// The RSS of the app's process group, sampled (only for apps with a memory limit).
    Memory {
        rss: u64,
    },
    /// The app's `cron_restart` came due.
    Cron,
    /// A watched path changed (after the watch delay).
    Changed(String),
    /// `ward reset`: zero the restart counters.
    Reset,
    /// `ward sendSignal`: deliver a signal to the main pid.
    Signal(i32),
    /// The app said it is ready (`process.send('ready')`, `READY=1`).
    Ready,
    /// A reload put this new process in the old one's place (the daemon retires the old
    /// one itself, so its exit is not the app's).
    Replaced {
        pid: u32,
        wall: u64,
        /// Monotonic ms when the new process was started.
        started: u64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Spawn,
    /// Send this signal to the app's whole process group.
    Signal(i32),
    /// Send this signal to the app's main process only (pm2's `sendSignal`).
    SignalMain(i32),
    Arm(u64),
    Disarm,
    /// Remove the app from the table.
    Remove,
    /// A line for the daemon's log.
    Log(String),
    /// Ask the app to stop with the IPC message `'shutdown'` (`shutdown_with_message`);
    /// the daemon sends the kill signal instead when the app has no channel.
    Shutdown,
}

/// What is, for one app.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default)]
pub struct Run {
    pub status: Status,
    pub then: Then,
    pub pid: Option<u32>,
    /// The pid's start time (field 22 of /proc/PID/stat), so a recycled pid is never taken
    /// for the app.
    pub pid_start: u64,
    /// pm2's `restart_time`.
    pub restarts: u32,
    /// pm2's `unstable_restarts`: restarts after less than `min_uptime`, in total.
    pub unstable_restarts: u32,
    /// Unstable restarts in a row; reaching `max_restarts` gives `errored`.
    pub unstable_streak: u32,
    /// Monotonic ms at the last spawn.
    pub started_mono: u64,
    /// Wall-clock ms at the last spawn (pm2's `pm_uptime`).
    pub pm_uptime: u64,
    /// Wall-clock ms at registration (pm2's `created_at`).
    pub created_at: u64,
    pub deadline: Option<u64>,
    /// The current exponential backoff delay, 0 when none is in force.
    pub backoff: u64,
    pub exits: VecDeque<ExitRecord>,
    pub last_error: Option<String>,
    /// Something about the running process the user should know (`describe`): the output
    /// of a process adopted after a daemon crash that could not be reconnected. Cleared
    /// when a new process starts.
    pub warning: Option<String>,
    /// Why the stop in progress was asked for, when it is a restart; recorded with the
    /// exit that ends it.
    pub why: Option<(Reason, Option<String>)>,
    /// The last `STATUS=` the app sent on `NOTIFY_SOCKET` (sd_notify), for `describe`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_text: Option<String>,
    /// pm2's `axm_monitor`: the latest value of each metric the app reports with `@pm2/io`
    /// (`axm:monitor` messages on its IPC channel), by metric name.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub axm_monitor: serde_json::Map<String, serde_json::Value>,
    /// pm2's `axm_actions`: the actions the app offers to `trigger` (`axm:action`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub axm_actions: Vec<serde_json::Value>,
}

impl Default for Run {
    fn default() -> Run {
        Run {
            status: Status::Stopped,
            then: Then::Rest,
            pid: None,
            pid_start: 0,
            restarts: 0,
            unstable_restarts: 0,
            unstable_streak: 0,
            started_mono: 0,
            pm_uptime: 0,
            created_at: 0,
            deadline: None,
            backoff: 0,
            exits: VecDeque::new(),
            last_error: None,
            warning: None,
            why: None,
            status_text: None,
            axm_monitor: serde_json::Map::new(),
            axm_actions: Vec::new(),
        }
    }
}

impl Run {
    pub fn new(created_at: u64) -> Run {
        Run {
            created_at,
            ..Run::default()
        }
    }

    /// A request waiting on this app can be answered.
    pub fn settled(&self) -> bool {
        !matches!(self.status, Status::Launching | Status::Stopping) && self.then == Then::Rest
    }

    pub fn handle(&mut self, spec: &AppSpec, now: u64, event: Event) -> Vec<Action> {
        use Status::*;
        match (self.status, event) {
            (Stopped | Errored | OneLaunch, Event::Start) => {
                self.unstable_streak = 0;
                self.spawn()
            }
            (WaitingRestart, Event::Start) => {
                let mut a = self.disarm();
                a.extend(self.spawn());
                a
            }
            (Launching | Online, Event::Start) => vec![],
            (Stopping, Event::Start) => {
                if self.then != Then::Delete {
                    self.then = Then::Start;
                }
                vec![]
            }

            (Launching | Online, Event::Stop) => self.begin_stop(spec, now, Then::Rest),
            (Stopping, Event::Stop) => {
                if self.then == Then::Start {
                    self.then = Then::Rest;
                }
                vec![]
            }
            (WaitingRestart, Event::Stop) => {
                self.status = Stopped;
                self.disarm()
            }
            (Stopped | Errored | OneLaunch, Event::Stop) => vec![],

            (Launching | Online, Event::Restart) => {
                self.restart_running(spec, now, Reason::Restart, None, String::new())
            }
            (Stopping, Event::Restart) => {
                if self.then != Then::Delete {
                    self.then = Then::Start;
                }
                vec![]
            }
            (WaitingRestart | Stopped | Errored | OneLaunch, Event::Restart) => {
                self.restart_idle(spec, Reason::Restart, "")
            }

            (Launching | Online, Event::Delete) => self.begin_stop(spec, now, Then::Delete),
            (Stopping, Event::Delete) => {
                self.then = Then::Delete;
                vec![]
            }
            (WaitingRestart, Event::Delete) => {
                let mut a = self.disarm();
                a.push(Action::Remove);
                a
            }
            (Stopped | Errored | OneLaunch, Event::Delete) => vec![Action::Remove],

            (Launching, Event::Spawned { pid, wall }) => {
                self.pid = Some(pid);
                self.pm_uptime = wall;
                self.started_mono = now;
                self.last_error = None;
                self.warning = None;
                if spec.wait_ready {
                    // pm2: `launching` until 'ready' or `listen_timeout`, then online.
                    vec![self.arm(now + spec.listen_timeout)]
                } else {
                    self.status = Online;
                    vec![]
                }
            }
            (Launching, Event::Ready) if self.pid.is_some() => {
                self.status = Online;
                self.disarm()
            }
            (
                Launching | Online | Stopping | Stopped | Errored | OneLaunch | WaitingRestart,
                Event::Ready,
            ) => {
                vec![]
            }
            (Launching | Online, Event::Replaced { pid, wall, started }) => {
                self.status = Online;
                self.pid = Some(pid);
                self.pm_uptime = wall;
                self.started_mono = started;
                self.restarts += 1;
                self.unstable_streak = 0;
                self.last_error = None;
                self.disarm()
            }
            (Stopping | Stopped | Errored | OneLaunch | WaitingRestart, Event::Replaced { .. }) => {
                vec![]
            }
            (Launching, Event::SpawnFailed(why)) => self.on_spawn_failed(spec, now, why),

            (Launching | Online, Event::Exited { exit, wall }) => {
                self.on_exit(spec, now, exit, wall)
            }
            (Stopping, Event::Exited { exit, wall }) => {
                let why = self.why.take();
                let (reason, detail) = match self.then {
                    Then::Rest => (Reason::Stop, None),
                    Then::Start => why.unwrap_or((Reason::Restart, None)),
                    Then::Delete => (Reason::Delete, None),
                };
                self.record(now, exit, wall, reason);
                if let Some(last) = self.exits.back_mut() {
                    last.detail = detail;
                }
                self.pid = None;
                let line = format!(
                    "{} {} ({})",
                    spec.name,
                    describe_exit(exit),
                    reason.as_str()
                );
                // What is left of the group had the stop signal already; the app's main
                // process is gone, so nothing of it may linger.
                let mut a = vec![Action::Signal(libc::SIGKILL), Action::Log(line)];
                a.extend(self.disarm());
                match std::mem::replace(&mut self.then, Then::Rest) {
                    Then::Rest => self.status = Stopped,
                    Then::Start => {
                        self.unstable_streak = 0;
                        a.extend(self.spawn());
                    }
                    Then::Delete => {
                        self.status = Stopped;
                        a.push(Action::Remove);
                    }
                }
                a
            }

            (Stopping, Event::Deadline) => {
                self.deadline = None;
                vec![
                    Action::Log(format!(
                        "{} did not stop within {} ms: sending SIGKILL to its process group",
                        spec.name, spec.kill_timeout
                    )),
                    Action::Signal(libc::SIGKILL),
                ]
            }
            (WaitingRestart, Event::Deadline) => {
                // pm2 counts a delayed restart when it fires (God.js:535).
                self.deadline = None;
                self.restarts += 1;
                self.spawn()
            }
            // wait_ready: the listen timeout passed without 'ready'; pm2 calls it online.
            (Launching, Event::Deadline) if self.pid.is_some() => {
                self.deadline = None;
                self.status = Online;
                vec![Action::Log(format!(
                    "{} did not say ready within its listen_timeout of {} ms: online anyway",
                    spec.name, spec.listen_timeout
                ))]
            }

            (Online, Event::Memory { rss }) => match spec.max_memory_restart {
                Some(limit) if rss > limit => {
                    let line = format!(
                        "restarting {}: its processes use {} of memory, over its \
                         max_memory_restart of {}",
                        spec.name,
                        human_bytes(rss),
                        human_bytes(limit)
                    );
                    self.restart_running(
                        spec,
                        now,
                        Reason::MemoryLimit,
                        Some(human_bytes(rss)),
                        line,
                    )
                }
                _ => vec![],
            },
            // A memory sample of an app that is not (or no longer) up means nothing.
            (
                Launching | Stopping | Stopped | Errored | OneLaunch | WaitingRestart,
                Event::Memory { .. },
            ) => vec![],

            // pm2 drops the cron job of a stopped app and keeps it for an errored one.
            (Launching | Online, Event::Cron) => {
                let expr = spec.cron_restart.clone().unwrap_or_default();
                let line = format!("restarting {}: cron_restart \"{expr}\" came due", spec.name);
                self.restart_running(spec, now, Reason::Cron, Some(expr), line)
            }
            (WaitingRestart | Errored, Event::Cron) => {
                let expr = spec.cron_restart.clone().unwrap_or_default();
                self.restart_idle(
                    spec,
                    Reason::Cron,
                    &format!("cron_restart \"{expr}\" came due"),
                )
            }
            (Stopping | Stopped | OneLaunch, Event::Cron) => vec![],

            // A change restarts a running app, and brings back one that crashed (its code
            // was probably just fixed); an app the user stopped stays stopped.
            (Launching | Online, Event::Changed(path)) => {
                let line = format!("restarting {}: {path} changed", spec.name);
                self.restart_running(spec, now, Reason::Watch, Some(path), line)
            }
            (WaitingRestart | Errored, Event::Changed(path)) => {
                self.restart_idle(spec, Reason::Watch, &format!("{path} changed"))
            }
            (Stopping | Stopped | OneLaunch, Event::Changed(_)) => vec![],

            (_, Event::Reset) => {
                self.restarts = 0;
                self.unstable_restarts = 0;
                self.unstable_streak = 0;
                self.backoff = 0;
                vec![]
            }

            (Launching | Online | Stopping, Event::Signal(sig)) => match self.pid {
                Some(_) => vec![Action::SignalMain(sig)],
                None => vec![],
            },
            (Stopped | Errored | OneLaunch | WaitingRestart, Event::Signal(_)) => vec![],

            // Stale or impossible pairs: a deadline that was disarmed in the same turn, an
            // exit or spawn report for a state that has no process. Nothing to do.
            (Launching | Online | Stopped | Errored | OneLaunch, Event::Deadline)
            | (Stopped | Errored | OneLaunch | WaitingRestart, Event::Exited { .. })
            | (
                Online | Stopping | Stopped | Errored | OneLaunch | WaitingRestart,
                Event::Spawned { .. } | Event::SpawnFailed(_),
            ) => vec![],
        }
    }

    /// A restart of a running app: the stop ladder, then a start; `why` goes with the exit.
    fn restart_running(
        &mut self,
        spec: &AppSpec,
        now: u64,
        reason: Reason,
        detail: Option<String>,
        line: String,
    ) -> Vec<Action> {
        self.restarts += 1;
        self.why = Some((reason, detail));
        let line = if line.is_empty() {
            format!("restarting {}: {}", spec.name, reason.as_str())
        } else {
            line
        };
        let mut a = vec![Action::Log(line)];
        a.extend(self.begin_stop(spec, now, Then::Start));
        a
    }

    /// A restart of an app with no process (waiting, stopped, errored): start it now. pm2
    /// counts a restart only of an app that was online or launching
    /// (God/ActionMethods.js:411-416), so this one is not counted.
    fn restart_idle(&mut self, spec: &AppSpec, reason: Reason, what: &str) -> Vec<Action> {
        self.unstable_streak = 0;
        let what = if what.is_empty() {
            reason.as_str()
        } else {
            what
        };
        let mut a = vec![Action::Log(format!("restarting {}: {what}", spec.name))];
        a.extend(self.disarm());
        a.extend(self.spawn());
        a
    }

    fn spawn(&mut self) -> Vec<Action> {
        self.status = Status::Launching;
        self.then = Then::Rest;
        vec![Action::Spawn]
    }

    fn disarm(&mut self) -> Vec<Action> {
        match self.deadline.take() {
            Some(_) => vec![Action::Disarm],
            None => vec![],
        }
    }

    fn arm(&mut self, at: u64) -> Action {
        self.deadline = Some(at);
        Action::Arm(at)
    }

    fn begin_stop(&mut self, spec: &AppSpec, now: u64, then: Then) -> Vec<Action> {
        self.status = Status::Stopping;
        self.then = then;
        if spec.shutdown_with_message {
            return vec![Action::Shutdown, self.arm(now + spec.kill_timeout)];
        }
        // SIGCONT after the stop signal, so an app that was SIGSTOPped still stops.
        vec![
            Action::Signal(spec.kill_signal),
            Action::Signal(libc::SIGCONT),
            self.arm(now.saturating_add(spec.kill_timeout)),
        ]
    }

    fn record(&mut self, now: u64, exit: Exit, wall: u64, reason: Reason) {
        if self.exits.len() == EXITS_KEPT {
            self.exits.pop_front();
        }
        self.exits.push_back(ExitRecord {
            at: wall,
            exit,
            uptime: now.saturating_sub(self.started_mono),
            reason,
            detail: None,
        });
    }

    /// pm2 calls a restart unstable when the app lived less than `min_uptime`; after
    /// `max_restarts` unstable restarts in a row it gives up and shows `errored`.
    fn on_exit(&mut self, spec: &AppSpec, now: u64, exit: Exit, wall: u64) -> Vec<Action> {
        let uptime = now.saturating_sub(self.started_mono);
        self.pid = None;
        let clean = exit == Exit::Code(0);
        let reason = if clean {
            Reason::Exited
        } else {
            Reason::Crashed
        };
        self.record(now, exit, wall, reason);
        let how = describe_exit(exit);
        let mut a = vec![Action::Signal(libc::SIGKILL)];
        // A wait_ready app that died while launching leaves its listen timeout behind.
        a.extend(self.disarm());

        let stop_code = matches!(exit, Exit::Code(c) if spec.stop_exit_codes.contains(&c));
        if !spec.autorestart || stop_code {
            self.status = Status::Stopped;
            let why = if stop_code {
                "its exit code is in stop_exit_codes"
            } else {
                "autorestart is off"
            };
            a.push(Action::Log(format!(
                "{} {how}; not restarted: {why}",
                spec.name
            )));
            return a;
        }

        if uptime < spec.min_uptime {
            self.unstable_restarts += 1;
            self.unstable_streak += 1;
        } else {
            self.unstable_streak = 0;
        }
        if self.unstable_streak > spec.max_restarts
            || (spec.max_restarts == 0 && self.unstable_streak > 0)
        {
            self.status = Status::Errored;
            self.unstable_streak = 0;
            a.push(Action::Log(format!(
                "{} {how} after {uptime} ms; it restarted {} times in a row in less than \
                 min_uptime ({} ms): errored, no more restarts",
                spec.name, spec.max_restarts, spec.min_uptime
            )));
            return a;
        }

        let delay = self.next_delay(spec, uptime);
        if delay == 0 {
            self.restarts += 1;
            a.push(Action::Log(format!(
                "{} {how} after {uptime} ms: restarting",
                spec.name
            )));
            a.extend(self.spawn());
        } else {
            self.status = Status::WaitingRestart;
            a.push(Action::Log(format!(
                "{} {how} after {uptime} ms: restarting in {delay} ms",
                spec.name
            )));
            a.push(self.arm(now.saturating_add(delay)));
        }
        a
    }
}

impl Run {
    /// The wait before the next restart: the exponential backoff when the app has one
    /// (reset after a run of `BACKOFF_RESET_MS`), else its `restart_delay`.
    fn next_delay(&mut self, spec: &AppSpec, uptime: u64) -> u64 {
        if spec.exp_backoff_restart_delay > 0 {
            if uptime >= BACKOFF_RESET_MS {
                self.backoff = 0;
            }
            self.backoff = if self.backoff == 0 {
                spec.exp_backoff_restart_delay
            } else {
                (self.backoff.saturating_mul(3) / 2).min(BACKOFF_CAP_MS)
            };
            self.backoff
        } else {
            spec.restart_delay
        }
    }

    /// The app could not be started (EMFILE, EAGAIN, its folder gone, …). Often passing,
    /// so it is retried as a crash is, at least `SPAWN_RETRY_MS` apart (runit and s6 retry
    /// each second); `errored` once it failed more than `max_restarts` times in a row.
    fn on_spawn_failed(&mut self, spec: &AppSpec, now: u64, why: String) -> Vec<Action> {
        self.pid = None;
        let name = &spec.name;
        self.unstable_streak += 1;
        let attempts = self.unstable_streak;
        let give_up = !spec.autorestart
            || self.unstable_streak > spec.max_restarts
            || (spec.max_restarts == 0 && self.unstable_streak > 0);
        let line = if give_up {
            self.status = Status::Errored;
            self.unstable_streak = 0;
            match spec.autorestart {
                true => format!(
                    "unable to start {name}: {why}; failed {attempts} times in a row: errored, \
                     no more attempts"
                ),
                false => format!("unable to start {name}: {why}"),
            }
        } else {
            let delay = self.next_delay(spec, 0).max(SPAWN_RETRY_MS);
            self.status = Status::WaitingRestart;
            let armed = self.arm(now.saturating_add(delay));
            self.last_error = Some(why.clone());
            return vec![
                Action::Log(format!(
                    "unable to start {name}: {why}; trying again in {delay} ms (attempt \
                     {attempts} of {})",
                    spec.max_restarts.saturating_add(1)
                )),
                armed,
            ];
        };
        self.last_error = Some(why);
        vec![Action::Log(line)]
    }
}

/// `312.5 MB`, for log lines (powers of 1024, as pm2's K/M/G).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub fn describe_exit(exit: Exit) -> String {
    match exit {
        Exit::Code(c) => format!("exited with code {c}"),
        Exit::Signal(s) => format!("was killed by {}", crate::spec::config::signal_name(s)),
        Exit::Unknown => "exited (status unknown: it was adopted from an earlier daemon)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> AppSpec {
        AppSpec {
            name: "api".into(),
            ..AppSpec::default()
        }
    }

    fn ms(n: u64) -> u64 {
        n
    }

    fn started(s: &AppSpec, at: u64) -> Run {
        let mut r = Run::new(0);
        assert_eq!(r.handle(s, at, Event::Start), vec![Action::Spawn]);
        assert_eq!(r.status, Status::Launching);
        r.handle(s, at, Event::Spawned { pid: 100, wall: 5 });
        assert_eq!(r.status, Status::Online);
        r
    }

    fn no_logs(a: Vec<Action>) -> Vec<Action> {
        a.into_iter()
            .filter(|a| !matches!(a, Action::Log(_)))
            .collect()
    }

    #[test]
    fn crash_restarts_at_once() {
        let s = spec();
        let mut r = started(&s, ms(0));
        let a = r.handle(
            &s,
            ms(5000),
            Event::Exited {
                exit: Exit::Code(1),
                wall: 9,
            },
        );
        assert_eq!(
            no_logs(a),
            vec![Action::Signal(libc::SIGKILL), Action::Spawn]
        );
        assert_eq!(r.restarts, 1);
        assert_eq!(r.unstable_restarts, 0);
        assert_eq!(r.exits.back().unwrap().reason, Reason::Crashed);
    }

    #[test]
    fn quick_exits_end_errored() {
        let s = spec();
        let mut r = started(&s, ms(0));
        let mut t = 0;
        for i in 0..=s.max_restarts {
            t += 50;
            let a = r.handle(
                &s,
                t,
                Event::Exited {
                    exit: Exit::Code(1),
                    wall: t,
                },
            );
            if i < s.max_restarts {
                assert!(a.contains(&Action::Spawn), "restart {i}: {a:?}");
                r.handle(
                    &s,
                    t,
                    Event::Spawned {
                        pid: 200 + i,
                        wall: t,
                    },
                );
            } else {
                assert!(!a.contains(&Action::Spawn));
            }
        }
        assert_eq!(r.status, Status::Errored);
        assert_eq!(r.unstable_restarts, s.max_restarts + 1);
        // A restart by hand brings it back.
        assert_eq!(
            no_logs(r.handle(&s, t, Event::Restart)),
            vec![Action::Spawn]
        );
    }

    #[test]
    fn stable_run_resets_the_streak() {
        let s = AppSpec {
            max_restarts: 2,
            ..spec()
        };
        let mut r = started(&s, 0);
        let mut t = 0;
        for round in 0..5 {
            t += 10;
            r.handle(
                &s,
                t,
                Event::Exited {
                    exit: Exit::Code(1),
                    wall: t,
                },
            );
            r.handle(&s, t, Event::Spawned { pid: 1, wall: t });
            t += 10;
            r.handle(
                &s,
                t,
                Event::Exited {
                    exit: Exit::Code(1),
                    wall: t,
                },
            );
            r.handle(&s, t, Event::Spawned { pid: 1, wall: t });
            // Then a long, stable run.
            t += 5000;
            let a = r.handle(
                &s,
                t,
                Event::Exited {
                    exit: Exit::Code(1),
                    wall: t,
                },
            );
            assert!(a.contains(&Action::Spawn), "round {round}");
            r.handle(&s, t, Event::Spawned { pid: 1, wall: t });
        }
        assert_eq!(r.status, Status::Online);
    }

    #[test]
    fn no_autorestart_stays_stopped() {
        let s = AppSpec {
            autorestart: false,
            ..spec()
        };
        let mut r = started(&s, 0);
        let a = r.handle(
            &s,
            10,
            Event::Exited {
                exit: Exit::Code(0),
                wall: 1,
            },
        );
        assert!(!a.contains(&Action::Spawn));
        assert_eq!(r.status, Status::Stopped);
    }

    #[test]
    fn stop_exit_codes() {
        let s = AppSpec {
            stop_exit_codes: vec![0, 3],
            ..spec()
        };
        let mut r = started(&s, 0);
        r.handle(
            &s,
            5000,
            Event::Exited {
                exit: Exit::Code(3),
                wall: 1,
            },
        );
        assert_eq!(r.status, Status::Stopped);
        r.handle(&s, 6000, Event::Start);
        r.handle(&s, 6000, Event::Spawned { pid: 1, wall: 1 });
        let a = r.handle(
            &s,
            9000,
            Event::Exited {
                exit: Exit::Code(2),
                wall: 1,
            },
        );
        assert!(a.contains(&Action::Spawn));
    }

    #[test]
    fn restart_delay_waits() {
        let s = AppSpec {
            restart_delay: 500,
            ..spec()
        };
        let mut r = started(&s, 0);
        let a = no_logs(r.handle(
            &s,
            2000,
            Event::Exited {
                exit: Exit::Code(1),
                wall: 1,
            },
        ));
        assert_eq!(a, vec![Action::Signal(libc::SIGKILL), Action::Arm(2500)]);
        assert_eq!(r.status, Status::WaitingRestart);
        assert_eq!(r.handle(&s, 2500, Event::Deadline), vec![Action::Spawn]);
    }

    #[test]
    fn backoff_grows_to_the_cap_and_resets() {
        let s = AppSpec {
            exp_backoff_restart_delay: 100,
            max_restarts: 1000,
            ..spec()
        };
        let mut r = started(&s, 0);
        let mut t = 0;
        let mut delays = vec![];
        // 100 × 1.5^13 > 15 000: the fourteenth delay hits the cap.
        for _ in 0..16 {
            t += 10;
            for a in r.handle(
                &s,
                t,
                Event::Exited {
                    exit: Exit::Code(1),
                    wall: t,
                },
            ) {
                if let Action::Arm(at) = a {
                    delays.push(at - t);
                    t = at;
                }
            }
            assert_eq!(r.status, Status::WaitingRestart);
            r.handle(&s, t, Event::Deadline);
            r.handle(&s, t, Event::Spawned { pid: 1, wall: t });
        }
        assert_eq!(&delays[..4], &[100, 150, 225, 337]);
        assert_eq!(delays[12], 12_921);
        assert_eq!(&delays[13..], &[BACKOFF_CAP_MS; 3]);
        // Up for longer than the reset time: back to the first delay.
        t += BACKOFF_RESET_MS;
        let a = r.handle(
            &s,
            t,
            Event::Exited {
                exit: Exit::Code(1),
                wall: t,
            },
        );
        assert!(a.contains(&Action::Arm(t + 100)), "{a:?}");
    }

    #[test]
    fn stop_escalates_to_sigkill() {
        let s = spec();
        let mut r = started(&s, 0);
        let a = r.handle(&s, 100, Event::Stop);
        assert_eq!(
            a,
            vec![
                Action::Signal(libc::SIGINT),
                Action::Signal(libc::SIGCONT),
                Action::Arm(100 + s.kill_timeout)
            ]
        );
        assert_eq!(r.status, Status::Stopping);
        assert!(!r.settled());
        let a = no_logs(r.handle(&s, 1700, Event::Deadline));
        assert_eq!(a, vec![Action::Signal(libc::SIGKILL)]);
        let a = r.handle(
            &s,
            1701,
            Event::Exited {
                exit: Exit::Signal(9),
                wall: 1,
            },
        );
        assert_eq!(no_logs(a), vec![Action::Signal(libc::SIGKILL)]);
        assert_eq!(r.status, Status::Stopped);
        assert!(r.settled());
        assert_eq!(r.exits.back().unwrap().reason, Reason::Stop);
    }

    #[test]
    fn restart_stops_then_spawns() {
        let s = spec();
        let mut r = started(&s, 0);
        r.handle(&s, 10, Event::Restart);
        assert_eq!(r.restarts, 1);
        let a = r.handle(
            &s,
            20,
            Event::Exited {
                exit: Exit::Signal(2),
                wall: 1,
            },
        );
        assert_eq!(
            no_logs(a),
            vec![Action::Signal(libc::SIGKILL), Action::Disarm, Action::Spawn]
        );
        assert_eq!(r.status, Status::Launching);
    }

    #[test]
    fn delete_while_running_removes_after_exit() {
        let s = spec();
        let mut r = started(&s, 0);
        r.handle(&s, 10, Event::Delete);
        let a = r.handle(
            &s,
            20,
            Event::Exited {
                exit: Exit::Code(0),
                wall: 1,
            },
        );
        assert!(a.contains(&Action::Remove));
    }

    #[test]
    fn stop_while_waiting_cancels_the_restart() {
        let s = AppSpec {
            restart_delay: 1000,
            ..spec()
        };
        let mut r = started(&s, 0);
        r.handle(
            &s,
            5000,
            Event::Exited {
                exit: Exit::Code(1),
                wall: 1,
            },
        );
        assert_eq!(r.handle(&s, 5100, Event::Stop), vec![Action::Disarm]);
        assert_eq!(r.status, Status::Stopped);
        assert_eq!(r.handle(&s, 6000, Event::Deadline), vec![]);
    }

    #[test]
    fn spawn_failure_is_retried_then_errored_with_the_reason() {
        let s = AppSpec {
            max_restarts: 2,
            ..spec()
        };
        let mut r = Run::new(0);
        r.handle(&s, 0, Event::Start);
        let mut now = 0;
        // Attempts 1 and 2 of 3: wait, at least a second, then try again.
        for attempt in 1..=2 {
            let a = r.handle(&s, now, Event::SpawnFailed("Too many open files".into()));
            assert_eq!(r.status, Status::WaitingRestart);
            assert_eq!(r.last_error.as_deref(), Some("Too many open files"));
            assert_eq!(a[1], Action::Arm(now + SPAWN_RETRY_MS));
            assert!(
                logs(&a)[0].contains(&format!("trying again in 1000 ms (attempt {attempt} of 3)")),
                "{a:?}"
            );
            now += SPAWN_RETRY_MS;
            assert_eq!(r.handle(&s, now, Event::Deadline), vec![Action::Spawn]);
        }
        // The third fails too: errored, with the reason.
        let a = r.handle(
            &s,
            now,
            Event::SpawnFailed("No such file or directory".into()),
        );
        assert_eq!(r.status, Status::Errored);
        assert_eq!(r.last_error.as_deref(), Some("No such file or directory"));
        assert!(
            logs(&a)[0].contains("failed 3 times in a row: errored"),
            "{a:?}"
        );
        // A start afterwards tries again from scratch.
        assert_eq!(r.handle(&s, now, Event::Start), vec![Action::Spawn]);
        r.handle(&s, now, Event::SpawnFailed("x".into()));
        assert_eq!(r.status, Status::WaitingRestart);
    }

    #[test]
    fn spawn_failure_recovers_when_the_cause_passes() {
        let s = AppSpec {
            restart_delay: 2500,
            ..spec()
        };
        let mut r = Run::new(0);
        r.handle(&s, 0, Event::Start);
        let a = r.handle(&s, 0, Event::SpawnFailed("EAGAIN".into()));
        // The app's own delay when it is longer than the minimum.
        assert_eq!(a[1], Action::Arm(2500));
        assert_eq!(r.handle(&s, 2500, Event::Deadline), vec![Action::Spawn]);
        r.handle(&s, 2500, Event::Spawned { pid: 7, wall: 1 });
        assert_eq!(r.status, Status::Online);
        assert_eq!(r.last_error, None);
        // A stop while waiting stays a stop.
        let mut r = Run::new(0);
        r.handle(&s, 0, Event::Start);
        r.handle(&s, 0, Event::SpawnFailed("EAGAIN".into()));
        assert_eq!(r.handle(&s, 10, Event::Stop), vec![Action::Disarm]);
        assert_eq!(r.status, Status::Stopped);
        // Without autorestart there is nothing to retry.
        let s = AppSpec {
            autorestart: false,
            ..spec()
        };
        let mut r = Run::new(0);
        r.handle(&s, 0, Event::Start);
        r.handle(&s, 0, Event::SpawnFailed("EAGAIN".into()));
        assert_eq!(r.status, Status::Errored);
    }

    fn exited(r: &mut Run, s: &AppSpec, at: u64, exit: Exit) -> Vec<Action> {
        r.handle(s, at, Event::Exited { exit, wall: at })
    }

    fn logs(a: &[Action]) -> Vec<String> {
        a.iter()
            .filter_map(|a| match a {
                Action::Log(l) => Some(l.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn memory_over_the_limit_restarts_gracefully() {
        let s = AppSpec {
            max_memory_restart: Some(300 << 20),
            ..spec()
        };
        let mut r = started(&s, 0);
        // At or under the limit: nothing.
        assert_eq!(r.handle(&s, 10, Event::Memory { rss: 300 << 20 }), vec![]);
        let a = r.handle(&s, 20, Event::Memory { rss: 400 << 20 });
        assert_eq!(
            no_logs(a.clone()),
            vec![
                Action::Signal(libc::SIGINT),
                Action::Signal(libc::SIGCONT),
                Action::Arm(20 + s.kill_timeout)
            ]
        );
        assert!(
            logs(&a)[0].contains("400.0 MB") && logs(&a)[0].contains("300.0 MB"),
            "{a:?}"
        );
        assert_eq!(r.status, Status::Stopping);
        assert_eq!(r.restarts, 1);
        // A second sample while it stops changes nothing.
        assert_eq!(r.handle(&s, 30, Event::Memory { rss: 500 << 20 }), vec![]);
        let a = exited(&mut r, &s, 40, Exit::Signal(libc::SIGINT));
        assert!(a.contains(&Action::Spawn));
        let last = r.exits.back().unwrap();
        assert_eq!(last.reason, Reason::MemoryLimit);
        assert_eq!(last.detail.as_deref(), Some("400.0 MB"));
        assert_eq!(r.restarts, 1);
    }

    #[test]
    fn memory_without_a_limit_or_not_online_is_ignored() {
        let s = spec();
        let mut r = started(&s, 0);
        assert_eq!(r.handle(&s, 10, Event::Memory { rss: u64::MAX }), vec![]);
        let s = AppSpec {
            max_memory_restart: Some(1),
            ..spec()
        };
        let mut r = Run::new(0);
        assert_eq!(r.handle(&s, 10, Event::Memory { rss: 100 }), vec![]);
        assert_eq!(r.status, Status::Stopped);
    }

    #[test]
    fn cron_restarts_running_and_errored_apps_not_stopped_ones() {
        let s = AppSpec {
            cron_restart: Some("0 3 * * *".into()),
            ..spec()
        };
        let mut r = started(&s, 0);
        let a = r.handle(&s, 10, Event::Cron);
        assert!(a.contains(&Action::Signal(libc::SIGINT)), "{a:?}");
        assert!(logs(&a)[0].contains("cron_restart \"0 3 * * *\""), "{a:?}");
        exited(&mut r, &s, 20, Exit::Code(0));
        assert_eq!(r.exits.back().unwrap().reason, Reason::Cron);
        assert_eq!(r.status, Status::Launching);

        let mut r = Run::new(0);
        assert_eq!(r.handle(&s, 10, Event::Cron), vec![]);
        assert_eq!(r.status, Status::Stopped);

        let mut r = Run {
            status: Status::Errored,
            unstable_streak: 3,
            ..Run::new(0)
        };
        assert_eq!(no_logs(r.handle(&s, 10, Event::Cron)), vec![Action::Spawn]);
        assert_eq!(r.unstable_streak, 0);
        assert_eq!(r.restarts, 0, "pm2 counts restarts of running apps only");
    }

    #[test]
    fn watched_change_restarts_with_the_path() {
        let s = AppSpec {
            watch: vec!["/srv/api".into()],
            ..spec()
        };
        let mut r = started(&s, 0);
        let a = r.handle(&s, 10, Event::Changed("/srv/api/index.js".into()));
        assert_eq!(logs(&a), vec!["restarting api: /srv/api/index.js changed"]);
        exited(&mut r, &s, 20, Exit::Signal(libc::SIGINT));
        let last = r.exits.back().unwrap();
        assert_eq!(last.reason, Reason::Watch);
        assert_eq!(last.detail.as_deref(), Some("/srv/api/index.js"));
        // A stopped app stays stopped; an errored one comes back.
        let mut r = Run::new(0);
        assert_eq!(r.handle(&s, 10, Event::Changed("x".into())), vec![]);
        let mut r = Run {
            status: Status::Errored,
            ..Run::new(0)
        };
        assert_eq!(
            no_logs(r.handle(&s, 10, Event::Changed("x".into()))),
            vec![Action::Spawn]
        );
        // While waiting for a delayed restart: restart now.
        let s2 = AppSpec {
            restart_delay: 5000,
            ..s.clone()
        };
        let mut r = started(&s2, 0);
        exited(&mut r, &s2, 2000, Exit::Code(1));
        assert_eq!(r.status, Status::WaitingRestart);
        assert_eq!(
            no_logs(r.handle(&s2, 2100, Event::Changed("x".into()))),
            vec![Action::Disarm, Action::Spawn]
        );
    }

    #[test]
    fn manual_restart_is_logged_and_recorded() {
        let s = spec();
        let mut r = started(&s, 0);
        let a = r.handle(&s, 10, Event::Restart);
        assert_eq!(logs(&a), vec!["restarting api: manual restart"]);
        exited(&mut r, &s, 20, Exit::Signal(libc::SIGINT));
        assert_eq!(r.exits.back().unwrap().reason, Reason::Restart);
        assert_eq!(r.exits.back().unwrap().detail, None);
    }

    #[test]
    fn reset_zeroes_the_counters() {
        let s = AppSpec {
            max_restarts: 100,
            ..spec()
        };
        let mut r = started(&s, 0);
        for t in 1..5 {
            exited(&mut r, &s, t * 10, Exit::Code(1));
            r.handle(&s, t * 10, Event::Spawned { pid: 1, wall: 0 });
        }
        assert_eq!(
            (r.restarts, r.unstable_restarts, r.unstable_streak),
            (4, 4, 4)
        );
        assert_eq!(r.handle(&s, 100, Event::Reset), vec![]);
        assert_eq!(
            (r.restarts, r.unstable_restarts, r.unstable_streak),
            (0, 0, 0)
        );
        assert_eq!(r.status, Status::Online);
    }

    #[test]
    fn send_signal_goes_to_the_main_pid_of_a_running_app() {
        let s = spec();
        let mut r = started(&s, 0);
        assert_eq!(
            r.handle(&s, 10, Event::Signal(libc::SIGUSR2)),
            vec![Action::SignalMain(libc::SIGUSR2)]
        );
        let mut r = Run::new(0);
        assert_eq!(r.handle(&s, 10, Event::Signal(libc::SIGUSR2)), vec![]);
    }

    #[test]
    fn stop_sends_the_kill_signal_then_sigcont() {
        let s = AppSpec {
            kill_signal: libc::SIGTERM,
            kill_timeout: 300,
            ..spec()
        };
        let mut r = started(&s, 0);
        assert_eq!(
            r.handle(&s, 100, Event::Stop),
            vec![
                Action::Signal(libc::SIGTERM),
                Action::Signal(libc::SIGCONT),
                Action::Arm(400)
            ]
        );
    }

    #[test]
    fn max_restarts_zero_errors_on_the_first_unstable_exit() {
        let s = AppSpec {
            max_restarts: 0,
            ..spec()
        };
        let mut r = started(&s, 0);
        let a = exited(&mut r, &s, 10, Exit::Code(1));
        assert!(!a.contains(&Action::Spawn));
        assert_eq!(r.status, Status::Errored);
        // A stable run that exits is restarted even so.
        let mut r = started(&s, 0);
        assert!(exited(&mut r, &s, 5000, Exit::Code(1)).contains(&Action::Spawn));
    }

    #[test]
    fn exits_keep_the_last_ten() {
        let s = AppSpec {
            max_restarts: 100,
            ..spec()
        };
        let mut r = started(&s, 0);
        for t in 1..=15u64 {
            exited(&mut r, &s, t * 2000, Exit::Code(t as i32));
            r.handle(&s, t * 2000, Event::Spawned { pid: 1, wall: 0 });
        }
        assert_eq!(r.exits.len(), EXITS_KEPT);
        assert_eq!(r.exits.front().unwrap().exit, Exit::Code(6));
        assert_eq!(r.exits.back().unwrap().exit, Exit::Code(15));
        assert_eq!(r.exits.back().unwrap().uptime, 2000);
    }

    #[test]
    fn no_autorestart_clean_exit_is_stopped_not_one_launch() {
        // pm2 never sets one-launch-status (it is only a constant in its code): an app
        // with autorestart off that exits shows `stopped` there, and here.
        let s = AppSpec {
            autorestart: false,
            ..spec()
        };
        for code in [0, 1] {
            let mut r = started(&s, 0);
            exited(&mut r, &s, 5000, Exit::Code(code));
            assert_eq!(r.status, Status::Stopped);
        }
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KB");
        assert_eq!(human_bytes(300 << 20), "300.0 MB");
    }

    #[test]
    fn status_spellings() {
        assert_eq!(Status::WaitingRestart.as_str(), "waiting restart");
        assert_eq!(
            serde_json::to_string(&Status::WaitingRestart).unwrap(),
            "\"waiting restart\""
        );
    }

    #[test]
    fn wait_ready_launching_until_ready_or_timeout() {
        let s = AppSpec {
            wait_ready: true,
            listen_timeout: 3000,
            ..spec()
        };
        let mut r = Run::new(0);
        assert_eq!(r.handle(&s, 0, Event::Start), vec![Action::Spawn]);
        let a = r.handle(&s, 10, Event::Spawned { pid: 7, wall: 1 });
        assert_eq!(a, vec![Action::Arm(3010)]);
        assert_eq!((r.status, r.pid), (Status::Launching, Some(7)));
        assert!(!r.settled());
        assert_eq!(r.handle(&s, 500, Event::Ready), vec![Action::Disarm]);
        assert_eq!(r.status, Status::Online);
        // A second 'ready' changes nothing.
        assert_eq!(r.handle(&s, 600, Event::Ready), vec![]);

        // Never ready: the listen timeout counts as ready, as in pm2.
        let mut r = Run::new(0);
        r.handle(&s, 0, Event::Start);
        r.handle(&s, 0, Event::Spawned { pid: 8, wall: 1 });
        let a = r.handle(&s, 3000, Event::Deadline);
        assert!(matches!(a.as_slice(), [Action::Log(_)]), "{a:?}");
        assert_eq!(r.status, Status::Online);

        // Dying while launching disarms the listen timeout before the restart.
        let mut r = Run::new(0);
        r.handle(&s, 0, Event::Start);
        r.handle(&s, 0, Event::Spawned { pid: 9, wall: 1 });
        let a = r.handle(
            &s,
            5000,
            Event::Exited {
                exit: Exit::Code(1),
                wall: 2,
            },
        );
        assert!(
            a.contains(&Action::Disarm) && a.contains(&Action::Spawn),
            "{a:?}"
        );
        assert_eq!(r.deadline, None);
    }

    #[test]
    fn replaced_by_a_reload_and_shutdown_by_message() {
        let s = spec();
        let mut r = started(&s, 0);
        let a = r.handle(
            &s,
            9000,
            Event::Replaced {
                pid: 200,
                wall: 77,
                started: 8500,
            },
        );
        assert_eq!(a, vec![]);
        assert_eq!((r.pid, r.pm_uptime, r.started_mono), (Some(200), 77, 8500));
        assert_eq!((r.status, r.restarts), (Status::Online, 1));
        // A stopped app is not brought back by a late replacement.
        r.handle(&s, 9100, Event::Stop);
        r.handle(
            &s,
            9200,
            Event::Exited {
                exit: Exit::Code(0),
                wall: 78,
            },
        );
        assert_eq!(
            r.handle(
                &s,
                9300,
                Event::Replaced {
                    pid: 300,
                    wall: 79,
                    started: 9300
                }
            ),
            vec![]
        );
        assert_eq!((r.status, r.pid), (Status::Stopped, None));

        let s = AppSpec {
            shutdown_with_message: true,
            ..spec()
        };
        let mut r = started(&s, 0);
        let a = r.handle(&s, 100, Event::Stop);
        assert_eq!(a, vec![Action::Shutdown, Action::Arm(100 + s.kill_timeout)]);
    }
}
