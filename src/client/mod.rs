//! The client's side: the command line and everything only the client runs — parsing
//! argv, talking to the daemon, rendering tables and pm2's listings, monit, the log
//! follower, attach, writing start-up units, and the container runtime's command line.
//!
//! May use the shared core, spec/ and os/; never daemon/: a client only knows the daemon
//! through the protocol.

mod attach;
mod axm;
pub mod cli;
pub mod commands;
pub mod completion;
mod docs;
mod feedback;
mod follow;
pub mod given;
pub mod guide;
mod inspect;
mod monit;
pub mod opts;
pub mod output;
pub mod pm2flags;
mod render;
mod report;
pub mod runtime_cli;
mod startup;
mod talk;
mod watchext;
