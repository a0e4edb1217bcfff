//! Mappings bound to an ArrayBuffer: a large Buffer's ArrayBuffer that outlives its loan, so that
//! the mapping can be lent again through it with no new ArrayBuffer (which would cost a native
//! allocation and, churned, V8's garbage collections over external memory).
//!
//! A bound large loan (`AllocRequest::bind`) maps its class's length
//! ([`class_len`](crate::large::class_len)); the caller makes one ArrayBuffer over the whole
//! mapping, whose bytes count as external until [`Pool::mapping_buffer_finalized`]. When the loan
//! ends, the mapping goes to the mapping cache and the caller may keep that ArrayBuffer (moved by
//! `transfer()`, so it keeps the memory and the finalizer); [`Pool::reuse_mapping`] lends the
//! mapping again through it.
//!
//! Invariants, per mapping address in `State::bound_maps`:
//! - its `epoch` names the one ArrayBuffer bound to the mapping now; an ArrayBuffer of another
//!   epoch (or of an address with no entry) lends nothing and ends nothing: its finalizer only
//!   gives its external bytes back;
//! - `loan` is the live loan that uses the mapping through that ArrayBuffer, or `None` while the
//!   mapping is cached (or was unmapped: then reuse finds no mapping at the address and refuses);
//! - the entry goes when its ArrayBuffer is finalized, or when the loan stops using it (resize,
//!   hand-off): after that the mapping is never lent through it again;
//! - reuse lends only a cached mapping of exactly the ArrayBuffer's length at exactly its
//!   address, so the ArrayBuffer views the loan's memory and nothing else.

use super::{Grant, Pool, PoolError, Reclaimed, State};
use crate::loan::{self, Holder, LoanMemory};
use crate::size_class::SMALL_MAX;

/// The ArrayBuffer bound to a mapping now, and the loan that uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BoundMap {
    pub(super) epoch: u64,
    pub(super) len: usize,
    pub(super) loan: Option<usize>,
}

/// A mapping and the epoch of the ArrayBuffer bound to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MappingRef {
    /// First byte.
    pub addr: usize,
    /// Bytes of the mapping (a class's length).
    pub len: usize,
    /// The epoch of its ArrayBuffer.
    pub epoch: u64,
}

impl State {
    /// Binds a new ArrayBuffer over the mapping at `addr` (`len` bytes) lent to the loan `key`;
    /// returns its epoch.
    pub(super) fn bind_mapping(&mut self, addr: usize, len: usize, key: usize) -> u64 {
        self.next_mapping_epoch += 1;
        let epoch = self.next_mapping_epoch;
        self.bound_maps.insert(addr, BoundMap { epoch, len, loan: Some(key) });
        epoch
    }

    /// The loan of a bound mapping at `addr` ended: the mapping is cached (or unmapped), and its
    /// ArrayBuffer may be kept. What to keep it for, if the loan used one.
    pub(super) fn unlend_mapping(&mut self, addr: usize) -> Option<MappingRef> {
        let b = self.bound_maps.get_mut(&addr)?;
        b.loan = None;
        Some(MappingRef { addr, len: b.len, epoch: b.epoch })
    }

    /// The loan at `addr` stops using its bound ArrayBuffer (a resize, a hand-off): nothing is
    /// lent through that ArrayBuffer again, and its finalizer only gives its bytes back.
    pub(super) fn unbind_mapping(&mut self, addr: usize) {
        self.bound_maps.remove(&addr);
    }
}

