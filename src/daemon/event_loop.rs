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
use crate::os::trust;
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
// The container runtime: this loop in the foreground, as PID 1.
#[path = "runtime.rs"]
pub(super) mod runtime;
// Node's IPC channel, cluster mode and sd_notify: messages from apps, and the rolling
// `reload` that replaces copies one at a time.
#[path = "messages.rs"]
mod messages;
#[path = "reload.rs"]
mod reload;
// pm2's process events, for a runtime's JSON stream and `logs --json`.
#[path = "events.rs"]
mod events;

const TOK_SOCK: u64 = 0;
const TOK_CHLD: u64 = 1;
const TOK_TERM: u64 = 2;
const TOK_HUP: u64 = 3;
const TOK_HOLDER: u64 = 4;
const TOK_USR2: u64 = 5;
const TOK_WATCH: u64 = 6;
const TOK_HOME: u64 = 7;
/// After the lock file was deleted: how often, and how long, to look whether the whole
/// home went (so that a running `rm -rf` ends before the home is created again).
const HOME_LOOK_MS: u64 = 50;
const HOME_PATIENCE_MS: u64 = 2000;
const TOK_NOTIFY: u64 = 8;
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
/// How often the daemon looks whether clients read their replies, while some have not.
const PEER_SWEEP_MS: u64 = 1000;
/// Reply sockets kept for reuse once their clients have read everything (os/reply.rs).
const SPARE_CHANNELS: usize = 16;
/// Clients whose sockets `reclaim_channels` looks at.
const RECENT_PEERS: usize = 32;
const PARTIAL_PATIENCE_MS: u64 = 10_000;
/// What all partial requests together may hold: one very large request fits, many
/// senders each sending part of one cannot add up to more.
const PARTIAL_TOTAL: usize = 256 << 20;
/// A request or reply at least this large leaves memory worth giving back afterwards.
const TRIM_AT: usize = 1 << 20;
/// Datagram buffers kept for the next replies: 8 MiB at most.
const FRAME_POOL: usize = 64;
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
    /// `log_type: json`: each chunk becomes one JSON line, with this id and name.
    json: Option<(u32, String)>,
}

impl Io {
    /// Lines are assembled (held until their newline) when each gets a timestamp, and
    /// when copies share a file, so that no copy cuts another's line (ward's guarantee;
    /// pm2 writes chunks there too). Otherwise bytes go through as they come, to the
    /// combined file too, as pm2 writes them (God/ForkMode.js: each chunk as it arrives,
    /// no newline added).
    fn by_line(&self) -> bool {
        (self.stamp.is_some() || self.shared) && self.json.is_none()
    }

    fn sinks(&mut self) -> impl Iterator<Item = &mut Sink> {
        [&mut self.out, &mut self.err]
            .into_iter()
            .chain(self.all.as_mut())
    }
}

/// A client's reply socket and how its backlog went.
struct Peer {
    ch: crate::os::reply::Channel,
    /// Unread bytes at the last look, and since when it has not gone down.
    unread: usize,
    since: u64,
}

/// A process just started for an app (see `launch`).
struct Launched {
    pid: u32,
    stdin: OwnedFd,
}

