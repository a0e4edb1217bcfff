//! Resizing a loan, as `realloc` does, in two steps around the caller's detach of the old Buffer.
//!
//! [`Pool::resize_begin`] does everything that can fail: it checks the loan, admits the growth
//! and takes any new memory, and changes nothing a caller can see if it fails. The caller then
//! detaches the old Buffer, and [`Pool::resize_end`] moves the contents, which cannot fail; or
//! [`Pool::resize_abort`] gives back what the first step took. The memory follows one of these:
//! - a slot with room for the new size keeps its memory (the same bytes, nothing copied);
//! - a mapping keeps its memory when the new size fits in it; it is shortened in place (Linux)
//!   when it shrinks;
//! - a mapping that grows is lengthened in place in the first step if the addresses after it are
//!   free (Linux); otherwise it gets a new mapping of the new length, and its pages move into the
//!   start of it with `mremap(MREMAP_FIXED)` on Linux: none is copied (elsewhere, or if the OS
//!   refuses, they are copied);
//! - anything else (across the small/large boundary, or a slot too small) gets new memory as a
//!   new allocation would, and the contents are copied.
//!
//! Invariant: while a resize is pending, its loan is live, holds one reference, and its old
//! memory is untouched; the new memory (if any) belongs to the pending entry alone.

use std::ptr;

use memmap2::MmapMut;

use super::{Pool, PoolError, State};
use crate::error::Syscall;
use crate::large;
use crate::loan::{self, Holder, LoanMemory};
use crate::os;
use crate::pool::AllocRequest;
use crate::size_class::SMALL_MAX;
use crate::stats::LoanBytes;

/// What [`Pool::resize_begin`] prepared for a loan.
#[derive(Debug)]
pub(super) enum Pending {
    /// The memory stays; for a mapping, the length it is shortened to.
    InPlace { mapping_len: Option<usize> },
    /// A mapping already lengthened in place (its old Buffer still views the start of it), from
    /// `old_len` bytes; the growth is counted as reserved.
    GrownInPlace { old_len: usize },
    /// A mapping grows into `into`, a fresh mapping of the new length, untouched until the old
    /// pages move in; only the growth is counted as reserved.
    Grow { into: MmapMut },
    /// New memory, taken as an allocation takes it; `fresh` memory reads as zero.
    Moved { memory: LoanMemory, addr: usize, capacity: usize, fresh: bool },
}

/// A pending resize: the loan's token, the new size, whether new bytes are zeroed, and the plan.
#[derive(Debug)]
pub(super) struct PendingResize {
    token: u64,
    size: usize,
    zero: bool,
    plan: Pending,
}

/// What [`Pool::resize_end`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resized {
    /// Where the Buffer's bytes are now.
    pub addr: *mut u8,
    /// Whether the memory stayed where it was.
    pub in_place: bool,
    /// Whether the loan still uses the ArrayBuffer bound to its slot (it stayed in place), which
    /// the caller views again; otherwise it needs a new Buffer over `addr`.
    pub bound: bool,
    /// The loan's holder, as it was for the old Buffer (the caller forgets what it no longer
    /// needs).
    pub holder: Holder,
}

