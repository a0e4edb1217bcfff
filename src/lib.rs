//! # extmem
//!
//! Pooled, zero-copy external memory for Node.js: the Node-API binding over [`extmem_core`], the
//! allocator. This crate converts between JavaScript and the core, and nothing more:
//!
//! - [`hot`]: the allocation hot path as raw Node-API callbacks (`alloc`, `allocBound`, `reuse`,
//!   `release`, `finishRelease`), reading their arguments through [`call`]; [`native_pool`]: the rest of a pool's API as a napi-rs class;
//! - [`loan_handle`]: what Node hands back when an external ArrayBuffer is finalized, and how a
//!   loan ends then; [`escape`]: how the binding knows whether memory may have left its thread;
//! - [`events`]: level changes and leaks delivered to every thread's JavaScript in order;
//! - [`raw`]: the few raw Node-API calls, each wrapped once with its safety argument; [`scratch`]:
//!   the per-thread array through which calls return extra results; [`status`]: the negative
//!   statuses calls return in place of a value; [`stats`]: the JavaScript shape of a snapshot;
//!   [`constants`]: the facts about the core that JavaScript builds its tables from.
//!
//! Results travel back to JavaScript without exceptions: a call returns its value, or a negative
//! status; details (a token, a slot, the figures of a refusal) go into the thread's scratch array.
//! The JavaScript layer (`lib/`) turns statuses into Node-style errors.
//!
//! ## The one invariant
//! Every byte lent belongs to exactly one live loan, and every live loan to exactly one attached
//! ArrayBuffer. A loan ends only after that ArrayBuffer is detached or finalized, so no JavaScript
//! reference can reach bytes that another owner holds; memory that may have moved to another
//! thread's ArrayBuffer when its own thread ends is parked for good instead.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, missing_debug_implementations)]
// napi-derive registers `#[napi]` exports with Node only outside `cfg(test)`, so in the test build
// of this cdylib (which `cargo clippy --all-targets` checks; it has no tests, `test = false`) every
// export and all that only they use look dead. Outside tests, dead code is still an error.
#![cfg_attr(test, allow(dead_code, reason = "exports are registered with Node only outside cfg(test)"))]

mod cache;
mod call;
mod constants;
mod escape;
mod events;
mod handoff;
mod hot;
mod loan_handle;
mod native_pool;
mod raw;
mod release_all;
mod resize;
mod scratch;
mod stats;
mod status;
