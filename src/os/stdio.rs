//! The runtime's own stdout and stderr, made non-blocking without touching anyone else's.
//!
//! O_NONBLOCK belongs to the open file description, which a container's stdout shares with
//! whoever else holds it (the shell that started us, `docker logs`' pipe writer side).
//! Opening `/proc/self/fd/N` again gives a description of our own for the same pipe, FIFO or
//! tty, so only our writes stop waiting. A socket cannot be opened that way: then the
//! shared description is made non-blocking, the lesser evil for a supervisor that must
//! never wait on its output. A regular file is used as it is (writes to it do not wait on
//! a reader).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use nix::fcntl::{FcntlArg, OFlag, fcntl};

/// A non-blocking writer for `fd` (1 or 2), or `None` when the fd is closed.
pub fn nonblocking(fd: i32) -> Option<OwnedFd> {
    let st = nix::sys::stat::fstat(fd).ok()?;
    if st.st_mode & libc::S_IFMT == libc::S_IFREG {
        // A file never makes a writer wait for a reader; and a description of our own
        // would write at its own offset, over what others write through theirs.
        return dup(fd);
    }
    let own = std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(format!("/proc/self/fd/{fd}"));
    if let Ok(f) = own {
        return Some(OwnedFd::from(f));
    }
    let borrowed = dup(fd)?;
    let flags = fcntl(borrowed.as_raw_fd(), FcntlArg::F_GETFL).ok()?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(borrowed.as_raw_fd(), FcntlArg::F_SETFL(flags)).ok()?;
    Some(borrowed)
}

fn dup(fd: i32) -> Option<OwnedFd> {
    match fd {
        1 => std::io::stdout().as_fd().try_clone_to_owned().ok(),
        2 => std::io::stderr().as_fd().try_clone_to_owned().ok(),
        _ => None,
    }
}