struct Pending {
    to: UnixAddr,
    id: u64,
    waits: Vec<u32>,
    notes: Vec<String>,
    kill: bool,
    /// Process events to tell when it is answered ((verb, app name): pm2's CLI notifies
    /// `stop`, `restart`, `delete` once the action is done, after the exit and online).
    told: Vec<(&'static str, String)>,
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
    /// Each client's own reply socket (see os/reply.rs), while it has replies unread.
    peers: HashMap<UnixAddr, Peer>,
    /// Reply sockets whose clients read everything, kept for the next clients (at most
    /// `SPARE_CHANNELS`).
    spare: Vec<crate::os::reply::Channel>,
    /// The clients whose reply sockets were opened last, oldest first (`RECENT_PEERS`).
    recent: std::collections::VecDeque<UnixAddr>,
    /// When to look again whether clients read what they were sent.
    peer_sweep: u64,
    pending: Vec<Pending>,
    /// The last /proc sample of each running app (see `views`).
    samples: HashMap<u32, Sample>,
    dirty: bool,
    /// The spawn journal (store.rs), and the number of the last state.json written.
    journal: Option<File>,
    seq: u64,
    /// A large request or reply was handled: give the memory back once the turn is done.
    trim_due: bool,
    /// Requests or exits ran since the code pages were last released.
    release_due: bool,
    /// The last reply's text and the datagrams of replies sent, reused by the next
    /// replies and let go when the daemon goes idle.
    reply_buf: Vec<u8>,
    frame_pool: Vec<Vec<u8>>,
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
    /// A holder was started for a new home and holds nothing: it is connected when first
    /// needed (`ensure_holder`), at the latest at the end of the first turn, so the first
    /// answer does not wait for its exec (a millisecond of the daemon's cold start).
    holder_due: bool,
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
    /// Set when this loop is a container runtime (runtime.rs).
    runtime: Option<runtime::Runtime>,
    /// Tells when the home folder is removed (home_guard.rs).
    home_guard: Option<crate::daemon::home_guard::HomeGuard>,
    /// The lock on a recreated home (the first one is on a removed file).
    relock: Option<nix::fcntl::Flock<File>>,
    /// Another daemon took the recreated home: leave, stopping nothing.
    abandoned: bool,
    /// The lock file was deleted: (next look, last look) at whether the home went too.
    home_check: Option<(u64, u64)>,
    /// What the next client must be told (state.json was damaged...): goes with the next
    /// reply to a request (not a ping).
    notices: Vec<String>,
    /// Node's IPC channels, by epoll token.
    channels: crate::daemon::ipc::Channels,
    /// The listening sockets of cluster apps.
    cluster: crate::daemon::cluster::Cluster,
    /// `NOTIFY_SOCKET` for every app (`None` if it could not be bound).
    notify: Option<crate::daemon::notify::Notify>,
    /// `reload` requests in progress.
    reloads: Vec<reload::Job>,
    /// Processes a reload replaced and asked to stop: pid → what to do about them.
    retiring: HashMap<u32, reload::Retiring>,
    /// Clients that asked for process events (`logs --json`): address and request id.
    listeners: Vec<(UnixAddr, u64)>,
    /// `trigger` requests waiting for the apps' answers.
    triggers: Vec<messages::TriggerWait>,
    /// Notify datagrams ignored (from processes ward does not supervise), for rate-limited
    /// logging.
    notify_ignored: u64,
    /// Unreadable IPC messages dropped, for rate-limited logging.
    ipc_garbage: u64,
}

/// Appends to the spawn journal (store.rs); a journal that cannot be written is turned
/// off, with one line in the log.
fn journal(j: &mut Option<File>, seq: u64, app: &App, entry: store::Entry) {
    if let Some(f) = j.as_mut() {
        if let Err(e) = store::journal_append(f, seq, app, entry) {
            log(format_args!("{e}; turning the spawn journal off"));
            *j = None;
        }
    }
}

fn log(msg: impl std::fmt::Display) {
    // A runtime's stderr is the container's: it must never block the loop (forward.rs).
    let text = msg.to_string();
    if !crate::daemon::forward::log_line(&text) {
        super::daemonlog::line(text);
    }
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
    // Nothing the caller left open may reach the apps; only what `ward update` handed on.
    let kept: Vec<i32> = [inherited.lock, inherited.sock]
        .into_iter()
        .flatten()
        .collect();
    sys::close_inherited(&kept);
    // Nothing is created or opened in a home another user could steer (see os/trust.rs).
    // A crash while state.json was being replaced may have left it with a second name.
    store::settle_backup(&home.state());
    home.check()?;
    home.create()?;
    if let Some(note) = home.secure()? {
        log(note);
    }
    let lock = match inherited.lock {
        // The daemon we were exec'd from left this fd open for us; it closes on exec again,
        // or every app started from now on would hold the lock (and block the next daemon).
        Some(fd) => {
            sys::set_cloexec(fd);
            File::from(sys::own_fd(fd))
        }
        None => trust::open(&home.lock_file(), trust::Open::Write).map_err(|e| {
            Error::unable(
                format_args!("open {}", home.lock_file().display()),
                crate::error::os(&e),
            )
        })?,
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
    // Not after `update` (the holder is there, waiting for us): see `prestart`.
    let new_holder = inherited.sock.is_none() && holder::Link::prestart(&home);
    let mut d = Daemon::new(home, inherited.sock, lock_fd)?;
    d.holder_due = new_holder;
    d.restore();
    if resurrect {
        match d.resurrect() {
            Ok((notes, _)) => notes.iter().for_each(log),
            Err(e) => log(e),
        }
    }
    // Written now, not after the first event: a damaged state.json was moved aside, and
    // a crash before the first write must find the table restored, not nothing.
    if d.dirty {
        d.save();
    }
    // For systemd's Type=notify: the saved apps are started; units after us may go.
    sys::notify_ready();
    d.run_loop();
    if d.abandoned {
        // The apps are left as they are; the holder of the old home serves nobody now.
        d.ensure_holder();
        if let Some(h) = &d.holder {
            h.quit();
        }
        return Ok(());
    }
    if let Some(exe) = d.update_to.take() {
        d.reexec(&exe);
    }
    d.shutdown();
    Ok(())
}

impl Daemon {
    fn new(home: Home, sock_fd: Option<i32>, lock_fd: i32) -> Result<Daemon> {
        if let Err(e) = home.write_file(
            &home.pid_file(),
            format!("{}\n", std::process::id()).as_bytes(),
        ) {
            log(format_args!(
                "unable to write {}: {}",
                home.pid_file().display(),
                crate::error::os(&e)
            ));
        }
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
        let home_guard = crate::daemon::home_guard::HomeGuard::watch(&home.root, &home.lock_file());
        match &home_guard {
            Some(g) => add(g.as_fd(), TOK_HOME)?,
            None => log("unable to watch the home folder: its removal will go unnoticed"),
        }
        let notify = match crate::daemon::notify::Notify::open(&home.root) {
            Ok(n) => {
                add(n.fd(), TOK_NOTIFY)?;
                Some(n)
            }
            Err(e) => {
                log(format_args!("{e}; READY=1 from apps will not be heard"));
                None
            }
        };
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
            reasm: Reassembly::with_total(PARTIAL_TOTAL),
            outbox: Outbox::default(),
            peers: HashMap::new(),
            spare: Vec::new(),
            recent: std::collections::VecDeque::new(),
            peer_sweep: 0,
            pending: Vec::new(),
            samples: HashMap::new(),
            dirty: false,
            journal: None,
            seq: 0,
            // Start-up and restoring the table leave code and heap behind: trimmed after the
            // first turn.
            trim_due: true,
            release_due: true,
            reply_buf: Vec::new(),
            frame_pool: Vec::new(),
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
            holder_due: false,
            hold_add: Vec::new(),
            hold_add_stdin: Vec::new(),
            stdins: HashMap::new(),
            hold_del: Vec::new(),
            adopted: HashMap::new(),
            update_to: None,
            lock_fd,
            runtime: None,
            home_guard,
            relock: None,
            abandoned: false,
            home_check: None,
            notices: Vec::new(),
            channels: Default::default(),
            cluster: Default::default(),
            notify,
            reloads: Vec::new(),
            retiring: HashMap::new(),
            listeners: Vec::new(),
            triggers: Vec::new(),
            notify_ignored: 0,
            ipc_garbage: 0,
        })
    }

