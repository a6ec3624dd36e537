//! The container runtime (`ward-runtime`, `pm2-runtime`, `ward runtime`): the daemon's own
//! loop run in the foreground as a container's PID 1 (or, elsewhere, as a child subreaper).
//! A child module of event_loop.rs: it shares the daemon's state, as requests.rs does, and
//! the loop calls it at a few hooks (its fds, the end of each turn, the timeout).
//!
//! What it adds to the daemon:
//! - a home of its own (`$WARD_HOME`, else a fresh temporary folder) that starts empty, so
//!   `ward ls`/`logs`/`restart` work from `docker exec` and nothing lands in `~/.ward`;
//! - no fd holder and no adoption: when the runtime dies the container ends with it;
//! - the apps from its command line, started through the same Start request a client
//!   sends (the reply comes back on a socket of its own), after `--delay`;
//! - app output on its own stdout/stderr (forward.rs);
//! - SIGHUP, SIGUSR1 and SIGUSR2 forwarded to every running app (SIGTERM, SIGINT and
//!   SIGQUIT already stop every app, with its kill signal and kill_timeout, and end the
//!   loop; reaping every orphan is the loop's `waitpid(-1)`);
//! - pm2-runtime's auto-exit: once no app has run for the grace period, it ends with 0
//!   when every app ended cleanly, else 2, and its last line says why.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::UnixDatagram;

use super::*;
use crate::daemon::forward::{self, Forward};
use crate::spec::runtime::{AUTO_EXIT_FAILED, AUTO_EXIT_FIRST_MS, AUTO_EXIT_GRACE_MS, RuntimeOpts};

// Tokens of the runtime's own fds, in the gap below TOK_FIRST_PIPE.
const TOK_RT_REPLY: u64 = 12;
const TOK_RT_SIGNALS: [(u64, i32); 3] =
    [(13, libc::SIGHUP), (14, libc::SIGUSR1), (15, libc::SIGUSR2)];
/// The id of the runtime's one Start request.
const START_ID: u64 = 1;
/// How long the home's lock may stay taken before the runtime gives up.
const LOCK_PATIENCE_MS: u64 = 3_000;
/// How soon the loop looks again at a stream that left a line cut.
const STDIO_RETRY_MS: u64 = 20;

pub(super) struct Runtime {
    opts: RuntimeOpts,
    pub(super) fwd: Forward,
    reply: UnixDatagram,
    reply_addr: UnixAddr,
    /// The daemon's socket: the only sender whose replies count (an abstract address can
    /// be written to by anyone on the machine).
    sock_path: std::path::PathBuf,
    /// The daemon's reply socket (os/reply.rs), which answers requests too.
    reply_path: std::path::PathBuf,
    reasm: Reassembly<()>,
    buf: Vec<u8>,
    /// The apps to start, until `start_at`.
    items: Option<Vec<StartItem>>,
    start_at: u64,
    /// Monotonic ms when the apps were started (the Start reply came).
    started: Option<u64>,
    /// Since when no app runs (never before the first look, pm2's 4 s).
    quiet_since: Option<u64>,
    signals: Vec<(u64, i32, UnixStream)>,
    /// The exit status and why, once decided.
    end: Option<(i32, String)>,
}

pub(super) fn is_token(tok: u64) -> bool {
    tok == TOK_RT_REPLY || TOK_RT_SIGNALS.iter().any(|&(t, _)| t == tok)
}

/// Runs the apps of `items` in the foreground until a terminating signal, `ward kill`, or
/// (with auto-exit) the end of every app; returns the exit status. `home`: `None` for a
/// fresh temporary folder, removed at the end.
pub fn run(home: Option<Home>, opts: RuntimeOpts, items: Vec<StartItem>) -> Result<i32> {
    forward::install(opts.format);
    let (home, temp) = match home {
        Some(h) => (h, None),
        None => {
            let dir = temp_home()?;
            (Home::at(dir.clone(), opts.pm2), Some(dir))
        }
    };
    let res = run_in(&home, opts, items);
    if let Some(dir) = temp {
        let _ = std::fs::remove_dir_all(dir);
    }
    forward::finish(500);
    res
}

