//! ward's pure modules, compiled here from ward's own files (`#[path]`), so the fuzz
//! targets call the very code the binary runs. ward is a binary crate with no library;
//! this keeps it so. Only files free of syscalls are included (no daemon/, client/ but the
//! inspect printer, os/).
#![allow(dead_code, unused_imports, clippy::all)]

#[path = "../../src/error.rs"]
pub mod error;
#[path = "../../src/lifecycle.rs"]
pub mod lifecycle;
#[path = "../../src/json.rs"]
pub mod json;
#[path = "../../src/protocol.rs"]
pub mod protocol;
#[path = "../../src/table.rs"]
pub mod table;
#[path = "../../src/tagfirst.rs"]
pub mod tagfirst;

pub mod client;
pub mod spec;