impl Pool {
    /// Lends the cached mapping at `at.addr` again, through the ArrayBuffer of `at.epoch` that the
    /// caller kept from an earlier bound loan of it, for `req.size` bytes of its class. Refused
    /// with [`PoolError::Stale`] (and nothing changed, not even a count) if that ArrayBuffer is
    /// not the mapping's any more or the mapping is not cached (lent, or unmapped); the caller
    /// then drops it. Refused by admission as an allocation is.
    pub fn reuse_mapping(&self, at: MappingRef, req: super::AllocRequest, holder: Holder) -> Result<Grant, PoolError> {
        let mut st = self.state.lock();
        if req.size <= SMALL_MAX || crate::large::class_len(req.size) != at.len {
            return Err(PoolError::Stale);
        }
        if st.bound_maps.get(&at.addr) != Some(&BoundMap { epoch: at.epoch, len: at.len, loan: None }) {
            return Err(PoolError::Stale);
        }
        if let Err(e) = st.admit(&self.config, &req) {
            st.count_refusal(&self.config, &e, req.priority);
            return Err(e);
        }
        let Some(mut map) = st.mappings.take_at(at.addr, at.len) else { return Err(PoolError::Stale) };
        if req.zero {
            // The kept ArrayBuffer shows all of the mapping, so all of it is cleared.
            map.fill(0);
        }
        st.large_live += 1;
        let addr = map.as_mut_ptr();
        let token = st.lend(&self.config, self.id, LoanMemory::Mapping(map), addr, at.len, 0, req, holder);
        let (_, _, key) = loan::untoken(token).expect("a token just made");
        st.loans[key].bound = true;
        if let Some(b) = st.bound_maps.get_mut(&at.addr) {
            b.loan = Some(key);
        }
        Ok(Grant { token, addr, capacity: at.len, slot: None, mapping: Some(at), bound_bytes: 0 })
    }

