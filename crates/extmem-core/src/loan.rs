//! Loans: the record of one Buffer's memory while it is handed out, and the token that names it.
//!
//! A token is a non-negative integer below 2^53, so JavaScript holds it exactly as a number:
//!
//! ```text
//!  52        41 40         28 27                     0
//! [ pool: 12  ][  gen: 13    ][        key: 28        ]
//! ```
//!
//! `key` indexes the loan table, `gen` tells apart successive loans at the same key, and `pool`
//! tells apart pools. A token only *names* a loan: the loan is accepted only if its address and
//! length also match the Buffer presented, so a stale or forged token can never reach another
//! Buffer's memory.

use memmap2::MmapMut;

use crate::slab::Slot;
use crate::stats::LoanBytes;

const KEY_BITS: u32 = 28;
const GEN_BITS: u32 = 13;
const POOL_BITS: u32 = 12;
const _: () = assert!(KEY_BITS + GEN_BITS + POOL_BITS == 53, "tokens are exact JS numbers");

/// Mask of a pool id inside a token.
pub const POOL_ID_MASK: u64 = (1 << POOL_BITS) - 1;

/// Most loans one pool can have out at once.
pub const MAX_LIVE_LOANS: usize = 1 << KEY_BITS;

/// Most references one loan can hold (a retain beyond is refused with `TooManyRefs`).
pub const MAX_REFS: u32 = u32::MAX;

/// Where a loan's memory comes from, and who gets it back.
#[derive(Debug)]
pub enum LoanMemory {
    /// A slot of the slab pool, of size class `class`.
    Slot {
        /// Index into the size classes.
        class: usize,
        /// The slot itself.
        slot: Slot,
    },
    /// A mapping of its own, owned by the loan until it is released.
    Mapping(MmapMut),
    /// Nothing: the memory went back to the pool as the loan ended.
    Returned,
    /// A mapping that may still be reachable from another thread after its Buffer's thread
    /// ended: deliberately never unmapped (see [`Loan::parked`]).
    Parked,
}

/// Who holds a loan's Buffer, as the binding records it: the thread, the finalize hint, the
/// witness. Opaque to the core, which stores it with the loan and hands it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// Which thread's JavaScript holds the Buffer (the binding's choice of identifier).
    pub thread: usize,
    /// The binding's finalize hint of the Buffer (the address of what it frees when the Buffer
    /// is collected, see the binding's `hint`), or 0 for none.
    pub hint: usize,
    /// The binding's witness of where the Buffer's memory can be reached (a weak reference to the
    /// ArrayBuffer it lent), or 0 for none.
    pub witness: usize,
}

/// One Buffer's memory while it is handed out.
#[derive(Debug)]
pub struct Loan {
    /// Start of the Buffer's bytes.
    pub addr: usize,
    /// Length of the Buffer, as requested.
    pub requested: usize,
    /// Bytes taken from the pool for it: the slot size, or the mapping length.
    pub capacity: usize,
    /// References held: 1 at allocation, +1 per retain, -1 per release. A loan in the table always
    /// has `refs >= 1`; it leaves the table when the last reference is released or its Buffer is
    /// collected.
    pub refs: u32,
    /// Generation of the key this loan holds.
    pub gen: u32,
    /// The memory, returned to its class or cache when the loan ends.
    pub memory: LoanMemory,
    /// Who holds the loan's Buffer (the binding's record).
    pub holder: Holder,
    /// When the loan began, in [`os::now_ms`](crate::os::now_ms) milliseconds.
    pub since_ms: u64,
    /// Whether leak detection tracks this Buffer: its collection without release is a leak.
    pub tracked: bool,
    /// Bytes this loan's own Buffer adds to external memory: `requested`, or 0 when the loan
    /// uses an ArrayBuffer bound to its slot (counted with that ArrayBuffer instead).
    pub external: usize,
    /// Whether the loan uses an ArrayBuffer bound to its slot, which outlives the loan.
    pub bound: bool,
    /// Whether the loan is parked: its Buffer's thread ended while an ArrayBuffer over its memory
    /// may still be alive in another thread, and nothing will ever say when that one is gone.
    /// A parked loan never ends: its memory is never lent again, unmapped or trimmed, even after
    /// the pool itself is dropped; it stays counted as in use.
    pub parked: bool,
    /// While the loan is in transit between threads (see `Pool::share`): the secret its handle
    /// carries. Such a loan has no Buffer; only `Pool::adopt` (or `Pool::reclaim_shared`) with
    /// that secret takes it out of transit.
    pub transit: Option<u64>,
    /// How many times the loan was put in transit: the sequence number its latest handle's secret
    /// carries, so that an earlier handle replayed is told from a forged one.
    pub shares: u32,
    /// For a slot a thread's cache holds (see `pool::cache`): the cache and its entry. While it is
    /// one, the loan counts as cached, not in use, and `requested` and `refs` mean nothing: the
    /// cache's block says whether a Buffer holds the slot and how long it is.
    pub cache: Option<CacheLoan>,
}

