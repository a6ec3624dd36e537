//! The daemon's side: the one epoll loop and everything only the daemon runs — answering
//! requests, surviving its own death and `ward update`, timers (cron, memory checks),
//! file watching, per-client reply queues, instance slots, the fd holder process, and
//! what ward says to apps: Node's IPC channel, cluster mode, sd_notify readiness.
//!
//! May use the shared core (lifecycle, table, protocol, store, logs, home), spec/ and os/;
//! never client/: the daemon renders nothing for a terminal.

mod cluster;
mod event_loop;
pub mod holder;
mod instances;
mod ipc;
mod notify;
mod outbox;
mod schedule;
mod watch;

pub use event_loop::{Inherited, run};