fn run_in(home: &Home, opts: RuntimeOpts, items: Vec<StartItem>) -> Result<i32> {
    home.create()?;
    let mut lock = crate::os::trust::open(&home.lock_file(), crate::os::trust::Open::Write)
        .map_err(|e| Error::unable("create the lock file", crate::error::os(&e)))?;
    // A container restarted in place may start while the processes of the killed one
    // still let go of their files: a moment's patience before calling the home taken.
    let until = sys::mono_ms() + LOCK_PATIENCE_MS;
    let lock = loop {
        match nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(l) => break l,
            Err((f, Errno::EWOULDBLOCK)) if sys::mono_ms() < until => {
                lock = f;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(Error::new(format!(
                    "another ward daemon serves {}; a runtime needs a WARD_HOME of its own",
                    home.root.display()
                )));
            }
            Err((_, e)) => return Err(Error::unable("lock the home", e.desc())),
        }
    };
    // The command line is the truth: what an earlier run (a restarted container) left in
    // state.json is not adopted, or its apps would start twice.
    let _ = std::fs::remove_file(home.state());
    let mut d = Daemon::new(home.clone(), None, lock.as_raw_fd())?;
    let rt = Runtime::new(&d.epoll, opts, items, home.socket(), home.reply_socket())?;
    let (var, client) = if home.pm2 {
        ("PM2_HOME", "pm2")
    } else {
        ("WARD_HOME", "ward")
    };
    log(format_args!(
        "runtime home {}: `{var}={} {client} ls` from another shell",
        home.root.display(),
        home.root.display()
    ));
    d.runtime = Some(rt);
    // `ward update` is refused by a runtime (requests.rs): its new version comes with a new
    // image, and its process must stay the container's PID 1.
    d.run_loop();
    d.drain_output();
    d.shutdown();
    let (code, why) = d
        .runtime
        .as_mut()
        .and_then(|r| r.end.take())
        .unwrap_or((0, "every app was stopped on request".into()));
    let dropped = forward::dropped();
    let dropped = if dropped > 0 {
        format!(" ({dropped} lines of output were dropped: the output did not take them)")
    } else {
        String::new()
    };
    log(format_args!(
        "runtime exits with status {code}: {why}{dropped}"
    ));
    drop(lock);
    Ok(code)
}

/// A new folder under the temporary directory, private to us (the directory itself may not
/// exist in a `FROM scratch` image).
fn temp_home() -> Result<std::path::PathBuf> {
    let base = std::env::temp_dir();
    let _ = std::fs::create_dir_all(&base);
    nix::unistd::mkdtemp(&base.join("ward-runtime.XXXXXX")).map_err(|e| {
        Error::unable(
            format_args!("create a runtime folder in {}", base.display()),
            e.desc(),
        )
    })
}

impl Runtime {
    fn new(
        epoll: &Epoll,
        opts: RuntimeOpts,
        items: Vec<StartItem>,
        sock_path: std::path::PathBuf,
        reply_path: std::path::PathBuf,
    ) -> Result<Runtime> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("ward-runtime-{}-{nanos}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .map_err(|e| Error::unable("name the runtime's socket", crate::error::os(&e)))?;
        let reply = UnixDatagram::bind_addr(&addr)
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| Error::unable("bind the runtime's socket", crate::error::os(&e)))?;
        let reply_addr = UnixAddr::new_abstract(name.as_bytes())
            .map_err(|e| Error::unable("name the runtime's socket", e.desc()))?;
        let add = |fd: std::os::fd::BorrowedFd, tok| {
            epoll
                .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, tok))
                .map_err(|e| Error::unable("watch a descriptor", e.desc()))
        };
        add(reply.as_fd(), TOK_RT_REPLY)?;
        let mut signals = Vec::new();
        for (tok, sig) in TOK_RT_SIGNALS {
            let pipe = sys::signal_pipe(&[sig])?;
            add(pipe.as_fd(), tok)?;
            signals.push((tok, sig, pipe));
        }
        let start_at = sys::mono_ms() + opts.delay_ms;
        Ok(Runtime {
            fwd: Forward::new(opts.format),
            opts,
            reply,
            reply_addr,
            sock_path,
            reply_path,
            reasm: Reassembly::default(),
            buf: vec![0; protocol::HEADER + protocol::FRAME + 1024],
            items: Some(items),
            start_at,
            started: None,
            quiet_since: None,
            signals,
            end: None,
        })
    }
}

impl Daemon {
    /// One of the runtime's fds is ready: the Start reply, or a signal to forward.
    pub(super) fn on_runtime_fd(&mut self, tok: u64) {
        if tok == TOK_RT_REPLY {
            return self.on_start_reply();
        }
        let Some(rt) = &self.runtime else {
            return;
        };
        let Some(&(_, sig, ref pipe)) = rt.signals.iter().find(|(t, _, _)| *t == tok) else {
            return;
        };
        drain(pipe);
        let ids: Vec<u32> = self
            .table
            .iter()
            .filter(|a| a.run.status.is_running() && a.run.pid.is_some())
            .map(|a| a.id)
            .collect();
        log(format_args!(
            "{} received: forwarded to {} app(s)",
            crate::spec::config::signal_name(sig),
            ids.len()
        ));
        for id in ids {
            self.apply(id, Event::Signal(sig));
        }
    }