/// Where a cache loan lives (see `pool::cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLoan {
    /// The cache's id.
    pub cache: u64,
    /// Its entry.
    pub entry: u32,
}

/// What a new loan is for, beyond its memory: see [`Loan::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoanTerms {
    /// Length of the Buffer, as requested (a cache loan: its capacity).
    pub requested: usize,
    /// Whether leak detection tracks the Buffer.
    pub tracked: bool,
    /// Bytes its own Buffer adds to external memory (see [`Loan::external`]).
    pub external: usize,
    /// Whether it uses an ArrayBuffer bound to its memory (see [`Loan::bound`]).
    pub bound: bool,
    /// For a cache loan: the cache and its entry (see [`Loan::cache`]).
    pub cache: Option<CacheLoan>,
}

impl Loan {
    /// A loan of the `capacity` bytes of `memory` at `addr`, with generation `gen`, begun now with
    /// one reference, neither parked nor in transit. The one place a loan is made: every loan
    /// starts out so, and its terms say the rest.
    pub fn new(gen: u32, memory: LoanMemory, addr: usize, capacity: usize, holder: Holder, terms: LoanTerms) -> Loan {
        let LoanTerms { requested, tracked, external, bound, cache } = terms;
        Loan {
            addr,
            requested,
            capacity,
            refs: 1,
            gen,
            memory,
            holder,
            since_ms: crate::os::now_ms(),
            tracked,
            external,
            bound,
            parked: false,
            transit: None,
            shares: 0,
            cache,
        }
    }

    /// The bytes it accounts for in the pool's counters, as an ordinary loan.
    pub fn bytes(&self) -> LoanBytes {
        LoanBytes { capacity: self.capacity, requested: self.requested, external: self.external }
    }
}

/// Encodes a token.
#[inline]
pub fn token(pool: u64, gen: u32, key: usize) -> u64 {
    debug_assert!(key < MAX_LIVE_LOANS && u64::from(gen) < (1 << GEN_BITS) && pool <= POOL_ID_MASK);
    (pool << (KEY_BITS + GEN_BITS)) | (u64::from(gen) << KEY_BITS) | key as u64
}

/// Decodes a token into `(pool, gen, key)`; `None` if it is not a token at all.
#[inline]
pub fn untoken(token: u64) -> Option<(u64, u32, usize)> {
    if token >> 53 != 0 {
        return None;
    }
    let key = (token & ((1 << KEY_BITS) - 1)) as usize;
    let gen = ((token >> KEY_BITS) & ((1 << GEN_BITS) - 1)) as u32;
    Some((token >> (KEY_BITS + GEN_BITS), gen, key))
}

/// Next generation after `gen`, wrapping within the token's bits.
#[inline]
pub fn next_gen(gen: u32) -> u32 {
    (gen + 1) & ((1 << GEN_BITS) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_stay_exact_in_f64() {
        for &(p, g, k) in &[(0, 0, 0), (4095, 8191, MAX_LIVE_LOANS - 1), (7, 3, 12345)] {
            let t = token(p, g, k);
            assert!(t < 1 << 53);
            assert_eq!(t as f64 as u64, t);
            assert_eq!(untoken(t), Some((p, g, k)));
        }
        assert_eq!(untoken(1 << 53), None);
        assert_eq!(next_gen(8191), 0);
    }
}
