//! The operating system: every libc/nix call that needs care and every `unsafe` block —
//! spawning children (posix_spawn and the fork server), /proc readers, the control socket
//! and the per-client reply sockets, Node's IPC channel and the sockets of cluster mode and
//! sd_notify, signals, rlimits, clocks and local time, and who owns a file (trust).
//!
//! Mechanism only: no policy about apps lives here. May use the shared error type and
//! plain data from spec/; never daemon/ or client/.

#[allow(unsafe_code)]
pub mod forker;
#[allow(unsafe_code)]
pub mod ipc;
#[allow(unsafe_code)]
pub mod memcpy;
#[allow(unsafe_code)]
pub mod pool;
pub mod proc;
pub mod reply;
pub mod sock;
#[allow(unsafe_code)]
pub mod spawn;
pub mod stdio;
#[allow(unsafe_code)]
pub mod sys;
pub mod trust;
pub mod users;