    fn on_start_reply(&mut self) {
        let mut replies = Vec::new();
        if let Some(rt) = self.runtime.as_mut() {
            while let Ok((n, from)) = rt.reply.recv_from(&mut rt.buf) {
                // The daemon answers from its control socket or its reply socket (see
                // os/reply.rs); anything else is not the daemon's.
                let from = from.as_pathname();
                if from != Some(rt.sock_path.as_path()) && from != Some(rt.reply_path.as_path()) {
                    continue;
                }
                if let Ok(Some((id, body))) = rt.reasm.feed(&(), &rt.buf[..n], 0) {
                    if id == START_ID {
                        replies.push(crate::json::from_bytes::<Reply>(&body));
                    }
                }
            }
        }
        for reply in replies {
            let end = match reply {
                Ok(Reply::Done { notes, apps }) => {
                    notes.iter().for_each(log);
                    if let Some(rt) = self.runtime.as_mut() {
                        rt.started = Some(sys::mono_ms());
                    }
                    let what = self.runtime.as_ref().map(|r| r.opts.what.clone());
                    apps.is_empty().then(|| {
                        format!(
                            "0 application started (no apps to run on {})",
                            what.unwrap_or_default()
                        )
                    })
                }
                Ok(Reply::Error { message }) => Some(message),
                Ok(other) => Some(format!("unexpected answer to the start: {other:?}")),
                Err(e) => Some(format!("unable to read the start's answer: {e}")),
            };
            if let Some(why) = end {
                self.end_runtime(1, why);
            }
        }
    }

    fn end_runtime(&mut self, code: i32, why: String) {
        if let Some(rt) = self.runtime.as_mut() {
            if rt.end.is_none() {
                rt.end = Some((code, why));
            }
        }
        if !self.exiting {
            self.begin_kill(None);
        }
    }

    /// The end of a loop turn: start the apps once `--delay` is over, retry a stream that
    /// left a line cut, and end the runtime once no app has run for the grace period.
    pub(super) fn runtime_turn(&mut self) {
        let now = sys::mono_ms();
        let Some(rt) = self.runtime.as_mut() else {
            return;
        };
        if forward::pending() {
            forward::retry();
        }
        if rt.items.is_some() && now >= rt.start_at && !self.exiting {
            let items = rt.items.take().unwrap_or_default();
            let to = rt.reply_addr;
            self.on_start(to, START_ID, items);
            return;
        }
        if !rt.opts.auto_exit || self.exiting || rt.end.is_some() {
            return;
        }
        let Some(started) = rt.started else {
            return;
        };
        let running = self
            .table
            .iter()
            .any(|a| a.run.status.is_running() || a.run.status == Status::WaitingRestart);
        if running {
            rt.quiet_since = None;
            return;
        }
        let since = *rt
            .quiet_since
            .get_or_insert(now.max(started + AUTO_EXIT_FIRST_MS));
        if now < since + AUTO_EXIT_GRACE_MS {
            return;
        }
        let unclean: Vec<String> = self
            .table
            .iter()
            .filter_map(|a| unclean(a).map(|why| format!("{} {why}", a.spec.name)))
            .collect();
        let grace = AUTO_EXIT_GRACE_MS / 1000;
        let (code, why) = if unclean.is_empty() {
            (
                0,
                format!("no app has run for {grace} s; every app ended cleanly"),
            )
        } else {
            (
                AUTO_EXIT_FAILED,
                format!("no app has run for {grace} s: {}", unclean.join(", ")),
            )
        };
        self.end_runtime(code, why);
    }

    /// Before the end: what the apps wrote last (their goodbye on SIGTERM, a line without
    /// its newline) is read and goes out, though the table emptied first.
    fn drain_output(&mut self) {
        let toks: Vec<u64> = self.pipes.keys().copied().collect();
        for tok in toks {
            self.on_pipe(tok);
        }
        if let Some(rt) = self.runtime.as_mut() {
            rt.fwd.close_all();
        }
    }

    /// When the loop must wake for the runtime: the delayed start, the auto-exit, a cut line.
    pub(super) fn runtime_deadline(&self) -> Option<u64> {
        let rt = self.runtime.as_ref()?;
        let now = sys::mono_ms();
        [
            rt.items.as_ref().map(|_| rt.start_at),
            rt.quiet_since
                .filter(|_| rt.opts.auto_exit && rt.end.is_none())
                .map(|q| q + AUTO_EXIT_GRACE_MS),
            forward::pending().then_some(now + STDIO_RETRY_MS),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// Why an app that runs no more did not end cleanly; `None` when it did: stopped on
/// request, or its last run exited with 0 or one of its `stop_exit_codes`.
fn unclean(a: &App) -> Option<String> {
    use crate::lifecycle::{Exit, Reason};
    if a.run.status == Status::Errored {
        return Some("errored".into());
    }
    let last = a.run.exits.back()?;
    match (last.reason, last.exit) {
        (Reason::Stop | Reason::Delete, _) => None,
        (_, Exit::Code(0)) => None,
        (_, Exit::Code(c)) if a.spec.stop_exit_codes.contains(&c) => None,
        (_, exit) => Some(crate::lifecycle::describe_exit(exit)),
    }
}
