//! The pool: size classes, large mappings, loans and counters behind one lock, and the hard cap.

use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

use super::error::PoolError;
use super::large::{self, MappingCache};
use super::loan::{self, Loan, LoanMemory, Owner, MAX_LIVE_LOANS, POOL_ID_MASK};
use super::size_class::{class_of, CLASS_SIZES, SMALL_MAX};
use super::slab::{ClassSlab, SLAB_CHUNK_BYTES};
use super::stats::{ClassStats, Counters, PoolStats};

/// Largest share of `max_bytes` the large-mapping cache may hold.
const CACHE_SHARE_DIVISOR: usize = 4;
/// Largest size of the large-mapping cache, whatever the cap.
const CACHE_MAX_BYTES: usize = 256 * 1024 * 1024;

static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(0);

/// Memory handed out by [`Pool::alloc`].
#[derive(Debug, Clone, Copy)]
pub struct Grant {
    /// Names the loan in later calls.
    pub token: u64,
    /// First byte of the memory, valid for the requested length until the loan ends.
    pub addr: *mut u8,
}

/// What [`Pool::release`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// References remain; the count is given.
    Retained(u32),
    /// This was the last reference. Nothing has changed yet: the caller makes the Buffer
    /// unreachable (detaches it), then calls [`Pool::finish_release`].
    Last(Owner),
}

/// A pool of external memory: slab classes for sizes up to [`SMALL_MAX`], a mapping each above.
///
/// Thread-safe; every operation takes the lock once and never calls out while holding it.
#[derive(Debug)]
pub struct Pool {
    id: u64,
    max_bytes: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    closed: bool,
    classes: Vec<ClassSlab>,
    cache: MappingCache,
    /// Live loans. Every slot or mapping handed out belongs to exactly one entry.
    loans: slab::Slab<Loan>,
    /// Generation to stamp on the next loan.
    next_gen: u32,
    large_live: usize,
    counters: Counters,
}

