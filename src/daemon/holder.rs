//! The fd holder: a tiny process that keeps a duplicate of every app's output pipe (the idea
//! of s6-fdholderd), and the daemon's link to it.
//!
//! Why: when the daemon dies, an app's stdout pipe would lose its only reader and the app's
//! next write would kill it with SIGPIPE (pm2 issue #5054). While the holder keeps the read
//! ends open, apps keep writing into their pipes (up to the pipe buffer); a new daemon takes
//! the pipes back and drains them, so no output is lost. The holder also notices the daemon's
//! death (EOF on its connection) and starts a new one, rate-limited, so supervision resumes
//! within a second with no user command.
//!
//! Protocol, over a SOCK_SEQPACKET socket `$WARD_HOME/holder.sock`, one text message each,
//! fds attached with SCM_RIGHTS:
//!   daemon → holder: `ADD k1 k2 …` (+ fds) · `DEL k1 k2 …` · `GET` · `EXEC` (the daemon
//!   re-executes itself: wait for it, start nothing) · `QUIT` (`ward kill`: exit)
//!   holder → daemon: `FDS k1 k2 …` (+ fds) … then `END`, in answer to `GET`.
//! The holder does nothing else, so it has nothing to crash on.

use std::collections::HashMap;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    self, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
    UnixAddr, sockopt,
};

use crate::error::{Error, Result};
use crate::home::Home;
use crate::os::sys;

/// fds per message; SCM_RIGHTS takes at most 253.
const BATCH: usize = 200;
const MSG_MAX: usize = 64 * 1024;

fn seqpacket() -> Result<OwnedFd> {
    socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| Error::unable("create the holder socket", e.desc()))
}

