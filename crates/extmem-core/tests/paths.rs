//! Property tests of the pool's paths beside plain allocation: random operation sequences against
//! simple reference models, through the public API only (a thread's cache is driven by writing its
//! block's words, as the binding's JavaScript does).
//!
//! Invariants checked:
//!
//! **Thread caches** (`pool::cache`; random fill / lend / give back / sync / flush / release
//! through the core / collection of a lent or cached slot / finalization of a kept ArrayBuffer,
//! interleaved with ordinary allocations and releases)
//! - the figures are exact at every step, whatever has or has not been synced: `live_buffers`,
//!   `in_use_bytes`, `requested_bytes` are those of the Buffers lent from the cache plus the
//!   ordinary loans; `allocations`, `releases` and `gc_reclaims` count every lend, give-back or
//!   release, and collection; `cached_slots` / `cached_bytes` are the slots the cache holds unlent;
//!   per class, slots in use and cached match;
//! - `external_bytes` = the slots of every ArrayBuffer made over a whole slot (by a fill) and not
//!   finalized yet + the lengths of plain loans;
//! - a slot released through the core (its cache loan made ordinary on the way) ends once and
//!   its kept ArrayBuffer ends nothing when finalized later; a collected lent slot is a GC reclaim,
//!   a collected cached one simply comes back;
//! - `reserved_bytes` covers what is in use and cached and stays within the cap; once everything
//!   is given back and the cache closed, the figures balance to zero and a trim frees everything.
//!
//! **Hand-off** (`pool::handoff`; random alloc / share / adopt / reclaim_shared / replayed and
//! forged handles / release)
//! - a shared loan stays live and in use, counts in `in_transit_*` and not in `external_bytes`,
//!   and no Buffer reaches it (a release through its old Buffer is refused);
//! - it is adopted or reclaimed once, only with its secret and size; a replayed handle is
//!   `HandleUsed`, a forged one `BadHandle`, and neither changes anything;
//! - an adopted loan keeps its bytes (what its first holder wrote) and is an ordinary loan again.
//!
//! **Resize** (`pool::resize`; random alloc / resize_begin then resize_end or resize_abort /
//! release, across slots, mappings and the boundary between them)
//! - a resize keeps the first `min(old, new)` bytes, and `{ zero }` clears the rest;
//! - an aborted resize leaves the loan as it was (address, length, contents, references) and
//!   the figures of the loans as they were (the memory it took stays reserved, free or cached);
//! - `requested_bytes`, `external_bytes` and `live_buffers` follow the model, `in_use_bytes` is what
//!   `figures_of` sums over the live loans, and `reserved_bytes` stays within the cap.

use std::sync::atomic::{AtomicI32, Ordering};

use proptest::prelude::*;

use extmem_core::admission::{Admission, Priority};
use extmem_core::error::PoolError;
use extmem_core::loan::Holder;
use extmem_core::pool::cache::{
    WORD_ALLOCATIONS, WORD_CLASSES, WORD_ENTRIES, WORD_IN_USE, WORD_LIVE, WORD_RELEASES, WORD_REQUESTED,
};
use extmem_core::pool::{AllocRequest, CacheBlock, CacheGrant, Pool, PoolConfig, Reclaimed, Release, SlotRef};
use extmem_core::size_class::{class_for, CLASS_COUNT, CLASS_SIZES, MIN_ALIGN, SMALL_MAX};

const HOLDER: Holder = Holder { thread: 1, hint: 2, witness: 3 };
const MAX: usize = 64 << 20;

fn pool() -> Pool {
    Pool::with_config(PoolConfig { admission: Admission::Cap, ..PoolConfig::with_max_bytes(MAX) })
}

/// Word `w` of a cache's block, as the binding's `Int32Array` views it.
fn word(block: &CacheBlock, w: usize) -> &AtomicI32 {
    assert!((w + 1) * 4 <= block.byte_len());
    // SAFETY: the block is a run of `byte_len` bytes of 32-bit atomic words with no padding, alive
    // as long as `block`; `w` is inside it.
    unsafe { &*block.as_ptr().cast::<AtomicI32>().add(w) }
}