    fn run_loop(&mut self) {
        let mut events = vec![EpollEvent::empty(); 256];
        loop {
            let timeout = self.timeout();
            if self.release_due && timeout == EpollTimeout::NONE {
                // Going idle with nothing due after requests or exits: the code they ran
                // need not stay resident (sys::release_code_pages). Not after app output
                // alone, which runs a few pages and may come every millisecond.
                sys::release_code_pages();
                self.release_due = false;
                if self.reply_buf.capacity() > 0 || !self.frame_pool.is_empty() {
                    self.reply_buf = Vec::new();
                    self.frame_pool = Vec::new();
                    sys::give_back_memory();
                }
            }
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
                    TOK_SOCK => {
                        self.release_due = true;
                        self.on_socket();
                    }
                    TOK_CHLD => {
                        self.release_due = true;
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
                    // A runtime forwards SIGUSR2 to its apps instead (runtime.rs).
                    TOK_USR2 if self.runtime.is_some() => drain(&self.sig_usr2),
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
                    tok if runtime::is_token(tok) => self.on_runtime_fd(tok),
                    TOK_HOME => self.on_home_event(),
                    TOK_NOTIFY => self.on_notify(),
                    tok if self.adopted.contains_key(&tok) => self.on_adopted_exit(tok),
                    tok if self.channels.has(tok) => {
                        if ev.events().contains(EpollFlags::EPOLLOUT) {
                            self.flush_channel(tok);
                        }
                        self.on_channel(tok);
                    }
                    tok => self.on_pipe(tok),
                }
            }
            if self.reap_more {
                self.on_sigchld();
            }
            self.fire_timers();
            self.runtime_turn();
            self.advance_reloads();
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
            if self.trim_due && self.outbox.is_empty() {
                sys::give_back_memory();
                self.trim_due = false;
            }
            if self.update_to.is_some() && self.outbox.is_empty() || self.abandoned {
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
            self.runtime_deadline(),
            self.home_check.map(|(at, _)| at),
            self.reload_deadline(),
            self.trigger_deadline(),
        ]
        .into_iter()
        .flatten()
        .min();
        if !self.outbox.is_empty() {
            next = Some(next.map_or(now + OUTBOX_RETRY_MS, |d| d.min(now + OUTBOX_RETRY_MS)));
        }
        if !self.peers.is_empty() {
            next = Some(next.map_or(self.peer_sweep, |d| d.min(self.peer_sweep)));
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
        self.ensure_holder();
        if let Some(h) = &self.holder {
            h.quit();
        }
        let _ = std::fs::remove_file(self.home.state());
        let _ = std::fs::remove_file(self.home.journal());
        let _ = std::fs::remove_file(store::bak_path(&self.home.state()));
        let _ = std::fs::remove_file(self.home.socket());
        let _ = std::fs::remove_file(self.home.pid_file());
        log("daemon exited");
    }

    fn save(&mut self) {
        if self.abandoned {
            // Another daemon serves this home now (take_home_back): its state.json is
            // not ours to write, however many turns or replies this one has left.
            return;
        }
        #[derive(Serialize)]
        struct StateRef<'a> {
            next_id: u32,
            apps: Vec<&'a App>,
            seq: u64,
            envs: Vec<crate::spec::config::Env>,
            env_of: Vec<u32>,
        }
        // Each distinct environment once (store::State): taken out of the table for the
        // encoding and put back, nothing copied.
        let (envs, env_of) = crate::spec::config::take_shared(self.table.envs_mut());
        let state = StateRef {
            next_id: self.table.next_id(),
            apps: self.table.iter().collect(),
            seq: self.seq + 1,
            envs,
            env_of,
        };
        let bytes = serde_json::to_vec(&state).map_err(|e| Error::unable("encode the state", e));
        let StateRef { envs, env_of, .. } = state;
        let back = crate::spec::config::put_shared(self.table.envs_mut(), &envs, &env_of);
        debug_assert!(back.is_ok());
        let res = bytes.and_then(|b| store::write_state(&self.home.state(), &b));
        match res {
            Ok(()) => {
                self.dirty = false;
                // Its lines are in state.json now (and carry the old number anyway).
                self.seq += 1;
                if let Some(j) = &self.journal {
                    let _ = j.set_len(0);
                }
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
            let was = app.run.status;
            // A memory sample under the limit changes nothing: no state write each check.
            let sample = matches!(event, Event::Memory { .. });
            let spawned = matches!(event, Event::Spawned { .. });
            let exited = matches!(event, Event::Exited { .. });
            let replaced = matches!(event, Event::Replaced { .. });
            let actions = app.run.handle(&app.spec, now, event);
            // pm2's process events (God.notify): for a runtime's JSON stream and for
            // `logs --json`; said once the app is no longer borrowed.
            let is = app.run.status;
            let events = [
                (exited && is == Status::Errored && was != Status::Errored)
                    .then_some("restart overlimit"),
                exited.then_some("exit"),
                (replaced || (is == Status::Online && was != Status::Online)).then_some("online"),
            ];
            let told = events
                .iter()
                .any(Option::is_some)
                .then(|| app.spec.name.clone());
            if spawned {
                // Recorded before anything else is spawned: a daemon killed in the middle
                // of a mass start leaves no app that the next one cannot find.
                journal(&mut self.journal, self.seq, app, store::Entry::Spawned);
            }
            let after = app.run.deadline;
            let main_pid = app.run.pid;
            let treekill = app.spec.treekill;
            if let Some(name) = told {
                for status in events.into_iter().flatten() {
                    self.event(status, &name);
                }
            }
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
            if spawned {
                // Its pipes go to the holder now too, not at the end of the turn.
                self.flush_holder();
            }
            for action in actions {
                use crate::lifecycle::Action;
                match action {
                    Action::Spawn => queue.push_back(self.spawn(id)),
                    // `--no-treekill`: the main process only; its children are left alone.
                    Action::Signal(sig) if !treekill => {
                        if let Some(pid) = main_pid {
                            if let Err(e) = sys::kill_pid(pid, sig) {
                                log(format_args!("unable to signal pid {pid}: {}", e.desc()));
                            }
                        }
                    }
                    Action::Signal(sig) => {
                        if let Some(&pgid) = self.groups.get(&id) {
                            if let Err(e) = sys::kill_group(pgid, sig) {
                                log(format_args!(
                                    "unable to signal process group {pgid}: {}",
                                    e.desc()
                                ));
                            }
                        } else if let Some(pid) = main_pid {
                            // An adopted process that does not lead its own group.
                            if let Err(e) = sys::kill_pid(pid, sig) {
                                log(format_args!("unable to signal pid {pid}: {}", e.desc()));
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
                    Action::Shutdown => self.shutdown_app(id, main_pid),
                }
            }
        }
        self.release_if_idle(id);
    }

    /// Starts a process for app `id`: its output pipes are watched, its IPC channel
    /// opened; registering it as the app's process is the caller's business.
    fn launch(&mut self, id: u32) -> std::result::Result<Launched, String> {
        let Some(app) = self.table.get(id) else {
            return Err("the app is gone".into());
        };
        let mut vars =
            crate::spec::config::pm2_vars(id, &app.spec, &self.home.root.to_string_lossy());
        if let Some(n) = &self.notify {
            vars.push(("NOTIFY_SOCKET".into(), n.addr.clone()));
        }
        // Node's IPC channel, as pm2 gives every Node app (stdio 'ipc'): fd 3, JSON.
        let channel = if app.spec.is_node() {
            match crate::os::ipc::channel_pair() {
                Ok(pair) => {
                    vars.push(("NODE_CHANNEL_FD".into(), "3".into()));
                    vars.push(("NODE_CHANNEL_SERIALIZATION_MODE".into(), "json".into()));
                    if app.spec.cluster {
                        let wid = self.cluster.next_worker_id();
                        vars.push(("NODE_UNIQUE_ID".into(), wid.to_string()));
                    }
                    Some(pair)
                }
                Err(e) => {
                    log(format_args!(
                        "{}: unable to open its IPC channel: {}",
                        app.spec.name,
                        e.desc()
                    ));
                    None
                }
            }
        } else {
            None
        };
        let extra: Vec<(&str, String)> =
            vars.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        journal(&mut self.journal, self.seq, app, store::Entry::Spawning);
        let s = spawn::spawn(
            &app.spec,
            &extra,
            self.child_nofile,
            &mut self.forker,
            channel.as_ref().map(|(_, theirs)| theirs),
        )?;
        self.watch_pipe(s.stdout, id, false, format!("{id}.{}.o", s.pid), true);
        self.watch_pipe(s.stderr, id, true, format!("{id}.{}.e", s.pid), true);
        if let Some((mine, _theirs)) = channel {
            self.watch_channel(mine, id, s.pid, true);
        }
        Ok(Launched {
            pid: s.pid,
            stdin: s.stdin,
        })
    }

    fn spawn(&mut self, id: u32) -> Event {
        match self.launch(id) {
            Ok(l) => {
                let pid = l.pid;
                self.adopt_process(id, l);
                Event::Spawned {
                    pid,
                    wall: sys::wall_ms(),
                }
            }
            Err(why) => Event::SpawnFailed(why),
        }
    }

    /// Makes a launched process app `id`'s process: its pid, group, stdin and pid file.
    fn adopt_process(&mut self, id: u32, l: Launched) {
        self.pids.insert(l.pid, id);
        self.groups.insert(id, l.pid);
        let start = proc::read_stat(l.pid).map(|st| st.start).unwrap_or(0);
        let name = match self.table.get_mut(id) {
            Some(app) => {
                app.run.pid_start = start;
                // A new process declares its own metrics and actions (pm2 resets them).
                app.run.axm_monitor.clear();
                app.run.axm_actions.clear();
                app.spec.name.clone()
            }
            None => String::new(),
        };
        self.samples.remove(&id);
        self.set_stdin(id, format!("{id}.{}.i", l.pid), l.stdin);
        let pid_path = self.pid_path(id);
        if let Err(e) = self
            .home
            .write_file(&pid_path, format!("{}", l.pid).as_bytes())
        {
            log(format_args!(
                "unable to write {}: {}",
                pid_path.display(),
                crate::error::os(&e)
            ));
        }
        self.hold_add_stdin.push(id);
        log(format_args!("started {name} (id {id}), pid {}", l.pid));
    }

    /// Adds an fd to the epoll set under a new token.
    fn poll_new(&mut self, fd: std::os::fd::BorrowedFd, what: &str) -> Option<u64> {
        let tok = self.next_token;
        self.next_token += 1;
        match self
            .epoll
            .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, tok))
        {
            Ok(()) => Some(tok),
            Err(e) => {
                log(format_args!("unable to watch {what}: {}", e.desc()));
                None
            }
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
        let Some(tok) = self.poll_new(fd.as_fd(), "an output pipe") else {
            return;
        };
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
            // Else a crash before the next state.json would bring it back.
            journal(&mut self.journal, self.seq, &app, store::Entry::Removed);
            self.release_name(&app.spec.name);
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
            if let Some(rt) = self.runtime.as_mut() {
                rt.fwd.close(tok);
            }
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
                self.close_channel_of(pid);
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
            } else {
                self.close_channel_of(pid);
                // A copy a reload replaced or started; other pids are grandchildren that
                // came to us as subreaper: reaped, done.
                self.on_other_exit(pid, exit);
            }
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
        if self.home_check.is_some_and(|(at, _)| now >= at) {
            self.check_home(now);
        }
        if !self.peers.is_empty() && now >= self.peer_sweep {
            self.sweep_peers(now);
        }
        if !self.reasm.is_empty() {
            let held = self.reasm.held();
            self.reasm.expire(now.saturating_sub(PARTIAL_PATIENCE_MS));
            self.trim_due |= held - self.reasm.held() >= TRIM_AT;
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
        self.fire_reload_timers(now);
        self.fire_trigger_timers(now);
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

    /// pm2's `watch` flag of an app, turned on (the app's folder, as pm2's `watch: true`)
    /// or off, with its watches. Nothing happens when it already is so.
    fn set_watching(&mut self, id: u32, on: bool) {
        let Some(a) = self.table.get_mut(id) else {
            return;
        };
        if a.spec.watch.is_empty() != on {
            return;
        }
        a.spec.watch = if on {
            vec![a.spec.cwd.clone()]
        } else {
            Vec::new()
        };
        self.dirty = true;
        self.set_watch(id, on);
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
    fn on_control(
        &mut self,
        from: UnixAddr,
        id: u64,
        op: ControlOp,
        targets: Vec<String>,
        cwd: Option<&str>,
    ) {
        let ids = match self.table.resolve_all_in(&targets, cwd) {
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
                    let Some(a) = self.table.get(app) else {
                        continue;
                    };
                    let on = op == ControlOp::RestartWatch && a.spec.watch.is_empty();
                    self.set_watching(app, on);
                }
                let verb = if op == ControlOp::StopWatch {
                    Verb::Stop
                } else {
                    Verb::Restart
                };
                return self.on_act(from, id, verb, targets, None, cwd.map(String::from));
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
            if let Some(rt) = self.runtime.as_mut() {
                let name = self.table.get(app).map_or("", |a| a.spec.name.as_str());
                rt.fwd.feed(tok, app, name, err, &self.buf[..n]);
            }
            let Some(io) = self.io.get_mut(&app) else {
                continue; // nowhere to go: drained and dropped
            };
            let data = &self.buf[..n];
            if !io.by_line() {
                let data = match &io.json {
                    Some((id, name)) => {
                        self.stamp.clear();
                        match &io.stamp {
                            Some(f) => self.clock.render(f, sys::wall_ms(), &mut self.stamp),
                            None => self
                                .stamp
                                .push_str(&crate::spec::datefmt::utc_iso(sys::wall_ms())),
                        }
                        self.batch.clear();
                        let kind = if err { "err" } else { "out" };
                        logs::json_line(data, &self.stamp, kind, *id, name, &mut self.batch);
                        &self.batch[..]
                    }
                    None => data,
                };
                let sink = if err { &mut io.err } else { &mut io.out };
                notes.extend(sink.write(data));
                if let Some(all) = io.all.as_mut() {
                    notes.extend(all.write(data));
                }
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
            if let Err(e) = trust::open(&path, trust::Open::Write).and_then(|f| f.set_len(0)) {
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