fn send(fd: &OwnedFd, text: &str, fds: &[RawFd]) -> std::result::Result<(), Errno> {
    let iov = [IoSlice::new(text.as_bytes())];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
    loop {
        match socket::sendmsg::<UnixAddr>(fd.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// One message: its text and the fds that came with it. `Ok(None)` on EOF.
fn recv(
    fd: &OwnedFd,
    buf: &mut [u8],
) -> std::result::Result<Option<(String, Vec<OwnedFd>)>, Errno> {
    let mut cmsg = nix::cmsg_space!([RawFd; BATCH]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = loop {
        match socket::recvmsg::<UnixAddr>(
            fd.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => break m,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    };
    let mut fds = Vec::new();
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmRights(raw) = c {
                for r in raw {
                    // SCM_RIGHTS just installed these fds in our table.
                    fds.push(sys::own_fd(r));
                }
            }
        }
    }
    let n = msg.bytes;
    if n == 0 && fds.is_empty() {
        return Ok(None);
    }
    Ok(Some((String::from_utf8_lossy(&buf[..n]).into_owned(), fds)))
}

// ---- the daemon's side ---------------------------------------------------------------

/// Set by `Link::prestart`: a holder is on its way, so the next `connect` waits for it
/// instead of starting another. The daemon has one thread; this is a flag, not a lock.
static PRESTARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Starts `ward holder` for this home, in its own process group (a signal for the
/// daemon's group must not reach it).
fn spawn(home: &Home) -> Result<()> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::unable("find the ward binary", crate::error::os(&e)))?;
    use std::os::unix::process::CommandExt;
    std::process::Command::new(exe)
        .arg("holder")
        .envs(home.env())
        .stdin(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| Error::unable("start the fd holder", crate::error::os(&e)))
}

/// Whether a holder serves this home: a running one keeps `holder.lock` locked. Not asked
/// by connecting: the holder takes any connection for a new daemon's, and its close for
/// that daemon's death.
fn holder_runs(home: &Home) -> bool {
    let Ok(f) = crate::os::trust::open(
        &home.root.join("holder.lock"),
        crate::os::trust::Open::Write,
    ) else {
        return true; // unknown: connect at once, as to a holder that runs
    };
    // Locked by us only for this instant: the holder started next takes it.
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).is_err()
}

pub struct Link {
    fd: OwnedFd,
}

impl Link {
    /// Connects to this home's holder, starting one if none answers.
    pub fn connect(home: &Home) -> Result<Link> {
        let prestarted = PRESTARTED.swap(false, std::sync::atomic::Ordering::Relaxed);
        if !prestarted {
            if let Ok(l) = Link::try_connect(home) {
                return Ok(l);
            }
            spawn(home)?;
        }
        // The holder binds its socket a millisecond or two after its exec; a connect that
        // fails costs a microsecond, so try often rather than sleep past the moment.
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            match Link::try_connect(home) {
                Ok(l) => return Ok(l),
                Err(e) if Instant::now() > until => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_micros(200)),
            }
        }
    }

    /// Starts a holder now, without waiting for it, so that its exec and start-up overlap
    /// the daemon's own (binding the control socket, starting the fork server) instead of
    /// following them: the daemon's cold start is a chain of execs. The next `connect`
    /// then only waits for it. When a holder already serves this home (one left by a
    /// daemon that died), none is started and `connect` reaches that one.
    ///
    /// True when no holder ran, so the one started holds nothing yet: the daemon then has
    /// nothing to take back and need not wait for it before its first answer.
    pub fn prestart(home: &Home) -> bool {
        if holder_runs(home) {
            return false;
        }
        if spawn(home).is_ok() {
            PRESTARTED.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        true
    }

    fn try_connect(home: &Home) -> Result<Link> {
        let fd = seqpacket()?;
        let addr = UnixAddr::new(&home.holder_socket())
            .map_err(|e| Error::unable("name the holder socket", e.desc()))?;
        socket::connect(fd.as_raw_fd(), &addr)
            .map_err(|e| Error::unable("reach the fd holder", e.desc()))?;
        // The holder only ever reads; never wait on it for long.
        let tv = nix::sys::time::TimeVal::new(1, 0);
        let _ = socket::setsockopt(&fd, sockopt::SendTimeout, &tv);
        let _ = socket::setsockopt(&fd, sockopt::ReceiveTimeout, &tv);
        let _ = socket::setsockopt(&fd, sockopt::SndBuf, &(1 << 20));
        Ok(Link { fd })
    }

    /// Hands pipes to the holder: (key, fd) pairs; the fds stay ours too.
    pub fn add(&self, items: &[(String, RawFd)]) -> std::result::Result<(), Errno> {
        for chunk in items.chunks(BATCH) {
            let mut text = String::from("ADD");
            for (k, _) in chunk {
                text.push(' ');
                text.push_str(k);
            }
            let fds: Vec<RawFd> = chunk.iter().map(|&(_, fd)| fd).collect();
            send(&self.fd, &text, &fds)?;
        }
        Ok(())
    }

    pub fn del(&self, keys: &[String]) -> std::result::Result<(), Errno> {
        for chunk in keys.chunks(BATCH) {
            let text = format!("DEL {}", chunk.join(" "));
            send(&self.fd, &text, &[])?;
        }
        Ok(())
    }

    /// Every pipe the holder keeps, with its key.
    pub fn take_all(&self) -> std::result::Result<Vec<(String, OwnedFd)>, Errno> {
        send(&self.fd, "GET", &[])?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; MSG_MAX];
        loop {
            let Some((text, fds)) = recv(&self.fd, &mut buf)? else {
                return Err(Errno::ECONNRESET);
            };
            if text == "END" {
                return Ok(out);
            }
            let keys = text.strip_prefix("FDS").unwrap_or("").split_whitespace();
            out.extend(keys.map(String::from).zip(fds));
        }
    }

    /// The daemon is about to re-execute itself: the holder waits instead of starting one.
    pub fn exec(&self) {
        let _ = send(&self.fd, "EXEC", &[]);
    }

    pub fn quit(&self) {
        let _ = send(&self.fd, "QUIT", &[]);
    }
}