fn add(block: &CacheBlock, w: usize, delta: i32) {
    word(block, w).fetch_add(delta, Ordering::AcqRel);
}

/// What a thread's JavaScript writes when it lends the slot of `g` to a Buffer of `len` bytes.
fn cache_lend(block: &CacheBlock, g: &CacheGrant, len: usize) {
    let class = g.slot.expect("a slot").class;
    add(block, WORD_CLASSES + class, 1);
    add(block, WORD_IN_USE, g.len as i32);
    add(block, WORD_REQUESTED, len as i32);
    add(block, WORD_LIVE, 1);
    add(block, WORD_ALLOCATIONS, 1);
    word(block, WORD_ENTRIES + g.entry as usize).store(len as i32, Ordering::Release);
}

/// What it writes when that Buffer comes back into the cache.
fn cache_give(block: &CacheBlock, g: &CacheGrant, len: usize) {
    let class = g.slot.expect("a slot").class;
    add(block, WORD_CLASSES + class, -1);
    add(block, WORD_IN_USE, -(g.len as i32));
    add(block, WORD_REQUESTED, -(len as i32));
    add(block, WORD_LIVE, -1);
    add(block, WORD_RELEASES, 1);
    word(block, WORD_ENTRIES + g.entry as usize).store(0, Ordering::Release);
}

fn pick<T>(v: &[T], i: usize) -> Option<usize> {
    (!v.is_empty()).then(|| i % v.len())
}

/// A byte of the pattern that the holder of a loan of `token` writes at offset `i`.
fn pattern(token: u64, i: usize) -> u8 {
    (token.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8 ^ (i % 251) as u8
}

fn write_pattern(token: u64, addr: *mut u8, len: usize) {
    // SAFETY: the callers pass the memory of a live loan of theirs, at least `len` bytes long.
    let s = unsafe { std::slice::from_raw_parts_mut(addr, len) };
    for (i, b) in s.iter_mut().enumerate() {
        *b = pattern(token, i);
    }
}

fn read(addr: *const u8, len: usize) -> &'static [u8] {
    // SAFETY: as in `write_pattern`; the tests read before the loan ends.
    unsafe { std::slice::from_raw_parts(addr, len) }
}

fn has_pattern(token: u64, addr: *const u8, len: usize) -> bool {
    read(addr, len).iter().enumerate().all(|(i, &b)| b == pattern(token, i))
}

// ---------------------------------------------------------------------------------------------
// Thread caches

#[derive(Debug, Clone)]
enum CacheOp {
    Fill { class: usize, n: usize },
    Lend { pick: usize, len: usize },
    Give { pick: usize },
    Sync,
    Flush,
    ReleaseThroughCore { pick: usize },
    CollectLent { pick: usize },
    CollectCached { pick: usize },
    FinalizeKept { pick: usize },
    Alloc { size: usize },
    End { pick: usize },
}

fn cache_op() -> impl Strategy<Value = CacheOp> {
    prop_oneof![
        3 => (0..CLASS_COUNT, 1..6usize).prop_map(|(class, n)| CacheOp::Fill { class, n }),
        5 => (any::<usize>(), any::<usize>()).prop_map(|(pick, len)| CacheOp::Lend { pick, len }),
        4 => any::<usize>().prop_map(|pick| CacheOp::Give { pick }),
        2 => Just(CacheOp::Sync),
        1 => Just(CacheOp::Flush),
        2 => any::<usize>().prop_map(|pick| CacheOp::ReleaseThroughCore { pick }),
        1 => any::<usize>().prop_map(|pick| CacheOp::CollectLent { pick }),
        1 => any::<usize>().prop_map(|pick| CacheOp::CollectCached { pick }),
        2 => any::<usize>().prop_map(|pick| CacheOp::FinalizeKept { pick }),
        2 => (1..=SMALL_MAX).prop_map(|size| CacheOp::Alloc { size }),
        2 => any::<usize>().prop_map(|pick| CacheOp::End { pick }),
    ]
}

/// An ordinary loan of the model: `(token, addr, len, capacity, class, external)`.
type Ordinary = (u64, usize, usize, usize, usize, usize);

