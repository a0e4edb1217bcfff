//! The pool's state behind its lock, and the private operations that keep its invariants.

use crate::admission::{self, Admission, Priority, Refusal};
use crate::error::{PoolError, Syscall};
use crate::events::{Leak, LevelChange, Listeners, PoolEvent};
use crate::large::{self, MappingCache};
use crate::loan::{self, Holder, Loan, LoanMemory, LoanTerms, MAX_LIVE_LOANS};
use crate::os;
use crate::quarantine::Quarantine;
use crate::size_class::{class_for, CLASS_SIZES, SMALL_MAX};
use crate::slab::{ClassSlab, Slot, SLAB_CHUNK_BYTES};
use crate::stats::{Counters, LoanBytes, Refused};
use crate::watermark::Level;

use super::{bound_map, cache, resize, retire, AllocRequest, Finished, MappingRef, PoolConfig, Reclaimed, SlotRef};

/// Largest share of `max_bytes` the large-mapping cache may hold.
const CACHE_SHARE_DIVISOR: usize = 4;
/// Largest size of the large-mapping cache, whatever the cap.
const CACHE_MAX_BYTES: usize = 256 * 1024 * 1024;
/// How often a large allocation looks for cached mappings that decayed.
const EXPIRE_EVERY_MS: u64 = 100;

/// Everything a pool holds, changed only under its lock.
///
/// Invariants (between operations): every slot or mapping lent belongs to exactly one entry of
/// `loans`; `counters` describe exactly the memory held and lent (see [`Counters`]); `level` is
/// the watermark level of the bytes in use, moved only by `update_level`.
#[derive(Debug)]
pub(super) struct State {
    /// Set once by [`Pool::close`](super::Pool::close): no new loan is made from then on.
    pub(super) closed: bool,
    /// The slab of each size class, by class index.
    pub(super) classes: Vec<ClassSlab>,
    /// Released mappings kept for reuse (reserved, not in use), shared by every thread.
    pub(super) mappings: MappingCache,
    /// Live loans. Every slot or mapping handed out belongs to exactly one entry.
    pub(super) loans: slab::Slab<Loan>,
    /// Generation to stamp on the next loan.
    pub(super) next_gen: u32,
    /// Mappings lent to ordinary loans (not the caches' ones, not the quarantine's).
    pub(super) large_live: usize,
    /// The watermark level of `counters.in_use_bytes`; changes only in `update_level`.
    pub(super) level: Level,
    /// Who is told of level changes, leaks and misuses.
    pub(super) listeners: Listeners,
    /// The exact figures; their invariants are [`Counters`]'.
    pub(super) counters: Counters,
    /// Resizes begun and not yet ended or aborted (see [`resize`]).
    pub(super) resizing: Vec<resize::PendingResize>,
    /// The per-thread caches of slots and mappings (see [`cache`]), each one thread's.
    pub(super) thread_caches: cache::Caches,
    /// When [`Pool::decay`](super::Pool::decay) last gave empty slab chunks back.
    pub(super) chunks_decayed_ms: u64,
    /// When a large allocation next unmaps the cached mappings that decayed.
    pub(super) mappings_expire_ms: u64,
    /// Mappings bound to an ArrayBuffer, by address (see [`bound_map`]).
    pub(super) bound_maps: std::collections::HashMap<usize, bound_map::BoundMap>,
    /// The epoch of the last ArrayBuffer bound to a mapping.
    pub(super) next_mapping_epoch: u64,
    /// Released memory held back before it is lent again (a debug mode; see [`retire`]).
    pub(super) quarantine: Option<Quarantine<retire::Retired>>,
    /// Slots of each class the quarantine holds (the slab counts them in use).
    pub(super) quarantined_slots: Vec<usize>,
}

