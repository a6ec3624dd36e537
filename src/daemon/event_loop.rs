//! The daemon: one thread, one epoll loop. It turns fds and timers into lifecycle events
//! and carries out the actions it gets back; decisions belong to lifecycle.rs.
//!
//! The loop waits on the control socket, the signal pipes (SIGCHLD, SIGTERM/SIGINT/SIGQUIT,
//! SIGHUP), every app's stdout and stderr pipe, and the inotify fd while some app watches.
//! Its timeout is the nearest deadline (lifecycle, cron, memory check, watch debounce), or
//! infinite when none is armed: an idle daemon makes no wake-ups.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::UnixAddr;
use serde::Serialize;

use crate::daemon::holder;
use crate::daemon::instances;
use crate::daemon::outbox::{Outbox, Sent};
use crate::daemon::schedule::Schedules;
use crate::daemon::watch::Watcher;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::lifecycle::{Event, Run, Status};
use crate::logs::{self, Sink};
use crate::os::proc;
use crate::os::sock::Server;
use crate::os::spawn;
use crate::os::sys;
use crate::protocol::{
    self, AppView, ControlOp, Reassembly, Reply, Request, ScaleTo, StartItem, Verb,
};
use crate::spec::config::AppSpec;
use crate::store::{self, State};
use crate::table::{App, Table};

// The daemon's other rooms, as child modules so they share its private state:
// answering requests, and surviving its own death.
#[path = "requests.rs"]
mod requests;
#[path = "survive.rs"]
mod survive;

const TOK_SOCK: u64 = 0;
const TOK_CHLD: u64 = 1;
const TOK_TERM: u64 = 2;
const TOK_HUP: u64 = 3;
const TOK_HOLDER: u64 = 4;
const TOK_USR2: u64 = 5;
const TOK_WATCH: u64 = 6;
const TOK_FIRST_PIPE: u64 = 16;

/// Bytes read from one pipe per loop turn before the others get their turn.
const PIPE_TURN: usize = 1 << 20;
/// Datagrams taken from the control socket per loop turn.
const SOCK_TURN: usize = 256;
/// Exits handled per loop turn. Each may respawn an app that can exit again before the
/// reaping loop ends: without a bound, a crash loop of many apps keeps the loop reaping
/// and spawning forever and no other fd is served.
const REAP_TURN: usize = 32;
/// A reply that a client does not take for this long is dropped.
const OUTBOX_PATIENCE_MS: u64 = 5_000;
const OUTBOX_RETRY_MS: u64 = 2;
const PARTIAL_PATIENCE_MS: u64 = 10_000;
/// How long a /proc sample of an app serves: `ls` right after `ls` costs no /proc reads,
/// and CPU% is measured over at least this interval (pm2's monit refreshes each second).
const SAMPLE_MS: u64 = 1000;
/// A process younger than this is still loading; its samples are not reused.
const YOUNG_MS: u64 = 200;
/// The longest a burst of exits may leave state.json behind the table.
const SAVE_BURST_MS: u64 = 200;

/// One app's CPU and memory as last read from /proc.
struct Sample {
    pid: u32,
    at: u64,
    ticks: u64,
    cpu: f64,
    rss: u64,
}

struct Pipe {
    fd: OwnedFd,
    app: u32,
    err: bool,
    /// The line still waiting for its newline (only when lines are assembled); empty and
    /// unallocated otherwise.
    partial: Vec<u8>,
    /// Its name at the fd holder: `ID.PID.o|e`.
    key: String,
}

/// A process adopted from an earlier daemon: not our child, so it is watched with a pidfd.
struct Adopted {
    app: u32,
    pid: u32,
    fd: OwnedFd,
}

/// Descriptors a re-executed daemon (`ward update`) inherits instead of opening anew.
#[derive(Default, Clone, Copy)]
pub struct Inherited {
    pub lock: Option<i32>,
    pub sock: Option<i32>,
}

struct Io {
    out: Sink,
    err: Sink,
    /// pm2's `log_file`: stdout and stderr together, line by line.
    all: Option<Sink>,
    /// Prefix every line with the capture time in this format.
    stamp: Option<crate::spec::datefmt::DateFormat>,
    /// Copies of the app write to the same files (`merge_logs`).
    shared: bool,
}

impl Io {
    /// Lines are assembled (held until their newline) when they get a timestamp or when
    /// several streams share a file, so that no line is cut by another's write; otherwise
    /// bytes go through as they come.
    fn by_line(&self) -> bool {
        self.stamp.is_some() || self.all.is_some() || self.shared
    }

    fn sinks(&mut self) -> impl Iterator<Item = &mut Sink> {
        [&mut self.out, &mut self.err]
            .into_iter()
            .chain(self.all.as_mut())
    }
}