#[derive(Debug, Default)]
struct CacheModel {
    cached: Vec<CacheGrant>,
    lent: Vec<(CacheGrant, usize)>,
    ordinary: Vec<Ordinary>,
    /// ArrayBuffers over whole slots that outlived their cache loan: (slot, bytes).
    kept: Vec<(SlotRef, usize)>,
    external: usize,
    allocations: u64,
    releases: u64,
    gc_reclaims: u64,
}

impl CacheModel {
    fn check(&self, p: &Pool) -> Result<(), TestCaseError> {
        let s = p.stats();
        let c = &s.counters;
        let lent_bytes: usize = self.lent.iter().map(|(g, _)| g.len).sum();
        let lent_len: usize = self.lent.iter().map(|&(_, len)| len).sum();
        let ord_bytes: usize = self.ordinary.iter().map(|o| o.3).sum();
        let ord_len: usize = self.ordinary.iter().map(|o| o.2).sum();
        prop_assert_eq!(s.live_buffers, self.lent.len() + self.ordinary.len());
        prop_assert_eq!(c.in_use_bytes, lent_bytes + ord_bytes);
        prop_assert_eq!(c.requested_bytes, lent_len + ord_len);
        prop_assert_eq!(
            (c.allocations, c.releases, c.gc_reclaims),
            (self.allocations, self.releases, self.gc_reclaims)
        );
        prop_assert_eq!(c.allocations - c.releases - c.gc_reclaims, s.live_buffers as u64);
        prop_assert_eq!(s.cached_slots, self.cached.len());
        prop_assert_eq!(s.cached_bytes, self.cached.iter().map(|g| g.len).sum::<usize>());
        prop_assert_eq!(c.external_bytes, self.external);
        prop_assert!(c.reserved_bytes >= c.in_use_bytes + s.cached_bytes && c.reserved_bytes <= MAX);
        prop_assert!(c.peak_in_use_bytes >= c.in_use_bytes);
        for class in 0..CLASS_COUNT {
            let lent = self.lent.iter().filter(|(g, _)| g.slot.unwrap().class == class).count();
            let ord = self.ordinary.iter().filter(|o| o.4 == class).count();
            let cached = self.cached.iter().filter(|g| g.slot.unwrap().class == class).count();
            prop_assert_eq!(
                (s.classes[class].in_use, s.classes[class].cached),
                (lent + ord, cached),
                "class {}",
                class
            );
        }
        Ok(())
    }
}

