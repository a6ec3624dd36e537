//! The control socket: a UNIX datagram socket, and the credentials of whoever writes to it.
//!
//! The daemon side is non-blocking and never waits on a client; the client side binds an
//! abstract address of its own so the daemon can answer. No JSON here.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType, SockaddrLike, UnixAddr,
    sockopt,
};

use crate::error::{Error, Result};

pub struct Server {
    fd: OwnedFd,
}

pub struct Datagram {
    pub len: usize,
    pub from: Option<UnixAddr>,
    pub uid: Option<u32>,
    pub truncated: bool,
}

impl Server {
    pub fn bind(path: &Path) -> Result<Server> {
        let fd = socket::socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| Error::unable("create the control socket", e.desc()))?;
        socket::setsockopt(&fd, sockopt::PassCred, &true)
            .map_err(|e| Error::unable("enable SO_PASSCRED", e.desc()))?;
        // Large replies go out in big frames; the kernel caps this at wmem_max.
        let _ = socket::setsockopt(&fd, sockopt::SndBuf, &(4 << 20));
        let _ = std::fs::remove_file(path);
        let addr = UnixAddr::new(path)
            .map_err(|e| Error::unable(format_args!("use {}", path.display()), e.desc()))?;
        socket::bind(fd.as_raw_fd(), &addr)
            .map_err(|e| Error::unable(format_args!("bind {}", path.display()), e.desc()))?;
        Ok(Server { fd })
    }

    /// Takes over the socket a re-executed daemon left open for us.
    pub fn inherit(fd: i32) -> Server {
        use std::os::fd::FromRawFd;
        // SAFETY: the daemon we were exec'd from passed this fd number on the command line
        // and kept it open across exec; nothing else in this process owns it.
        #[allow(unsafe_code)]
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let _ = nix::fcntl::fcntl(
            fd.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
        Server { fd }
    }

    /// Receives one datagram; `Ok(None)` when none is waiting.
    pub fn recv(&self, buf: &mut [u8]) -> std::result::Result<Option<Datagram>, Errno> {
        match recv_with_creds(self.fd.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT) {
            Ok(d) => Ok(Some(d)),
            Err(Errno::EAGAIN) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends without waiting: `EAGAIN` when the client's queue is full.
    pub fn send(&self, to: &UnixAddr, d: &[u8]) -> std::result::Result<(), Errno> {
        socket::sendto(self.fd.as_raw_fd(), d, to, MsgFlags::MSG_DONTWAIT).map(|_| ())
    }
}

impl AsFd for Server {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The client's end: an abstract address unique to this process. Abstract addresses have
/// no permissions, so anyone may write to it: every datagram comes with its sender's
/// address and uid (SO_PASSCRED), for the caller to accept only the daemon's.
pub struct Client {
    sock: UnixDatagram,
}

/// One datagram a client received, and who sent it.
pub struct Received {
    pub len: usize,
    /// The sender's bound path (`None`: unbound or abstract).
    pub from: Option<std::path::PathBuf>,
    /// The sender's uid, from SCM_CREDENTIALS (the kernel's word, not the sender's).
    pub uid: Option<u32>,
}

impl Client {
    pub fn new() -> Result<Client> {
        let name = format!(
            "ward-client-{}-{:016x}",
            std::process::id(),
            crate::os::sys::random_u64()
        );
        let addr = SocketAddr::from_abstract_name(name.as_bytes())
            .map_err(|e| Error::unable("name the client socket", crate::error::os(&e)))?;
        let sock = UnixDatagram::bind_addr(&addr)
            .map_err(|e| Error::unable("bind the client socket", crate::error::os(&e)))?;
        socket::setsockopt(&sock, sockopt::PassCred, &true)
            .map_err(|e| Error::unable("enable SO_PASSCRED", e.desc()))?;
        Ok(Client { sock })
    }

    pub fn send(&self, to: &Path, d: &[u8]) -> std::io::Result<()> {
        self.sock.send_to(d, to).map(|_| ())
    }

    /// Waits up to `timeout` for one datagram.
    pub fn recv(&self, buf: &mut [u8], timeout: Duration) -> std::io::Result<Received> {
        self.sock
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        let d = recv_with_creds(self.sock.as_raw_fd(), buf, MsgFlags::empty())
            .map_err(std::io::Error::from)?;
        Ok(Received {
            len: d.len,
            from: d.from.and_then(|a| a.path().map(|p| p.to_path_buf())),
            uid: d.uid,
        })
    }
}

/// One `recvmsg` on a socket with SO_PASSCRED: the datagram, its sender's address and the
/// uid the kernel vouches for.
fn recv_with_creds(
    fd: std::os::fd::RawFd,
    buf: &mut [u8],
    flags: MsgFlags,
) -> std::result::Result<Datagram, Errno> {
    let mut cmsg = nix::cmsg_space!(socket::UnixCredentials);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = socket::recvmsg::<UnixAddr>(
        fd,
        &mut iov,
        Some(&mut cmsg),
        flags | MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut uid = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmCredentials(cred) = c {
                uid = Some(cred.uid());
            }
        }
    }
    // An unbound sender comes with an address length of 0: nix's `UnixAddr` asserts on
    // such an address as soon as it is looked at (path(), Hash, Eq), so it must never
    // leave this function. Nobody can be answered there anyway.
    let from = msg
        .address
        .filter(|a| a.len() as usize > std::mem::offset_of!(libc::sockaddr_un, sun_path));
    Ok(Datagram {
        len: msg.bytes,
        from,
        uid,
        truncated: msg.flags.contains(MsgFlags::MSG_TRUNC),
    })
}
