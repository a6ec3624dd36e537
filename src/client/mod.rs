//! The client's side: the command line and everything only the client runs — parsing
//! argv, talking to the daemon, rendering tables and pm2's listings, monit, the log
//! follower, attach, and writing start-up units.
//!
//! May use the shared core, spec/ and os/; never daemon/: a client only knows the daemon
//! through the protocol.

mod attach;
pub mod cli;
pub mod commands;
mod follow;
pub mod given;
mod inspect;
mod monit;
pub mod output;
pub mod pm2flags;
mod render;
mod report;
mod startup;
mod talk;
mod watchext;
