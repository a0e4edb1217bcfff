//! The state's operations on the caches: the gates and drift budgets the core writes, and cache
//! loans (made, turned into ordinary loans, ended).

use std::sync::atomic::Ordering;

use super::block::{
    large_class_of, CacheBlock, DRIFT_CAP, ENTRY_LEN_MASK, ENTRY_TRACKED, WORD_ALLOCATIONS, WORD_CLASSES, WORD_ENTRIES,
    WORD_IN_USE, WORD_LIVE, WORD_RELEASES, WORD_REQUESTED, WORD_SYNCED,
};
use super::registry::CacheRec;
use crate::loan::{CacheLoan, Holder, LoanMemory, LoanTerms};
use crate::pool::{Finished, PoolConfig, SlotRef, State};
use crate::size_class::CLASS_COUNT;
use crate::watermark::Level;

impl State {
    /// The up and down drift budgets of each open cache now, or `None` if the gate must be shut
    /// (the pool is closed or past `warning`, or no cache is open). See [the module docs](super):
    /// each budget is `1/n` of the room between the bytes in use and the threshold on its side,
    /// less the open caches' drift toward it and [`MOVE_MAX`] per cache, rounded to a power of two
    /// toward zero room. Closed caches serve nothing, so their bytes in use count as they are.
    ///
    /// A budget is negative when the synced bytes are already past a threshold that the bytes in
    /// use are not: a cache that drifted away from it (released without a sync) while the core
    /// lent more must not come back to its synced bytes unjudged. It then serves that way only
    /// while it stays that far on the near side of its synced bytes.
    ///
    /// [`MOVE_MAX`]: super::block::MOVE_MAX
    fn drift_budgets(&self, config: &PoolConfig) -> Option<(i32, i32)> {
        let open = self.thread_caches.open_count();
        if self.closed || self.level > Level::Warning || open == 0 {
            return None;
        }
        let (mut synced, mut up_drift, mut down_drift) = (self.counters.in_use_bytes as f64, 0.0, 0.0);
        let mut slack = 0.0;
        for r in self.thread_caches.recs.values() {
            let in_use = f64::from(r.block.get(WORD_IN_USE).max(0));
            if !r.open {
                synced += in_use;
                continue;
            }
            let s = f64::from(r.block.get(WORD_SYNCED).max(0));
            synced += s;
            up_drift += (in_use - s).max(0.0);
            down_drift += (s - in_use).max(0.0);
            slack += r.move_max as f64;
        }
        let (lo, hi) = config.watermarks.band(self.level);
        let max = config.max_bytes as f64;
        // Below `hi * max` (a crossing is at `>=`), and at or above `lo * max`.
        let up_room = (hi * max).ceil() - 1.0 - synced - up_drift - slack;
        let down_room = synced - (lo * max).ceil() - down_drift - slack;
        // A power of two, so that budgets change (and their line is written) only now and then:
        // rounded down when there is room, and away from zero (less room) when it is short.
        let budget = |room: f64| -> i32 {
            let b = (room / open as f64).clamp(-(DRIFT_CAP as f64), DRIFT_CAP as f64);
            if b >= 1.0 {
                1 << (b as u32).ilog2()
            } else if b > -1.0 {
                if b < 0.0 {
                    -1
                } else {
                    0
                }
            } else {
                -(((-b).ceil() as u32).next_power_of_two().min(DRIFT_CAP as u32) as i32)
            }
        };
        Some((budget(up_room), budget(down_room)))
    }

    /// Recomputes every cache's gate and drift budgets (after the level, the bytes in use or the
    /// caches changed).
    pub(in crate::pool) fn update_gates(&mut self, config: &PoolConfig) {
        if self.thread_caches.recs.is_empty() {
            return;
        }
        let budgets = self.drift_budgets(config);
        let large = config.admission == crate::admission::Admission::Cap || self.level == Level::Normal;
        self.thread_caches.set_gates(budgets, large);
        if self.level >= Level::Critical {
            self.thread_caches.ask_flush();
        }
    }

    /// The cache loan behind the live loan at `key`, if it is one.
    fn cache_loan(&self, key: usize) -> Option<(CacheLoan, &CacheRec)> {
        let cl = self.loans.get(key)?.cache?;
        Some((cl, self.thread_caches.recs.get(&cl.cache)?))
    }

    /// Whether the live loan at `key` is a cache loan lent to the Buffer at `addr` of `len` bytes.
    pub(in crate::pool) fn is_lent_from_cache(&self, key: usize, gen: u32, addr: usize, len: usize) -> bool {
        let is_cached = self.loans.get(key).is_some_and(|l| l.gen == gen && l.cache.is_some() && l.addr == addr);
        is_cached && len != 0 && self.cache_lent_len(key) == Some(len)
    }

    /// The length of the Buffer lent from the cache loan at `key` (0: it is in its cache).
    pub(in crate::pool) fn cache_lent_len(&self, key: usize) -> Option<usize> {
        let (cl, rec) = self.cache_loan(key)?;
        Some((rec.block.get(WORD_ENTRIES + cl.entry as usize) & ENTRY_LEN_MASK).max(0) as usize)
    }

