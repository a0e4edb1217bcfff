//! # extmem-core
//!
//! The allocator behind extmem's pooled, zero-copy external memory for Node.js. It knows nothing
//! of Node-API: the binding (the `extmem` crate) turns its loans into external ArrayBuffers.
//!
//! - [`size_class`]: the classes requests up to 8 KiB are rounded to;
//! - [`slab`]: chunks of anonymous memory carved into the slots of one class, with their free list
//!   and the epoch of the newest ArrayBuffer over each slot;
//! - [`large`]: a mapping of its own for each larger request, and a bounded cache of released ones;
//! - [`loan`]: the record of one Buffer's memory while it is lent, and the token that names it;
//! - [`pool`]: all of the above behind one lock, with the hard cap and exact counters ([`stats`]),
//!   watermark levels ([`watermark`]), graded admission ([`admission`]) and listeners ([`events`]);
//! - [`quarantine`]: released memory held back and poisoned before it is lent again (a debug mode);
//! - [`limits`]: the default cap; [`error`]: why an operation was refused; [`os`]: what the core
//!   asks of the operating system, per platform (the coarse clock loans are timed with among it).
//!
//! ## The one invariant
//! Every byte lent belongs to exactly one live loan. Memory goes back to its class or cache only
//! when its loan ends, and the binding ends a loan only once no ArrayBuffer can reach the memory
//! (or parks it for good when that cannot be known).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod admission;
pub mod error;
pub mod events;
pub mod large;
pub mod limits;
pub mod loan;
pub mod os;
pub mod pool;
pub mod quarantine;
pub mod size_class;
pub mod slab;
pub mod stats;
pub mod watermark;