impl Pool {
    /// Prepares the resize of the loan of `token` (the Buffer at `addr`, `len` bytes, with one
    /// reference) to `req.size` bytes. Refused, with nothing changed but the refusal counts, if
    /// the loan is not live or is shared, or the growth is not admitted or has no memory.
    pub fn resize_begin(&self, token: u64, addr: usize, len: usize, req: AllocRequest) -> Result<(), PoolError> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(PoolError::Closed);
        }
        let l = st.loan_mut(self.id, token, addr, len)?;
        if l.refs != 1 {
            return Err(PoolError::Shared);
        }
        let (capacity, is_slot) = (l.capacity, matches!(l.memory, LoanMemory::Slot { .. }));
        if st.resizing.iter().any(|p| p.token == token) {
            return Err(PoolError::NotPooled);
        }
        let plan = match st.plan(&self.config, self.id, token, capacity, is_slot, &req) {
            Ok(plan) => plan,
            Err(e) => {
                st.count_refusal(&self.config, &e, req.priority);
                return Err(e);
            }
        };
        st.resizing.push(PendingResize { token, size: req.size, zero: req.zero, plan });
        Ok(())
    }

    /// Gives back what [`Pool::resize_begin`] took for the loan of `token`; the loan is as it was.
    pub fn resize_abort(&self, token: u64) {
        let mut st = self.state.lock();
        let Some(pending) = st.take_pending(token) else { return };
        match pending.plan {
            Pending::InPlace { .. } => {}
            Pending::GrownInPlace { old_len } => {
                // (bytes given back, bytes the loan keeps in use)
                let mut undone = (0, 0);
                if let Some(LoanMemory::Mapping(map)) = st.live_loan_mut(self.id, token).map(|l| &mut l.memory) {
                    let grown = map.len();
                    // SAFETY: nothing views the bytes past `old_len`: the Buffer is as it was.
                    undone =
                        if unsafe { os::shrink(map, old_len) } { (grown - old_len, 0) } else { (0, grown - old_len) };
                }
                if undone.1 != 0 {
                    // Kept longer: the loan holds it all (and counts it in use) until it ends.
                    if let Some(l) = st.live_loan_mut(self.id, token) {
                        let from = l.bytes();
                        l.capacity += undone.1;
                        let to = l.bytes();
                        st.counters.resize(from, to);
                    }
                }
                st.counters.unreserve(undone.0);
            }
            Pending::Grow { into } => {
                let old = st.live_loan_mut(self.id, token).map_or(into.len(), |l| l.capacity);
                st.counters.unreserve(into.len() - old);
            }
            Pending::Moved { memory, .. } => st.give_back(memory),
        }
        st.update_level(&self.config);
    }

    /// Completes the resize of the loan of `token`, whose old Buffer the caller detached: the
    /// contents move (see the module docs). The caller then records the new Buffer's holder
    /// ([`Pool::set_holder`]). `None` if no resize of it is pending.
    pub fn resize_end(&self, token: u64) -> Option<Resized> {
        let mut st = self.state.lock();
        let pending = st.take_pending(token)?;
        let (_, _, key) = loan::untoken(token)?;
        let st = &mut *st;
        let l = st.loans.get_mut(key)?;
        let (old_addr, old_size, old_capacity, old_external) = (l.addr, l.requested, l.capacity, l.external);
        // A mapping's ArrayBuffer cannot follow it when it shrinks, grows or moves: it stops being
        // bound (its finalizer will give its bytes back and end nothing).
        let was_bound_mapping = l.bound && matches!(l.memory, LoanMemory::Mapping(_));
        let new_size = pending.size;
        let kept = old_size.min(new_size);
        let old_holder = l.holder;
        let mut freed = None;
        // Bytes past the old size that may hold earlier contents (of this loan's memory), up to
        // which `{ zero }` must clear them; past it, the memory is fresh and reads as zero.
        let mut stale_until = new_size;
        let (addr, capacity, in_place) = match pending.plan {
            Pending::InPlace { mapping_len } => {
                let mut capacity = l.capacity;
                if let (Some(new_len), LoanMemory::Mapping(map)) = (mapping_len, &mut l.memory) {
                    // SAFETY: the old Buffer is detached; the new one views `new_size <= new_len`.
                    if new_len < map.len() && unsafe { os::shrink(map, new_len) } {
                        st.counters.unreserve(capacity - new_len);
                        capacity = new_len;
                    }
                }
                (l.addr, capacity, true)
            }
            Pending::GrownInPlace { .. } => {
                let LoanMemory::Mapping(map) = &l.memory else { unreachable!("a growing loan is a mapping") };
                // Its tail past the old length is fresh: only the old mapping's slack may be stale.
                stale_until = new_size.min(old_capacity);
                (l.addr, map.len(), true)
            }
            Pending::Grow { mut into } => {
                let LoanMemory::Mapping(old) = std::mem::replace(&mut l.memory, LoanMemory::Returned) else {
                    unreachable!("a growing loan is a mapping")
                };
                let old_len = old.len();
                // SAFETY: the old Buffer is detached: nothing uses an address into `old`; `into`
                // is longer.
                if let Err(old) = unsafe { os::move_pages(old, &mut into) } {
                    // SAFETY: both mappings are at least `kept` long, distinct, and ours alone.
                    unsafe { ptr::copy_nonoverlapping(old.as_ptr(), into.as_mut_ptr(), kept) };
                    // Unmapped at once (not cached), so that the cap holds: it was counted as
                    // the first `old_len` bytes of `into`.
                    drop(old);
                }
                debug_assert!(old_len <= into.len());
                let (addr, len) = (into.as_mut_ptr() as usize, into.len());
                l.memory = LoanMemory::Mapping(into);
                // The old mapping's tail came along with its pages; what lies past it is fresh.
                stale_until = new_size.min(old_len);
                (addr, len, false)
            }
            Pending::Moved { memory, addr, capacity, fresh } => {
                // SAFETY: the old memory holds `old_size >= kept` bytes, the new `capacity >=
                // new_size >= kept`; they are distinct, and both this loan's alone.
                unsafe { ptr::copy_nonoverlapping(old_addr as *const u8, addr as *mut u8, kept) };
                if pending.zero && !fresh {
                    // SAFETY: inside the new memory, as above.
                    unsafe { ptr::write_bytes((addr + kept) as *mut u8, 0, new_size - kept) };
                }
                freed = Some(std::mem::replace(&mut l.memory, memory));
                stale_until = 0;
                (addr, capacity, false)
            }
        };
        if pending.zero && stale_until > old_size {
            // SAFETY: the bytes past the old size, inside the loan's memory.
            unsafe { ptr::write_bytes((addr + old_size) as *mut u8, 0, stale_until - old_size) };
        }
        if was_bound_mapping {
            st.unbind_mapping(old_addr);
        }
        let l = st.loans.get_mut(key)?;
        let bound = l.bound && in_place && !was_bound_mapping;
        let external = if bound { 0 } else { new_size };
        l.addr = addr;
        l.requested = new_size;
        l.capacity = capacity;
        l.external = external;
        l.bound = bound;
        if let LoanMemory::Slot { class, slot } = l.memory {
            if !in_place {
                st.classes[class].set_loan(slot, key);
                st.classes[class].new_epoch(slot);
            }
        }
        let from = LoanBytes { capacity: old_capacity, requested: old_size, external: old_external };
        st.counters.resize(from, l.bytes());
        // The peak follows in `update_level`, below: the total in use is at least the core's.
        if let Some(memory) = freed {
            // The old Buffer's memory: native code that kept its address may still use it.
            st.retire(memory, old_addr, old_capacity, token, old_size, old_holder.thread);
        }
        st.update_level(&self.config);
        Some(Resized { addr: addr as *mut u8, in_place, bound, holder: old_holder })
    }
}