struct Pending {
    to: UnixAddr,
    id: u64,
    waits: Vec<u32>,
    notes: Vec<String>,
    kill: bool,
}

pub struct Daemon {
    home: Home,
    epoll: Epoll,
    server: Server,
    sig_chld: UnixStream,
    sig_term: UnixStream,
    sig_hup: UnixStream,
    sig_usr2: UnixStream,
    table: Table,
    /// (deadline, app id) for every app whose `run.deadline` is set.
    timers: BTreeSet<(u64, u32)>,
    /// Live main pid → app id.
    pids: HashMap<u32, u32>,
    /// App id → process group of its current or last process.
    groups: HashMap<u32, u32>,
    pipes: HashMap<u64, Pipe>,
    next_token: u64,
    io: HashMap<u32, Io>,
    /// One read buffer serves every pipe.
    buf: Vec<u8>,
    /// Assembled lines of one read, written with one write per file.
    batch: Vec<u8>,
    stamp: String,
    clock: crate::os::sys::Clock,
    log_defaults: logs::Defaults,
    dgram: Vec<u8>,
    reasm: Reassembly<UnixAddr>,
    outbox: Outbox<UnixAddr>,
    pending: Vec<Pending>,
    /// The last /proc sample of each running app (see `views`).
    samples: HashMap<u32, Sample>,
    dirty: bool,
    state_failing: bool,
    exiting: bool,
    child_nofile: Option<(u64, u64)>,
    uid: u32,
    clk_tck: u64,
    /// Cron and memory-check timers.
    sched: Schedules,
    watcher: Watcher,
    /// The watcher's inotify fd is in the epoll set.
    watch_polled: bool,
    /// Exits are left to reap (the last turn hit `REAP_TURN`).
    reap_more: bool,
    /// Starts apps without the cost of the daemon's many descriptors (see forker.rs).
    forker: Option<crate::os::forker::Forker>,
    /// Monotonic ms of the last state.json write.
    last_save: u64,
    holder: Option<holder::Link>,
    /// Pipes (by token) to hand to the holder, and keys it may drop, at the end of the turn.
    hold_add: Vec<u64>,
    /// Apps whose stdin pipe the holder should get too.
    hold_add_stdin: Vec<u32>,
    /// App id → (holder key, write end of its stdin pipe). Not in the epoll set: an unused
    /// stdin costs nothing.
    stdins: HashMap<u32, (String, OwnedFd)>,
    hold_del: Vec<String>,
    adopted: HashMap<u64, Adopted>,
    /// `ward update`: the binary to re-execute once the reply is out.
    update_to: Option<String>,
    lock_fd: i32,
}

fn log(msg: impl std::fmt::Display) {
    super::daemonlog::line(msg);
}

/// Runs the daemon until `ward kill` or a terminating signal. `spawned` means a client
/// started it: it leaves the client's session.
pub fn run(
    home: Home,
    spawned: bool,
    resurrect: bool,
    wait_lock: bool,
    inherited: Inherited,
) -> Result<()> {
    home.create()?;
    let lock = match inherited.lock {
        // The daemon we were exec'd from left this fd open for us.
        Some(fd) => File::from(sys::own_fd(fd)),
        None => File::create(home.lock_file())
            .map_err(|e| Error::unable("create the lock file", crate::error::os(&e)))?,
    };
    // A daemon that was just SIGKILLed may still hold the lock for a moment (the kernel
    // releases its files after its sockets have already reported EOF to the holder), so
    // one started by the holder tries for a while before deciding that another daemon
    // serves this home. One started by a client gives way at once: it lost a race.
    let until = sys::mono_ms() + if wait_lock { 2000 } else { 0 };
    let mut lock = lock;
    let _lock = loop {
        match nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(l) => break l,
            Err((f, Errno::EWOULDBLOCK)) => {
                if sys::mono_ms() > until {
                    // Another daemon serves this home; a client raced us to start it.
                    return Ok(());
                }
                lock = f;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err((_, e)) => return Err(Error::unable("lock the home", e.desc())),
        }
    };
    if spawned && inherited.sock.is_none() {
        let _ = nix::unistd::setsid();
    }
    let lock_fd = _lock.as_raw_fd();
    let mut d = Daemon::new(home, inherited.sock, lock_fd)?;
    d.restore();
    if resurrect {
        match d.resurrect() {
            Ok((notes, _)) => notes.iter().for_each(log),
            Err(e) => log(e),
        }
    }
    // For systemd's Type=notify: the saved apps are started; units after us may go.
    sys::notify_ready();
    d.run_loop();
    if let Some(exe) = d.update_to.take() {
        d.reexec(&exe);
    }
    d.shutdown();
    Ok(())
}

