//! Per-thread caches: slots and large mappings the core hands to one thread's JavaScript, which
//! lends them to Buffers and takes them back with no call into the core and no lock.
//!
//! A cached slot (or mapping of a large class, bound to the cache's ArrayBuffer over it, see
//! `bound_map`) is a *cache loan*: a loan whose [`Loan::cache`](crate::loan::Loan::cache) names
//! the cache and an entry of it. Large classes follow the small ones: cache class
//! `CLASS_COUNT + k` is the large class of length `large::class_lens()[k]`. While the slot sits
//! in the cache it counts as reserved and cached, not in use. The thread lends it to a Buffer and
//! takes it back by writing its [`CacheBlock`], a small array of 32-bit words that both sides can
//! see (JavaScript views it as an `Int32Array`):
//!
//! - the thread adds each lend and release to the block's counters (bytes in use, bytes
//!   requested, live Buffers, allocations, releases), so [`Pool::stats`] adds them to its own and
//!   stays exact at the moment it is taken;
//! - the entry's word holds the lent Buffer's length while it is lent and 0 while the slot is in
//!   the cache, so a finalizer can tell a Buffer collected without release (a GC reclaim) from a
//!   cache that went away with its thread or its `Pool` object (the slot simply comes back);
//! - the core writes the *gate*: 1 while a cache hit cannot move the level (the pool is at
//!   `normal` or `warning`, and the bytes in use are far enough from the thresholds on both sides
//!   for every cache's allowed drift), 0 otherwise; beside it the *drift budgets*, how far each
//!   cache may move up and down from its synced bytes before it syncs again (the farther the pool
//!   is from the threshold on that side, the larger: see `State::drift_budgets`); and it counts
//!   up the *flush* word to ask every cache to give its slots back (at `critical`, after a refusal
//!   at the cap, on `trim`).
//!
//! Invariants:
//! - each word has one writer: the gate, the drift budgets and the flush word the core (under the
//!   pool's lock), every other word the cache's own thread (its JavaScript, or the core on that
//!   thread inside one of its calls or finalizers, while no JavaScript of it runs: the synced
//!   word is written only so, by [`Pool::cache_sync`] and `State::materialize`); every other
//!   thread only loads them;
//! - a thread keeps its drift, `WORD_IN_USE - WORD_SYNCED`, at most its up budget above and its
//!   down budget below 0 (it reads them at each lend and release), syncing first or taking the
//!   core's path where a move would leave that range; `State::materialize` lowers both words
//!   by the same bytes (they move to the core's counters, and the total does not change), so no
//!   path lets a cache go past its budgets. That is what the budgets count on: the core gives
//!   each of `n` open caches `1/n` of the room between the synced bytes in use and each threshold
//!   of the current band, less every cache's drift so far and one slot per cache for a move racing
//!   the core's write of smaller budgets (a share that is negative where the core lent the room
//!   that a cache's drift away from the threshold left), so with the gate open no cache hit or
//!   put-back can cross a
//!   threshold; the level moves only in calls into the core, each of which judges it (and the
//!   budgets) again;
//! - a flush request (the flush word counted up) is honoured at the thread's next lend or
//!   release whatever the gate says meanwhile: the gate may open again before that thread runs;
//! - an entry is lent only while its ArrayBuffer has a witness (a lend in JavaScript never makes
//!   one): `cache_sync` makes the witnesses of slots put back since the last sync before the
//!   thread lends them again;
//! - any core call that checks a cache-served Buffer against its loan first turns the cache loan
//!   into an ordinary loan (`State::materialize`); JavaScript forgets the entry before any such
//!   call, so the two never disagree about which loans the cache still serves.
//!
//! Its files:
//! - `block`: the block's layout, word by word and who writes each, and the capacities JavaScript
//!   and the core share;
//! - `registry`: the core's record of each cache, and the totals of their cache loans;
//! - `state_ops`: the state's operations on them (gates and drift budgets, cache loans);
//! - `pool_api`: the pool's operations for a cache's thread (open, fill, sync, flush, close).
//!
//! [`Pool::stats`]: super::Pool::stats
//! [`Pool::cache_sync`]: super::Pool::cache_sync

mod block;
mod pool_api;
mod registry;
mod state_ops;
#[cfg(test)]
mod tests;

pub use block::{
    cache_classes, capacity_of, class_bytes, large_class_of, max_capacity_of, CacheBlock, BLOCK_BYTES,
    CACHE_BYTES_MAX_PER_CLASS, CACHE_BYTES_MAX_PER_LARGE_CLASS, CACHE_BYTES_PER_CLASS, CACHE_CLASSES,
    CACHE_SLOTS_MAX_PER_CLASS, CACHE_SLOTS_PER_CLASS, CLASS_SPAN, DRIFT_CAP, ENTRY_TRACKED, FILL_BATCH,
    LARGE_CLASSES_MAX, LARGE_LENT_MAX, MAX_ENTRIES, WORD_ALLOCATIONS, WORD_CLASSES, WORD_DRIFT_DOWN, WORD_DRIFT_UP,
    WORD_ENTRIES, WORD_FLUSH, WORD_GATE, WORD_GATE_LARGE, WORD_IN_USE, WORD_LIVE, WORD_RELEASES, WORD_REQUESTED,
    WORD_SYNCED,
};
pub use pool_api::CacheGrant;
pub(super) use registry::Caches;
