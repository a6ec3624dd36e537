//! The daemon's side: the one epoll loop and everything only the daemon runs — answering
//! requests, surviving its own death and `ward update`, timers (cron, memory checks),
//! file watching, per-client reply queues, instance slots, and the fd holder process.
//!
//! May use the shared core (lifecycle, table, protocol, store, logs, home), spec/ and os/;
//! never client/: the daemon renders nothing for a terminal.

mod daemonlog;
mod event_loop;
pub mod holder;
mod instances;
mod outbox;
mod schedule;
mod watch;

pub use event_loop::{Inherited, run};