impl Daemon {
    fn new(home: Home, sock_fd: Option<i32>, lock_fd: i32) -> Result<Daemon> {
        let _ = std::fs::write(home.pid_file(), format!("{}\n", std::process::id()));
        if !sys::become_subreaper() {
            log("cannot become a child subreaper; orphaned grandchildren go to init");
        }
        let child_nofile = match sys::raise_nofile() {
            Some((before, now)) => {
                if now < 4096 {
                    log(format_args!(
                        "the file limit is {now}: at two pipes per app, about {} apps fit",
                        now.saturating_sub(64) / 2
                    ));
                }
                Some(before)
            }
            None => None,
        };
        let server = match sock_fd {
            Some(fd) => Server::inherit(fd),
            None => Server::bind(&home.socket())?,
        };
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| Error::unable("create an epoll instance", e.desc()))?;
        let sig_chld = sys::signal_pipe(&[libc::SIGCHLD])?;
        let sig_term = sys::signal_pipe(&[libc::SIGTERM, libc::SIGINT, libc::SIGQUIT])?;
        let sig_hup = sys::signal_pipe(&[libc::SIGHUP])?;
        // pm2's daemon re-opens its log files on SIGUSR2 (for logrotate's postrotate).
        let sig_usr2 = sys::signal_pipe(&[libc::SIGUSR2])?;
        let add = |fd: std::os::fd::BorrowedFd, tok| {
            epoll
                .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, tok))
                .map_err(|e| Error::unable("watch a descriptor", e.desc()))
        };
        add(server.as_fd(), TOK_SOCK)?;
        add(sig_chld.as_fd(), TOK_CHLD)?;
        add(sig_term.as_fd(), TOK_TERM)?;
        add(sig_hup.as_fd(), TOK_HUP)?;
        add(sig_usr2.as_fd(), TOK_USR2)?;
        let log_defaults = logs::Defaults::load(&home.config()).unwrap_or_else(|e| {
            log(format_args!("{e}; no log rotation defaults"));
            logs::Defaults::default()
        });
        super::daemonlog::init(&home.daemon_log(), &log_defaults);
        let home_root = home.root.clone();
        log(format_args!(
            "ward {} daemon started, pid {}, home {}",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            home.root.display()
        ));
        Ok(Daemon {
            home,
            epoll,
            server,
            sig_chld,
            sig_term,
            sig_hup,
            sig_usr2,
            table: Table::default(),
            timers: BTreeSet::new(),
            pids: HashMap::new(),
            groups: HashMap::new(),
            pipes: HashMap::new(),
            next_token: TOK_FIRST_PIPE,
            io: HashMap::new(),
            buf: vec![0; 64 * 1024],
            batch: Vec::new(),
            stamp: String::new(),
            clock: crate::os::sys::Clock::default(),
            log_defaults,
            dgram: vec![0; protocol::HEADER + protocol::FRAME + 1024],
            reasm: Reassembly::default(),
            outbox: Outbox::default(),
            pending: Vec::new(),
            samples: HashMap::new(),
            dirty: false,
            state_failing: false,
            exiting: false,
            child_nofile,
            uid: sys::uid(),
            clk_tck: proc::clock_ticks(),
            sched: Schedules::new(Schedules::interval_from_env()),
            watcher: Watcher::new(vec![home_root]),
            watch_polled: false,
            reap_more: false,
            // Started now, while the daemon holds no app descriptors.
            forker: crate::os::forker::Forker::start(),
            last_save: 0,
            holder: None,
            hold_add: Vec::new(),
            hold_add_stdin: Vec::new(),
            stdins: HashMap::new(),
            hold_del: Vec::new(),
            adopted: HashMap::new(),
            update_to: None,
            lock_fd,
        })
    }

    fn run_loop(&mut self) {
        let mut events = vec![EpollEvent::empty(); 256];
        loop {
            let timeout = self.timeout();
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(Errno::EINTR) => 0,
                Err(e) => {
                    log(format_args!("epoll_wait failed: {}", e.desc()));
                    0
                }
            };
            for ev in &events[..n] {
                match ev.data() {
                    TOK_SOCK => self.on_socket(),
                    TOK_CHLD => {
                        drain(&self.sig_chld);
                        self.on_sigchld();
                    }
                    TOK_TERM => {
                        drain(&self.sig_term);
                        if !self.exiting {
                            log("terminating signal received: stopping every app");
                            self.begin_kill(None);
                        }
                    }
                    TOK_HUP => drain(&self.sig_hup),
                    TOK_USR2 => {
                        drain(&self.sig_usr2);
                        log("SIGUSR2: re-opening every log file");
                        self.reload_logs();
                    }
                    TOK_WATCH => {
                        for note in self.watcher.read(sys::mono_ms()) {
                            log(note);
                        }
                    }
                    TOK_HOLDER => self.on_holder_gone(),
                    tok if self.adopted.contains_key(&tok) => self.on_adopted_exit(tok),
                    tok => self.on_pipe(tok),
                }
            }
            if self.reap_more {
                self.on_sigchld();
            }
            self.fire_timers();
            if self.watcher.busy() {
                // A large tree being watched: one more batch, then the next turn.
                for note in self.watcher.work() {
                    log(note);
                }
            }
            self.answer_pending();
            self.flush_outbox();
            self.flush_holder();
            // During a burst of exits (more to reap on the next turn) the table is written
            // at most every SAVE_BURST_MS rather than after each batch: 1,000 apps stopping
            // would otherwise rewrite state.json thirty times.
            let burst =
                self.reap_more && sys::mono_ms().saturating_sub(self.last_save) < SAVE_BURST_MS;
            if self.dirty && !self.exiting && !burst {
                self.save();
                self.last_save = sys::mono_ms();
            }
            if self.update_to.is_some() && self.outbox.is_empty() {
                return;
            }
            if self.exiting && self.pending.is_empty() && self.table.is_empty() {
                // Let the last reply out, within reason.
                let until = sys::mono_ms() + 1000;
                while !self.outbox.is_empty() && sys::mono_ms() < until {
                    self.flush_outbox();
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                return;
            }
        }
    }

    fn timeout(&self) -> EpollTimeout {
        if self.reap_more || self.watcher.busy() {
            return EpollTimeout::ZERO;
        }
        let now = sys::mono_ms();
        let mut next: Option<u64> = [
            self.timers.first().map(|&(d, _)| d),
            self.sched.next_deadline(),
            self.watcher.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min();
        if !self.outbox.is_empty() {
            next = Some(next.map_or(now + OUTBOX_RETRY_MS, |d| d.min(now + OUTBOX_RETRY_MS)));
        }
        if !self.reasm.is_empty() {
            let at = now + PARTIAL_PATIENCE_MS;
            next = Some(next.map_or(at, |d| d.min(at)));
        }
        match next {
            None => EpollTimeout::NONE,
            Some(at) => {
                let ms = at.saturating_sub(now).min(60_000) as u16;
                EpollTimeout::from(ms)
            }
        }
    }

    fn shutdown(&mut self) {
        if let Some(h) = &self.holder {
            h.quit();
        }
        let _ = std::fs::remove_file(self.home.state());
        let _ = std::fs::remove_file(self.home.socket());
        let _ = std::fs::remove_file(self.home.pid_file());
        log("daemon exited");
    }

    fn save(&mut self) {
        #[derive(Serialize)]
        struct StateRef<'a> {
            next_id: u32,
            apps: Vec<&'a App>,
        }
        let state = StateRef {
            next_id: self.table.next_id(),
            apps: self.table.iter().collect(),
        };
        let res = serde_json::to_vec(&state)
            .map_err(|e| Error::unable("encode the state", e))
            .and_then(|b| store::write_atomic(&self.home.state(), &b));
        match res {
            Ok(()) => {
                self.dirty = false;
                if self.state_failing {
                    log("state.json is written again");
                    self.state_failing = false;
                }
            }
            Err(e) => {
                // Keep `dirty`: the next turn tries again.
                if !self.state_failing {
                    log(format_args!("{e}"));
                    self.state_failing = true;
                }
            }
        }
    }

    // ---- events ----------------------------------------------------------------------

    /// Feeds one event to an app's lifecycle and carries out what it asks for.
    fn apply(&mut self, id: u32, event: Event) {
        let mut queue = VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            let now = sys::mono_ms();
            let Some(app) = self.table.get_mut(id) else {
                return;
            };
            let before = app.run.deadline;
            // A memory sample under the limit changes nothing: no state write each check.
            let sample = matches!(event, Event::Memory { .. });
            let actions = app.run.handle(&app.spec, now, event);
            let after = app.run.deadline;
            let main_pid = app.run.pid;
            if before != after {
                if let Some(d) = before {
                    self.timers.remove(&(d, id));
                }
                if let Some(d) = after {
                    self.timers.insert((d, id));
                }
            }
            if !(sample && actions.is_empty()) {
                self.dirty = true;
            }
            for action in actions {
                use crate::lifecycle::Action;
                match action {
                    Action::Spawn => queue.push_back(self.spawn(id)),
                    Action::Signal(sig) => {
                        if let Some(&pgid) = self.groups.get(&id) {
                            if let Err(e) = sys::kill_group(pgid, sig) {
                                log(format_args!(
                                    "unable to signal process group {pgid}: {}",
                                    e.desc()
                                ));
                            }
                        }
                    }
                    Action::SignalMain(sig) => {
                        if let Some(pid) = main_pid {
                            if let Err(e) = sys::kill_pid(pid, sig) {
                                log(format_args!("unable to signal pid {pid}: {}", e.desc()));
                            }
                        }
                    }
                    Action::Arm(_) | Action::Disarm => {} // mirrored from `run.deadline`
                    Action::Remove => {
                        self.remove(id);
                        return;
                    }
                    Action::Log(line) => log(line),
                }
            }
        }
    }

    fn spawn(&mut self, id: u32) -> Event {
        let Some(app) = self.table.get(id) else {
            return Event::SpawnFailed("the app is gone".into());
        };
        let vars = crate::spec::config::pm2_vars(id, &app.spec, &self.home.root.to_string_lossy());
        let extra: Vec<(&str, String)> =
            vars.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        match spawn::spawn(&app.spec, &extra, self.child_nofile, &mut self.forker) {
            Ok(s) => {
                let name = app.spec.name.clone();
                self.pids.insert(s.pid, id);
                self.groups.insert(id, s.pid);
                let start = proc::read_stat(s.pid).map(|st| st.start).unwrap_or(0);
                if let Some(app) = self.table.get_mut(id) {
                    app.run.pid_start = start;
                }
                self.samples.remove(&id);
                self.watch_pipe(s.stdout, id, false, format!("{id}.{}.o", s.pid), true);
                self.watch_pipe(s.stderr, id, true, format!("{id}.{}.e", s.pid), true);
                self.set_stdin(id, format!("{id}.{}.i", s.pid), s.stdin);
                let pid_path = self.pid_path(id);
                if let Err(e) = std::fs::write(&pid_path, format!("{}", s.pid)) {
                    log(format_args!(
                        "unable to write {}: {}",
                        pid_path.display(),
                        crate::error::os(&e)
                    ));
                }
                self.hold_add_stdin.push(id);
                log(format_args!("started {name} (id {id}), pid {}", s.pid));
                Event::Spawned {
                    pid: s.pid,
                    wall: sys::wall_ms(),
                }
            }
            Err(why) => Event::SpawnFailed(why),
        }
    }

    fn watch_pipe(&mut self, fd: OwnedFd, app: u32, err: bool, key: String, hold: bool) {
        if let Err(e) = nix::fcntl::fcntl(
            fd.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        ) {
            log(format_args!(
                "unable to make a pipe non-blocking: {}",
                e.desc()
            ));
        }
        let tok = self.next_token;
        self.next_token += 1;
        if let Err(e) = self
            .epoll
            .add(fd.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, tok))
        {
            log(format_args!("unable to watch an output pipe: {}", e.desc()));
            return;
        }
        self.pipes.insert(
            tok,
            Pipe {
                fd,
                app,
                err,
                key,
                partial: Vec::new(),
            },
        );
        if hold {
            self.hold_add.push(tok);
        }
    }

    fn remove(&mut self, id: u32) {
        self.sched.remove_app(id);
        self.set_watch(id, false);
        self.gone(id);
        if let Some(app) = self.table.remove(id) {
            log(format_args!("deleted {} (id {id})", app.spec.name));
            if let Some(d) = app.run.deadline {
                self.timers.remove(&(d, id));
            }
        }
        self.groups.remove(&id);
        self.io.remove(&id);
        self.samples.remove(&id);
        self.close_stdin(id);
        // Its output pipes reach EOF once its process group is gone (it was killed on the
        // way here); they are closed then, and what comes meanwhile has no file to go to.
        self.dirty = true;
    }

    /// pm2's per-app pid file: the app's `pid_file`, or `pids/NAME-ID.pid`.
    fn pid_path(&self, id: u32) -> std::path::PathBuf {
        match self.table.get(id) {
            Some(a) if !a.spec.pid_file.is_empty() => a.spec.pid_file.clone().into(),
            Some(a) => self.home.pids().join(format!(
                "{}-{id}.pid",
                crate::spec::config::log_stem(&a.spec.name)
            )),
            None => self.home.pids().join(format!("unknown-{id}.pid")),
        }
    }

    /// The app's process is gone: its stdin pipe and pid file go too.
    fn gone(&mut self, id: u32) {
        self.close_stdin(id);
        let _ = std::fs::remove_file(self.pid_path(id));
    }

    fn close_stdin(&mut self, id: u32) {
        if let Some((key, _fd)) = self.stdins.remove(&id) {
            self.hold_del.push(key);
        }
    }

    fn set_stdin(&mut self, id: u32, key: String, fd: OwnedFd) {
        let _ = nix::fcntl::fcntl(
            fd.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        if let Some((old, _)) = self.stdins.insert(id, (key, fd)) {
            self.hold_del.push(old);
        }
    }

    /// `ward send`: one line to the app's stdin, without ever waiting on the app.
    fn send_line(&mut self, id: u32, line: &str) -> std::result::Result<(), String> {
        let name = self
            .table
            .get(id)
            .map(|a| a.spec.name.clone())
            .unwrap_or_default();
        let Some((_, fd)) = self.stdins.get(&id) else {
            return Err(format!(
                "{name} (id {id}) is not running, so it has no stdin"
            ));
        };
        let mut data = line.as_bytes().to_vec();
        data.push(b'\n');
        match nix::unistd::write(fd, &data) {
            Ok(n) if n == data.len() => Ok(()),
            Ok(_) | Err(Errno::EAGAIN) => Err(format!(
                "the stdin pipe of {name} (id {id}) is full: the app is not reading it"
            )),
            Err(Errno::EPIPE) => Err(format!("{name} (id {id}) has closed its stdin")),
            Err(e) => Err(format!(
                "unable to write to the stdin of {name}: {}",
                e.desc()
            )),
        }
    }

    fn close_pipe(&mut self, tok: u64) {
        if let Some(mut p) = self.pipes.remove(&tok) {
            let _ = self.epoll.delete(p.fd.as_fd());
            if !p.partial.is_empty() {
                self.batch.clear();
                logs::finish(&mut p.partial, &mut self.batch);
                if let Some(io) = self.io.get_mut(&p.app) {
                    let sink = if p.err { &mut io.err } else { &mut io.out };
                    let notes = [
                        sink.write(&self.batch),
                        io.all.as_mut().and_then(|a| a.write(&self.batch)),
                    ];
                    for n in notes.into_iter().flatten() {
                        log(n);
                    }
                }
                self.after_rotation(p.app);
            }
            self.hold_del.push(p.key);
        }
    }

    /// lifecycle.rs logs the exits it reacts to; an exit that was asked for (stop, restart,
    /// delete) gets its line here, so ward.log shows every exit.
    fn log_requested_exit(&self, id: u32, exit: crate::lifecycle::Exit) {
        if let Some(app) = self
            .table
            .get(id)
            .filter(|a| a.run.status == Status::Stopping)
        {
            let why = match app.run.then {
                crate::lifecycle::Then::Rest => "stopped",
                crate::lifecycle::Then::Start => "restarting",
                crate::lifecycle::Then::Delete => "deleted",
            };
            log(format_args!(
                "{} (id {id}) {}: {why}",
                app.spec.name,
                crate::lifecycle::describe_exit(exit)
            ));
        }
    }

    fn on_sigchld(&mut self) {
        self.reap_more = false;
        for n in 0.. {
            if n == REAP_TURN {
                self.reap_more = true;
                return;
            }
            let Some((pid, exit)) = sys::reap() else {
                return;
            };
            if let Some(id) = self.pids.remove(&pid) {
                self.log_requested_exit(id, exit);
                self.adopted.retain(|_, a| a.pid != pid);
                self.gone(id);
                self.apply(
                    id,
                    Event::Exited {
                        exit,
                        wall: sys::wall_ms(),
                    },
                );
                // A respawn waits for the child's exec, which takes long on a loaded
                // machine; serve the control socket between them (one non-blocking recv)
                // so that `ward ls` answers promptly during a crash loop.
                self.on_socket();
            }
            // Other pids are grandchildren that came to us as subreaper: reaped, done.
        }
    }

    fn fire_timers(&mut self) {
        let now = sys::mono_ms();
        while let Some(&(at, id)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, id));
            if let Some(app) = self.table.get_mut(id) {
                if app.run.deadline == Some(at) {
                    app.run.deadline = None;
                    self.apply(id, Event::Deadline);
                }
            }
        }
        if !self.reasm.is_empty() {
            self.reasm.expire(now.saturating_sub(PARTIAL_PATIENCE_MS));
        }
        for (id, path) in self.watcher.due(now) {
            self.apply(id, Event::Changed(path));
        }
        let (crons, memory) = self.sched.due(now);
        for id in crons {
            self.apply(id, Event::Cron);
        }
        if memory {
            self.check_memory();
        }
    }

    /// One pass over /proc for every app with a memory limit; each app's state machine
    /// decides what its figure means.
    fn check_memory(&mut self) {
        let apps: Vec<(u32, u32)> = self
            .sched
            .memory_apps()
            .filter(|&id| {
                self.table
                    .get(id)
                    .is_some_and(|a| a.run.status == Status::Online)
            })
            .filter_map(|id| self.groups.get(&id).map(|&g| (id, g)))
            .collect();
        if apps.is_empty() {
            return;
        }
        let wanted: HashMap<u32, ()> = apps.iter().map(|&(_, g)| (g, ())).collect();
        let usage = proc::usage_by_group(&wanted);
        for (id, g) in apps {
            if let Some(u) = usage.get(&g) {
                self.apply(id, Event::Memory { rss: u.rss });
            }
        }
    }

    /// Arms an app's cron and memory timers and its watch, from its spec.
    fn arm_policies(&mut self, id: u32) {
        let Some(app) = self.table.get(id) else {
            return;
        };
        if let Err(e) = self.sched.set_app(id, &app.spec, sys::mono_ms()) {
            log(format_args!("{}: {e}", app.spec.name));
        }
        let watch = !app.spec.watch.is_empty();
        self.set_watch(id, watch);
    }

    /// Starts or stops watching an app's files, and keeps the inotify fd in the epoll set
    /// exactly while some app watches.
    fn set_watch(&mut self, id: u32, on: bool) {
        if !on {
            self.watcher.remove(id);
        } else if let Some(app) = self.table.get(id) {
            let spec = &app.spec;
            // Absolute paths: pm2's `watch: true` became the app's folder when the app was
            // registered (client or ecosystem reader).
            let roots: Vec<std::path::PathBuf> = spec
                .watch
                .iter()
                .map(|w| std::path::Path::new(&spec.cwd).join(w))
                .collect();
            let name = spec.name.clone();
            match self
                .watcher
                .add(id, roots, &spec.ignore_watch, spec.watch_delay)
            {
                Ok(notes) => {
                    for n in notes {
                        log(format_args!("{name}: {n}"));
                    }
                }
                Err(e) => log(format_args!("{name}: {e}")),
            }
        }
        match (self.watcher.fd(), self.watch_polled) {
            (Some(fd), false) => {
                match self
                    .epoll
                    .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, TOK_WATCH))
                {
                    Ok(()) => self.watch_polled = true,
                    Err(e) => log(format_args!("unable to poll inotify: {}", e.desc())),
                }
            }
            // Closing the fd took it out of the epoll set.
            (None, true) => self.watch_polled = false,
            _ => {}
        }
    }

    /// `reset`, `sendSignal`, `stop --watch`, `restart --watch`.
    fn on_control(&mut self, from: UnixAddr, id: u64, op: ControlOp, targets: Vec<String>) {
        let ids = match self.table.resolve_all(&targets) {
            Ok(ids) => ids,
            Err(e) => {
                let message = e.to_string();
                return self.reply_raw(&from, id, &Reply::Error { message });
            }
        };
        let mut notes = Vec::new();
        match op {
            ControlOp::Reset => {
                for &app in &ids {
                    self.apply(app, Event::Reset);
                    if let Some(a) = self.table.get(app) {
                        notes.push(format!("[{}]({app}) restart counters reset ✓", a.spec.name));
                    }
                }
            }
            ControlOp::Signal { signal } => {
                let sig = crate::spec::config::signal_name(signal);
                // All or nothing: a failed request changes nothing.
                let idle: Vec<String> = ids
                    .iter()
                    .filter_map(|&i| self.table.get(i))
                    .filter(|a| a.run.pid.is_none() || !a.run.status.is_running())
                    .map(|a| format!("{} (id {})", a.spec.name, a.id))
                    .collect();
                if !idle.is_empty() {
                    let message = format!(
                        "cannot send {sig}: not running: {}; nothing was sent",
                        idle.join(", ")
                    );
                    return self.reply_raw(&from, id, &Reply::Error { message });
                }
                for &app in &ids {
                    self.apply(app, Event::Signal(signal));
                    if let Some(a) = self.table.get(app) {
                        notes.push(format!(
                            "[{}]({app}) {sig} sent to pid {} ✓",
                            a.spec.name,
                            a.run.pid.unwrap_or(0)
                        ));
                    }
                }
            }
            ControlOp::StopWatch | ControlOp::RestartWatch => {
                for &app in &ids {
                    let Some(a) = self.table.get_mut(app) else {
                        continue;
                    };
                    let on = op == ControlOp::RestartWatch && a.spec.watch.is_empty();
                    // Turned on again, it watches the app's folder (pm2's `watch: true`).
                    a.spec.watch = if on {
                        vec![a.spec.cwd.clone()]
                    } else {
                        Vec::new()
                    };
                    self.dirty = true;
                    self.set_watch(app, on);
                }
                let verb = if op == ControlOp::StopWatch {
                    Verb::Stop
                } else {
                    Verb::Restart
                };
                return self.on_act(from, id, verb, targets, None);
            }
        }
        self.reply_when_settled(from, id, ids, notes);
    }

    /// Copies what a pipe holds to the app's log files, up to `PIPE_TURN` bytes per turn
    /// (the pipe stays ready, so the next turn continues after the other fds had theirs).
    ///
    /// Without timestamps or a combined file the bytes go through as read: one read and one
    /// write per 64 KiB. splice(2) from the pipe to the file was measured against this and
    /// gave no clear gain (same daemon CPU per GB within noise), while it refuses O_APPEND
    /// files (so an external truncation would leave a hole) and hides line boundaries from
    /// rotation; read + write stayed.
    fn on_pipe(&mut self, tok: u64) {
        let Some(pipe) = self.pipes.get_mut(&tok) else {
            return;
        };
        let (app, err) = (pipe.app, pipe.err);
        let mut taken = 0;
        let mut eof = false;
        let mut notes = Vec::new();
        while taken < PIPE_TURN {
            let n = match nix::unistd::read(pipe.fd.as_raw_fd(), &mut self.buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break,
                Err(_) => {
                    eof = true;
                    break;
                }
            };
            taken += n;
            let Some(io) = self.io.get_mut(&app) else {
                continue; // nowhere to go: drained and dropped
            };
            let data = &self.buf[..n];
            if !io.by_line() {
                let sink = if err { &mut io.err } else { &mut io.out };
                notes.extend(sink.write(data));
                continue;
            }
            let own_discards = if err {
                io.err.discards()
            } else {
                io.out.discards()
            };
            if own_discards && io.all.as_ref().is_none_or(|a| a.discards()) {
                continue;
            }
            self.stamp.clear();
            if let Some(f) = &io.stamp {
                self.clock.render(f, sys::wall_ms(), &mut self.stamp);
                self.stamp.push_str(": ");
            }
            self.batch.clear();
            logs::assemble(
                &mut pipe.partial,
                data,
                self.stamp.as_bytes(),
                &mut self.batch,
            );
            if !self.batch.is_empty() {
                let sink = if err { &mut io.err } else { &mut io.out };
                notes.extend(sink.write(&self.batch));
                if let Some(all) = io.all.as_mut() {
                    notes.extend(all.write(&self.batch));
                }
            }
        }
        for n in notes {
            log(n);
        }
        self.after_rotation(app);
        if eof {
            self.close_pipe(tok);
        }
    }

    /// When one of `app`'s files was rotated, every other sink of the same path (copies
    /// that merge their logs) moves to the fresh file too, instead of writing on into the
    /// rotated one. Rotations are rare, so the scan over all apps is fine.
    fn after_rotation(&mut self, app: u32) {
        let Some(io) = self.io.get_mut(&app) else {
            return;
        };
        let paths: Vec<std::path::PathBuf> = io
            .sinks()
            .filter_map(|s| s.take_rotated().then(|| s.path.clone()))
            .collect();
        if paths.is_empty() {
            return;
        }
        let mut notes = Vec::new();
        for (&other, io) in self.io.iter_mut() {
            if other == app {
                continue;
            }
            for s in io.sinks() {
                if paths.contains(&s.path) {
                    notes.extend(s.reopen());
                }
            }
        }
        for n in notes {
            log(n);
        }
    }

    /// `ward reloadLogs` and SIGUSR2: every log file is opened again by its path, for an
    /// external logrotate that renamed them (and a path that was failing may work now).
    fn reload_logs(&mut self) -> usize {
        let mut count = 0;
        let mut notes = Vec::new();
        for io in self.io.values_mut() {
            for sink in io.sinks() {
                if !sink.discards() {
                    count += 1;
                    notes.extend(sink.reopen());
                }
            }
        }
        // ward.log too: after an external logrotate moved it, the daemon writes anew.
        notes.extend(super::daemonlog::reopen());
        for n in notes {
            log(n);
        }
        count
    }

    /// `ward flush`: empties the log files of `ids`, and the daemon's own log when `all`.
    fn flush_logs(&mut self, ids: &[u32], daemon_log: bool) -> Vec<String> {
        let mut done = Vec::new();
        let mut notes = Vec::new();
        for id in ids {
            if let Some(io) = self.io.get_mut(id) {
                for sink in io.sinks() {
                    if !sink.discards() {
                        notes.extend(sink.truncate());
                        done.push(format!("Flushing {}", sink.path.display()));
                    }
                }
            }
        }
        if daemon_log {
            let path = self.home.daemon_log();
            // The daemon's stderr is this file, opened for appending: it continues at 0.
            if let Err(e) = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(0))
            {
                if e.kind() != std::io::ErrorKind::NotFound {
                    notes.push(format!(
                        "unable to flush {}: {}",
                        path.display(),
                        crate::error::os(&e)
                    ));
                }
            }
            done.push(format!("Flushing {}", path.display()));
        }
        for n in notes {
            log(n);
        }
        done
    }
}

fn drain(s: &UnixStream) {
    let mut buf = [0u8; 64];
    let mut r = s;
    while let Ok(n) = r.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
}
