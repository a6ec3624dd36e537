//! ward's inspect printer, included by path.
#[path = "../../../src/client/inspect.rs"]
pub mod inspect;