impl State {
    /// How a loan of `capacity` bytes (a slot, or a mapping) becomes one of `req.size` bytes;
    /// takes and counts whatever that needs, or refuses.
    fn plan(
        &mut self,
        config: &super::PoolConfig,
        pool: u64,
        token: u64,
        capacity: usize,
        is_slot: bool,
        req: &AllocRequest,
    ) -> Result<Pending, PoolError> {
        let size = req.size;
        if is_slot && size <= capacity {
            return Ok(Pending::InPlace { mapping_len: None });
        }
        if !is_slot && size > SMALL_MAX {
            let new_len = large::mapping_len(size);
            if new_len <= capacity {
                return Ok(Pending::InPlace { mapping_len: Some(new_len) });
            }
            // Admitted as an allocation of the growth: the old mapping's pages move, so the two
            // are never both held (when they cannot move, the copy holds both for a moment).
            let growth = AllocRequest { size: new_len - capacity, ..*req };
            self.admit(config, &growth)?;
            if !self.make_room(config.max_bytes, growth.size) {
                return Err(self.exhausted(config, size));
            }
            if let Some(LoanMemory::Mapping(map)) = self.live_loan_mut(pool, token).map(|l| &mut l.memory) {
                if os::grow(map, new_len) {
                    self.counters.reserve(growth.size);
                    return Ok(Pending::GrownInPlace { old_len: capacity });
                }
            }
            let into = large::map(new_len, false).map_err(|e| PoolError::os(size, Syscall::Mmap, &e))?;
            // Only the growth is counted: the first `capacity` bytes of `into` are the old
            // mapping's pages once they move (and the old mapping is gone).
            self.counters.reserve(growth.size);
            return Ok(Pending::Grow { into });
        }
        let (memory, addr, capacity, fresh) = self.take(config, &AllocRequest { bind: false, ..*req })?;
        Ok(Pending::Moved { memory, addr: addr as usize, capacity, fresh })
    }