fn run_cache(ops: Vec<CacheOp>) -> Result<(), TestCaseError> {
    let p = pool();
    let (id, block) = p.cache_open();
    let mut m = CacheModel::default();
    for op in ops {
        match op {
            CacheOp::Fill { class, n } => {
                let grants = p.cache_fill(id, class, n, Priority::Normal, HOLDER).unwrap();
                prop_assert_eq!(grants.len(), n);
                for g in grants {
                    prop_assert_eq!(g.len, CLASS_SIZES[class]);
                    m.external += g.len;
                    m.cached.push(g);
                }
            }
            CacheOp::Lend { pick: i, len } => {
                let Some(i) = pick(&m.cached, i) else { continue };
                let g = m.cached.swap_remove(i);
                let len = 1 + len % g.len;
                cache_lend(&block, &g, len);
                write_pattern(g.token, g.addr, len);
                m.allocations += 1;
                m.lent.push((g, len));
            }
            CacheOp::Give { pick: i } => {
                let Some(i) = pick(&m.lent, i) else { continue };
                let (g, len) = m.lent.swap_remove(i);
                prop_assert!(has_pattern(g.token, g.addr, len), "a lent slot keeps what its Buffer wrote");
                cache_give(&block, &g, len);
                m.releases += 1;
                m.cached.push(g);
            }
            CacheOp::Sync => prop_assert_eq!(p.cache_sync(id, &[]), Vec::<usize>::new()),
            CacheOp::Flush => {
                let entries: Vec<(u32, usize)> = m.cached.iter().map(|g| (g.entry, g.addr as usize)).collect();
                let (done, _) = p.cache_flush(id, &entries);
                for (g, f) in m.cached.drain(..).zip(done) {
                    let f = f.expect("a cached slot is flushed");
                    m.kept.push((f.slot.expect("a slot"), g.len));
                }
            }
            CacheOp::ReleaseThroughCore { pick: i } => {
                let Some(i) = pick(&m.lent, i) else { continue };
                let (g, len) = m.lent.swap_remove(i);
                prop_assert_eq!(p.ref_count(g.token, g.addr as usize, len), Ok(1));
                prop_assert_eq!(p.release(g.token, g.addr as usize, len), Ok(Release::Last(HOLDER)));
                let f = p.finish_release(g.token).expect("its loan was made ordinary and ends now");
                prop_assert!(f.bound);
                prop_assert!(p.finish_release(g.token).is_none(), "a loan ends once");
                m.releases += 1;
                m.kept.push((f.slot.expect("a slot"), g.len));
            }
            CacheOp::CollectLent { pick: i } => {
                let Some(i) = pick(&m.lent, i) else { continue };
                let (g, _) = m.lent.swap_remove(i);
                let r = p.slot_buffer_finalized(g.slot.unwrap(), g.len, |_| false);
                prop_assert_eq!(r, Some(Reclaimed::Ended(HOLDER)));
                m.gc_reclaims += 1;
                m.external -= g.len;
            }
            CacheOp::CollectCached { pick: i } => {
                let Some(i) = pick(&m.cached, i) else { continue };
                let g = m.cached.swap_remove(i);
                let r = p.slot_buffer_finalized(g.slot.unwrap(), g.len, |_| false);
                prop_assert_eq!(r, Some(Reclaimed::Ended(HOLDER)), "the slot simply comes back");
                m.external -= g.len;
            }
            CacheOp::FinalizeKept { pick: i } => {
                let Some(i) = pick(&m.kept, i) else { continue };
                let (slot, bytes) = m.kept.swap_remove(i);
                prop_assert_eq!(p.slot_buffer_finalized(slot, bytes, |_| false), None, "it ends nothing");
                m.external -= bytes;
            }
            CacheOp::Alloc { size } => {
                let g = p.alloc(size, false, HOLDER).unwrap();
                let class = class_for(size, MIN_ALIGN);
                m.allocations += 1;
                m.external += size;
                m.ordinary.push((g.token, g.addr as usize, size, g.capacity, class, size));
            }
            CacheOp::End { pick: i } => {
                let Some(i) = pick(&m.ordinary, i) else { continue };
                let (token, addr, len, _, _, external) = m.ordinary.swap_remove(i);
                prop_assert_eq!(p.release(token, addr, len), Ok(Release::Last(HOLDER)));
                prop_assert!(p.finish_release(token).is_some());
                m.releases += 1;
                m.external -= external;
            }
        }
        m.check(&p)?;
    }
    // Everything comes back: the figures balance to zero.
    for (g, len) in std::mem::take(&mut m.lent) {
        cache_give(&block, &g, len);
        m.releases += 1;
        m.cached.push(g);
    }
    let entries: Vec<(u32, usize)> = m.cached.iter().map(|g| (g.entry, g.addr as usize)).collect();
    for (g, f) in m.cached.drain(..).zip(p.cache_flush(id, &entries).0) {
        m.kept.push((f.expect("flushed").slot.unwrap(), g.len));
    }
    for (token, addr, len, _, _, external) in std::mem::take(&mut m.ordinary) {
        prop_assert_eq!(p.release(token, addr, len), Ok(Release::Last(HOLDER)));
        prop_assert!(p.finish_release(token).is_some());
        m.releases += 1;
        m.external -= external;
    }
    for (slot, bytes) in std::mem::take(&mut m.kept) {
        prop_assert_eq!(p.slot_buffer_finalized(slot, bytes, |_| false), None);
        m.external -= bytes;
    }
    prop_assert_eq!(p.cache_sync(id, &[]), Vec::<usize>::new());
    p.cache_close(id);
    m.check(&p)?;
    let s = p.stats();
    prop_assert_eq!((s.live_buffers, s.counters.in_use_bytes, s.counters.external_bytes), (0, 0, 0));
    prop_assert_eq!(p.trim(), s.counters.reserved_bytes);
    prop_assert_eq!(p.stats().counters.reserved_bytes, 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn thread_caches_keep_the_figures_exact_and_balanced(ops in prop::collection::vec(cache_op(), 1..80)) {
        run_cache(ops)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-off

#[derive(Debug, Clone)]
enum HandoffOp {
    Alloc { size: usize },
    Share { pick: usize },
    Adopt { pick: usize },
    Reclaim { pick: usize },
    Replay { pick: usize },
    Forge { pick: usize, bits: u64 },
    LieAboutSize { pick: usize },
    End { pick: usize },
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 1..=SMALL_MAX, 1 => SMALL_MAX + 1..=300_000usize]
}

fn handoff_op() -> impl Strategy<Value = HandoffOp> {
    prop_oneof![
        3 => size().prop_map(|size| HandoffOp::Alloc { size }),
        3 => any::<usize>().prop_map(|pick| HandoffOp::Share { pick }),
        3 => any::<usize>().prop_map(|pick| HandoffOp::Adopt { pick }),
        1 => any::<usize>().prop_map(|pick| HandoffOp::Reclaim { pick }),
        1 => any::<usize>().prop_map(|pick| HandoffOp::Replay { pick }),
        1 => (any::<usize>(), 1..(1u64 << 53)).prop_map(|(pick, bits)| HandoffOp::Forge { pick, bits }),
        1 => any::<usize>().prop_map(|pick| HandoffOp::LieAboutSize { pick }),
        2 => any::<usize>().prop_map(|pick| HandoffOp::End { pick }),
    ]
}

/// A live loan of the hand-off model: its token, address, length and the pattern's token (the
/// first holder's, which every later holder finds).
#[derive(Debug, Clone, Copy)]
struct Held {
    token: u64,
    addr: usize,
    len: usize,
}

fn check_handoff(p: &Pool, live: &[Held], transit: &[(Held, u64)]) -> Result<(), TestCaseError> {
    let s = p.stats();
    let c = &s.counters;
    prop_assert_eq!(s.live_buffers, live.len() + transit.len());
    prop_assert_eq!(c.in_transit_buffers, transit.len());
    prop_assert_eq!(c.in_transit_bytes, transit.iter().map(|(h, _)| h.len).sum::<usize>());
    prop_assert_eq!(c.external_bytes, live.iter().map(|h| h.len).sum::<usize>(), "a loan in transit has no Buffer");
    let all = live.iter().chain(transit.iter().map(|(h, _)| h));
    prop_assert_eq!(c.requested_bytes, all.clone().map(|h| h.len).sum::<usize>());
    prop_assert_eq!(p.figures_of(all.map(|h| h.token)).in_use_bytes, c.in_use_bytes);
    prop_assert_eq!(c.allocations - c.releases - c.gc_reclaims, s.live_buffers as u64);
    Ok(())
}

fn run_handoff(ops: Vec<HandoffOp>) -> Result<(), TestCaseError> {
    const THERE: Holder = Holder { thread: 9, hint: 8, witness: 7 };
    let p = pool();
    let mut live: Vec<Held> = Vec::new();
    let mut transit: Vec<(Held, u64)> = Vec::new();
    // Secrets of handles already adopted or reclaimed, with their tokens.
    let mut used: Vec<(u64, u64)> = Vec::new();
    for op in ops {
        let before = p.stats();
        match op {
            HandoffOp::Alloc { size } => {
                let g = p.alloc(size, false, HOLDER).unwrap();
                write_pattern(g.token, g.addr, size);
                live.push(Held { token: g.token, addr: g.addr as usize, len: size });
            }
            HandoffOp::Share { pick: i } => {
                let Some(i) = pick(&live, i) else { continue };
                let h = live.swap_remove(i);
                let s = p.share(h.token, h.addr, h.len).unwrap();
                prop_assert_eq!(s.size, h.len);
                prop_assert_eq!(p.release(h.token, h.addr, h.len), Err(PoolError::NotPooled), "no Buffer has it");
                prop_assert_eq!(p.share(h.token, h.addr, h.len), Err(PoolError::NotPooled));
                transit.push((h, s.secret));
            }
            HandoffOp::Adopt { pick: i } => {
                let Some(i) = pick(&transit, i) else { continue };
                let (h, secret) = transit.swap_remove(i);
                let addr = p.adopt(h.token, secret, h.len, THERE).unwrap();
                prop_assert_eq!(addr as usize, h.addr);
                prop_assert!(has_pattern(h.token, addr, h.len), "the adopter finds what was written");
                prop_assert_eq!(p.adopt(h.token, secret, h.len, THERE), Err(PoolError::HandleUsed), "once");
                used.push((h.token, secret));
                live.push(h);
            }
            HandoffOp::Reclaim { pick: i } => {
                let Some(i) = pick(&transit, i) else { continue };
                let (h, secret) = transit.swap_remove(i);
                prop_assert_eq!(p.reclaim_shared(h.token, secret), Ok(()));
                prop_assert_eq!(p.reclaim_shared(h.token, secret), Err(PoolError::HandleUsed));
                used.push((h.token, secret));
            }
            HandoffOp::Replay { pick: i } => {
                let Some(i) = pick(&used, i) else { continue };
                let (token, secret) = used[i];
                let len =
                    live.iter().chain(transit.iter().map(|(h, _)| h)).find(|h| h.token == token).map_or(1, |h| h.len);
                prop_assert_eq!(p.adopt(token, secret, len, THERE), Err(PoolError::HandleUsed));
                prop_assert_eq!(p.reclaim_shared(token, secret), Err(PoolError::HandleUsed));
            }
            HandoffOp::Forge { pick: i, bits } => {
                let Some(i) = pick(&transit, i) else { continue };
                let (h, secret) = transit[i];
                let forged = secret ^ bits;
                prop_assert_eq!(p.adopt(h.token, forged, h.len, THERE), Err(PoolError::BadHandle));
                prop_assert_eq!(p.reclaim_shared(h.token, forged), Err(PoolError::BadHandle));
            }
            HandoffOp::LieAboutSize { pick: i } => {
                let Some(i) = pick(&transit, i) else { continue };
                let (h, secret) = transit[i];
                prop_assert_eq!(p.adopt(h.token, secret, h.len + 1, THERE), Err(PoolError::BadHandle));
            }
            HandoffOp::End { pick: i } => {
                let Some(i) = pick(&live, i) else { continue };
                let h = live.swap_remove(i);
                prop_assert!(matches!(p.release(h.token, h.addr, h.len), Ok(Release::Last(_))));
                prop_assert!(p.finish_release(h.token).is_some());
            }
        }
        if matches!(op, HandoffOp::Replay { .. } | HandoffOp::Forge { .. } | HandoffOp::LieAboutSize { .. }) {
            prop_assert_eq!(p.stats(), before, "a refused handle changes nothing");
        }
        check_handoff(&p, &live, &transit)?;
    }
    for (h, secret) in transit.drain(..) {
        prop_assert_eq!(p.reclaim_shared(h.token, secret), Ok(()));
    }
    for h in live.drain(..) {
        prop_assert!(matches!(p.release(h.token, h.addr, h.len), Ok(Release::Last(_))));
        prop_assert!(p.finish_release(h.token).is_some());
    }
    check_handoff(&p, &live, &transit)?;
    prop_assert_eq!(p.stats().counters.in_use_bytes, 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_handed_off_loan_is_taken_once_by_its_secret_and_the_figures_follow(
        ops in prop::collection::vec(handoff_op(), 1..60)
    ) {
        run_handoff(ops)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Resize

#[derive(Debug, Clone)]
enum ResizeOp {
    Alloc { size: usize },
    Resize { pick: usize, size: usize, zero: bool, abort: bool },
    End { pick: usize },
}

fn resize_op() -> impl Strategy<Value = ResizeOp> {
    prop_oneof![
        2 => size().prop_map(|size| ResizeOp::Alloc { size }),
        5 => (any::<usize>(), size(), any::<bool>(), prop::bool::weighted(0.25))
            .prop_map(|(pick, size, zero, abort)| ResizeOp::Resize { pick, size, zero, abort }),
        1 => any::<usize>().prop_map(|pick| ResizeOp::End { pick }),
    ]
}

fn run_resize(ops: Vec<ResizeOp>) -> Result<(), TestCaseError> {
    let p = pool();
    // (token, addr, len, the token whose pattern its first bytes hold, how many of them)
    let mut live: Vec<(u64, usize, usize, u64, usize)> = Vec::new();
    let check = |p: &Pool, live: &[(u64, usize, usize, u64, usize)]| -> Result<(), TestCaseError> {
        let s = p.stats();
        let c = &s.counters;
        prop_assert_eq!(s.live_buffers, live.len());
        prop_assert_eq!(c.requested_bytes, live.iter().map(|l| l.2).sum::<usize>());
        prop_assert_eq!(c.external_bytes, c.requested_bytes, "plain loans: one Buffer each, of its length");
        let f = p.figures_of(live.iter().map(|l| l.0));
        prop_assert_eq!((f.loans, f.in_use_bytes, f.requested_bytes), (live.len(), c.in_use_bytes, c.requested_bytes));
        prop_assert!(c.in_use_bytes >= c.requested_bytes && c.reserved_bytes >= c.in_use_bytes);
        prop_assert!(c.reserved_bytes <= MAX);
        for &(_, addr, _, pat, n) in live {
            prop_assert!(has_pattern(pat, addr as *const u8, n), "contents kept");
        }
        Ok(())
    };
    for op in ops {
        match op {
            ResizeOp::Alloc { size } => {
                let g = p.alloc(size, false, HOLDER).unwrap();
                write_pattern(g.token, g.addr, size);
                live.push((g.token, g.addr as usize, size, g.token, size));
            }
            ResizeOp::Resize { pick: i, size, zero, abort } => {
                let Some(i) = pick(&live, i) else { continue };
                let (token, addr, len, pat, n) = live[i];
                let before = p.stats();
                p.resize_begin(token, addr, len, AllocRequest::new(size, zero)).unwrap();
                if abort {
                    p.resize_abort(token);
                    prop_assert!(p.resize_end(token).is_none(), "nothing pending any more");
                    let after = p.stats();
                    prop_assert_eq!(p.ref_count(token, addr, len), Ok(1), "the loan is as it was");
                    prop_assert_eq!(after.live_buffers, before.live_buffers);
                    prop_assert_eq!(after.counters.requested_bytes, before.counters.requested_bytes);
                    prop_assert_eq!(after.counters.external_bytes, before.counters.external_bytes);
                } else {
                    let r = p.resize_end(token).expect("a pending resize");
                    prop_assert_eq!(r.holder, HOLDER);
                    let kept = n.min(size);
                    prop_assert!(has_pattern(pat, r.addr, kept), "the first bytes are kept");
                    if zero {
                        prop_assert!(
                            read(r.addr, size)[len.min(size)..].iter().all(|&b| b == 0),
                            "the rest is cleared"
                        );
                    }
                    p.set_holder(token, HOLDER);
                    live[i] = (token, r.addr as usize, size, pat, kept);
                }
            }
            ResizeOp::End { pick: i } => {
                let Some(i) = pick(&live, i) else { continue };
                let (token, addr, len, ..) = live.swap_remove(i);
                prop_assert_eq!(p.release(token, addr, len), Ok(Release::Last(HOLDER)));
                prop_assert!(p.finish_release(token).is_some());
            }
        }
        check(&p, &live)?;
    }
    for (token, addr, len, ..) in live.drain(..) {
        prop_assert_eq!(p.release(token, addr, len), Ok(Release::Last(HOLDER)));
        prop_assert!(p.finish_release(token).is_some());
    }
    check(&p, &live)?;
    let s = p.stats();
    prop_assert_eq!((s.counters.in_use_bytes, s.large_live), (0, 0));
    prop_assert_eq!(p.trim(), s.counters.reserved_bytes);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn a_resize_keeps_the_contents_and_an_abort_changes_nothing(ops in prop::collection::vec(resize_op(), 1..40)) {
        run_resize(ops)?;
    }
}