impl Pool {
    /// A pool that holds at most `max_bytes` from the OS.
    pub fn new(max_bytes: usize) -> Pool {
        let cache_max = (max_bytes / CACHE_SHARE_DIVISOR).min(CACHE_MAX_BYTES);
        Pool {
            id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed) & POOL_ID_MASK,
            max_bytes,
            state: Mutex::new(State {
                closed: false,
                classes: CLASS_SIZES.iter().map(|&s| ClassSlab::new(s)).collect(),
                cache: MappingCache::new(cache_max),
                loans: slab::Slab::new(),
                next_gen: 0,
                large_live: 0,
                counters: Counters::default(),
            }),
        }
    }

    /// The hard cap.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Lends `size` bytes (`size >= 1`), zero-filled if `zero`. `owner` is kept with the loan.
    pub fn alloc(&self, size: usize, zero: bool, owner: Owner) -> Result<Grant, PoolError> {
        debug_assert!(size > 0);
        let mut st = self.state.lock();
        let result = st.alloc(self.max_bytes, size, zero);
        match result {
            Ok((memory, addr, capacity, fresh)) => {
                if zero && !fresh {
                    // SAFETY: `addr` starts `capacity >= size` bytes that belong to no loan.
                    unsafe { ptr::write_bytes(addr, 0, size) };
                }
                let gen = st.next_gen;
                st.next_gen = loan::next_gen(gen);
                let key = st.loans.insert(Loan {
                    addr: addr as usize,
                    requested: size,
                    capacity,
                    refs: 1,
                    gen,
                    memory,
                    owner,
                    since: Instant::now(),
                });
                let c = &mut st.counters;
                c.allocations += 1;
                c.in_use_bytes += capacity;
                c.requested_bytes += size;
                c.external_bytes += size;
                c.peak_in_use_bytes = c.peak_in_use_bytes.max(c.in_use_bytes);
                Ok(Grant { token: loan::token(self.id, gen, key), addr })
            }
            Err(e) => {
                st.counters.failed_allocations += 1;
                Err(e)
            }
        }
    }

    /// Adds a reference to the Buffer of `token`, which must start at `addr` and be `len` long.
    pub fn retain(&self, token: u64, addr: usize, len: usize) -> Result<u32, PoolError> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(PoolError::Closed);
        }
        let l = st.loan_mut(self.id, token, addr, len)?;
        l.refs = l.refs.checked_add(1).ok_or(PoolError::TooManyRefs)?;
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
        Ok(Release::Last(l.owner))
    }

    /// Ends the loan of `token` after [`Release::Last`]; its memory is reusable from now on.
    pub fn finish_release(&self, token: u64) {
        let mut st = self.state.lock();
        if st.end_loan(self.id, token) {
            st.counters.releases += 1;
        }
    }

    /// Takes back an allocation whose Buffer could not be made, as if it had never happened.
    pub fn undo_alloc(&self, token: u64) {
        let mut st = self.state.lock();
        if st.end_loan(self.id, token) {
            st.counters.allocations -= 1;
        }
    }

    /// Ends the loan of `token` because its Buffer was collected; `false` (and nothing done) if it
    /// had already ended, as it has for every released Buffer.
    pub fn reclaim(&self, token: u64) -> bool {
        let mut st = self.state.lock();
        let ended = st.end_loan(self.id, token);
        if ended {
            st.counters.gc_reclaims += 1;
        }
        ended
    }

    /// References held on the Buffer of `token`.
    pub fn ref_count(&self, token: u64, addr: usize, len: usize) -> Result<u32, PoolError> {
        let mut st = self.state.lock();
        Ok(st.loan_mut(self.id, token, addr, len)?.refs)
    }

    /// Whether `[addr, addr + len)` lies inside a live loan: the memory of a view of a pooled Buffer.
    /// Costs a scan of the live loans; it serves error reporting only.
    pub fn is_view_of_loan(&self, addr: usize, len: usize) -> bool {
        let st = self.state.lock();
        st.loans.iter().any(|(_, l)| addr >= l.addr && addr + len <= l.addr + l.requested)
    }

    /// Closes the pool: later allocations are refused, free memory is given back now, and the
    /// tokens and owners of the loans still out are returned. Their memory stays valid until each
    /// ends by [`finish_release`](Self::finish_release), [`reclaim`](Self::reclaim) or
    /// [`end_closed`](Self::end_closed).
    pub fn close(&self) -> Vec<(u64, Owner)> {
        let mut st = self.state.lock();
        st.closed = true;
        st.trim();
        st.loans.iter().map(|(k, l)| (loan::token(self.id, l.gen, k), l.owner)).collect()
    }

    /// Ends a loan whose Buffer `close()` detached.
    pub fn end_closed(&self, token: u64) {
        let mut st = self.state.lock();
        if st.end_loan(self.id, token) {
            st.counters.closed_reclaims += 1;
        }
    }

    /// Whether the pool is closed.
    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Gives back cached mappings and empty slab chunks; returns the bytes given back.
    pub fn trim(&self) -> usize {
        self.state.lock().trim()
    }

    /// A consistent snapshot of the pool.
    pub fn stats(&self) -> PoolStats {
        let st = self.state.lock();
        PoolStats {
            max_bytes: self.max_bytes,
            counters: st.counters.clone(),
            live_buffers: st.loans.len(),
            classes: st
                .classes
                .iter()
                .map(|c| ClassStats { size: c.slot_size(), in_use: c.slots_in_use(), free: c.free_slots() })
                .collect(),
            large_live: st.large_live,
            large_cached: st.cache.len(),
            large_cached_bytes: st.cache.bytes(),
            closed: st.closed,
        }
    }
}