impl State {
    /// The state of a new pool set up by `config`: nothing reserved, nothing lent.
    pub(super) fn new(config: &PoolConfig) -> State {
        let cache_max = (config.max_bytes / CACHE_SHARE_DIVISOR).min(CACHE_MAX_BYTES);
        State {
            closed: false,
            classes: CLASS_SIZES.iter().map(|&s| ClassSlab::new(s)).collect(),
            mappings: MappingCache::new(cache_max),
            loans: slab::Slab::new(),
            next_gen: 0,
            large_live: 0,
            level: Level::Normal,
            listeners: Listeners::default(),
            counters: Counters::default(),
            resizing: Vec::new(),
            thread_caches: cache::Caches::default(),
            chunks_decayed_ms: os::now_ms(),
            mappings_expire_ms: 0,
            bound_maps: std::collections::HashMap::new(),
            next_mapping_epoch: 0,
            quarantine: config.quarantine.map(Quarantine::new),
            quarantined_slots: vec![0; CLASS_SIZES.len()],
        }
    }

    /// Takes memory for `req`: `(memory, addr, capacity, fresh)`, where `fresh` memory was just
    /// mapped and is already zero. Admission is decided first, at the current level.
    pub(super) fn take(
        &mut self,
        config: &PoolConfig,
        req: &AllocRequest,
    ) -> Result<(LoanMemory, *mut u8, usize, bool), PoolError> {
        if self.closed {
            return Err(PoolError::Closed);
        }
        let size = req.size;
        if size <= SMALL_MAX {
            let class = class_for(size, req.align);
            let fresh = self.classes[class].free_slots() == 0;
            let (memory, addr) = self.take_slot(config, req, class)?;
            return Ok((memory, addr, CLASS_SIZES[class], fresh));
        }
        self.admit(config, req)?;
        let len = if req.bind { large::class_len(size) } else { large::mapping_len(size) };
        let now = os::now_ms();
        if now >= self.mappings_expire_ms {
            // Not at every allocation: looking costs a pass over the cache's bins.
            self.mappings_expire_ms = now + EXPIRE_EVERY_MS;
            let expired = self.mappings.expire(now);
            self.counters.unreserve(expired);
        }
        let cached = if req.bind { self.mappings.take_exact(len) } else { self.mappings.take(len) };
        let (mut map, fresh) = match cached {
            Some(map) => (map, false),
            None => {
                if !self.make_room(config.max_bytes, len) {
                    return Err(self.exhausted(config, size));
                }
                match large::map(len, req.prefault) {
                    Ok(map) => {
                        self.counters.reserve(len);
                        (map, true)
                    }
                    Err(e) => return Err(PoolError::os(size, Syscall::Mmap, &e)),
                }
            }
        };
        self.large_live += 1;
        let addr = map.as_mut_ptr();
        let capacity = map.len();
        Ok((LoanMemory::Mapping(map), addr, capacity, fresh))
    }

    /// Takes a slot of `class` for `req` (admitted first), mapping a new chunk if none is free.
    pub(super) fn take_slot(
        &mut self,
        config: &PoolConfig,
        req: &AllocRequest,
        class: usize,
    ) -> Result<(LoanMemory, *mut u8), PoolError> {
        self.admit(config, req)?;
        if let Some((slot, addr)) = self.classes[class].pop() {
            return Ok((LoanMemory::Slot { class, slot }, addr));
        }
        if !self.make_room(config.max_bytes, SLAB_CHUNK_BYTES) {
            return Err(self.exhausted(config, req.size));
        }
        if let Err(e) = self.classes[class].add_chunk() {
            return Err(PoolError::os(req.size, Syscall::Mmap, &e));
        }
        self.counters.reserve(SLAB_CHUNK_BYTES);
        let (slot, addr) = self.classes[class].pop().expect("a new chunk has free slots");
        Ok((LoanMemory::Slot { class, slot }, addr))
    }

    /// Bytes in use: the core's loans and the Buffers lent from caches.
    pub(super) fn in_use_total(&self) -> usize {
        self.counters.in_use_bytes + self.thread_caches.lent().in_use
    }

