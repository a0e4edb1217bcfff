//! # extmem
//!
//! Pooled, zero-copy external memory for Node.js: the Node-API binding over [`extmem_core`], the
//! allocator. This crate converts between JavaScript and the core, and nothing more:
//!
//! - [`exports`]: the table of the hot-path functions JavaScript calls as `hot_<name>` (one line
//!   each: name, argument count, body), from which their Node-API callbacks, their registration
//!   and `constants().functions` are generated; [`call`]: how they read their arguments, and
//!   [`flags`] the bits of the `flags` argument; [`pool_external`]: the External by which they
//!   name their pool;
//! - the bodies, by concept: [`hot`] (allocate and release one Buffer), [`release_all`] (many at
//!   once), [`resize`], [`handoff`] (between threads), [`cache`] (per-thread slot caches);
//! - [`native_pool`]: the rest of a pool's API as a napi-rs class;
//! - [`lend`]: the external ArrayBuffer or Buffer a loan is lent through; [`hint`]: what Node
//!   hands back when one is finalized, and how a loan ends then; [`escape`]: how the binding
//!   knows whether memory may have left its thread;
//! - [`events`]: level changes and leaks delivered to every thread's JavaScript in order;
//! - [`raw`]: the few raw Node-API calls, each wrapped once with its safety argument; [`scratch`]:
//!   the per-thread array through which calls return extra results; [`status`]: the negative
//!   statuses calls return in place of a value; [`stats`]: the JavaScript shape of a snapshot;
//!   [`constants`]: the facts about the core that JavaScript builds its tables from; [`layout`]:
//!   the compile-time checks of the layouts both sides index (scratch records, a batch's `io`).
//!
//! The modules form no cycle (`scripts/check-module-cycles.js` checks it in CI): the bodies use
//! the helpers below them, [`exports`] uses the bodies, and only [`constants`] uses [`exports`].
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
#![allow(
    rustdoc::private_intra_doc_links,
    reason = "every module is private: this doc is their map, read with --document-private-items"
)]
// napi-derive registers `#[napi]` exports with Node only outside `cfg(test)`, so in the test build
// of this cdylib (which `cargo clippy --all-targets` checks; it has no tests, `test = false`) every
// export and all that only they use look dead. Outside tests, dead code is still an error.
#![cfg_attr(test, allow(dead_code, reason = "exports are registered with Node only outside cfg(test)"))]

mod cache;
mod call;
mod constants;
mod escape;
mod events;
mod exports;
mod flags;
mod handoff;
mod hint;
mod hot;
mod layout;
mod lend;
mod native_pool;
mod pool_external;
mod raw;
mod release_all;
mod resize;
mod scratch;
mod stats;
mod status;
