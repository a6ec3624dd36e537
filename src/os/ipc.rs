//! The sockets behind Node's IPC channel, cluster mode and sd_notify readiness: the
//! channel's socketpair, reading and writing it (with a descriptor attached by SCM_RIGHTS),
//! the listening sockets ward binds for cluster workers, and the `NOTIFY_SOCKET` datagram
//! socket whose senders are known by their credentials (SO_PASSCRED).
//!
//! Mechanism only: what the bytes mean is daemon/ipc.rs's and daemon/notify.rs's concern.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
    UnixAddr, sockopt,
};

/// A Node IPC channel: the daemon's end (non-blocking, close-on-exec) and the app's end
/// (close-on-exec too: the spawner puts it at the app's fd 3, which clears the flag there).
pub fn channel_pair() -> Result<(OwnedFd, OwnedFd), Errno> {
    let (mine, theirs) = socket::socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    nix::fcntl::fcntl(
        mine.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )?;
    Ok((mine, theirs))
}

/// What one read of a channel gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    Data(usize),
    Eof,
    Empty,
}

/// Reads what the channel holds, without waiting. Descriptors the app attached (Node sends
/// handles this way) are closed at once: the daemon has no use for them, and keeping them
/// would let an app exhaust the daemon's descriptors.
pub fn read(fd: BorrowedFd, buf: &mut [u8]) -> Read {
    loop {
        let mut cmsg = nix::cmsg_space!([RawFd; 8]);
        let mut iov = [IoSliceMut::new(buf)];
        let res = socket::recvmsg::<UnixAddr>(
            fd.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
        );
        match res {
            Ok(msg) => {
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            for f in fds {
                                // SAFETY: SCM_RIGHTS just installed this descriptor in
                                // our table; nothing else owns it. Dropping closes it.
                                #[allow(unsafe_code)]
                                drop(unsafe { OwnedFd::from_raw_fd(f) });
                            }
                        }
                    }
                }
                return if msg.bytes == 0 {
                    Read::Eof
                } else {
                    Read::Data(msg.bytes)
                };
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Read::Empty,
            Err(_) => return Read::Eof,
        }
    }
}

/// Writes bytes to the channel without waiting, with `handle` attached to the first byte
/// (Node takes the descriptor together with the message it arrived with). Returns how much
/// was written; `Err(EAGAIN)` when the app is not reading.
pub fn write(fd: BorrowedFd, data: &[u8], handle: Option<BorrowedFd>) -> Result<usize, Errno> {
    let iov = [IoSlice::new(data)];
    let raw;
    let mut cmsgs = Vec::new();
    if let Some(h) = handle {
        raw = [h.as_raw_fd()];
        cmsgs.push(ControlMessage::ScmRights(&raw));
    }
    loop {
        match socket::sendmsg::<UnixAddr>(
            fd.as_raw_fd(),
            &iov,
            &cmsgs,
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// Where a cluster worker asked to listen.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    /// Node's default for no host: `[::]` (both families), falling back to 0.0.0.0.
    Any(u16),
    V4(std::net::Ipv4Addr, u16),
    V6(std::net::Ipv6Addr, u16),
    Unix(String),
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            ListenAddr::Any(p) => write!(f, "port {p}"),
            ListenAddr::V4(ip, p) => write!(f, "{ip}:{p}"),
            ListenAddr::V6(ip, p) => write!(f, "[{ip}]:{p}"),
            ListenAddr::Unix(path) => write!(f, "{path}"),
        }
    }
}

