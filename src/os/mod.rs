//! The operating system: every libc/nix call that needs care and every `unsafe` block —
//! spawning children (posix_spawn and the fork server), /proc readers, the control socket,
//! signals, rlimits, clocks and local time.
//!
//! Mechanism only: no policy about apps lives here. May use the shared error type and
//! plain data from spec/; never daemon/ or client/.

#[allow(unsafe_code)]
pub mod forker;
pub mod proc;
pub mod sock;
#[allow(unsafe_code)]
pub mod spawn;
#[allow(unsafe_code)]
pub mod sys;
pub mod users;
