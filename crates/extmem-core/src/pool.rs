//! The pool: size classes, large mappings, loans and counters behind one lock; the hard cap,
//! watermark levels and graded admission.
//!
//! - [`api`]: what a pool is asked and answers (its set-up, requests, grants, results);
//! - this file: [`Pool`], its public operations;
//! - `state`: what the lock guards, and the private operations that keep its invariants;
//! - [`cache`], `bound_map`, `handoff`, `resize`, `retire`: one concept each, their operations on
//!   [`Pool`] and their private ones on the state.

use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::admission::Priority;
use crate::error::PoolError;
use crate::events::Listener;
use crate::loan::{self, Holder, LoanMemory, POOL_ID_MASK};
use crate::os;
use crate::size_class::{class_for, CLASS_SIZES, SMALL_MAX};
use crate::stats::{ClassStats, PoolStats};
use crate::watermark::Level;

pub mod api;
mod bound_map;
pub mod cache;
mod handoff;
mod resize;
mod retire;
mod state;
pub use api::{AllocRequest, Finished, Grant, LiveLoan, LoanFigures, PoolConfig, Reclaimed, Release, SlotRef};
pub use bound_map::MappingRef;
pub use cache::{CacheBlock, CacheGrant};
pub use handoff::Shared;
pub use resize::Resized;
use state::State;

/// How often [`Pool::decay`] gives empty slab chunks back.
pub const CHUNK_DECAY_MS: u64 = 5_000;

static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(0);

/// A pool of external memory: slab classes for sizes up to [`SMALL_MAX`], a mapping each above.
///
/// Thread-safe; every operation takes the lock once and never calls out while holding it, except
/// to hand events to listeners (which only queue them).
#[derive(Debug)]
pub struct Pool {
    id: u64,
    config: PoolConfig,
    state: Mutex<State>,
}

impl Pool {
    /// A pool that holds at most `max_bytes` from the OS, with default watermarks.
    pub fn new(max_bytes: usize) -> Pool {
        Pool::with_config(PoolConfig::with_max_bytes(max_bytes))
    }

