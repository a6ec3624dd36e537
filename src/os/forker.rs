//! The fork server: a small process, started by the daemon before it holds any app's
//! pipes, that starts apps for it.
//!
//! Why: at exec the kernel closes every close-on-exec descriptor the parent held, one by
//! one. The daemon holds several per app (pipes, log files), so starting an app from the
//! daemon costs O(apps already running) and a mass start is quadratic (perf showed the
//! children's exec in filp_flush/dnotify_flush). The fork server holds almost nothing, so
//! each start costs the same. It clones the app with CLONE_PARENT, so the app is still the
//! daemon's child: the daemon reaps it and learns its exit status as before.
//!
//! Protocol over a SOCK_SEQPACKET pair (the server's end is its stdin): the daemon sends
//! one JSON `Req` with the child's three pipe ends attached (SCM_RIGHTS); the server
//! answers `ok PID` or `err MESSAGE`.

use std::borrow::Cow;
use std::ffi::CString;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
    UnixAddr, sockopt,
};
use serde::{Deserialize, Serialize};

/// What to start. Borrowed where the daemon writes it (an app's environment is tens of
/// variables, and copying each for every start was a tenth of a mass start's time in the
/// static build, in malloc and free); owned where the fork server reads it.
#[derive(Serialize, Deserialize)]
pub struct Req<'a> {
    pub program: Cow<'a, str>,
    pub args: Vec<Cow<'a, str>>,
    pub env: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub cwd: Cow<'a, str>,
    /// RLIMIT_NOFILE for the app: the limit the daemon had before it raised its own.
    pub nofile: Option<(u64, u64)>,
}

/// The largest request the fork server reads (its receive buffer).
const MAX_REQ: usize = 1 << 20;

/// Why the fork server did not start an app.
pub enum Refused {
    /// The fork server is gone (start it again or spawn directly).
    Gone,
    /// This request does not fit in one message (a large environment): start this app
    /// directly; the fork server stays for the next ones.
    TooLarge,
    /// The app could not be started (exec failed, …): the reason.
    Failed(String),
}

/// The daemon's handle on its fork server.
pub struct Forker {
    sock: OwnedFd,
}

impl Forker {
    /// Starts the fork server (`ward forker`); `None` when it cannot be started, and the
    /// daemon then starts apps itself.
    pub fn start() -> Option<Forker> {
        let (mine, theirs) = socket::socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .ok()?;
        let exe = std::env::current_exe().ok()?;
        use std::os::unix::process::CommandExt;
        std::process::Command::new(exe)
            .arg("forker")
            .stdin(std::process::Stdio::from(theirs))
            // Its own group: Ctrl-C on a foreground daemon must not end it first.
            .process_group(0)
            .spawn()
            .ok()?;
        let tv = nix::sys::time::TimeVal::new(10, 0);
        let _ = socket::setsockopt(&mine, sockopt::ReceiveTimeout, &tv);
        let _ = socket::setsockopt(&mine, sockopt::SendTimeout, &tv);
        Some(Forker { sock: mine })
    }

    /// Starts one app with these pipe ends as its stdin, stdout and stderr, and a fourth
    /// descriptor, when given, as its fd 3 (Node's IPC channel); its pid.
    pub fn spawn(&self, req: &Req<'_>, fds: &[RawFd]) -> Result<u32, Refused> {
        let body = serde_json::to_vec(req).map_err(|e| Refused::Failed(e.to_string()))?;
        if body.len() > MAX_REQ {
            return Err(Refused::TooLarge);
        }
        let iov = [IoSlice::new(&body)];
        let cmsg = [ControlMessage::ScmRights(fds)];
        match socket::sendmsg::<UnixAddr>(
            self.sock.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::empty(),
            None,
        ) {
            Ok(_) => {}
            // Larger than the socket's send buffer (a SEQPACKET message is sent whole):
            // nothing was sent, the server is fine.
            Err(Errno::EMSGSIZE | Errno::ENOBUFS) => return Err(Refused::TooLarge),
            Err(_) => return Err(Refused::Gone),
        }
        let mut buf = [0u8; 4096];
        let n = loop {
            match socket::recv(self.sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(0) | Err(Errno::EAGAIN) => return Err(Refused::Gone),
                Ok(n) => break n,
                Err(Errno::EINTR) => continue,
                Err(_) => return Err(Refused::Gone),
            }
        };
        let text = String::from_utf8_lossy(&buf[..n]);
        match text.split_once(' ') {
            Some(("ok", pid)) => pid.trim().parse().map_err(|_| Refused::Gone),
            Some(("err", why)) => Err(Refused::Failed(why.to_string())),
            _ => Err(Refused::Gone),
        }
    }
}