/// Binds and listens as Node's `net._createServerHandle` does: SO_REUSEADDR (std sets it,
/// as libuv does) and `[::]` for no host, falling back to 0.0.0.0. Errors are errno values,
/// which the worker receives as Node's negative `errno`.
pub fn listen(addr: &ListenAddr) -> Result<OwnedFd, Errno> {
    let errno = |e: std::io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EINVAL));
    let fd: OwnedFd = match addr {
        ListenAddr::Any(port) => {
            match std::net::TcpListener::bind((std::net::Ipv6Addr::UNSPECIFIED, *port)) {
                Ok(l) => l.into(),
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL)
                    ) =>
                {
                    std::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, *port))
                        .map_err(errno)?
                        .into()
                }
                Err(e) => return Err(errno(e)),
            }
        }
        ListenAddr::V4(ip, port) => std::net::TcpListener::bind((*ip, *port))
            .map_err(errno)?
            .into(),
        ListenAddr::V6(ip, port) => std::net::TcpListener::bind((*ip, *port))
            .map_err(errno)?
            .into(),
        ListenAddr::Unix(path) => std::os::unix::net::UnixListener::bind(path)
            .map_err(errno)?
            .into(),
    };
    Ok(fd)
}

/// The port a listening socket got (the kernel picks one for port 0).
pub fn local_port(fd: BorrowedFd) -> Option<u16> {
    let l = std::net::TcpListener::from(fd.try_clone_to_owned().ok()?);
    l.local_addr().ok().map(|a| a.port())
}

/// The `NOTIFY_SOCKET` of apps: a datagram socket that tells the sender's pid with each
/// message. `addr` starting with `@` is in the abstract namespace (as systemd allows).
pub fn notify_socket(addr: &str) -> Result<OwnedFd, Errno> {
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    socket::setsockopt(&fd, sockopt::PassCred, &true)?;
    let ua = match addr.strip_prefix('@') {
        Some(name) => UnixAddr::new_abstract(name.as_bytes())?,
        None => {
            let _ = std::fs::remove_file(addr);
            UnixAddr::new(addr)?
        }
    };
    socket::bind(fd.as_raw_fd(), &ua)?;
    Ok(fd)
}

/// One notify datagram: its length and the sender's pid and uid, as the kernel vouches
/// for them. `None` when none is waiting.
pub fn recv_notify(fd: BorrowedFd, buf: &mut [u8]) -> Option<(usize, Option<(u32, u32)>)> {
    loop {
        let mut cmsg = nix::cmsg_space!(socket::UnixCredentials, [RawFd; 8]);
        let mut iov = [IoSliceMut::new(buf)];
        match socket::recvmsg::<UnixAddr>(
            fd.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                let mut who = None;
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        match c {
                            ControlMessageOwned::ScmCredentials(cr) => {
                                who = Some((cr.pid() as u32, cr.uid()));
                            }
                            ControlMessageOwned::ScmRights(fds) => {
                                for f in fds {
                                    // SAFETY: just received; ours alone. Closed unread
                                    // (sd_notify's FDSTORE is not supported).
                                    #[allow(unsafe_code)]
                                    drop(unsafe { OwnedFd::from_raw_fd(f) });
                                }
                            }
                            _ => {}
                        }
                    }
                }
                return Some((msg.bytes, who));
            }
            Err(Errno::EINTR) => continue,
            Err(_) => return None,
        }
    }
}

/// The process group of a pid (to know which app a helper such as `systemd-notify`, run
/// by the app's script, belongs to).
pub fn pgid_of(pid: u32) -> Option<u32> {
    nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid as i32)))
        .ok()
        .map(|p| p.as_raw() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_channel_carries_bytes_and_a_descriptor() {
        let (a, b) = channel_pair().unwrap();
        let l = listen(&ListenAddr::V4(std::net::Ipv4Addr::LOCALHOST, 0)).unwrap();
        assert!(local_port(l.as_fd()).unwrap() > 0);
        assert_eq!(write(b.as_fd(), b"hi\n", Some(l.as_fd())), Ok(3));
        let mut buf = [0u8; 16];
        assert_eq!(read(a.as_fd(), &mut buf), Read::Data(3));
        assert_eq!(&buf[..3], b"hi\n");
        assert_eq!(read(a.as_fd(), &mut buf), Read::Empty);
        drop(b);
        assert_eq!(read(a.as_fd(), &mut buf), Read::Eof);
    }
}