    /// Live Buffers: the core's loans (not counting the caches' slots) and those lent from caches.
    pub(super) fn live_buffers(&self) -> usize {
        self.loans.len() - self.thread_caches.loans - self.thread_caches.large_loans + self.thread_caches.lent().live
    }

    /// Refuses a request the pool is closed for, or that graded admission or the loan table refuses.
    pub(super) fn admit(&self, config: &PoolConfig, req: &AllocRequest) -> Result<(), PoolError> {
        if self.closed {
            return Err(PoolError::Closed);
        }
        let judged = if req.serves_small { req.size.min(SMALL_MAX) } else { req.size };
        match admission::admit(config.admission, self.level, req.priority, judged) {
            Ok(()) => {}
            Err(Refusal::Throttled) => {
                let available = self.available(config);
                return Err(PoolError::Throttled { requested: req.size, available, level: self.level });
            }
            Err(Refusal::Shed) => return Err(self.exhausted(config, req.size)),
        }
        if self.loans.len() >= MAX_LIVE_LOANS {
            return Err(self.exhausted(config, req.size));
        }
        Ok(())
    }

    /// Whether `e` is a refusal at the hard cap (not by admission).
    pub(super) fn is_cap_refusal(&self, config: &PoolConfig, e: &PoolError, priority: Priority) -> bool {
        match e {
            PoolError::Exhausted { level: Level::Shedding, .. } => {
                !(config.admission == Admission::Graded && priority == Priority::Normal)
            }
            PoolError::Exhausted { .. } => true,
            _ => false,
        }
    }

    pub(super) fn count_refusal(&mut self, config: &PoolConfig, e: &PoolError, priority: Priority) {
        let at_cap = self.is_cap_refusal(config, e, priority);
        let reason = match e {
            PoolError::Throttled { .. } => Refused::Throttled,
            PoolError::Os { .. } => Refused::Os,
            _ if !at_cap => Refused::Shedding,
            _ => Refused::Cap,
        };
        self.counters.count_refusal(reason);
        if reason == Refused::Cap {
            self.thread_caches.ask_flush();
        }
    }

