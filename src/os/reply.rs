//! Reply channels: the daemon answers each client from a datagram socket of that client's
//! own, connected to it.
//!
//! Why: a UNIX datagram stays charged to the socket that sent it until the receiver reads
//! it. Replies sent from the control socket itself let clients that never read (60 of
//! them, 10 unread `jlist` each) use up its whole send buffer, and then nobody got an
//! answer. A socket per client puts each backlog on that client's own account: capped
//! there (`CAP`), measured there (SIOCOUTQ), and never in anyone else's way.
//!
//! Every reply socket is bound to one path in the home, `ward.reply` (mode 0700 folder: no
//! other user can bind there), which is unlinked right after the bind: the socket keeps the
//! name, the path is free for the next one. So a reply's source address is always
//! `$WARD_HOME/ward.reply` (or `ward.sock`), with the daemon's credentials: a client can
//! tell a reply of its daemon from one forged by another user.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr, sockopt};

/// Unread bytes one client may have waiting before its next datagram waits in the
/// daemon's queue instead (one datagram more always goes when nothing is unread, so a
/// large reply still goes out as the client reads it).
pub const CAP: usize = 1 << 20;

pub struct Channel {
    fd: OwnedFd,
}

impl Channel {
    /// A socket named `name` (see above), connected to the client at `to`. Errors:
    /// `ECONNREFUSED` when the client is gone; anything else when no socket could be made
    /// (the caller then answers from the control socket).
    pub fn open(to: &UnixAddr, name: &Path) -> Result<Channel, Errno> {
        let fd = socket::socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        let _ = socket::setsockopt(&fd, sockopt::SndBuf, &CAP);
        let addr = UnixAddr::new(name)?;
        if socket::bind(fd.as_raw_fd(), &addr) == Err(Errno::EADDRINUSE) {
            // Left by a daemon that died between bind and unlink.
            let _ = std::fs::remove_file(name);
            socket::bind(fd.as_raw_fd(), &addr)?;
        }
        let _ = std::fs::remove_file(name);
        socket::connect(fd.as_raw_fd(), to).map_err(|_| Errno::ECONNREFUSED)?;
        Ok(Channel { fd })
    }

    /// Points a socket whose last client read everything at another client: the name stays,
    /// so a reused socket costs one `connect` instead of a new inode in the home (a `bind`
    /// there took 0.2–0.3 ms on ext4, most of the daemon's time for a `ward ls`).
    /// `ECONNREFUSED` when the client is gone.
    pub fn reconnect(&self, to: &UnixAddr) -> Result<(), Errno> {
        socket::connect(self.fd.as_raw_fd(), to).map_err(|_| Errno::ECONNREFUSED)
    }

    /// Sends one datagram without waiting: `EAGAIN` when the client has `CAP` bytes
    /// unread or its queue is full.
    pub fn send(&self, d: &[u8]) -> Result<(), Errno> {
        let unread = self.unread();
        if unread > 0 && unread + d.len() > CAP {
            return Err(Errno::EAGAIN);
        }
        loop {
            match socket::send(self.fd.as_raw_fd(), d, MsgFlags::MSG_DONTWAIT) {
                Err(Errno::EINTR) => continue,
                r => return r.map(|_| ()),
            }
        }
    }

    /// Bytes sent that the client has not read yet.
    pub fn unread(&self) -> usize {
        crate::os::sys::unread_bytes(self.fd.as_fd())
    }
}
