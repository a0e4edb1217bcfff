//! The pool's operations for a cache's thread: open a cache, fill it, sync, flush and close it.

use std::collections::HashMap;
use std::sync::Arc;

use super::block::{large_class_of, CacheBlock, MAX_ENTRIES, MOVE_MAX, WORD_IN_USE, WORD_SYNCED};
use super::registry::{CacheRec, Caches};
use crate::error::PoolError;
use crate::loan::{self, Holder, LoanMemory};
use crate::pool::{AllocRequest, Finished, MappingRef, Pool, SlotRef};
use crate::size_class::CLASS_SIZES;

/// A slot or a mapping handed to a cache by [`Pool::cache_fill`] or [`Pool::cache_fill_large`].
#[derive(Debug, Clone, Copy)]
pub struct CacheGrant {
    /// The cache loan's token.
    pub token: u64,
    /// Its entry in the cache.
    pub entry: u32,
    /// First byte of the slot or mapping.
    pub addr: *mut u8,
    /// Its bytes, all of which the ArrayBuffer to make over it shows.
    pub len: usize,
    /// The slot and the epoch of the ArrayBuffer to make over it (a slot).
    pub slot: Option<SlotRef>,
    /// The mapping and the epoch of the ArrayBuffer bound to it (a large class).
    pub mapping: Option<MappingRef>,
}

impl Pool {
    /// Opens a cache for one thread: its id and its block. Its gate is set at once.
    pub fn cache_open(&self) -> (u64, Arc<CacheBlock>) {
        let mut st = self.state.lock();
        let id = st.thread_caches.next_id;
        st.thread_caches.next_id += 1;
        let block = Arc::new(CacheBlock::new());
        let free_entries = (0..MAX_ENTRIES as u32).rev().collect();
        st.thread_caches.recs.insert(
            id,
            CacheRec { block: block.clone(), entries: HashMap::new(), free_entries, open: true, move_max: MOVE_MAX },
        );
        st.update_gates(&self.config);
        (id, block)
    }

