//! # extmem
//!
//! Pooled, zero-copy external memory for Node.js.
//!
//! The crate has two halves:
//! - [`core`]: the allocator. Size classes ([`core::size_class`]) for requests up to 8 KiB, served
//!   from slab chunks of anonymous memory ([`core::slab`]); a mapping of its own for each larger
//!   request, with a bounded cache of released mappings ([`core::large`]); loans and their tokens
//!   ([`core::loan`]); the pool with its hard cap and exact counters ([`core::pool`],
//!   [`core::stats`]). It knows nothing of Node-API.
//! - `binding`: the Node-API layer. It turns a loan into an external Buffer, detaches the
//!   Buffer when its last reference is released, and ends the loan from the Buffer's finalizer
//!   when a Buffer is collected without release.
//!
//! ## The one invariant
//! Every byte handed out belongs to exactly one live loan, and every live loan to exactly one
//! attached Buffer. Memory goes back to its class or cache only after its Buffer is detached or
//! collected, so no JavaScript reference can reach bytes that another owner holds.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, missing_debug_implementations)]

pub mod core;

#[cfg(not(test))]
mod binding;
