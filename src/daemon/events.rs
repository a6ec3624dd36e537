//! pm2's process events (God.notify and the CLI's notifyGod): `start`, `online`, `exit`,
//! `restart overlimit`, `stop`, `restart`, `reload`, `delete`. A runtime writing JSON prints
//! them (forward.rs); a client that asked (`logs --json`) gets each as a datagram.
//!
//! A child module of the loop. Sending never waits: a listener whose queue is full misses
//! that event; one that is gone (its socket closed) is dropped at the first failed send.

use nix::errno::Errno;
use nix::sys::socket::UnixAddr;

use super::Daemon;
use crate::protocol::{self, Reply};

/// Clients listening at once; more are refused (each event is a send to each).
const MAX_LISTENERS: usize = 32;

impl Daemon {
    /// `Request::Events`: this client hears of every process event from now on. Asking
    /// again (a client does so now and then, to outlive a daemon restart) changes nothing.
    pub(super) fn on_events(&mut self, from: UnixAddr, id: u64) {
        if let Some(l) = self.listeners.iter_mut().find(|(a, _)| *a == from) {
            l.1 = id;
        } else if self.listeners.len() >= MAX_LISTENERS {
            let message = format!("{MAX_LISTENERS} clients already follow the process events");
            return self.reply_raw(&from, id, &Reply::Error { message });
        } else {
            self.listeners.push((from, id));
        }
        self.reply_raw(&from, id, &Reply::Notes { notes: Vec::new() });
    }

    /// One process event of app `name`.
    pub(super) fn event(&mut self, status: &str, name: &str) {
        crate::daemon::forward::process_event(status, name);
        if self.listeners.is_empty() {
            return;
        }
        let reply = Reply::Event {
            status: status.to_string(),
            app_name: name.to_string(),
            at: crate::os::sys::wall_ms(),
        };
        let Ok(body) = serde_json::to_vec(&reply) else {
            return;
        };
        let server = &self.server;
        self.listeners.retain(|(to, id)| {
            let frames = protocol::frames(*id, &body, protocol::FRAME);
            // Gone (ECONNREFUSED once its socket is closed): forgotten, without a word in
            // ward.log, as a client ending is nothing to report.
            frames
                .iter()
                .all(|d| matches!(server.send(to, d), Ok(()) | Err(Errno::EAGAIN)))
        });
    }
}