    /// Hands up to `n` free slots of `class` to cache `cache`, each as a cache loan whose
    /// ArrayBuffer the caller makes over the whole slot (its bytes count as external from now on,
    /// as for [`AllocRequest::bind`](AllocRequest::bind)). Slots are not cleared. Refused
    /// if not even one can be had (the pool is closed, the cache is, admission refuses a small
    /// allocation at `priority`, or the cap).
    pub fn cache_fill(
        &self,
        cache: u64,
        class: usize,
        n: usize,
        priority: crate::admission::Priority,
        holder: Holder,
    ) -> Result<Vec<CacheGrant>, PoolError> {
        let mut st = self.state.lock();
        if st.quarantine.is_some() {
            // Every release must reach the quarantine (see `retire`).
            return Ok(Vec::new());
        }
        let size = CLASS_SIZES[class];
        let req = AllocRequest { priority, bind: true, ..AllocRequest::new(size, false) };
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let open = st.thread_caches.recs.get(&cache).is_some_and(|r| r.open && !r.free_entries.is_empty());
            if !open {
                break;
            }
            let (memory, addr) = match st.take_slot(&self.config, &req, class) {
                Ok(t) => t,
                // Not counted: the caller then asks by the way that counts a refusal.
                Err(e) if out.is_empty() => return Err(e),
                Err(_) => break,
            };
            let LoanMemory::Slot { slot, .. } = memory else { unreachable!("a small request takes a slot") };
            let epoch = st.classes[class].new_epoch(slot);
            let (key, gen, entry) = st.insert_cache_loan(cache, memory, addr, size, holder);
            st.thread_caches.count_loan(class, size);
            st.counters.count_external(size);
            out.push(CacheGrant {
                token: loan::token(self.id, gen, key),
                entry,
                addr,
                len: size,
                slot: Some(SlotRef { class, slot, epoch }),
                mapping: None,
            });
        }
        // The level and gates are judged again here, as in every call into the core.
        st.update_level(&self.config);
        if out.is_empty() {
            return Err(PoolError::Closed);
        }
        Ok(out)
    }

    /// Hands up to `n` mappings of `len` bytes (a large class's length) to cache `cache`, each as
    /// a cache loan bound to the ArrayBuffer the caller makes over the whole mapping (its bytes
    /// count as external from now on, as for a bound allocation): mappings the pool cached, or new
    /// ones. Refused if not even one can be had (the pool or the cache is closed, admission refuses
    /// a large allocation at `priority`, or the cap).
    pub fn cache_fill_large(
        &self,
        cache: u64,
        len: usize,
        n: usize,
        priority: crate::admission::Priority,
        holder: Holder,
    ) -> Result<Vec<CacheGrant>, PoolError> {
        let mut st = self.state.lock();
        let Some(class) = large_class_of(len) else { return Err(PoolError::Stale) };
        if st.quarantine.is_some() {
            // Every release must reach the quarantine (see `retire`).
            return Ok(Vec::new());
        }
        let req = AllocRequest { priority, bind: true, ..AllocRequest::new(len, false) };
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let open = st.thread_caches.recs.get(&cache).is_some_and(|r| r.open && !r.free_entries.is_empty());
            if !open {
                break;
            }
            let (memory, addr, capacity) = match st.take(&self.config, &req) {
                Ok((memory, addr, capacity, _)) => (memory, addr, capacity),
                // Not counted: the caller then asks by the way that counts a refusal.
                Err(e) if out.is_empty() => return Err(e),
                Err(_) => break,
            };
            debug_assert_eq!(capacity, len);
            // Taking it counted a live large loan; a cached one is not (see `materialize`).
            st.large_live -= 1;
            let (key, gen, entry) = st.insert_cache_loan(cache, memory, addr, capacity, holder);
            let rec = st.thread_caches.recs.get_mut(&cache).expect("checked above");
            rec.move_max = rec.move_max.max(capacity);
            let epoch = st.bind_mapping(addr as usize, capacity, key);
            st.thread_caches.count_loan(class, capacity);
            st.counters.count_external(capacity);
            out.push(CacheGrant {
                token: loan::token(self.id, gen, key),
                entry,
                addr,
                len: capacity,
                slot: None,
                mapping: Some(MappingRef { addr: addr as usize, len: capacity, epoch }),
            });
        }
        // The level and gates are judged again here (this cache's slack may have grown).
        st.update_level(&self.config);
        if out.is_empty() {
            return Err(PoolError::Closed);
        }
        Ok(out)
    }

    /// Takes back a grant of [`Pool::cache_fill`] whose ArrayBuffer could not be made: the slot is
    /// free again and its external bytes leave, unless `node_has_it` (then the ArrayBuffer's
    /// finalizer takes them back later).
    pub fn cache_undo(&self, grant: &CacheGrant, node_has_it: bool) {
        let mut st = self.state.lock();
        if !node_has_it {
            st.counters.uncount_external(grant.len);
        }
        if let Some((_, _, key)) = loan::untoken(grant.token) {
            st.end_cached(key);
        }
    }

    /// Records the witness of the ArrayBuffer made for a grant of [`Pool::cache_fill`].
    pub fn set_cache_witness(&self, token: u64, witness: usize) {
        let mut st = self.state.lock();
        let Some((p, gen, key)) = loan::untoken(token) else { return };
        if let Some(l) = st.loans.get_mut(key).filter(|l| p == self.id && l.gen == gen && l.cache.is_some()) {
            l.holder.witness = witness;
        }
    }

    /// Records the witnesses of slots put back into cache `cache` since its last sync (`(entry,
    /// witness)`), folds its counts of lends and releases into the core's, and moves the level and
    /// the gates; the cache's synced bytes become its bytes in use. Returns the witnesses replaced
    /// (and those of entries that are not cache loans any more), which the caller deletes.
    ///
    /// Must run on the cache's thread (no JavaScript of it runs meanwhile).
    pub fn cache_sync(&self, cache: u64, witnessed: &[(u32, usize)]) -> Vec<usize> {
        let mut st = self.state.lock();
        let mut stale = Vec::with_capacity(witnessed.len());
        for &(entry, witness) in witnessed {
            let key = st.thread_caches.recs.get(&cache).and_then(|r| r.entries.get(&entry).copied());
            match key.and_then(|k| st.loans.get_mut(k)) {
                Some(l) => stale.push(std::mem::replace(&mut l.holder.witness, witness)),
                None => stale.push(witness),
            }
        }
        let mut moved = false;
        if let Some(rec) = st.thread_caches.recs.get(&cache) {
            let block = rec.block.clone();
            // This runs on the cache's thread: its bytes in use are what the level is judged at.
            let in_use = block.get(WORD_IN_USE);
            moved = block.get(WORD_SYNCED) != in_use;
            block.set(WORD_SYNCED, in_use);
            st.fold_counts(&block);
        }
        // With no drift the bytes in use are the ones last judged: the level, the gates and the
        // budgets stand (a sync that only witnesses takes the lock for no more than that).
        if moved {
            st.update_level(&self.config);
        }
        stale
    }

    /// Ends the cache loans of `entries`, slots in cache `cache` that are not lent, each given as
    /// `(entry, addr)` with the address its ArrayBuffer shows: the slots are free again. Returns
    /// what ended for each (`None` for an entry that is not such a loan, or whose slot is not at
    /// `addr`), and the bytes given back to the OS meanwhile (mappings the mapping cache had no
    /// room for).
    pub fn cache_flush(&self, cache: u64, entries: &[(u32, usize)]) -> (Vec<Option<Finished>>, usize) {
        let mut st = self.state.lock();
        let reserved = st.counters.reserved_bytes;
        let out = entries
            .iter()
            .map(|&(entry, addr)| {
                let key = *st.thread_caches.recs.get(&cache)?.entries.get(&entry)?;
                if st.cache_lent_len(key)? != 0 || st.loans[key].addr != addr {
                    return None;
                }
                st.end_cached(key)
            })
            .collect();
        st.update_level(&self.config);
        let freed = reserved - st.counters.reserved_bytes;
        (out, freed)
    }

    /// Closes cache `cache`: its thread serves nothing more from it (it flushed what it kept, or
    /// its view of the block is gone). Buffers it lent stay valid; the record goes once the last
    /// of them ends.
    pub fn cache_close(&self, cache: u64) {
        let mut st = self.state.lock();
        let Some(rec) = st.thread_caches.recs.get_mut(&cache) else { return };
        rec.open = false;
        Caches::shut(rec);
        if rec.entries.is_empty() {
            let rec = st.thread_caches.recs.remove(&cache).expect("just found");
            st.fold_counts(&rec.block);
        }
        st.update_gates(&self.config);
    }
}