    /// Records a new loan of memory just taken; returns its token.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn lend(
        &mut self,
        config: &PoolConfig,
        pool: u64,
        memory: LoanMemory,
        addr: *mut u8,
        capacity: usize,
        external: usize,
        req: AllocRequest,
        holder: Holder,
    ) -> u64 {
        let terms = LoanTerms {
            requested: req.size,
            tracked: req.tracked,
            external,
            bound: req.bind && matches!(memory, LoanMemory::Slot { .. }),
            cache: None,
        };
        let (key, gen) = self.insert_loan(memory, addr, capacity, holder, terms);
        self.counters.lend(LoanBytes { capacity, requested: req.size, external });
        self.update_level(config);
        loan::token(pool, gen, key)
    }

    /// Makes a new loan of `memory` (`capacity` bytes at `addr`) on `terms`, with the next
    /// generation, and records it as its slot's loan: returns its key and generation. The one
    /// place a loan enters the table.
    pub(super) fn insert_loan(
        &mut self,
        memory: LoanMemory,
        addr: *mut u8,
        capacity: usize,
        holder: Holder,
        terms: LoanTerms,
    ) -> (usize, u32) {
        let gen = self.next_gen;
        self.next_gen = loan::next_gen(gen);
        let slot = match memory {
            LoanMemory::Slot { class, slot } => Some((class, slot)),
            _ => None,
        };
        let key = self.loans.insert(Loan::new(gen, memory, addr as usize, capacity, holder, terms));
        if let Some((class, slot)) = slot {
            self.classes[class].set_loan(slot, key);
        }
        (key, gen)
    }

    /// Ends a loan whose Buffer was collected (a tracked one is a leak), or parks it if
    /// `may_be_reachable` says its memory may still be in use elsewhere.
    pub(super) fn reclaim_unless(
        &mut self,
        config: &PoolConfig,
        pool: u64,
        token: u64,
        may_be_reachable: impl FnOnce(&Holder) -> bool,
    ) -> Option<Reclaimed> {
        let l = self.live_loan_mut(pool, token)?;
        if may_be_reachable(&l.holder) {
            l.parked = true;
            let holder = l.holder;
            let capacity = l.capacity;
            if let LoanMemory::Mapping(map) = std::mem::replace(&mut l.memory, LoanMemory::Parked) {
                // Never unmapped: another thread may still read and write it.
                std::mem::forget(map);
            }
            self.counters.park(capacity);
            return Some(Reclaimed::Parked(holder));
        }
        let ended = self.end_loan(config, pool, token)?;
        self.counters.count_reclaim(ended.tracked);
        if ended.tracked {
            let leak = Leak {
                size: ended.requested,
                age_ms: os::now_ms().saturating_sub(ended.since_ms),
                address: ended.addr,
                token,
                thread: ended.holder.thread,
            };
            self.listeners.emit(&PoolEvent::Leak(leak));
        }
        Some(Reclaimed::Ended(ended.holder))
    }

    pub(super) fn available(&self, config: &PoolConfig) -> usize {
        config.max_bytes.saturating_sub(self.counters.reserved_bytes)
    }

    #[cold]
    pub(super) fn exhausted(&self, config: &PoolConfig, requested: usize) -> PoolError {
        let cached_elsewhere = self.thread_caches.bytes - self.thread_caches.lent().in_use;
        PoolError::Exhausted { requested, available: self.available(config), level: self.level, cached_elsewhere }
    }

    /// Whether `bytes` more can be reserved within `max_bytes`, giving back unused memory if needed.
    pub(super) fn make_room(&mut self, max_bytes: usize, bytes: usize) -> bool {
        if self.counters.reserved_bytes + bytes <= max_bytes {
            return true;
        }
        self.trim();
        if self.counters.reserved_bytes + bytes > max_bytes && self.quarantine.as_ref().is_some_and(|q| !q.is_empty()) {
            // The quarantine gives way before an allocation is refused at the cap.
            self.quarantine_make_room(self.counters.reserved_bytes + bytes - max_bytes);
            self.trim();
        }
        self.counters.reserved_bytes + bytes <= max_bytes
    }

    pub(super) fn trim(&mut self) -> usize {
        let mut freed = self.mappings.clear();
        for c in &mut self.classes {
            freed += c.trim();
        }
        self.counters.unreserve(freed);
        freed
    }

    /// Moves the level after `in_use_bytes` changed, and tells the listeners if it moved.
    pub(super) fn update_level(&mut self, config: &PoolConfig) {
        let in_use = self.in_use_total();
        self.counters.note_peak(in_use);
        let utilization = in_use as f64 / config.max_bytes as f64;
        let level = config.watermarks.next(self.level, utilization);
        if level != self.level {
            let change = LevelChange {
                level,
                previous: self.level,
                utilization,
                in_use_bytes: in_use,
                max_bytes: config.max_bytes,
            };
            self.level = level;
            self.listeners.emit(&PoolEvent::Level(change));
        }
        self.update_gates(config);
    }

    /// The live loan named by `token`, if it is the Buffer at `addr` of `len` bytes.
    ///
    /// A cache loan lent to exactly that Buffer becomes an ordinary loan first (see
    /// [`cache`]): this is called on the Buffer's thread, which lent it.
    pub(super) fn loan_mut(&mut self, pool: u64, token: u64, addr: usize, len: usize) -> Result<&mut Loan, PoolError> {
        if let Some((p, gen, key)) = loan::untoken(token) {
            if p == pool && self.is_lent_from_cache(key, gen, addr, len) {
                self.materialize(key, len);
            }
        }
        match self.live_loan_mut(pool, token) {
            Some(l) if l.addr == addr && l.requested == len => Ok(l),
            _ => Err(PoolError::NotPooled),
        }
    }

    /// The loan named by `token`, unless it ended, is parked, is in transit or is a cache loan.
    pub(super) fn live_loan_mut(&mut self, pool: u64, token: u64) -> Option<&mut Loan> {
        self.any_loan_mut(pool, token).filter(|l| !l.parked && l.transit.is_none() && l.cache.is_none())
    }

    /// The loan named by `token`, unless it ended.
    pub(super) fn any_loan_mut(&mut self, pool: u64, token: u64) -> Option<&mut Loan> {
        let (p, gen, key) = loan::untoken(token)?;
        if p != pool {
            return None;
        }
        self.loans.get_mut(key).filter(|l| l.gen == gen)
    }

    /// Ends the loan of `token` by release (see [`Pool::finish_release`](super::Pool::finish_release)).
    pub(super) fn finish(&mut self, config: &PoolConfig, pool: u64, token: u64) -> Option<Finished> {
        let ended = self.end_loan(config, pool, token)?;
        self.counters.count_release();
        let slot =
            ended.memory_was.map(|(class, slot)| SlotRef { class, slot, epoch: self.classes[class].epoch(slot) });
        Some(Finished { holder: ended.holder, slot, bound: ended.bound, mapping: ended.mapping })
    }

    /// Returns a loan's memory to its class (or the mapping cache); it is reusable from now on.
    pub(super) fn give_back(&mut self, memory: LoanMemory) {
        if let LoanMemory::Mapping(_) = memory {
            self.large_live -= 1;
        }
        self.free_memory(memory);
    }

    /// Returns memory no loan holds any more to its class (or the mapping cache).
    pub(super) fn free_memory(&mut self, memory: LoanMemory) {
        match memory {
            LoanMemory::Slot { class, slot } => {
                let slab = &mut self.classes[class];
                slab.push(slot);
                if self.closed && slab.chunk_is_empty(slot) {
                    let freed = slab.trim();
                    self.counters.unreserve(freed);
                }
            }
            LoanMemory::Mapping(map) => {
                let unmapped = if self.closed {
                    map.len()
                } else {
                    let now = os::now_ms();
                    self.mappings.expire(now) + self.mappings.put(map, now)
                };
                self.counters.unreserve(unmapped);
            }
            LoanMemory::Returned | LoanMemory::Parked => unreachable!("a live loan owns its memory"),
        }
    }

    /// Removes the loan of `token` and returns its memory; `None` if there is no such live loan.
    pub(super) fn end_loan(&mut self, config: &PoolConfig, pool: u64, token: u64) -> Option<Ended> {
        self.live_loan_mut(pool, token)?;
        let (_, _, key) = loan::untoken(token)?;
        let mut l = self.loans.remove(key);
        self.counters.end(l.bytes());
        let memory_was = match l.memory {
            LoanMemory::Slot { class, slot } => Some((class, slot)),
            _ => None,
        };
        let memory = std::mem::replace(&mut l.memory, LoanMemory::Returned);
        self.retire(memory, l.addr, l.capacity, token, l.requested, l.holder.thread);
        let mapping = if l.bound && memory_was.is_none() { self.unlend_mapping(l.addr) } else { None };
        self.update_level(config);
        Some(Ended {
            mapping,
            bound: l.bound,
            requested: l.requested,
            addr: l.addr,
            since_ms: l.since_ms,
            tracked: l.tracked,
            holder: l.holder,
            memory_was,
        })
    }
}

/// What remains of a loan that ended.
#[derive(Debug)]
pub(super) struct Ended {
    pub(super) mapping: Option<MappingRef>,
    pub(super) bound: bool,
    pub(super) requested: usize,
    pub(super) addr: usize,
    pub(super) since_ms: u64,
    pub(super) tracked: bool,
    pub(super) holder: Holder,
    /// The slot the loan held, if it was a slab slot.
    pub(super) memory_was: Option<(usize, Slot)>,
}
