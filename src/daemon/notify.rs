//! Readiness for every language: the sd_notify protocol. Each app gets `NOTIFY_SOCKET`
//! in its environment; a datagram `READY=1` sent there (systemd-notify --ready, python's
//! socket module, any sd_notify library) counts exactly as Node's `process.send('ready')`,
//! and `STATUS=...` is shown by `describe`.
//!
//! The socket is one for the daemon; the kernel tells each datagram's sender (SO_PASSCRED),
//! and the daemon accepts a message only from a process it supervises: an app's main pid
//! or a process in its process group (a helper such as systemd-notify run by the app).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use crate::os::ipc;

/// What one datagram says, as sd_notify(3) defines its `KEY=VALUE` lines.
#[derive(Debug, Default, PartialEq)]
pub struct Note {
    pub ready: bool,
    pub status: Option<String>,
    pub stopping: bool,
}

pub fn parse(data: &[u8]) -> Note {
    let mut n = Note::default();
    for line in String::from_utf8_lossy(data).lines() {
        match line.split_once('=') {
            Some(("READY", "1")) => n.ready = true,
            Some(("STOPPING", "1")) => n.stopping = true,
            Some(("STATUS", s)) => n.status = Some(s.chars().take(200).collect()),
            _ => {}
        }
    }
    n
}

pub struct Notify {
    fd: OwnedFd,
    /// As given to apps in `NOTIFY_SOCKET`.
    pub addr: String,
}

impl Notify {
    /// Binds `home/notify.sock`, or an abstract address when that path is too long for a
    /// socket address (108 bytes).
    pub fn open(home: &Path) -> Result<Notify, String> {
        let path = home.join("notify.sock");
        let text = path.to_string_lossy().into_owned();
        let addr = if text.len() < 100 {
            text
        } else {
            format!("@ward-notify-{}", std::process::id())
        };
        let fd = ipc::notify_socket(&addr)
            .map_err(|e| format!("unable to bind the notify socket {addr}: {}", e.desc()))?;
        Ok(Notify { fd, addr })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The datagrams waiting, each with its sender's pid (`None`: the kernel did not say,
    /// and the message is ignored) and uid.
    pub fn read(&self, buf: &mut [u8], max: usize) -> Vec<(u32, u32, Note)> {
        let mut out = Vec::new();
        for _ in 0..max {
            match ipc::recv_notify(self.fd.as_fd(), buf) {
                Some((n, Some((pid, uid)))) => out.push((pid, uid, parse(&buf[..n]))),
                Some((_, None)) => {}
                None => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sd_notify_lines() {
        assert_eq!(
            parse(b"READY=1\nSTATUS=serving 3 clients\n"),
            Note {
                ready: true,
                status: Some("serving 3 clients".into()),
                stopping: false
            }
        );
        assert_eq!(parse(b"READY=0"), Note::default());
        assert_eq!(parse(b"\xff\xfe"), Note::default());
    }
}
