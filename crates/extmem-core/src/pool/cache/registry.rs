//! The core's records of a pool's caches: one [`CacheRec`] per cache; [`Caches`], the records with
//! the totals of their cache loans, which also writes the core's words of every block; and
//! [`Lent`], what the blocks say of the Buffers lent from them.

use std::collections::HashMap;
use std::sync::Arc;

use super::block::{
    CacheBlock, WORD_ALLOCATIONS, WORD_CLASSES, WORD_DRIFT_DOWN, WORD_DRIFT_UP, WORD_FLUSH, WORD_GATE, WORD_GATE_LARGE,
    WORD_IN_USE, WORD_LIVE, WORD_RELEASES, WORD_REQUESTED,
};
use crate::size_class::CLASS_COUNT;

/// The core's record of one cache.
#[derive(Debug)]
pub(super) struct CacheRec {
    pub(super) block: Arc<CacheBlock>,
    /// The loan key of each entry in use.
    pub(super) entries: HashMap<u32, usize>,
    pub(super) free_entries: Vec<u32>,
    /// Whether its thread still serves from it (false once closed, or once its thread's view
    /// of the block was collected).
    pub(super) open: bool,
    /// The most one lend or release of this cache moves: the largest entry it was given.
    pub(super) move_max: usize,
}

/// The caches of one pool and their totals.
///
/// Invariant: `loans`, `bytes` and `per_class` count the cache loans of slots (cached or lent)
/// and `large_loans`, `large_bytes` those of large mappings, over every record; they change only
/// through [`Caches::count_loan`] and [`Caches::uncount_loan`], as a cache loan is made and ends.
#[derive(Debug)]
pub(in crate::pool) struct Caches {
    pub(super) recs: HashMap<u64, CacheRec>,
    pub(super) next_id: u64,
    /// Cache loans of slots, cached or lent.
    pub(in crate::pool) loans: usize,
    /// Their slot bytes.
    pub(in crate::pool) bytes: usize,
    /// Cache loans of slots per class.
    pub(in crate::pool) per_class: [usize; CLASS_COUNT],
    /// Cache loans of large mappings, cached or lent, and their bytes.
    pub(in crate::pool) large_loans: usize,
    pub(in crate::pool) large_bytes: usize,
}

/// Figures of the Buffers lent from caches, summed over the blocks.
#[derive(Debug, Default, Clone, Copy)]
pub(in crate::pool) struct Lent {
    pub(in crate::pool) in_use: usize,
    pub(in crate::pool) requested: usize,
    pub(in crate::pool) live: usize,
    pub(in crate::pool) allocations: u64,
    pub(in crate::pool) releases: u64,
}

impl Default for Caches {
    fn default() -> Self {
        Caches {
            recs: HashMap::new(),
            next_id: 0,
            loans: 0,
            bytes: 0,
            per_class: [0; CLASS_COUNT],
            large_loans: 0,
            large_bytes: 0,
        }
    }
}

impl Caches {
    /// A cache loan of cache class `class`, `bytes` long, was made.
    pub(super) fn count_loan(&mut self, class: usize, bytes: usize) {
        if class < CLASS_COUNT {
            self.loans += 1;
            self.bytes += bytes;
            self.per_class[class] += 1;
        } else {
            self.large_loans += 1;
            self.large_bytes += bytes;
        }
    }

    /// A cache loan of cache class `class`, `bytes` long, is one no more.
    pub(super) fn uncount_loan(&mut self, class: usize, bytes: usize) {
        if class < CLASS_COUNT {
            self.loans -= 1;
            self.bytes -= bytes;
            self.per_class[class] -= 1;
        } else {
            self.large_loans -= 1;
            self.large_bytes -= bytes;
        }
    }

    /// Buffers lent from caches per class, summed over the blocks.
    pub(in crate::pool) fn lent_per_class(&self) -> [usize; CLASS_COUNT] {
        let mut out = [0; CLASS_COUNT];
        for rec in self.recs.values() {
            for (c, n) in out.iter_mut().enumerate() {
                *n += rec.block.get(WORD_CLASSES + c).max(0) as usize;
            }
        }
        out
    }

    /// Buffers lent from caches of large classes and their bytes, summed over the blocks.
    pub(in crate::pool) fn lent_large(&self) -> (usize, usize) {
        let lens = crate::large::class_lens();
        let (mut n, mut bytes) = (0, 0);
        for rec in self.recs.values() {
            for (k, &len) in lens.iter().enumerate() {
                let lent = rec.block.get(WORD_CLASSES + CLASS_COUNT + k).max(0) as usize;
                n += lent;
                bytes += lent * len;
            }
        }
        (n, bytes)
    }

    /// What the blocks say now.
    pub(in crate::pool) fn lent(&self) -> Lent {
        let mut l = Lent::default();
        for rec in self.recs.values() {
            let b = &rec.block;
            l.in_use += b.get(WORD_IN_USE).max(0) as usize;
            l.requested += b.get(WORD_REQUESTED).max(0) as usize;
            l.live += b.get(WORD_LIVE).max(0) as usize;
            l.allocations += b.get(WORD_ALLOCATIONS).max(0) as u64;
            l.releases += b.get(WORD_RELEASES).max(0) as u64;
        }
        l
    }

    pub(super) fn open_count(&self) -> usize {
        self.recs.values().filter(|r| r.open).count()
    }

    /// Writes the gates and the drift budgets (up, down) of every cache (`None`: shut); `large`:
    /// whether admission admits a large Buffer of normal priority now.
    pub(super) fn set_gates(&self, budgets: Option<(i32, i32)>, large: bool) {
        for rec in self.recs.values() {
            let (up, down) = budgets.filter(|_| rec.open).unwrap_or((0, 0));
            let open = budgets.is_some() && rec.open;
            // The budgets first: a thread that sees the gate open sees budgets that go with it.
            rec.block.update(WORD_DRIFT_UP, up);
            rec.block.update(WORD_DRIFT_DOWN, down);
            rec.block.update(WORD_GATE_LARGE, i32::from(open && large));
            rec.block.update(WORD_GATE, i32::from(open));
        }
    }

    /// Shuts the gate of one cache.
    pub(super) fn shut(rec: &CacheRec) {
        rec.block.set(WORD_GATE, 0);
        rec.block.set(WORD_GATE_LARGE, 0);
        rec.block.set(WORD_DRIFT_UP, 0);
        rec.block.set(WORD_DRIFT_DOWN, 0);
    }

    /// Asks every cache to give its slots back at its thread's next call.
    pub(in crate::pool) fn ask_flush(&self) {
        for rec in self.recs.values() {
            Self::shut(rec);
            rec.block.add(WORD_FLUSH, 1);
        }
    }
}