    /// Whether the Buffer lent from the cache loan at `key` is tracked.
    pub(in crate::pool) fn cache_lent_tracked(&self, key: usize) -> bool {
        self.cache_loan(key)
            .is_some_and(|(cl, rec)| rec.block.get(WORD_ENTRIES + cl.entry as usize) & ENTRY_TRACKED != 0)
    }

    /// Turns the cache loan at `key`, lent to a Buffer of `len` bytes, into an ordinary loan of
    /// that Buffer with one reference: its figures move from the cache's block to the core's,
    /// and the entry is free again.
    ///
    /// Must run on the cache's thread (no JavaScript of it runs meanwhile).
    pub(in crate::pool) fn materialize(&mut self, key: usize, len: usize) {
        let tracked = self.cache_lent_tracked(key);
        let Some(cl) = self.loans[key].cache.take() else { return };
        let capacity = self.loans[key].capacity;
        {
            let l = &mut self.loans[key];
            l.requested = len;
            l.refs = 1;
            l.tracked = tracked;
        }
        let class = self.cache_class(key);
        let rec = self.thread_caches.recs.get_mut(&cl.cache).expect("a cache loan's cache lives");
        let b = &rec.block;
        b.add(WORD_IN_USE, -(capacity as i32));
        b.add(WORD_SYNCED, -(capacity as i32));
        b.add(WORD_REQUESTED, -(len as i32));
        b.add(WORD_LIVE, -1);
        b.set(WORD_ENTRIES + cl.entry as usize, 0);
        b.add(WORD_CLASSES + class, -1);
        let bytes = self.loans[key].bytes();
        self.counters.materialize(bytes);
        let in_use = self.in_use_total();
        self.counters.note_peak(in_use);
        if class >= CLASS_COUNT {
            // An ordinary loan of a mapping counts among the live large ones.
            self.large_live += 1;
        }
        self.forget_entry(cl, capacity, class);
    }

    /// Makes `memory` (`capacity` bytes at `addr`) a cache loan of the open cache `cache`, which
    /// has a free entry: returns its key, generation and entry. The one place a cache loan is made.
    pub(super) fn insert_cache_loan(
        &mut self,
        cache: u64,
        memory: LoanMemory,
        addr: *mut u8,
        capacity: usize,
        holder: Holder,
    ) -> (usize, u32, u32) {
        let rec = self.thread_caches.recs.get_mut(&cache).expect("the caller checked the cache is open");
        let entry = rec.free_entries.pop().expect("the caller checked a free entry");
        let terms = LoanTerms {
            requested: capacity,
            tracked: false,
            external: 0,
            bound: true,
            cache: Some(CacheLoan { cache, entry }),
        };
        let (key, gen) = self.insert_loan(memory, addr, capacity, holder, terms);
        self.thread_caches.recs.get_mut(&cache).expect("just found").entries.insert(entry, key);
        (key, gen, entry)
    }

    /// The cache class of the cache loan at `key`.
    fn cache_class(&self, key: usize) -> usize {
        match self.loans[key].memory {
            LoanMemory::Slot { class, .. } => class,
            _ => large_class_of(self.loans[key].capacity).expect("a cache loan's mapping has a class's length"),
        }
    }

    /// Ends a cache loan whose slot is in its cache (not lent): the slot is free again. Returns
    /// what ended, as [`Pool::finish_release`](crate::pool::Pool::finish_release) does.
    pub(in crate::pool) fn end_cached(&mut self, key: usize) -> Option<Finished> {
        let cl = self.loans.get(key)?.cache?;
        let class = self.cache_class(key);
        let mut l = self.loans.remove(key);
        self.forget_entry(cl, l.capacity, class);
        let slot = match l.memory {
            LoanMemory::Slot { class, slot } => Some(SlotRef { class, slot, epoch: self.classes[class].epoch(slot) }),
            _ => {
                // Nothing is lent through the cache's ArrayBuffer again (the caller detaches it, or
                // it was collected); the mapping goes back to the mapping cache, counted there.
                self.unbind_mapping(l.addr);
                self.large_live += 1;
                None
            }
        };
        self.give_back(std::mem::replace(&mut l.memory, LoanMemory::Returned));
        Some(Finished { holder: l.holder, slot, bound: slot.is_some(), mapping: None })
    }

    /// Frees the entry of a cache loan of cache class `class` that is no longer one, and the
    /// cache's record once it is closed and holds no loan (its counts of lends and releases join
    /// the core's then).
    fn forget_entry(&mut self, cl: CacheLoan, capacity: usize, class: usize) {
        self.thread_caches.uncount_loan(class, capacity);
        let Some(rec) = self.thread_caches.recs.get_mut(&cl.cache) else { return };
        rec.entries.remove(&cl.entry);
        rec.free_entries.push(cl.entry);
        if !rec.open && rec.entries.is_empty() {
            let rec = self.thread_caches.recs.remove(&cl.cache).expect("just found");
            self.fold_counts(&rec.block);
        }
    }

    /// Moves a block's counts of lends and releases into the core's counters.
    pub(super) fn fold_counts(&mut self, block: &CacheBlock) {
        let allocations = block.word(WORD_ALLOCATIONS).swap(0, Ordering::AcqRel);
        let releases = block.word(WORD_RELEASES).swap(0, Ordering::AcqRel);
        self.counters.fold(allocations.max(0) as u64, releases.max(0) as u64);
    }
}