    /// A pool set up by `config`.
    pub fn with_config(config: PoolConfig) -> Pool {
        Pool {
            id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed) & POOL_ID_MASK,
            config,
            state: Mutex::new(State::new(&config)),
        }
    }

    /// The hard cap.
    pub fn max_bytes(&self) -> usize {
        self.config.max_bytes
    }

    /// Most bytes of released mappings the pool caches (and so, most bytes of ArrayBuffers bound
    /// to cached mappings worth keeping).
    pub fn mapping_cache_max_bytes(&self) -> usize {
        self.state.lock().mappings.max_bytes()
    }

    /// The current watermark level.
    pub fn level(&self) -> Level {
        self.state.lock().level
    }

    /// Adds a listener for level changes and leaks; returns its id.
    pub fn listen(&self, listener: Listener) -> u64 {
        self.state.lock().listeners.add(listener)
    }

    /// Removes a listener.
    pub fn unlisten(&self, id: u64) -> bool {
        self.state.lock().listeners.remove(id)
    }

    /// Lends `size` bytes (`>= 1`), 8-aligned, at normal priority, untracked.
    pub fn alloc(&self, size: usize, zero: bool, holder: Holder) -> Result<Grant, PoolError> {
        self.alloc_with(AllocRequest::new(size, zero), holder)
    }

    /// Lends `req.size` bytes (`>= 1`). `holder` is kept with the loan.
    pub fn alloc_with(&self, req: AllocRequest, holder: Holder) -> Result<Grant, PoolError> {
        debug_assert!(req.size > 0);
        let mut st = self.state.lock();
        match st.take(&self.config, &req) {
            Ok((memory, addr, capacity, fresh)) => {
                if req.zero && !fresh {
                    // A bound ArrayBuffer shows the whole slot, so all of it is cleared.
                    let len = if req.bind { capacity } else { req.size };
                    // SAFETY: `addr` starts `capacity >= len` bytes that belong to no loan.
                    unsafe { ptr::write_bytes(addr, 0, len) };
                }
                // Every new ArrayBuffer over a slot gets a new epoch, bound or not.
                let slot = match memory {
                    LoanMemory::Slot { class, slot } => {
                        Some(SlotRef { class, slot, epoch: st.classes[class].new_epoch(slot) })
                    }
                    _ => None,
                };
                let bound_bytes = if req.bind { capacity } else { 0 };
                st.counters.count_external(bound_bytes);
                let external = if bound_bytes != 0 { 0 } else { req.size };
                let bind = req.bind;
                let token = st.lend(&self.config, self.id, memory, addr, capacity, external, req, holder);
                let mapping = if bind && slot.is_none() {
                    let (_, _, key) = loan::untoken(token).expect("a token just made");
                    st.loans[key].bound = true;
                    let epoch = st.bind_mapping(addr as usize, capacity, key);
                    Some(MappingRef { addr: addr as usize, len: capacity, epoch })
                } else {
                    None
                };
                Ok(Grant { token, addr, capacity, slot, mapping, bound_bytes })
            }
            Err(e) => {
                if req.will_retry && st.is_cap_refusal(&self.config, &e, req.priority) {
                    st.thread_caches.ask_flush();
                } else {
                    st.count_refusal(&self.config, &e, req.priority);
                }
                Err(e)
            }
        }
    }

    /// Whether `e`, a refusal of a request at `priority`, was at the hard cap (not by admission).
    pub fn is_cap_refusal(&self, e: &PoolError, priority: Priority) -> bool {
        self.state.lock().is_cap_refusal(&self.config, e, priority)
    }

    /// Lends the free slot `slot` again, through the ArrayBuffer of `epoch` that the caller kept
    /// from an earlier bound loan of it. Refused with [`PoolError::Stale`] (and nothing changed,
    /// not even a count) if the slot is taken or a newer ArrayBuffer was made over it; the caller
    /// then drops that ArrayBuffer. `req.size` must belong to the slot's class.
    pub fn reuse(&self, slot: SlotRef, req: AllocRequest, holder: Holder) -> Result<Grant, PoolError> {
        self.reuse_at(slot, req, holder, None)
    }

    /// [`Pool::reuse`], through the kept ArrayBuffer whose memory starts at `at` (when given): it
    /// must be the slot's, or the reuse is refused as [`PoolError::Stale`] and nothing changes.
    pub fn reuse_at(
        &self,
        slot: SlotRef,
        req: AllocRequest,
        holder: Holder,
        at: Option<usize>,
    ) -> Result<Grant, PoolError> {
        let mut st = self.state.lock();
        if slot.class >= st.classes.len() || req.size > SMALL_MAX || class_for(req.size, req.align) != slot.class {
            return Err(PoolError::Stale);
        }
        if let Err(e) = st.admit(&self.config, &req) {
            st.count_refusal(&self.config, &e, req.priority);
            return Err(e);
        }
        let Some(addr) = st.classes[slot.class].take(slot.slot, slot.epoch) else { return Err(PoolError::Stale) };
        if at.is_some_and(|at| at != addr as usize) {
            // Not the slot's ArrayBuffer: the slot stays free, and nothing else changed.
            st.classes[slot.class].push(slot.slot);
            return Err(PoolError::Stale);
        }
        let capacity = CLASS_SIZES[slot.class];
        if req.zero {
            // SAFETY: `addr` starts a free slot of `capacity` bytes that belongs to no loan; the
            // kept ArrayBuffer shows all of it, so all of it is cleared.
            unsafe { ptr::write_bytes(addr, 0, capacity) };
        }
        let memory = LoanMemory::Slot { class: slot.class, slot: slot.slot };
        let token = st.lend(&self.config, self.id, memory, addr, capacity, 0, req, holder);
        Ok(Grant { token, addr, capacity, slot: Some(slot), mapping: None, bound_bytes: 0 })
    }

    /// Accounts for the end of an ArrayBuffer made over a whole slot for bound loans (see
    /// [`AllocRequest::bind`]): its `bytes` leave external memory, and if it is the newest one over
    /// the slot and the slot is still lent, that loan ends as by [`reclaim_unless`](Self::reclaim_unless).
    pub fn slot_buffer_finalized(
        &self,
        slot: SlotRef,
        bytes: usize,
        may_be_reachable: impl FnOnce(&Holder) -> bool,
    ) -> Option<Reclaimed> {
        let mut st = self.state.lock();
        st.counters.uncount_external(bytes);
        let class = &st.classes[slot.class];
        if class.epoch(slot.slot) != slot.epoch {
            return None;
        }
        let key = class.loan(slot.slot)?;
        let l = &st.loans[key];
        let token = loan::token(self.id, l.gen, key);
        if l.cache.is_some() {
            // The cache went away with its thread or its Pool object: the slot simply comes back.
            if st.cache_lent_len(key)? == 0 {
                let ended = st.end_cached(key)?;
                st.update_gates(&self.config);
                return Some(Reclaimed::Ended(ended.holder));
            }
            // A Buffer lent from the cache was collected without release.
            let len = st.cache_lent_len(key)?;
            st.materialize(key, len);
        }
        st.reclaim_unless(&self.config, self.id, token, may_be_reachable)
    }

    /// How the pool was set up.
    pub fn config(&self) -> PoolConfig {
        self.config
    }

    /// Records the binding's data for the live loan of `token` (after [`Pool::resize_end`], which
    /// gives its Buffer a new ArrayBuffer).
    pub fn set_holder(&self, token: u64, holder: Holder) {
        if let Some(l) = self.state.lock().live_loan_mut(self.id, token) {
            l.holder = holder;
        }
    }

    /// Records the binding's witness (see [`Holder::witness`]) of the live loan of `token`, made
    /// once its ArrayBuffer exists.
    pub fn set_witness(&self, token: u64, witness: usize) {
        if let Some(l) = self.state.lock().live_loan_mut(self.id, token) {
            l.holder.witness = witness;
        }
    }

    /// Adds a reference to the Buffer of `token`, which must start at `addr` and be `len` long.
    pub fn retain(&self, token: u64, addr: usize, len: usize) -> Result<u32, PoolError> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(PoolError::Closed);
        }
        let l = st.loan_mut(self.id, token, addr, len)?;
        if l.refs == loan::MAX_REFS {
            return Err(PoolError::TooManyRefs);
        }
        l.refs += 1;
        Ok(l.refs)
    }

    /// Drops a reference. On the last one nothing changes yet: see [`Release::Last`].
    pub fn release(&self, token: u64, addr: usize, len: usize) -> Result<Release, PoolError> {
        let mut st = self.state.lock();
        let l = st.loan_mut(self.id, token, addr, len)?;
        if l.refs > 1 {
            l.refs -= 1;
            return Ok(Release::Retained(l.refs));
        }
        Ok(Release::Last(l.holder))
    }

    /// [`Pool::release`] for many Buffers under one lock (a scope's): each `(token, addr, len)`
    /// is checked as `release` checks it. `None` for one that is not a live Buffer of this pool.
    pub fn release_all(&self, buffers: &[(u64, usize, usize)]) -> Vec<Option<Release>> {
        let mut st = self.state.lock();
        buffers
            .iter()
            .map(|&(token, addr, len)| {
                let l = st.loan_mut(self.id, token, addr, len).ok()?;
                if l.refs > 1 {
                    l.refs -= 1;
                    return Some(Release::Retained(l.refs));
                }
                Some(Release::Last(l.holder))
            })
            .collect()
    }

    /// [`Pool::finish_release`] for many loans under one lock, once their Buffers were detached:
    /// `(token, None)` after [`Pool::release_all`] answered `Last` for it; `(token, Some((addr,
    /// len)))` for a Buffer never retained that went straight to this, checked here as
    /// [`Pool::release`] checks it (if, after all, it holds more references, one is dropped and
    /// the loan stays; its memory comes back when it is collected).
    pub fn finish_all(&self, endings: &[(u64, Option<(usize, usize)>)]) -> Vec<Option<Finished>> {
        let mut st = self.state.lock();
        endings
            .iter()
            .map(|&(token, buffer)| {
                if let Some((addr, len)) = buffer {
                    let l = st.loan_mut(self.id, token, addr, len).ok()?;
                    if l.refs > 1 {
                        l.refs -= 1;
                        return None;
                    }
                }
                st.finish(&self.config, self.id, token)
            })
            .collect()
    }

    /// Ends the loan of `token` after [`Release::Last`], once its Buffer is detached; its memory
    /// is reusable from now on. `None` if there is no such live loan.
    pub fn finish_release(&self, token: u64) -> Option<Finished> {
        let mut st = self.state.lock();
        st.finish(&self.config, self.id, token)
    }

    /// [`Pool::finish_release`] of the loan of `token` whose memory starts at `addr` (what the
    /// caller's detached Buffer or ArrayBuffer showed): `None`, and nothing done, for another.
    pub fn finish_release_at(&self, token: u64, addr: usize) -> Option<Finished> {
        let mut st = self.state.lock();
        if st.live_loan_mut(self.id, token)?.addr != addr {
            return None;
        }
        st.finish(&self.config, self.id, token)
    }

    /// Where the memory of the live loan of `token` starts (parked, in transit and cache loans
    /// included), if there is one.
    pub fn loan_addr(&self, token: u64) -> Option<usize> {
        self.state.lock().any_loan_mut(self.id, token).map(|l| l.addr)
    }

    /// Takes back an allocation whose Buffer could not be made, as if it had never happened:
    /// the loan and the grant's bound external bytes.
    pub fn undo_alloc(&self, grant: &Grant) {
        let mut st = self.state.lock();
        st.counters.uncount_external(grant.bound_bytes);
        if let Some(m) = grant.mapping {
            st.unbind_mapping(m.addr);
        }
        if st.end_loan(&self.config, self.id, grant.token).is_some() {
            st.counters.uncount_allocation();
        }
    }

    /// Ends the loan of `token` because its Buffer was collected; `false` (and nothing done) if it
    /// had already ended, as it has for every released Buffer. A tracked loan is reported as a leak.
    pub fn reclaim(&self, token: u64) -> bool {
        self.reclaim_unless(token, |_| false).is_some()
    }

    /// Ends the loan of `token` because the last ArrayBuffer over its memory was finalized, unless
    /// `may_be_reachable(holder)` says another ArrayBuffer over it may still be alive (its thread
    /// ended and the memory had been moved out of it): then the loan is parked for good instead
    /// (see [`Loan::parked`](crate::loan::Loan::parked)). `None` (and nothing done) if there is no such live loan.
    pub fn reclaim_unless(&self, token: u64, may_be_reachable: impl FnOnce(&Holder) -> bool) -> Option<Reclaimed> {
        self.state.lock().reclaim_unless(&self.config, self.id, token, may_be_reachable)
    }

    /// References held on the Buffer of `token`.
    ///
    /// Only reads: a Buffer lent from a thread's cache holds one reference and its loan stays
    /// the cache's.
    pub fn ref_count(&self, token: u64, addr: usize, len: usize) -> Result<u32, PoolError> {
        let mut st = self.state.lock();
        if let Some((p, gen, key)) = loan::untoken(token) {
            if p == self.id && st.is_lent_from_cache(key, gen, addr, len) {
                return Ok(1);
            }
        }
        Ok(st.loan_mut(self.id, token, addr, len)?.refs)
    }

    /// The figures of those of `tokens` that name live loans of this pool (a scope's Buffers):
    /// how many, their bytes in use (slot or mapping) and their bytes requested. Parked loans
    /// count too: their memory is still out.
    pub fn figures_of(&self, tokens: impl IntoIterator<Item = u64>) -> LoanFigures {
        let st = self.state.lock();
        let mut f = LoanFigures::default();
        for token in tokens {
            let Some((p, gen, key)) = loan::untoken(token) else { continue };
            if let Some(l) = st.loans.get(key).filter(|l| p == self.id && l.gen == gen) {
                let requested = match l.cache {
                    Some(_) => st.cache_lent_len(key).unwrap_or(0),
                    None => l.requested,
                };
                if l.cache.is_some() && requested == 0 {
                    continue;
                }
                f.loans += 1;
                f.in_use_bytes += l.capacity;
                f.requested_bytes += requested;
            }
        }
        f
    }

    /// Whether `[addr, addr + len)` lies inside a live loan: the memory of a view of a pooled Buffer.
    /// Costs a scan of the live loans; it serves error reporting only.
    pub fn is_view_of_loan(&self, addr: usize, len: usize) -> bool {
        let st = self.state.lock();
        st.loans.iter().any(|(key, l)| {
            let requested = if l.cache.is_some() { st.cache_lent_len(key).unwrap_or(0) } else { l.requested };
            addr >= l.addr && addr + len <= l.addr + requested
        })
    }

    /// The live loans at least `older_than_ms` old, oldest first.
    pub fn live(&self, older_than_ms: u64) -> Vec<LiveLoan> {
        let now = os::now_ms();
        let st = self.state.lock();
        let mut out: Vec<LiveLoan> = st
            .loans
            .iter()
            .filter_map(|(key, l)| {
                // A cache loan is live only while a Buffer holds it; its age counts from when
                // the cache took the slot.
                let size = if l.cache.is_some() { st.cache_lent_len(key).filter(|&n| n != 0)? } else { l.requested };
                Some((key, l, size))
            })
            .map(|(key, l, size)| LiveLoan {
                size,
                age_ms: now.saturating_sub(l.since_ms),
                refs: l.refs,
                address: l.addr,
                tracked: l.tracked || (l.cache.is_some() && st.cache_lent_tracked(key)),
                token: loan::token(self.id, l.gen, key),
                parked: l.parked,
                in_transit: l.transit.is_some(),
            })
            .filter(|l| l.age_ms >= older_than_ms)
            .collect();
        out.sort_by_key(|l| std::cmp::Reverse(l.age_ms));
        out
    }

    /// Closes the pool: later allocations and retains are refused, and free memory is given
    /// back now. Loans still out stay valid, and their memory exclusively theirs, until each ends
    /// by release or reclaim; then it is unmapped. Returns the number of loans still out.
    pub fn close(&self) -> usize {
        let mut st = self.state.lock();
        st.closed = true;
        st.empty_quarantine();
        st.trim();
        st.update_gates(&self.config);
        st.live_buffers()
    }

    /// Gives back cached mappings and empty slab chunks; returns the bytes given back.
    /// Every thread's cache is asked to give its slots back at its next call.
    pub fn trim(&self) -> usize {
        let mut st = self.state.lock();
        st.thread_caches.ask_flush();
        st.trim()
    }

    /// Gives back memory that stayed unused, with no call of the user's (the threads' caches call
    /// this on a timer): cached mappings unused for [`CACHE_DECAY_MS`](crate::large::CACHE_DECAY_MS), and,
    /// at most once per [`CHUNK_DECAY_MS`], the slab chunks that are empty. Returns the bytes
    /// given back.
    pub fn decay(&self) -> usize {
        let mut st = self.state.lock();
        let now = os::now_ms();
        let mut freed = st.mappings.expire(now);
        if now.saturating_sub(st.chunks_decayed_ms) >= CHUNK_DECAY_MS {
            st.chunks_decayed_ms = now;
            for c in &mut st.classes {
                freed += c.trim();
            }
        }
        st.counters.unreserve(freed);
        freed
    }

    /// A consistent snapshot of the pool.
    pub fn stats(&self) -> PoolStats {
        let mut st = self.state.lock();
        let lent = st.thread_caches.lent();
        let (large_lent, large_lent_bytes) = st.thread_caches.lent_large();
        let counters = st.counters.with_lent(lent.in_use, lent.requested, lent.allocations, lent.releases);
        st.counters.note_peak(counters.in_use_bytes);
        PoolStats {
            max_bytes: self.config.max_bytes,
            counters,
            live_buffers: st.live_buffers(),
            cached_slots: st.thread_caches.loans - (lent.live - large_lent),
            cached_bytes: st.thread_caches.bytes - (lent.in_use - large_lent_bytes),
            classes: st
                .classes
                .iter()
                .zip(st.thread_caches.per_class.iter().zip(st.thread_caches.lent_per_class()))
                .zip(&st.quarantined_slots)
                .map(|((c, (&held, lent)), &quarantined)| ClassStats {
                    size: c.slot_size(),
                    in_use: c.slots_in_use() - held + lent - quarantined,
                    free: c.free_slots(),
                    cached: held - lent,
                })
                .collect(),
            large_live: st.large_live + large_lent,
            large_cached: st.mappings.len() + st.thread_caches.large_loans - large_lent,
            large_cached_bytes: st.mappings.bytes() + st.thread_caches.large_bytes - large_lent_bytes,
            level: st.level,
            closed: st.closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::admission::Admission;
    use crate::events::PoolEvent;
    use crate::large;
    use crate::size_class::MIN_ALIGN;
    use crate::slab::SLAB_CHUNK_BYTES;

    const HOLDER: Holder = Holder { thread: 1, hint: 2, witness: 0 };

    fn fill(g: Grant, len: usize, byte: u8) {
        // SAFETY: the grant's memory is `len` bytes long and owned by the test.
        unsafe { ptr::write_bytes(g.addr, byte, len) }
    }

    fn all(g: Grant, len: usize, byte: u8) -> bool {
        // SAFETY: as in `fill`.
        unsafe { std::slice::from_raw_parts(g.addr, len) }.iter().all(|&b| b == byte)
    }

    fn end(p: &Pool, g: Grant, len: usize) {
        assert_eq!(p.release(g.token, g.addr as usize, len), Ok(Release::Last(HOLDER)));
        p.finish_release(g.token);
    }

    #[test]
    fn figures_of_counts_only_live_loans_of_this_pool() {
        let p = Pool::new(1 << 20);
        let other = Pool::new(1 << 20);
        let small = p.alloc(100, false, HOLDER).unwrap();
        let large = p.alloc(20_000, false, HOLDER).unwrap();
        let ended = p.alloc(10, false, HOLDER).unwrap();
        end(&p, ended, 10);
        let foreign = other.alloc(100, false, HOLDER).unwrap();
        let f = p.figures_of([small.token, large.token, ended.token, foreign.token, 12345]);
        assert_eq!(
            f,
            LoanFigures {
                loans: 2,
                in_use_bytes: crate::size_class::CLASS_SIZES[crate::size_class::class_of(100)]
                    + large::mapping_len(20_000),
                requested_bytes: 20_100
            }
        );
    }

    #[test]
    fn release_all_checks_each_buffer_as_release_does_and_counts_references_down() {
        let p = Pool::new(1 << 20);
        let other = Pool::new(1 << 20);
        let once = p.alloc(10, false, HOLDER).unwrap();
        let twice = p.alloc(300_000, false, HOLDER).unwrap();
        p.retain(twice.token, twice.addr as usize, 300_000).unwrap();
        let ended = p.alloc(20, false, HOLDER).unwrap();
        end(&p, ended, 20);
        let foreign = other.alloc(10, false, HOLDER).unwrap();
        let before = p.stats();
        let answers = p.release_all(&[
            (once.token, once.addr as usize, 10),
            (twice.token, twice.addr as usize, 300_000),
            (ended.token, ended.addr as usize, 20),
            (once.token, once.addr as usize + 1, 9),
            (foreign.token, foreign.addr as usize, 10),
        ]);
        assert_eq!(answers, [Some(Release::Last(HOLDER)), Some(Release::Retained(1)), None, None, None]);
        assert_eq!(p.stats(), before, "nothing ends before finish_all");
        assert_eq!(p.ref_count(twice.token, twice.addr as usize, 300_000), Ok(1));
    }

    #[test]
    fn finish_all_ends_released_loans_and_buffers_never_retained_under_one_lock() {
        let p = Pool::new(1 << 20);
        let released = p.alloc(100, false, HOLDER).unwrap();
        let straight = p.alloc(20_000, false, HOLDER).unwrap();
        let retained = p.alloc(30, false, HOLDER).unwrap();
        p.retain(retained.token, retained.addr as usize, 30).unwrap();
        assert_eq!(p.release_all(&[(released.token, released.addr as usize, 100)]), [Some(Release::Last(HOLDER))]);
        let done = p.finish_all(&[
            (released.token, None),
            (straight.token, Some((straight.addr as usize, 20_000))),
            (retained.token, Some((retained.addr as usize, 30))),
            (released.token, None),
            (straight.token, Some((straight.addr as usize + 8, 8))),
            (12345, None),
        ]);
        let holders: Vec<Option<Holder>> = done.iter().map(|f| f.map(|f| f.holder)).collect();
        assert_eq!(holders, [Some(HOLDER), Some(HOLDER), None, None, None, None], "each loan ends once");
        let slot = done[0].unwrap().slot.expect("a slot loan names its slot");
        assert_eq!(slot.class, class_for(100, MIN_ALIGN));
        assert!(done[1].unwrap().slot.is_none(), "a mapping has no slot");
        assert_eq!(p.ref_count(retained.token, retained.addr as usize, 30), Ok(1), "one reference dropped");
        let s = p.stats();
        assert_eq!((s.live_buffers, s.counters.releases, s.counters.requested_bytes), (1, 2, 30));
        assert_eq!(s.counters.external_bytes, 30);
        end(&p, retained, 30);
        let s = p.stats();
        assert_eq!((s.live_buffers, s.counters.in_use_bytes, s.counters.external_bytes), (0, 0, 0));
        assert_eq!(s.counters.allocations - s.counters.releases - s.counters.gc_reclaims, 0);
    }

    #[test]
    fn alloc_zero_fills_recycled_memory() {
        let p = Pool::new(1 << 20);
        let g = p.alloc(100, false, HOLDER).unwrap();
        fill(g, 100, 0xEE);
        end(&p, g, 100);
        let g2 = p.alloc(100, true, HOLDER).unwrap();
        assert_eq!(g2.addr, g.addr, "the most recently freed slot is reused");
        assert!(all(g2, 100, 0));
        let g3 = p.alloc(100_000, true, HOLDER).unwrap();
        fill(g3, 100_000, 7);
        end(&p, g3, 100_000);
        let g4 = p.alloc(100_000, true, HOLDER).unwrap();
        assert_eq!(g4.addr, g3.addr, "the cached mapping is reused");
        assert!(all(g4, 100_000, 0));
    }

    #[test]
    fn counters_balance_to_zero() {
        let p = Pool::new(64 << 20);
        let sizes = [1, 8, 9, 64, 65, 4096, 8192, 8193, 300_000, 5 << 20];
        let gs: Vec<_> = sizes.iter().map(|&s| (p.alloc(s, true, HOLDER).unwrap(), s)).collect();
        let s = p.stats();
        assert_eq!(s.live_buffers, sizes.len());
        assert_eq!(s.counters.requested_bytes, sizes.iter().sum::<usize>());
        assert_eq!(s.counters.external_bytes, s.counters.requested_bytes);
        assert!(s.counters.in_use_bytes >= s.counters.requested_bytes);
        assert!(s.counters.reserved_bytes >= s.counters.in_use_bytes);
        for (g, s) in gs {
            end(&p, g, s);
        }
        let s = p.stats();
        assert_eq!((s.counters.in_use_bytes, s.counters.requested_bytes, s.live_buffers), (0, 0, 0));
        assert_eq!(s.counters.releases, sizes.len() as u64);
        assert!(s.classes.iter().all(|c| c.in_use == 0));
        assert_eq!(p.trim(), s.counters.reserved_bytes);
        assert_eq!(p.stats().counters.reserved_bytes, 0);
    }

    #[test]
    fn the_cap_is_hard_and_cached_memory_is_given_back_first() {
        let p = Pool::with_config(PoolConfig { admission: Admission::Cap, ..PoolConfig::with_max_bytes(4 << 20) });
        let big = p.alloc(900_000, false, HOLDER).unwrap();
        end(&p, big, 900_000);
        assert_eq!(p.stats().large_cached, 1, "the mapping is cached");
        let other = p.alloc(3_500_000, false, HOLDER).unwrap();
        assert_eq!(p.stats().large_cached, 0, "the cache was given back to make room");
        let err = p.alloc(700_000, false, HOLDER).unwrap_err();
        let available = (4 << 20) - large::mapping_len(3_500_000);
        assert_eq!(
            err,
            PoolError::Exhausted { requested: 700_000, available, level: Level::Warning, cached_elsewhere: 0 }
        );
        let s = p.stats();
        assert_eq!(s.counters.failed_allocations, 1);
        assert_eq!(s.live_buffers, 1);
        assert!(s.counters.reserved_bytes <= s.max_bytes);
        end(&p, other, 3_500_000);
    }

    #[test]
    fn retain_release_counting_and_stale_tokens() {
        let p = Pool::new(1 << 20);
        let g = p.alloc(10, false, HOLDER).unwrap();
        let a = g.addr as usize;
        assert_eq!(p.retain(g.token, a, 10), Ok(2));
        assert_eq!(p.ref_count(g.token, a, 10), Ok(2));
        assert_eq!(p.release(g.token, a, 10), Ok(Release::Retained(1)));
        assert_eq!(p.retain(g.token, a + 1, 9), Err(PoolError::NotPooled), "a view never matches");
        end(&p, g, 10);
        assert_eq!(p.release(g.token, a, 10), Err(PoolError::NotPooled));
        let g2 = p.alloc(10, false, HOLDER).unwrap();
        assert_eq!(g2.addr, g.addr);
        assert_ne!(g2.token, g.token, "a new loan at the same key has a new generation");
        assert_eq!(p.ref_count(g.token, a, 10), Err(PoolError::NotPooled));
        let q = Pool::new(1 << 20);
        assert_eq!(q.ref_count(g2.token, a, 10), Err(PoolError::NotPooled), "another pool's token");
        assert!(p.reclaim(g2.token));
        assert!(!p.reclaim(g2.token), "a reclaimed loan is not reclaimed twice");
        assert_eq!(p.stats().counters.gc_reclaims, 1);
    }

    #[test]
    fn close_refuses_new_loans_and_keeps_outstanding_memory_until_released() {
        let p = Pool::new(1 << 20);
        let g = p.alloc(64, false, HOLDER).unwrap();
        fill(g, 64, 3);
        assert_eq!(p.close(), 1, "one loan is still out");
        assert_eq!(p.alloc(8, false, HOLDER).unwrap_err(), PoolError::Closed);
        assert_eq!(p.retain(g.token, g.addr as usize, 64), Err(PoolError::Closed));
        assert!(all(g, 64, 3), "outstanding memory stays mapped");
        assert_eq!(p.stats().counters.reserved_bytes, SLAB_CHUNK_BYTES);
        end(&p, g, 64);
        let s = p.stats();
        assert_eq!((s.counters.reserved_bytes, s.live_buffers, s.counters.releases), (0, 0, 1));
    }

    fn recorder(p: &Pool) -> Arc<Mutex<Vec<PoolEvent>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        p.listen(Box::new(move |e| sink.lock().push(e.clone())));
        seen
    }

    fn levels(seen: &Mutex<Vec<PoolEvent>>) -> Vec<(Level, Level)> {
        seen.lock()
            .iter()
            .filter_map(|e| match e {
                PoolEvent::Level(c) => Some((c.previous, c.level)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_level_change_is_told_once_in_order() {
        // 100 slots of 8 KiB in a pool of 100 slots' worth: utilization moves 1 % per Buffer.
        let p = Pool::new(100 * 8192);
        let seen = recorder(&p);
        let essential = |p: &Pool| {
            let req = AllocRequest { priority: Priority::Essential, ..AllocRequest::new(8192, false) };
            p.alloc_with(req, HOLDER).unwrap()
        };
        let mut held: Vec<Grant> = (0..96).map(|_| essential(&p)).collect();
        // 96 slots need 12 chunks = 96 * 8 KiB: exactly the reserved memory.
        assert_eq!(p.level(), Level::Shedding);
        use Level::*;
        assert_eq!(levels(&seen), [(Normal, Warning), (Warning, Critical), (Critical, Shedding)]);
        while held.len() > 93 {
            end(&p, held.pop().unwrap(), 8192);
        }
        assert_eq!(p.level(), Shedding, "0.93 is inside the hysteresis band below 0.95");
        end(&p, held.pop().unwrap(), 8192);
        assert_eq!(p.level(), Critical);
        for _ in 0..3 {
            held.push(essential(&p));
        }
        assert_eq!(p.level(), Shedding, "back to 0.95");
        end(&p, held.pop().unwrap(), 8192);
        assert_eq!(levels(&seen).len(), 5, "one change up, none back down within the band");
        while let Some(g) = held.pop() {
            end(&p, g, 8192);
        }
        let expected = [
            (Normal, Warning),
            (Warning, Critical),
            (Critical, Shedding),
            (Shedding, Critical),
            (Critical, Shedding),
            (Shedding, Critical),
            (Critical, Warning),
            (Warning, Normal),
        ];
        assert_eq!(levels(&seen), expected);
        assert_eq!(p.level(), Normal);
        assert_eq!(p.stats().level, Normal);
    }

    #[test]
    fn graded_admission_refuses_by_level_and_counts_each_reason() {
        let p = Pool::new(100 * 8192);
        let essential = AllocRequest { priority: Priority::Essential, ..AllocRequest::new(8192, false) };
        let _held: Vec<Grant> = (0..72).map(|_| p.alloc_with(essential.clone(), HOLDER).unwrap()).collect();
        assert_eq!(p.level(), Level::Warning);
        assert!(p.alloc(8192, false, HOLDER).is_ok(), "small is allowed at warning");
        assert!(matches!(
            p.alloc(8193, false, HOLDER),
            Err(PoolError::Throttled { requested: 8193, level: Level::Warning, .. })
        ));
        let before = p.stats();
        assert!(p.alloc(100, false, HOLDER).is_ok());
        let s = p.stats();
        assert_eq!((s.counters.refused_throttled, s.counters.failed_allocations), (1, 1));
        assert_eq!(s.live_buffers, before.live_buffers + 1);
    }

    #[test]
    fn a_tracked_buffer_collected_without_release_is_a_leak() {
        let p = Pool::new(1 << 20);
        let seen = recorder(&p);
        let req = AllocRequest { tracked: true, ..AllocRequest::new(40, false) };
        let tracked = p.alloc_with(req, HOLDER).unwrap();
        let plain = p.alloc(40, false, HOLDER).unwrap();
        let live = p.live(0);
        assert_eq!(live.len(), 2);
        assert_eq!(live.iter().filter(|l| l.tracked).count(), 1);
        assert!(live.iter().any(|l| l.token == tracked.token));
        assert!(p.live(60_000).is_empty(), "nothing is a minute old");
        assert!(p.reclaim(plain.token));
        assert!(p.reclaim(tracked.token));
        let s = p.stats();
        assert_eq!((s.counters.gc_reclaims, s.counters.leaks), (2, 1));
        let events = seen.lock();
        let [PoolEvent::Leak(leak)] = &events[..] else { panic!("one leak: {events:?}") };
        assert_eq!((leak.size, leak.address, leak.token), (40, tracked.addr as usize, tracked.token));
    }

    #[test]
    fn aligned_allocations_start_on_their_boundary() {
        let p = Pool::new(16 << 20);
        for align in [8, 64, 4096] {
            for size in [1, 63, 64, 65, 100, 4095, 4096, 4097, 8192, 8193, 100_000] {
                let g = p.alloc_with(AllocRequest { align, ..AllocRequest::new(size, true) }, HOLDER).unwrap();
                assert_eq!(g.addr as usize % align, 0, "size {size} align {align}");
            }
        }
    }

    #[test]
    fn a_parked_loan_keeps_its_memory_for_good_even_after_the_pool_is_dropped() {
        let p = Pool::new(8 << 20);
        let small = p.alloc(100, false, HOLDER).unwrap();
        let large = p.alloc(300_000, false, HOLDER).unwrap();
        let other = p.alloc(100, false, HOLDER).unwrap();
        fill(small, 100, 0x5a);
        fill(large, 300_000, 0x6b);
        assert_eq!(p.reclaim_unless(small.token, |_| true), Some(Reclaimed::Parked(HOLDER)));
        assert_eq!(p.reclaim_unless(large.token, |o| *o == HOLDER), Some(Reclaimed::Parked(HOLDER)));
        assert_eq!(p.reclaim_unless(other.token, |_| false), Some(Reclaimed::Ended(HOLDER)));
        assert_eq!(p.reclaim_unless(small.token, |_| false), None, "a parked loan never ends");
        assert_eq!(p.release(large.token, large.addr as usize, 300_000), Err(PoolError::NotPooled));
        let s = p.stats();
        assert_eq!((s.counters.parked_buffers, s.live_buffers), (2, 2));
        assert_eq!(s.counters.parked_bytes, CLASS_SIZES[class_for(100, MIN_ALIGN)] + large::mapping_len(300_000));
        assert_eq!(s.counters.in_use_bytes, s.counters.parked_bytes, "parked memory stays in use");
        assert_eq!(s.counters.gc_reclaims, 1);
        assert!(p.live(0).iter().all(|l| l.parked));
        p.trim();
        for _ in 0..64 {
            let g = p.alloc(100, true, HOLDER).unwrap();
            assert_ne!(g.addr, small.addr, "a parked slot is never lent again");
        }
        drop(p);
        assert!(all(small, 100, 0x5a) && all(large, 300_000, 0x6b), "still mapped after the pool is gone");
    }

    #[test]
    fn reserved_bytes_follow_mappings_the_cache_evicts() {
        let p = Pool::with_config(PoolConfig { admission: Admission::Cap, ..PoolConfig::with_max_bytes(64 << 20) });
        for i in 0..5000usize {
            let size = 9000 + (i * 7919) % (12 << 20);
            let g = p.alloc(size, false, HOLDER).unwrap();
            end(&p, g, size);
            let s = p.stats();
            assert_eq!(s.counters.reserved_bytes, s.large_cached_bytes, "step {i}: only the cache is reserved");
        }
        p.trim();
        assert_eq!(p.stats().counters.reserved_bytes, 0);
    }

    #[test]
    fn a_loan_ends_or_a_slot_is_lent_again_only_through_its_own_memory() {
        let p = Pool::new(8 << 20);
        let req = || AllocRequest { bind: true, ..AllocRequest::new(100, false) };
        let a = p.alloc_with(req(), HOLDER).unwrap();
        let b = p.alloc_with(req(), HOLDER).unwrap();
        assert!(matches!(p.release(a.token, a.addr as usize, 100), Ok(Release::Last(_))));
        assert!(p.finish_release_at(a.token, b.addr as usize).is_none(), "b's memory does not end a's loan");
        assert_eq!(p.loan_addr(a.token), Some(a.addr as usize));
        let done = p.finish_release_at(a.token, a.addr as usize).unwrap();
        let slot = done.slot.unwrap();
        let before = p.stats();
        assert_eq!(p.reuse_at(slot, req(), HOLDER, Some(b.addr as usize)).err(), Some(PoolError::Stale), "b's memory");
        let after = p.stats();
        assert_eq!(
            (after.counters.allocations, after.live_buffers),
            (before.counters.allocations, before.live_buffers)
        );
        let again = p.reuse_at(slot, req(), HOLDER, Some(a.addr as usize)).unwrap();
        assert_eq!(again.addr, a.addr, "the slot was still free, and is lent through its own memory");
        for g in [again, b] {
            assert!(matches!(p.release(g.token, g.addr as usize, 100), Ok(Release::Last(_))));
            p.finish_release(g.token).unwrap();
        }
        assert_eq!(p.stats().live_buffers, 0);
    }
}