    fn take_pending(&mut self, token: u64) -> Option<PendingResize> {
        let i = self.resizing.iter().position(|p| p.token == token)?;
        Some(self.resizing.swap_remove(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::Release;
    use crate::slab::SLAB_CHUNK_BYTES;

    const HOLDER: Holder = Holder { thread: 1, hint: 2, witness: 0 };

    fn fill(addr: *mut u8, len: usize, byte: u8) {
        // SAFETY: the tests pass memory of at least `len` bytes that they own.
        unsafe { ptr::write_bytes(addr, byte, len) }
    }

    fn bytes(addr: *const u8, len: usize) -> Vec<u8> {
        // SAFETY: as in `fill`.
        unsafe { std::slice::from_raw_parts(addr, len) }.to_vec()
    }

    /// Resizes the loan of `g` (now `len` bytes) to `size` and returns the new address.
    fn resize(p: &Pool, token: u64, addr: *mut u8, len: usize, size: usize, zero: bool) -> Resized {
        p.resize_begin(token, addr as usize, len, AllocRequest::new(size, zero)).unwrap();
        p.resize_end(token).unwrap()
    }

    fn end(p: &Pool, token: u64, addr: *mut u8, len: usize) {
        assert_eq!(p.release(token, addr as usize, len), Ok(Release::Last(HOLDER)));
        p.finish_release(token).unwrap();
    }

    #[test]
    fn a_slot_with_room_keeps_its_memory_and_zeroes_growth_on_request() {
        let p = Pool::new(1 << 20);
        let g = p.alloc(100, false, HOLDER).unwrap();
        fill(g.addr, 100, 7);
        let r = resize(&p, g.token, g.addr, 100, 110, true);
        assert!(r.in_place);
        assert_eq!(r.addr, g.addr);
        assert_eq!(bytes(r.addr, 110), [vec![7; 100], vec![0; 10]].concat());
        let s = p.stats();
        assert_eq!((s.counters.requested_bytes, s.counters.in_use_bytes), (110, g.capacity));
        let r = resize(&p, g.token, r.addr, 110, 10, false);
        assert_eq!((r.addr, r.in_place), (g.addr, true));
        assert_eq!(p.stats().counters.requested_bytes, 10);
        end(&p, g.token, r.addr, 10);
        assert_eq!(p.stats().counters.in_use_bytes, 0);
    }

    #[test]
    fn growing_a_mapping_keeps_its_bytes_and_counts_the_growth() {
        let p = Pool::new(64 << 20);
        let old = 16 << 20;
        let g = p.alloc(old, false, HOLDER).unwrap();
        fill(g.addr, old, 0x5a);
        // In place if the addresses after the mapping are free, else its pages move: either way
        // nothing is copied and one mapping is held.
        let r = resize(&p, g.token, g.addr, old, 32 << 20, true);
        let grown = bytes(r.addr, 32 << 20);
        assert!(grown[..old].iter().all(|&b| b == 0x5a) && grown[old..].iter().all(|&b| b == 0));
        let s = p.stats();
        assert_eq!(s.counters.in_use_bytes, 32 << 20);
        assert_eq!(s.counters.requested_bytes, 32 << 20);
        assert_eq!(s.counters.reserved_bytes, 32 << 20, "the pages moved: no second mapping is held");
        assert_eq!(s.large_live, 1);
        let r = resize(&p, g.token, r.addr, 32 << 20, 20_000, false);
        assert!(r.in_place, "shrinking a mapping keeps it");
        assert!(bytes(r.addr, 20_000).iter().all(|&b| b == 0x5a));
        assert_eq!(p.stats().counters.in_use_bytes, large::mapping_len(20_000));
        end(&p, g.token, r.addr, 20_000);
        let s = p.stats();
        assert_eq!((s.counters.in_use_bytes, s.counters.requested_bytes, s.live_buffers), (0, 0, 0));
    }

    #[test]
    fn zero_clears_the_tail_a_shrunk_mapping_kept_when_it_grows_again() {
        let p = Pool::new(8 << 20);
        let g = p.alloc(600 << 10, false, HOLDER).unwrap();
        fill(g.addr, 600 << 10, 9);
        let small = resize(&p, g.token, g.addr, 600 << 10, 8193, false);
        let grown = resize(&p, g.token, small.addr, 8193, 12_289, true);
        assert_eq!(bytes(grown.addr, 12_289), [vec![9; 8193], vec![0; 4096]].concat());
        end(&p, g.token, grown.addr, 12_289);
    }

    #[test]
    fn crossing_the_small_large_boundary_copies_and_frees_the_old_memory() {
        let p = Pool::new(8 << 20);
        let g = p.alloc(5000, false, HOLDER).unwrap();
        fill(g.addr, 5000, 3);
        let up = resize(&p, g.token, g.addr, 5000, 100_000, true);
        assert!(!up.in_place);
        assert_eq!(bytes(up.addr, 100_000), [vec![3; 5000], vec![0; 95_000]].concat());
        assert_eq!(p.stats().classes.iter().map(|c| c.in_use).sum::<usize>(), 0, "the slot is free");
        let down = resize(&p, g.token, up.addr, 100_000, 64, false);
        assert!(!down.in_place);
        assert_eq!(bytes(down.addr, 64), vec![3; 64]);
        let s = p.stats();
        assert_eq!((s.large_live, s.live_buffers, s.counters.requested_bytes), (0, 1, 64));
        end(&p, g.token, down.addr, 64);
        let s = p.stats();
        assert_eq!((s.counters.in_use_bytes, s.counters.external_bytes, s.live_buffers), (0, 0, 0));
    }

    #[test]
    fn refusals_and_aborts_leave_the_loan_and_the_figures_as_they_were() {
        let p = Pool::new(1 << 20);
        let g = p.alloc(300_000, false, HOLDER).unwrap();
        p.retain(g.token, g.addr as usize, 300_000).unwrap();
        let before = p.stats();
        let grow = |size| p.resize_begin(g.token, g.addr as usize, 300_000, AllocRequest::new(size, false));
        assert_eq!(grow(400_000), Err(PoolError::Shared));
        assert!(matches!(p.release(g.token, g.addr as usize, 300_000), Ok(Release::Retained(1))));
        assert!(matches!(grow(2 << 20), Err(PoolError::Exhausted { .. })));
        assert_eq!(
            p.resize_begin(g.token, g.addr as usize, 1, AllocRequest::new(10, false)),
            Err(PoolError::NotPooled)
        );
        assert_eq!(p.stats().counters.in_use_bytes, before.counters.in_use_bytes);
        for size in [400_000, 10, 300_001] {
            grow(size).unwrap();
            p.resize_abort(g.token);
            let s = p.stats();
            // A slab chunk taken for the move stays as cached memory, as after any release.
            assert!(s.counters.reserved_bytes <= before.counters.reserved_bytes + SLAB_CHUNK_BYTES, "abort of {size}");
            assert_eq!(s.counters.in_use_bytes, before.counters.in_use_bytes);
            assert_eq!(s.counters.requested_bytes, before.counters.requested_bytes);
            assert_eq!(s.large_live, 1);
            assert_eq!(s.live_buffers, 1);
        }
        assert_eq!(p.resize_end(g.token), None, "nothing pending");
        end(&p, g.token, g.addr, 300_000);
    }
}