/// `ward forker`: serves spawn requests on fd 0 until the daemon closes it.
pub fn run() -> crate::error::Result<()> {
    // Its children inherit what it holds: nothing but the socket on fd 0 and stdout/stderr.
    crate::os::sys::close_inherited(&[]);
    // SAFETY: fd 0 is the socket the daemon handed us as stdin; we own it from here on.
    #[allow(unsafe_code)]
    let sock = unsafe { OwnedFd::from_raw_fd(0) };
    let mut buf = vec![0u8; MAX_REQ];
    loop {
        let (n, fds) = {
            let mut cmsg = nix::cmsg_space!([RawFd; 4]);
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = match socket::recvmsg::<UnixAddr>(
                sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(m) => m,
                Err(Errno::EINTR) => continue,
                Err(_) => return Ok(()),
            };
            let mut fds: Vec<OwnedFd> = Vec::new();
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    if let ControlMessageOwned::ScmRights(raw) = c {
                        // SAFETY: SCM_RIGHTS just installed these fds; nothing else owns them.
                        #[allow(unsafe_code)]
                        fds.extend(raw.into_iter().map(|r| unsafe { OwnedFd::from_raw_fd(r) }));
                    }
                }
            }
            (msg.bytes, fds)
        };
        if n == 0 && fds.is_empty() {
            return Ok(()); // the daemon is gone
        }
        let answer = match (crate::json::from_bytes::<Req>(&buf[..n]), fds.len()) {
            (Ok(req), 3 | 4) => match start(&req, &fds) {
                Ok(pid) => format!("ok {pid}"),
                Err(why) => format!("err {why}"),
            },
            _ => "err a malformed request".to_string(),
        };
        let _ = socket::send(sock.as_raw_fd(), answer.as_bytes(), MsgFlags::empty());
    }
}

/// Clones and execs one app. Everything the child needs is built before the clone; the
/// child then calls only async-signal-safe functions.
fn start(req: &Req<'_>, fds: &[OwnedFd]) -> Result<u32, String> {
    let cstr = |s: &str| CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"));
    let argv: Vec<CString> = std::iter::once(&*req.program)
        .chain(req.args.iter().map(|a| &**a))
        .map(cstr)
        .collect::<Result<_, _>>()?;
    let envp: Vec<CString> = req
        .env
        .iter()
        .map(|(k, v)| cstr(&format!("{k}={v}")))
        .collect::<Result<_, _>>()?;
    // Where to look for the program: as given when it has a '/', else the app's PATH.
    let candidates: Vec<CString> = if req.program.contains('/') {
        vec![cstr(&req.program)?]
    } else {
        let path = req
            .env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| &**v)
            .unwrap_or("/usr/local/bin:/usr/bin:/bin");
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| cstr(&format!("{d}/{}", req.program)))
            .collect::<Result<_, _>>()?
    };
    let cwd = cstr(&req.cwd)?;
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|c| c.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    let lim = req.nofile.map(|(soft, hard)| libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    });
    let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| format!("unable to create a pipe: {}", e.desc()))?;
    let raw = [fds[0].as_raw_fd(), fds[1].as_raw_fd(), fds[2].as_raw_fd()];
    let report = err_w.as_raw_fd();
    let channel = fds.get(3).map(|f| f.as_raw_fd());

    // SAFETY: clone without CLONE_VM is a fork: the child gets a copy of this
    // single-threaded process. Between clone and exec it calls only async-signal-safe
    // functions (setpgid, signal, dup2, fcntl, chdir, setrlimit, execve, write, _exit) on data built
    // before the clone. CLONE_PARENT makes the app the daemon's child, not ours.
    #[allow(unsafe_code)]
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid == 0 {
        #[allow(unsafe_code)]
        unsafe {
            libc::setpgid(0, 0);
            // Rust's runtime ignores SIGPIPE in this server, and an ignored signal stays
            // ignored across exec: give the app the default, as std's Command (the
            // daemon's direct spawn), pm2 and a shell do, so every app has the same.
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            for (i, fd) in raw.iter().enumerate() {
                if libc::dup2(*fd, i as i32) < 0 {
                    fail(report, b'd');
                }
            }
            // Node's IPC channel goes to fd 3 (NODE_CHANNEL_FD=3), without close-on-exec.
            if let Some(c) = channel {
                let r = if c == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(c, 3)
                };
                if r < 0 {
                    fail(report, b'd');
                }
            }
            if libc::chdir(cwd.as_ptr()) < 0 {
                fail(report, b'c');
            }
            if let Some(l) = &lim {
                libc::setrlimit(libc::RLIMIT_NOFILE, l);
            }
            let mut saw_eacces = false;
            for c in &candidates {
                libc::execve(c.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr());
                if *libc::__errno_location() == libc::EACCES {
                    saw_eacces = true;
                }
            }
            if saw_eacces {
                *libc::__errno_location() = libc::EACCES;
            }
            fail(report, b'e');
        }
    }
    drop(err_w);
    if pid < 0 {
        return Err(format!(
            "unable to start a process: {}",
            Errno::last().desc()
        ));
    }
    // The child's exec closes its copy of the report pipe: EOF means it ran.
    let mut msg = [0u8; 5];
    let mut got = 0;
    while got < msg.len() {
        match nix::unistd::read(err_r.as_raw_fd(), &mut msg[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    if got == msg.len() {
        let e = Errno::from_raw(i32::from_le_bytes([msg[1], msg[2], msg[3], msg[4]]));
        return Err(match msg[0] {
            b'c' => format!("chdir {}: {}", req.cwd, e.desc()),
            b'd' => format!("unable to set up the output pipes: {}", e.desc()),
            _ => format!("exec {}: {}", req.program, e.desc()),
        });
    }
    Ok(pid as u32)
}

/// In the cloned child: reports which step failed and errno to the server, and exits.
#[allow(unsafe_code)]
unsafe fn fail(report: RawFd, stage: u8) -> ! {
    // SAFETY: errno, write and _exit are async-signal-safe; `msg` is on our stack.
    unsafe {
        let e = *libc::__errno_location();
        let b = e.to_le_bytes();
        let msg = [stage, b[0], b[1], b[2], b[3]];
        libc::write(report, msg.as_ptr().cast(), msg.len());
        libc::_exit(127)
    }
}
