//! Node's IPC channel to each Node app: newline-delimited JSON over a socketpair (the app's
//! end is its fd 3, `NODE_CHANNEL_FD`), read in the daemon's loop like an output pipe.
//!
//! This file owns the channels' buffers and what a line means (`Msg`); the daemon decides
//! what to do about each message. An app cannot hurt the daemon through its channel: a
//! turn reads at most `TURN` bytes, a line longer than `MAX_LINE` is dropped, garbage is
//! counted and dropped, descriptors it attaches are closed (os/ipc.rs), and a channel that
//! closes is simply forgotten. A silent channel costs nothing.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use serde_json::Value;

use crate::os::ipc;

/// Bytes read from one channel per loop turn before other fds get theirs.
const TURN: usize = 256 * 1024;
/// The longest message kept; longer ones are dropped whole.
pub const MAX_LINE: usize = 1 << 20;
/// Bytes queued for an app that does not read its channel before messages are dropped.
const MAX_QUEUED: usize = 1 << 20;

/// What one line from an app means to ward.
#[derive(Debug, PartialEq)]
pub enum Msg {
    /// `process.send('ready')`: pm2's readiness signal.
    Ready,
    /// Node's cluster protocol (`{cmd: 'NODE_CLUSTER', act, seq, ...}`), for the primary.
    Cluster(Value),
    /// Node's other internal messages (`NODE_HANDLE_ACK`, ...): nothing to do.
    Internal,
    /// Anything else the app sent (pm2 puts it on its bus as `process:msg`).
    Other(Value),
    /// Not JSON, or a line over `MAX_LINE`.
    Garbage,
}

pub fn classify(line: &[u8]) -> Msg {
    let Ok(v) = crate::json::from_bytes::<Value>(line) else {
        return Msg::Garbage;
    };
    if v.as_str() == Some("ready") {
        return Msg::Ready;
    }
    match v.get("cmd").and_then(Value::as_str) {
        Some("NODE_CLUSTER") => Msg::Cluster(v),
        Some(c) if c.starts_with("NODE_") => Msg::Internal,
        _ => Msg::Other(v),
    }
}

/// Splits what was read into complete lines: `partial` holds the unfinished line between
/// reads. A line that grows past `MAX_LINE` is dropped (as `Garbage`) up to its newline.
pub fn split(partial: &mut Vec<u8>, skipping: &mut bool, data: &[u8], out: &mut Vec<Msg>) {
    let mut rest = data;
    while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
        let (head, tail) = rest.split_at(nl);
        rest = &tail[1..];
        if *skipping {
            *skipping = false;
            partial.clear();
            continue;
        }
        if partial.is_empty() {
            if !head.is_empty() {
                out.push(classify(head));
            }
        } else {
            partial.extend_from_slice(head);
            if partial.len() > MAX_LINE {
                out.push(Msg::Garbage);
            } else {
                out.push(classify(partial));
            }
            partial.clear();
        }
    }
    if *skipping {
        return;
    }
    partial.extend_from_slice(rest);
    if partial.len() > MAX_LINE {
        out.push(Msg::Garbage);
        partial.clear();
        partial.shrink_to_fit();
        *skipping = true;
    }
}

struct Channel {
    fd: OwnedFd,
    /// Its name at the fd holder: `ID.PID.c`.
    key: String,
    app: u32,
    pid: u32,
    partial: Vec<u8>,
    skipping: bool,
    /// Bytes not yet taken by the app (a partial write), sent before anything new.
    queued: Vec<u8>,
}

/// Every open channel, by epoll token, with the pid it belongs to.
#[derive(Default)]
pub struct Channels {
    by_tok: HashMap<u64, Channel>,
    by_pid: HashMap<u32, u64>,
}

/// What a read of one channel gave.
pub struct Batch {
    pub app: u32,
    pub pid: u32,
    pub msgs: Vec<Msg>,
    pub closed: bool,
}

impl Channels {
    pub fn add(&mut self, tok: u64, fd: OwnedFd, app: u32, pid: u32, key: String) {
        self.by_pid.insert(pid, tok);
        self.by_tok.insert(
            tok,
            Channel {
                fd,
                key,
                app,
                pid,
                partial: Vec::new(),
                skipping: false,
                queued: Vec::new(),
            },
        );
    }

    pub fn has(&self, tok: u64) -> bool {
        self.by_tok.contains_key(&tok)
    }

    pub fn has_pid(&self, pid: u32) -> bool {
        self.by_pid.contains_key(&pid)
    }

