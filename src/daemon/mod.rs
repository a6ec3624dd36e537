//! The daemon's side: the one epoll loop and everything only the daemon runs — answering
//! requests, surviving its own death and `ward update`, timers (cron, memory checks),
//! file watching, guarding the home against removal, per-client reply queues, instance
//! slots, the fd holder process, and what ward says to apps (Node's IPC channel, cluster
//! mode, sd_notify readiness); and the same loop in the foreground as a container's PID 1
//! (runtime.rs, forward.rs).
//!
//! May use the shared core (lifecycle, table, protocol, store, logs, home), spec/ and os/;
//! never client/: the daemon renders nothing for a terminal.

mod cluster;
mod daemonlog;
mod event_loop;
mod forward;
pub mod holder;
mod home_guard;
mod instances;
mod ipc;
mod notify;
mod outbox;
mod schedule;
mod watch;

pub use event_loop::runtime::run as run_runtime;
pub use event_loop::{Inherited, run};