impl State {
    /// Takes memory for `size` bytes: `(memory, addr, capacity, fresh)`, where `fresh` memory was
    /// just mapped and is already zero.
    fn alloc(
        &mut self,
        max_bytes: usize,
        size: usize,
        _zero: bool,
    ) -> Result<(LoanMemory, *mut u8, usize, bool), PoolError> {
        if self.closed {
            return Err(PoolError::Closed);
        }
        if self.loans.len() >= MAX_LIVE_LOANS {
            return Err(self.exhausted(max_bytes, size));
        }
        if size <= SMALL_MAX {
            let class = class_of(size);
            if let Some((slot, addr)) = self.classes[class].pop() {
                return Ok((LoanMemory::Slot { class, slot }, addr, CLASS_SIZES[class], false));
            }
            if !self.make_room(max_bytes, SLAB_CHUNK_BYTES) || self.classes[class].add_chunk().is_err() {
                return Err(self.exhausted(max_bytes, size));
            }
            self.counters.reserved_bytes += SLAB_CHUNK_BYTES;
            let (slot, addr) = self.classes[class].pop().expect("a new chunk has free slots");
            return Ok((LoanMemory::Slot { class, slot }, addr, CLASS_SIZES[class], true));
        }
        let len = large::mapping_len(size);
        let (mut map, fresh) = match self.cache.take(len) {
            Some(map) => (map, false),
            None => {
                if !self.make_room(max_bytes, len) {
                    return Err(self.exhausted(max_bytes, size));
                }
                match large::map(len) {
                    Ok(map) => {
                        self.counters.reserved_bytes += len;
                        (map, true)
                    }
                    Err(_) => return Err(self.exhausted(max_bytes, size)),
                }
            }
        };
        self.large_live += 1;
        let addr = map.as_mut_ptr();
        let capacity = map.len();
        Ok((LoanMemory::Mapping(map), addr, capacity, fresh))
    }

    #[cold]
    fn exhausted(&self, max_bytes: usize, requested: usize) -> PoolError {
        PoolError::Exhausted {
            requested,
            available: max_bytes.saturating_sub(self.counters.reserved_bytes),
        }
    }

    /// Whether `bytes` more can be reserved within `max_bytes`, giving back unused memory if needed.
    fn make_room(&mut self, max_bytes: usize, bytes: usize) -> bool {
        if self.counters.reserved_bytes + bytes <= max_bytes {
            return true;
        }
        self.trim();
        self.counters.reserved_bytes + bytes <= max_bytes
    }

    fn trim(&mut self) -> usize {
        let mut freed = self.cache.clear();
        for c in &mut self.classes {
            freed += c.trim();
        }
        self.counters.reserved_bytes -= freed;
        freed
    }

    /// The live loan named by `token`, if it is the Buffer at `addr` of `len` bytes.
    fn loan_mut(&mut self, pool: u64, token: u64, addr: usize, len: usize) -> Result<&mut Loan, PoolError> {
        let (p, gen, key) = loan::untoken(token).ok_or(PoolError::NotPooled)?;
        if p != pool {
            return Err(PoolError::NotPooled);
        }
        match self.loans.get_mut(key) {
            Some(l) if l.gen == gen && l.addr == addr && l.requested == len => Ok(l),
            _ => Err(PoolError::NotPooled),
        }
    }

    /// Removes the loan of `token` and returns its memory; `false` if there is no such loan.
    fn end_loan(&mut self, pool: u64, token: u64) -> bool {
        let Some((p, gen, key)) = loan::untoken(token) else { return false };
        if p != pool || self.loans.get(key).is_none_or(|l| l.gen != gen) {
            return false;
        }
        let l = self.loans.remove(key);
        let c = &mut self.counters;
        c.in_use_bytes -= l.capacity;
        c.requested_bytes -= l.requested;
        c.external_bytes -= l.requested;
        match l.memory {
            LoanMemory::Slot { class, slot } => {
                let slab = &mut self.classes[class];
                slab.push(slot);
                if self.closed && slab.chunk_is_empty(slot) {
                    self.counters.reserved_bytes -= slab.trim();
                }
            }
            LoanMemory::Mapping(map) => {
                self.large_live -= 1;
                let len = map.len();
                let kept = !self.closed && self.cache.put(map).is_ok();
                if !kept {
                    self.counters.reserved_bytes -= len;
                }
            }
        }
        true
    }
}