    /// Accounts for the end of an ArrayBuffer bound to the mapping at `at.addr`: its `at.len`
    /// bytes leave external memory, and if it is the mapping's ArrayBuffer of `at.epoch` while a
    /// loan uses it, that loan's Buffer was collected: it ends as by
    /// [`reclaim_unless`](Self::reclaim_unless). A thread's cache loan of it (see `cache`) whose
    /// mapping is in the cache, not lent, simply comes back: the cache went away.
    pub fn mapping_buffer_finalized(
        &self,
        at: MappingRef,
        may_be_reachable: impl FnOnce(&Holder) -> bool,
    ) -> Option<Reclaimed> {
        let mut st = self.state.lock();
        st.counters.uncount_external(at.len);
        let b = *st.bound_maps.get(&at.addr)?;
        if b.epoch != at.epoch {
            return None;
        }
        st.bound_maps.remove(&at.addr);
        let key = b.loan?;
        let token = loan::token(self.id, st.loans.get(key)?.gen, key);
        if st.loans[key].cache.is_some() {
            let len = st.cache_lent_len(key)?;
            if len == 0 {
                let ended = st.end_cached(key)?;
                st.update_gates(&self.config);
                return Some(Reclaimed::Ended(ended.holder));
            }
            // A Buffer lent from the cache was collected without release.
            st.materialize(key, len);
        }
        st.reclaim_unless(&self.config, self.id, token, may_be_reachable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::large::class_len;
    use crate::pool::{AllocRequest, Release};

    const HOLDER: Holder = Holder { thread: 1, hint: 2, witness: 0 };

    fn bound(size: usize) -> AllocRequest {
        AllocRequest { bind: true, ..AllocRequest::new(size, false) }
    }

    fn end(p: &Pool, g: &Grant, len: usize) -> Option<MappingRef> {
        assert!(matches!(p.release(g.token, g.addr as usize, len), Ok(Release::Last(_))));
        p.finish_release(g.token).unwrap().mapping
    }

    #[test]
    fn a_bound_mapping_is_lent_again_through_its_kept_arraybuffer_and_only_through_it() {
        let p = Pool::new(64 << 20);
        let g = p.alloc_with(bound(20_000), HOLDER).unwrap();
        assert_eq!(g.capacity, class_len(20_000));
        let at = g.mapping.unwrap();
        let s = p.stats();
        assert_eq!((s.counters.external_bytes, s.counters.in_use_bytes), (at.len, at.len));
        let kept = end(&p, &g, 20_000).expect("its ArrayBuffer may be kept");
        assert_eq!(kept, at);
        assert_eq!(p.stats().large_cached, 1);
        let stale = MappingRef { epoch: at.epoch + 1, ..at };
        assert_eq!(p.reuse_mapping(stale, bound(20_000), HOLDER).err(), Some(PoolError::Stale));
        assert_eq!(p.reuse_mapping(at, bound(100_000), HOLDER).err(), Some(PoolError::Stale), "another class");
        let again = p.reuse_mapping(at, bound(at.len), HOLDER).unwrap();
        assert_eq!((again.addr, again.bound_bytes), (g.addr, 0));
        assert_eq!(p.reuse_mapping(at, bound(at.len), HOLDER).err(), Some(PoolError::Stale), "lent already");
        let s = p.stats();
        assert_eq!((s.counters.external_bytes, s.large_live, s.counters.allocations), (at.len, 1, 2));
        assert_eq!(end(&p, &again, at.len), Some(at));
        // The kept ArrayBuffer is dropped: its bytes leave, and the mapping is never lent through it.
        assert_eq!(p.mapping_buffer_finalized(at, |_| false), None);
        assert_eq!(p.stats().counters.external_bytes, 0);
        assert_eq!(p.reuse_mapping(at, bound(at.len), HOLDER).err(), Some(PoolError::Stale));
    }

    #[test]
    fn a_collected_buffer_of_a_bound_mapping_is_a_gc_reclaim_and_an_old_arraybuffer_ends_nothing() {
        let p = Pool::new(64 << 20);
        let g = p.alloc_with(bound(50_000), HOLDER).unwrap();
        let at = g.mapping.unwrap();
        let old = MappingRef { epoch: at.epoch - 1, ..at };
        assert_eq!(p.mapping_buffer_finalized(old, |_| false), None, "not its ArrayBuffer");
        assert_eq!(p.stats().live_buffers, 1);
        // (the test gave back bytes it never counted: put them back)
        p.state.lock().counters.count_external(at.len);
        assert!(matches!(p.mapping_buffer_finalized(at, |_| false), Some(Reclaimed::Ended(_))));
        let s = p.stats();
        assert_eq!((s.live_buffers, s.counters.gc_reclaims, s.counters.external_bytes), (0, 1, 0));
        assert_eq!(p.reuse_mapping(at, bound(50_000), HOLDER).err(), Some(PoolError::Stale));
    }

    #[test]
    fn a_resized_or_shared_loan_is_never_ended_by_the_arraybuffer_of_its_old_mapping() {
        let p = Pool::new(64 << 20);
        for new_size in [1, 5000, 9000, 40_000, 300_000] {
            let g = p.alloc_with(bound(8193), HOLDER).unwrap();
            let at = g.mapping.unwrap();
            p.resize_begin(g.token, g.addr as usize, 8193, AllocRequest::new(new_size, false)).unwrap();
            let r = p.resize_end(g.token).unwrap();
            assert!(!r.bound, "the mapping's ArrayBuffer does not follow it");
            assert_eq!(p.mapping_buffer_finalized(at, |_| false), None, "resized to {new_size}");
            assert_eq!(p.ref_count(g.token, r.addr as usize, new_size), Ok(1), "still live");
            assert!(matches!(p.release(g.token, r.addr as usize, new_size), Ok(Release::Last(_))));
            p.finish_release(g.token).unwrap();
        }
        let g = p.alloc_with(bound(20_000), HOLDER).unwrap();
        let at = g.mapping.unwrap();
        p.share(g.token, g.addr as usize, 20_000).unwrap();
        assert_eq!(p.mapping_buffer_finalized(at, |_| false), None, "shared");
        assert_eq!(p.stats().counters.in_transit_buffers, 1);
        let s = p.stats();
        assert_eq!(s.live_buffers, 1);
    }
}