    pub fn fd(&self, tok: u64) -> Option<BorrowedFd<'_>> {
        self.by_tok.get(&tok).map(|c| c.fd.as_fd())
    }

    /// Reads up to `TURN` bytes from a channel into messages.
    pub fn read(&mut self, tok: u64, buf: &mut [u8]) -> Option<Batch> {
        let c = self.by_tok.get_mut(&tok)?;
        let mut b = Batch {
            app: c.app,
            pid: c.pid,
            msgs: Vec::new(),
            closed: false,
        };
        let mut taken = 0;
        while taken < TURN {
            match ipc::read(c.fd.as_fd(), buf) {
                ipc::Read::Data(n) => {
                    taken += n;
                    split(&mut c.partial, &mut c.skipping, &buf[..n], &mut b.msgs);
                }
                ipc::Read::Empty => break,
                ipc::Read::Eof => {
                    b.closed = true;
                    break;
                }
            }
        }
        Some(b)
    }

    /// Forgets a channel; returns its fd (to take out of epoll, then close) and its key.
    pub fn remove(&mut self, tok: u64) -> Option<(OwnedFd, String)> {
        let c = self.by_tok.remove(&tok)?;
        if self.by_pid.get(&c.pid) == Some(&tok) {
            self.by_pid.remove(&c.pid);
        }
        Some((c.fd, c.key))
    }

    /// (holder key, fd) of every channel, for a new fd holder.
    pub fn held(&self) -> Vec<(String, std::os::fd::RawFd)> {
        use std::os::fd::AsRawFd;
        self.by_tok
            .values()
            .map(|c| (c.key.clone(), c.fd.as_raw_fd()))
            .collect()
    }

    pub fn token_of(&self, pid: u32) -> Option<u64> {
        self.by_pid.get(&pid).copied()
    }

    /// Sends one message (JSON and its newline) to the process `pid`, with `handle`
    /// attached. Never waits: what the app does not take now is queued (up to
    /// `MAX_QUEUED`) and sent on a later turn (`flush`). `Ok(true)` when something
    /// stays queued, so the loop should watch for EPOLLOUT.
    pub fn send(
        &mut self,
        pid: u32,
        msg: &Value,
        handle: Option<BorrowedFd>,
    ) -> Result<bool, String> {
        let tok = self
            .by_pid
            .get(&pid)
            .copied()
            .ok_or_else(|| format!("pid {pid} has no IPC channel"))?;
        let c = self
            .by_tok
            .get_mut(&tok)
            .ok_or_else(|| format!("pid {pid} has no IPC channel"))?;
        let mut line = serde_json::to_vec(msg).map_err(|e| e.to_string())?;
        line.push(b'\n');
        if !c.queued.is_empty() {
            if handle.is_some() {
                return Err(format!("pid {pid} is not reading its IPC channel"));
            }
            if c.queued.len() + line.len() > MAX_QUEUED {
                return Err(format!("pid {pid} is not reading its IPC channel"));
            }
            c.queued.extend_from_slice(&line);
            return Ok(true);
        }
        match ipc::write(c.fd.as_fd(), &line, handle) {
            Ok(n) if n == line.len() => Ok(false),
            Ok(n) => {
                c.queued.extend_from_slice(&line[n..]);
                Ok(true)
            }
            Err(nix::errno::Errno::EAGAIN) if handle.is_none() => {
                c.queued = line;
                Ok(true)
            }
            Err(e) => Err(format!(
                "unable to write to pid {pid}'s IPC channel: {}",
                e.desc()
            )),
        }
    }

    /// Sends what was queued for a channel; `true` while some is still left.
    pub fn flush(&mut self, tok: u64) -> bool {
        let Some(c) = self.by_tok.get_mut(&tok) else {
            return false;
        };
        while !c.queued.is_empty() {
            match ipc::write(c.fd.as_fd(), &c.queued, None) {
                Ok(n) => {
                    c.queued.drain(..n);
                }
                Err(nix::errno::Errno::EAGAIN) => return true,
                Err(_) => {
                    c.queued = Vec::new();
                    return false;
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(chunks: &[&[u8]]) -> Vec<Msg> {
        let (mut partial, mut skipping, mut out) = (Vec::new(), false, Vec::new());
        for c in chunks {
            split(&mut partial, &mut skipping, c, &mut out);
        }
        out
    }

    #[test]
    fn lines_across_reads() {
        assert_eq!(
            run(&[
                b"\"rea",
                b"dy\"\n{\"a\":1}\n{\"cmd\":\"NODE_HANDLE_ACK\"}\n"
            ]),
            vec![Msg::Ready, Msg::Other(json!({"a": 1})), Msg::Internal]
        );
        assert_eq!(
            run(&[b"{\"cmd\":\"NODE_CLUSTER\",\"act\":\"online\",\"seq\":0}\n"]),
            vec![Msg::Cluster(
                json!({"cmd": "NODE_CLUSTER", "act": "online", "seq": 0})
            )]
        );
    }

    #[test]
    fn garbage_and_huge_lines_are_dropped() {
        assert_eq!(
            run(&[b"not json\n\"ready\"\n"]),
            vec![Msg::Garbage, Msg::Ready]
        );
        let big = vec![b'x'; MAX_LINE / 2 + 1];
        // Three halves of a line: dropped once, then the rest up to its newline is skipped.
        let out = run(&[&big, &big, &big, b"tail\n\"ready\"\n"]);
        assert_eq!(out, vec![Msg::Garbage, Msg::Ready]);
    }
}