// SAFETY: `Grant` only carries an address; it is sent with the loan it names.
unsafe impl Send for Grant {}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: Owner = Owner { thread: 1, handle: 2 };

    fn fill(g: Grant, len: usize, byte: u8) {
        // SAFETY: the grant's memory is `len` bytes long and owned by the test.
        unsafe { ptr::write_bytes(g.addr, byte, len) }
    }

    fn all(g: Grant, len: usize, byte: u8) -> bool {
        // SAFETY: as in `fill`.
        unsafe { std::slice::from_raw_parts(g.addr, len) }.iter().all(|&b| b == byte)
    }

    fn end(p: &Pool, g: Grant, len: usize) {
        assert_eq!(p.release(g.token, g.addr as usize, len), Ok(Release::Last(OWNER)));
        p.finish_release(g.token);
    }

    #[test]
    fn alloc_zero_fills_recycled_memory() {
        let p = Pool::new(1 << 20);
        let g = p.alloc(100, false, OWNER).unwrap();
        fill(g, 100, 0xEE);
        end(&p, g, 100);
        let g2 = p.alloc(100, true, OWNER).unwrap();
        assert_eq!(g2.addr, g.addr, "the most recently freed slot is reused");
        assert!(all(g2, 100, 0));
        let g3 = p.alloc(100_000, true, OWNER).unwrap();
        fill(g3, 100_000, 7);
        end(&p, g3, 100_000);
        let g4 = p.alloc(100_000, true, OWNER).unwrap();
        assert_eq!(g4.addr, g3.addr, "the cached mapping is reused");
        assert!(all(g4, 100_000, 0));
    }

    #[test]
    fn counters_balance_to_zero() {
        let p = Pool::new(64 << 20);
        let sizes = [1, 8, 9, 64, 65, 4096, 8192, 8193, 300_000, 5 << 20];
        let gs: Vec<_> = sizes.iter().map(|&s| (p.alloc(s, true, OWNER).unwrap(), s)).collect();
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
        let p = Pool::new(4 << 20);
        let big = p.alloc(900_000, false, OWNER).unwrap();
        end(&p, big, 900_000);
        assert_eq!(p.stats().large_cached, 1, "the mapping is cached");
        let other = p.alloc(3_500_000, false, OWNER).unwrap();
        assert_eq!(p.stats().large_cached, 0, "the cache was given back to make room");
        let err = p.alloc(700_000, false, OWNER).unwrap_err();
        let available = (4 << 20) - large::mapping_len(3_500_000);
        assert_eq!(err, PoolError::Exhausted { requested: 700_000, available });
        let s = p.stats();
        assert_eq!(s.counters.failed_allocations, 1);
        assert_eq!(s.live_buffers, 1);
        assert!(s.counters.reserved_bytes <= s.max_bytes);
        end(&p, other, 3_500_000);
    }

    #[test]
    fn retain_release_counting_and_stale_tokens() {
        let p = Pool::new(1 << 20);
        let g = p.alloc(10, false, OWNER).unwrap();
        let a = g.addr as usize;
        assert_eq!(p.retain(g.token, a, 10), Ok(2));
        assert_eq!(p.ref_count(g.token, a, 10), Ok(2));
        assert_eq!(p.release(g.token, a, 10), Ok(Release::Retained(1)));
        assert_eq!(p.retain(g.token, a + 1, 9), Err(PoolError::NotPooled), "a view never matches");
        end(&p, g, 10);
        assert_eq!(p.release(g.token, a, 10), Err(PoolError::NotPooled));
        let g2 = p.alloc(10, false, OWNER).unwrap();
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
    fn close_refuses_allocations_and_keeps_outstanding_memory_until_it_ends() {
        let p = Pool::new(1 << 20);
        let g = p.alloc(64, false, OWNER).unwrap();
        fill(g, 64, 3);
        let out = p.close();
        assert_eq!(out.len(), 1);
        assert_eq!(p.alloc(8, false, OWNER).unwrap_err(), PoolError::Closed);
        assert!(all(g, 64, 3), "outstanding memory stays mapped");
        assert_eq!(p.stats().counters.reserved_bytes, SLAB_CHUNK_BYTES);
        p.end_closed(out[0].0);
        let s = p.stats();
        assert_eq!((s.counters.reserved_bytes, s.live_buffers, s.counters.closed_reclaims), (0, 0, 1));
    }
}
