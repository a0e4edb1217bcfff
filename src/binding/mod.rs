//! The Node-API binding: converts between JavaScript and the core, and nothing more.
//!
//! Results travel back to JavaScript without exceptions: a call returns its value, or a negative
//! status from [`status`]; details (a token, a slot, the figures of a refusal) go into the
//! thread's scratch array ([`scratch`]). The JavaScript layer turns statuses into Node-style
//! errors.

mod escape;
mod events;
mod hot;
mod loan_handle;
mod native_pool;
mod raw;
mod scratch;
mod stats;
pub mod status;
