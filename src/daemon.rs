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

use crate::config::AppSpec;
use crate::error::{Error, Result};
use crate::holder;
use crate::home::Home;
use crate::instances;
use crate::lifecycle::{Event, Run, Status};
use crate::logs::{self, Sink};
use crate::outbox::{Outbox, Sent};
use crate::proc;
use crate::protocol::{
    self, AppView, ControlOp, Reassembly, Reply, Request, ScaleTo, StartItem, Verb,
};
use crate::schedule::Schedules;
use crate::sock::Server;
use crate::spawn;
use crate::store::{self, State};
use crate::sys;
use crate::table::{App, Table};
use crate::watch::Watcher;

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
    stamp: Option<crate::datefmt::DateFormat>,
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
    clock: crate::datefmt::Clock,
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
    eprintln!("{} {msg}", sys::local_timestamp());
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
        // SAFETY: the daemon we were exec'd from left this fd open for us; nothing else
        // in this process owns it.
        #[allow(unsafe_code)]
        Some(fd) => unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) },
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
    crate::startup::notify_ready();
    d.run_loop();
    if let Some(exe) = d.update_to.take() {
        d.reexec(&exe);
    }
    d.shutdown();
    Ok(())
}

fn signal_pipe(signals: &[i32]) -> Result<UnixStream> {
    let (read, write) = UnixStream::pair().map_err(|e| Error::unable("create a signal pipe", e))?;
    read.set_nonblocking(true)
        .map_err(|e| Error::unable("create a signal pipe", e))?;
    for &sig in signals {
        let w = write
            .try_clone()
            .map_err(|e| Error::unable("create a signal pipe", e))?;
        signal_hook::low_level::pipe::register(sig, w)
            .map_err(|e| Error::unable(format_args!("catch signal {sig}"), e))?;
    }
    Ok(read)
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
        let sig_chld = signal_pipe(&[libc::SIGCHLD])?;
        let sig_term = signal_pipe(&[libc::SIGTERM, libc::SIGINT, libc::SIGQUIT])?;
        let sig_hup = signal_pipe(&[libc::SIGHUP])?;
        // pm2's daemon re-opens its log files on SIGUSR2 (for logrotate's postrotate).
        let sig_usr2 = signal_pipe(&[libc::SIGUSR2])?;
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
            clock: crate::datefmt::Clock::default(),
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

    /// Connects to the fd holder (starting it if needed) and returns the pipes it keeps.
    fn connect_holder(&mut self) -> Vec<(String, OwnedFd)> {
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
    fn on_holder_gone(&mut self) {
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
    fn flush_holder(&mut self) {
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
    fn reexec(&mut self, exe: &str) {
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
    fn restore(&mut self) {
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
            self.answer_pending();
            self.flush_outbox();
            self.flush_holder();
            if self.dirty && !self.exiting {
                self.save();
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
        if self.reap_more {
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
        let vars = crate::config::pm2_vars(id, &app.spec, &self.home.root.to_string_lossy());
        let extra: Vec<(&str, String)> =
            vars.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        match spawn::spawn(&app.spec, &extra, self.child_nofile) {
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
                crate::config::log_stem(&a.spec.name)
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

    /// An adopted process ended. If it happens to be our child (after `ward update`), reap
    /// it for its real status; otherwise its status cannot be known.
    fn on_adopted_exit(&mut self, tok: u64) {
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
                let sig = crate::config::signal_name(signal);
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
        self.pending.push(Pending {
            to: from,
            id,
            waits: ids,
            notes,
            kill: false,
        });
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

    // ---- requests ----------------------------------------------------------------------

    fn on_socket(&mut self) {
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

    fn on_request(&mut self, from: UnixAddr, id: u64, req: Request) {
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

    fn on_save(&mut self, from: UnixAddr, id: u64, force: bool) {
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
                .map(|v| crate::render::jlist_entry(v, &home, &user)["pm2_env"].clone())
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

    fn on_resurrect(&mut self, from: UnixAddr, id: u64) {
        match self.resurrect() {
            Ok((notes, waits)) => self.pending.push(Pending {
                to: from,
                id,
                waits,
                notes,
                kill: false,
            }),
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
    fn resurrect(&mut self) -> Result<(Vec<String>, Vec<u32>)> {
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
            if let Err(e) = crate::config::check_name(&name) {
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

    fn on_act(
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
                    a.spec
                        .env
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
        self.pending.push(Pending {
            to: from,
            id,
            waits: ids,
            notes,
            kill: false,
        });
    }

    fn on_start(&mut self, from: UnixAddr, id: u64, items: Vec<StartItem>) {
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
                        .map(|s| s.env.clone());
                    Plan::Existing(ids, env)
                }
                Ok(None) => match item.spec {
                    Some(spec) => {
                        if let Err(e) = crate::config::check_name(&spec.name) {
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
                            a.spec
                                .env
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
                            .filter(|a| a.run.status == Status::Errored)
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
        self.pending.push(Pending {
            to: from,
            id,
            waits,
            notes,
            kill: false,
        });
    }

    /// Adds an app to the table under the next id, in the lowest free instance slot of its
    /// name, with its log files open.
    fn register(&mut self, mut spec: AppSpec) -> u32 {
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
    fn free_instance(&self, name: &str) -> u32 {
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
    fn on_scale(&mut self, from: UnixAddr, id: u64, name: String, to: ScaleTo) {
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
        self.pending.push(Pending {
            to: from,
            id,
            waits,
            notes,
            kill: false,
        });
    }

    /// pm2's order: an id, then a name (for a word that looks like no file), then the same
    /// script under the same name. `Ok(None)`: register a new app.
    fn plan_start(&self, item: &StartItem) -> std::result::Result<Option<Vec<u32>>, String> {
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

    fn open_logs(&mut self, id: u32) {
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
        let stamp = spec.date_format().map(crate::datefmt::DateFormat::parse);
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

    fn begin_kill(&mut self, to: Option<(UnixAddr, u64)>) {
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

    fn answer_pending(&mut self) {
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
    fn views(&mut self, with_env: bool) -> Vec<AppView> {
        let now = sys::mono_ms();
        // Sample only the running apps whose last sample is older than SAMPLE_MS (or of an
        // earlier process): one walk over their processes in /proc, none over the machine.
        let stale: HashMap<u32, ()> = self
            .table
            .iter()
            .filter_map(|a| Some((a, a.run.pid?, *self.groups.get(&a.id)?)))
            .filter(|(a, pid, _)| {
                // A process in its first second changes fast (it is still loading): its
                // samples are not reused.
                self.samples.get(&a.id).is_none_or(|s| {
                    s.pid != *pid
                        || now.saturating_sub(s.at) >= SAMPLE_MS
                        || s.at.saturating_sub(a.run.started_mono) < SAMPLE_MS
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

    fn reply_raw(&mut self, to: &UnixAddr, id: u64, reply: &Reply) {
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
    fn flush_outbox(&mut self) {
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
fn check_policies(spec: &AppSpec) -> std::result::Result<(), String> {
    if let Some(c) = spec.cron_restart.as_ref().filter(|c| c.trim() != "0") {
        crate::cron::Schedule::parse(c)
            .map_err(|e| format!("invalid cron_restart {c:?} for {}: {e}", spec.name))?;
    }
    crate::watch::Ignore::new(&spec.ignore_watch)
        .map_err(|e| format!("invalid ignore_watch for {}: {e}", spec.name))?;
    Ok(())
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

/// A copy's own log path (`out-3.log`) back to the group's (`out.log`), so that a new copy
/// gets its own `-ID` instead of `out-3-7.log`.
fn strip_copy(path: &str, id: u32, merged: bool) -> String {
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
