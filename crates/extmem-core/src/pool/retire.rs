//! Where the memory of an ended loan goes: back to its class or the mapping cache at once, or,
//! in a pool made with a quarantine, first into the quarantine (see [`crate::quarantine`]).
//!
//! ## Invariants
//! - Memory the quarantine holds belongs to no loan and to no free list: no loan can be given
//!   it until it leaves, and it stays mapped and counted in `reserved_bytes` meanwhile.
//! - It leaves through [`State::leave_quarantine`] only, which reports a [`Misuse`] for memory
//!   that changed while held and then frees it as an ended loan's memory is freed.
//! - Only memory of a live pool is held: a closed pool frees it at once (and empties the
//!   quarantine when it closes).
//! - The thread caches never serve a pool with a quarantine (see `cache_fill`), so every release
//!   in it reaches the core and every reuse path goes through here.

use crate::events::{Misuse, PoolEvent};
use crate::loan::LoanMemory;
use crate::os;
use crate::quarantine::Leaving;

use super::State;

/// What the quarantine keeps of an ended loan.
#[derive(Debug)]
pub(super) struct Retired {
    memory: LoanMemory,
    token: u64,
    requested: usize,
    thread: usize,
}

impl State {
    /// Frees the memory of an ended loan (`addr`, `len` bytes, the loan of `token` for
    /// `requested` bytes, allocated by `thread`), or holds it in the quarantine.
    pub(super) fn retire(
        &mut self,
        memory: LoanMemory,
        addr: usize,
        len: usize,
        token: u64,
        requested: usize,
        thread: usize,
    ) {
        if self.closed || !matches!(memory, LoanMemory::Slot { .. } | LoanMemory::Mapping(_)) {
            return self.give_back(memory);
        }
        let Some(q) = self.quarantine.as_mut() else { return self.give_back(memory) };
        match memory {
            LoanMemory::Slot { class, .. } => self.quarantined_slots[class] += 1,
            // Not live any more, though not cached either.
            _ => self.large_live -= 1,
        }
        let now = os::now_ms();
        // SAFETY: the loan has ended: its memory is mapped and the pool's alone, except for
        // native code that kept its address (which is what the quarantine is for).
        unsafe { q.hold(Retired { memory, token, requested, thread }, addr, len, now) };
        let due = q.take_due(len, now);
        self.leave_quarantine(due);
    }

    /// Takes the oldest memory out of the quarantine until `bytes` more fit under the cap.
    pub(super) fn quarantine_make_room(&mut self, bytes: usize) {
        if let Some(q) = self.quarantine.as_mut() {
            let out = q.take_oldest(bytes);
            self.leave_quarantine(out);
        }
    }

    /// Takes everything out of the quarantine.
    pub(super) fn empty_quarantine(&mut self) {
        if let Some(q) = self.quarantine.as_mut() {
            let out = q.take_all();
            self.leave_quarantine(out);
        }
    }

    /// Reports the memory among `leaving` that changed while held, then frees it all.
    fn leave_quarantine(&mut self, leaving: Vec<Leaving<Retired>>) {
        for (held, changed) in leaving {
            let Retired { memory, token, requested, thread } = held.item;
            if let Some(offset) = changed {
                self.counters.count_misuse();
                let misuse = Misuse { size: requested, address: held.addr, offset, token, thread };
                self.listeners.emit(&PoolEvent::Misuse(misuse));
            }
            if let LoanMemory::Slot { class, .. } = memory {
                self.quarantined_slots[class] -= 1;
            }
            self.free_memory(memory);
        }
        if let Some(q) = &self.quarantine {
            self.counters.set_quarantined(q.len(), q.bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use crate::events::PoolEvent;
    use crate::loan::Holder;
    use crate::pool::{Pool, PoolConfig};
    use crate::quarantine::{QuarantineConfig, POISON};

    const HOLDER: Holder = Holder { thread: 1, hint: 2, witness: 0 };

    fn pool(releases: u32) -> Pool {
        Pool::with_config(PoolConfig {
            quarantine: Some(QuarantineConfig { releases, min_ms: 0 }),
            ..PoolConfig::with_max_bytes(64 << 20)
        })
    }

    fn end(p: &Pool, token: u64, addr: *mut u8, len: usize) {
        assert!(matches!(p.release(token, addr as usize, len), Ok(crate::pool::Release::Last(_))));
        p.finish_release(token).expect("a live loan");
    }

    #[test]
    fn released_memory_is_poisoned_and_lent_again_only_after_enough_releases_of_its_size() {
        for size in [100, 100_000] {
            let p = pool(3);
            let first = p.alloc(size, false, HOLDER).unwrap();
            end(&p, first.token, first.addr, size);
            // SAFETY: quarantined memory stays mapped; nothing else uses it in this test.
            let bytes = unsafe { std::slice::from_raw_parts(first.addr, size) };
            assert!(bytes.iter().all(|&b| b == POISON));
            let s = p.stats();
            assert_eq!((s.counters.quarantined_buffers, s.counters.in_use_bytes), (1, 0));
            assert!(s.counters.quarantined_bytes >= size);
            assert_eq!(s.classes.iter().map(|c| c.in_use).sum::<usize>(), 0, "quarantined slots are not in use");
            for round in 0..3 {
                let g = p.alloc(size, false, HOLDER).unwrap();
                assert_ne!(g.addr, first.addr, "lent again after {round} later releases");
                end(&p, g.token, g.addr, size);
            }
            // Three later releases: it left, and can be lent again.
            let lent: Vec<_> = (0..8).map(|_| p.alloc(size, false, HOLDER).unwrap()).collect();
            assert!(lent.iter().any(|g| g.addr == first.addr));
            for g in lent {
                end(&p, g.token, g.addr, size);
            }
            assert_eq!(p.stats().counters.misuses, 0);
        }
    }

    #[test]
    fn a_write_into_quarantined_memory_is_reported_when_it_leaves() {
        let p = pool(1);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        p.listen(Box::new(move |e| sink.lock().unwrap().push(e.clone())));
        let g = p.alloc(4096, false, HOLDER).unwrap();
        end(&p, g.token, g.addr, 4096);
        // A late native writer.
        // SAFETY: quarantined memory stays mapped.
        unsafe { *g.addr.add(1000) = 0 };
        let next = p.alloc(4096, false, HOLDER).unwrap();
        end(&p, next.token, next.addr, 4096);
        let misuses: Vec<_> = seen
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| if let PoolEvent::Misuse(m) = e { Some(m.clone()) } else { None })
            .collect();
        assert_eq!(misuses.len(), 1);
        assert_eq!((misuses[0].offset, misuses[0].token, misuses[0].size), (1000, g.token, 4096));
        assert_eq!(misuses[0].address, g.addr as usize);
        assert_eq!(p.stats().counters.misuses, 1);
    }

    #[test]
    fn thread_caches_get_nothing_and_close_empties_the_quarantine() {
        let p = pool(1000);
        let (id, _block) = p.cache_open();
        assert!(p.cache_fill(id, 0, 8, crate::admission::Priority::Normal, HOLDER).unwrap().is_empty());
        let g = p.alloc(64, false, HOLDER).unwrap();
        end(&p, g.token, g.addr, 64);
        assert_eq!(p.stats().counters.quarantined_buffers, 1);
        p.close();
        let s = p.stats();
        assert_eq!(
            (s.counters.quarantined_buffers, s.counters.quarantined_bytes, s.counters.reserved_bytes),
            (0, 0, 0)
        );
    }
}