impl AsFd for Link {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

// ---- the holder process --------------------------------------------------------------

/// Runs the holder until `QUIT`. Only one holder serves a home (a lock file says which).
pub fn run(home: &Home) -> Result<()> {
    // It lives as long as the apps: it must hold nothing of whoever started it.
    sys::close_inherited(&[]);
    home.check()?;
    home.create()?;
    let lock = crate::os::trust::open(
        &home.root.join("holder.lock"),
        crate::os::trust::Open::Write,
    )
    .map_err(|e| Error::unable("create the holder lock", crate::error::os(&e)))?;
    let _lock = match nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err(_) => return Ok(()), // another holder serves this home
    };
    let _ = nix::unistd::setsid();
    // When the daemon (our parent) dies, our process group may become orphaned; if we are
    // stopped at that moment the kernel sends SIGHUP, which must not end us.
    let _ = signal_hook::flag::register(
        libc::SIGHUP,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    let _ = home.write_file(
        &home.holder_pid(),
        format!("{}\n", std::process::id()).as_bytes(),
    );
    let listener = seqpacket()?;
    let path = home.holder_socket();
    let _ = std::fs::remove_file(&path);
    let addr =
        UnixAddr::new(&path).map_err(|e| Error::unable("name the holder socket", e.desc()))?;
    socket::bind(listener.as_raw_fd(), &addr)
        .map_err(|e| Error::unable(format_args!("bind {}", path.display()), e.desc()))?;
    socket::listen(
        &listener,
        socket::Backlog::new(16).unwrap_or(socket::Backlog::MAXCONN),
    )
    .map_err(|e| Error::unable("listen on the holder socket", e.desc()))?;

    let mut held: HashMap<String, OwnedFd> = HashMap::new();
    let mut conn: Option<OwnedFd> = None;
    let mut buf = vec![0u8; MSG_MAX];
    // When to start a daemon if none has connected by then.
    let mut respawn_at: Option<Instant> = None;
    let mut backoff = Duration::from_millis(0);
    let mut last_spawn: Option<Instant> = None;

    loop {
        // Reap daemons this holder started that have since exited.
        while crate::os::sys::reap().is_some() {}
        let timeout = match respawn_at {
            None => PollTimeout::NONE,
            Some(at) => {
                let ms = at
                    .saturating_duration_since(Instant::now())
                    .as_millis()
                    .min(60_000);
                PollTimeout::from(ms as u16)
            }
        };
        let (lst_ready, conn_ready) = {
            let mut fds = vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
            if let Some(c) = &conn {
                fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), fds.get(1).is_some_and(ready))
        };
        if lst_ready {
            if let Ok(raw) = socket::accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
                let c = sys::own_fd(raw);
                // A new daemon replaces any earlier connection.
                conn = Some(c);
                respawn_at = None;
            }
        }
        if conn_ready {
            let mut gone = false;
            let mut quit = false;
            if let Some(c) = &conn {
                match recv(c, &mut buf) {
                    Ok(Some((text, fds))) => {
                        let mut words = text.split_whitespace();
                        match words.next() {
                            Some("ADD") => {
                                for (k, fd) in words.zip(fds) {
                                    held.insert(k.to_string(), fd);
                                }
                            }
                            Some("DEL") => {
                                for k in words {
                                    held.remove(k);
                                }
                            }
                            Some("GET") => {
                                let all: Vec<(&String, RawFd)> =
                                    held.iter().map(|(k, f)| (k, f.as_raw_fd())).collect();
                                for chunk in all.chunks(BATCH) {
                                    let mut t = String::from("FDS");
                                    for (k, _) in chunk {
                                        t.push(' ');
                                        t.push_str(k);
                                    }
                                    let fds: Vec<RawFd> = chunk.iter().map(|&(_, f)| f).collect();
                                    let _ = send(c, &t, &fds);
                                }
                                let _ = send(c, "END", &[]);
                            }
                            Some("EXEC") => {
                                // The same daemon comes back after exec; give it time.
                                respawn_at = Some(Instant::now() + Duration::from_secs(5));
                                gone = true;
                            }
                            Some("QUIT") => quit = true,
                            _ => {}
                        }
                    }
                    Ok(None) | Err(_) => {
                        gone = true;
                        if respawn_at.is_none() {
                            // The daemon died: start another at once, then no more often
                            // than the backoff allows.
                            let earliest = last_spawn.map_or(Instant::now(), |t| t + backoff);
                            respawn_at = Some(earliest.max(Instant::now()));
                        }
                    }
                }
            }
            if quit {
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(home.holder_pid());
                return Ok(());
            }
            if gone {
                conn = None;
            }
        }
        if conn.is_none() && respawn_at.is_some_and(|t| Instant::now() >= t) {
            eprintln!(
                "{} fd holder: the daemon is gone; starting a new one",
                crate::os::sys::local_timestamp()
            );
            spawn_daemon(home);
            last_spawn = Some(Instant::now());
            backoff = (backoff * 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
            // If it does not connect, try again after the backoff.
            respawn_at = Some(Instant::now() + backoff.max(Duration::from_secs(5)));
        } else if conn.is_some()
            && last_spawn.is_some_and(|t| t.elapsed() > Duration::from_secs(60))
        {
            backoff = Duration::from_millis(0);
        }
    }
}

fn spawn_daemon(home: &Home) {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    // After an upgrade the running image's path reads "/usr/bin/ward (deleted)".
    let exe = match exe.to_str().and_then(|s| s.strip_suffix(" (deleted)")) {
        Some(s) => std::path::PathBuf::from(s),
        None => exe,
    };
    let _ = std::process::Command::new(exe)
        .arg("daemon")
        .arg("--spawned")
        .arg("--wait-lock")
        .envs(home.env())
        .stdin(std::process::Stdio::null())
        .spawn();
}
