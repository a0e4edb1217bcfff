use super::block::{
    large_class_of, CacheBlock, DRIFT_CAP, ENTRY_TRACKED, WORD_ALLOCATIONS, WORD_CLASSES, WORD_DRIFT_DOWN,
    WORD_DRIFT_UP, WORD_ENTRIES, WORD_FLUSH, WORD_GATE, WORD_IN_USE, WORD_LIVE, WORD_RELEASES, WORD_REQUESTED,
    WORD_SYNCED,
};
use super::CacheGrant;
use crate::error::PoolError;
use crate::loan::Holder;
use crate::pool::{AllocRequest, Pool, PoolConfig, Release};
use crate::size_class::{CLASS_SIZES, MIN_ALIGN};
use crate::watermark::Level;

const HOLDER: Holder = Holder { thread: 1, hint: 0, witness: 7 };
const SMALL_MAX_I32: i32 = crate::size_class::SMALL_MAX as i32;

fn class_of(g: &CacheGrant) -> usize {
    g.slot.map_or_else(|| large_class_of(g.len).unwrap(), |s| s.class)
}

fn lend(block: &CacheBlock, g: &CacheGrant, len: usize) {
    let cap = g.len as i32;
    block.add(WORD_CLASSES + class_of(g), 1);
    block.add(WORD_IN_USE, cap);
    block.add(WORD_REQUESTED, len as i32);
    block.add(WORD_LIVE, 1);
    block.add(WORD_ALLOCATIONS, 1);
    block.set(WORD_ENTRIES + g.entry as usize, len as i32);
}

fn give(block: &CacheBlock, g: &CacheGrant, len: usize) {
    let cap = g.len as i32;
    block.add(WORD_CLASSES + class_of(g), -1);
    block.add(WORD_IN_USE, -cap);
    block.add(WORD_REQUESTED, -(len as i32));
    block.add(WORD_LIVE, -1);
    block.add(WORD_RELEASES, 1);
    block.set(WORD_ENTRIES + g.entry as usize, 0);
}

#[test]
fn cached_slots_count_as_reserved_and_lends_from_the_block_count_as_in_use() {
    let p = Pool::new(64 << 20);
    let (id, block) = p.cache_open();
    assert_eq!(block.get(WORD_GATE), 1, "far from every threshold");
    let class = crate::size_class::class_for(4096, MIN_ALIGN);
    let grants = p.cache_fill(id, class, 4, crate::admission::Priority::Normal, HOLDER).unwrap();
    assert_eq!(grants.len(), 4);
    let s = p.stats();
    assert_eq!((s.counters.in_use_bytes, s.live_buffers, s.cached_slots), (0, 0, 4));
    lend(&block, &grants[0], 3000);
    let s = p.stats();
    assert_eq!((s.counters.in_use_bytes, s.counters.requested_bytes, s.live_buffers), (4096, 3000, 1));
    assert_eq!((s.counters.allocations, s.cached_slots, s.cached_bytes), (1, 3, 3 * 4096));
    give(&block, &grants[0], 3000);
    assert_eq!(p.cache_sync(id, &[(grants[0].entry, 9)]), vec![7], "the old witness is handed back");
    let s = p.stats();
    assert_eq!((s.counters.in_use_bytes, s.live_buffers, s.counters.releases, s.cached_slots), (0, 0, 1, 4));
    let entries: Vec<(u32, usize)> = grants.iter().map(|g| (g.entry, g.addr as usize)).collect();
    assert!(p.cache_flush(id, &entries).0.iter().all(Option::is_some));
    p.cache_close(id);
    let s = p.stats();
    assert_eq!((s.cached_slots, s.counters.allocations, s.counters.releases), (0, 1, 1));
    assert_eq!(s.classes[class].in_use, 0, "every slot is free again");
}

#[test]
fn a_check_against_the_loan_turns_a_lent_cache_slot_into_an_ordinary_loan() {
    let p = Pool::new(64 << 20);
    let (id, block) = p.cache_open();
    let g = p.cache_fill(id, 3, 1, crate::admission::Priority::Normal, HOLDER).unwrap()[0];
    let len = CLASS_SIZES[3] - 1;
    assert!(p.retain(g.token, g.addr as usize, len).is_err(), "not lent: no Buffer to check");
    lend(&block, &g, len);
    assert_eq!(p.retain(g.token, g.addr as usize, len), Ok(2));
    assert_eq!(block.get(WORD_LIVE), 0, "its figures moved to the core");
    let s = p.stats();
    assert_eq!((s.live_buffers, s.counters.requested_bytes, s.cached_slots), (1, len, 0));
    assert_eq!(p.release(g.token, g.addr as usize, len), Ok(Release::Retained(1)));
    assert!(matches!(p.release(g.token, g.addr as usize, len), Ok(Release::Last(_))));
    assert!(p.finish_release(g.token).is_some());
    p.cache_close(id);
    let s = p.stats();
    assert_eq!((s.live_buffers, s.counters.in_use_bytes, s.counters.allocations, s.counters.releases), (0, 0, 1, 1));
}

#[test]
fn a_collected_slot_is_a_gc_reclaim_if_lent_and_simply_comes_back_if_cached() {
    let p = Pool::new(64 << 20);
    let (id, block) = p.cache_open();
    let gs = p.cache_fill(id, 5, 2, crate::admission::Priority::Normal, HOLDER).unwrap();
    lend(&block, &gs[0], 10);
    let bytes = CLASS_SIZES[5];
    assert!(p.slot_buffer_finalized(gs[0].slot.unwrap(), bytes, |_| false).is_some());
    assert!(p.slot_buffer_finalized(gs[1].slot.unwrap(), bytes, |_| false).is_some());
    let s = p.stats();
    assert_eq!((s.counters.gc_reclaims, s.live_buffers, s.cached_slots, s.counters.in_use_bytes), (1, 0, 0, 0));
    assert_eq!(s.counters.external_bytes, 0);
    p.cache_close(id);
}

/// `x` rounded down to a power of two (0 for none), as the core rounds budgets.
fn pow2(x: i32) -> i32 {
    if x <= 0 {
        0
    } else {
        1 << x.ilog2()
    }
}

/// The up and down budgets of a block.
fn budgets(block: &CacheBlock) -> (i32, i32) {
    (block.get(WORD_DRIFT_UP), block.get(WORD_DRIFT_DOWN))
}

#[test]
fn the_budget_toward_a_threshold_shrinks_as_the_pool_nears_it_and_critical_asks_for_a_flush() {
    let config = PoolConfig { admission: crate::admission::Admission::Cap, ..PoolConfig::with_max_bytes(1 << 20) };
    let p = Pool::with_config(config);
    let (_, block) = p.cache_open();
    let warning = (0.7 * f64::from(1 << 20)).ceil() as i32 - 1;
    let slack = SMALL_MAX_I32;
    assert_eq!(block.get(WORD_GATE), 1);
    assert_eq!(budgets(&block), (pow2(warning - slack), DRIFT_CAP as i32), "at normal nothing is below");
    let big = p.alloc(600 * 1024, false, HOLDER).unwrap();
    assert_eq!(budgets(&block), (pow2(warning - 600 * 1024 - slack), DRIFT_CAP as i32));
    let near = p.alloc(112 * 1024, false, HOLDER).unwrap();
    assert_eq!(block.get(WORD_GATE), 1, "the gate stays open: moves down need no judging");
    assert!(budgets(&block).0 <= 0, "every move up does");
    let _over = p.alloc(8 * 1024, false, HOLDER).unwrap();
    assert_eq!(p.level(), Level::Warning);
    let hysteresis_floor = (0.68 * f64::from(1 << 20)).ceil() as i32;
    assert_eq!(budgets(&block).1, pow2(720 * 1024 - hysteresis_floor - slack), "at warning, down to its hysteresis");
    let flushes = block.get(WORD_FLUSH);
    let more = p.alloc(200 * 1024, false, HOLDER).unwrap();
    assert_eq!(p.level(), Level::Critical);
    assert_eq!((block.get(WORD_GATE), budgets(&block)), (0, (0, 0)), "shut past warning");
    assert!(block.get(WORD_FLUSH) > flushes, "critical asks every cache to flush");
    for (g, len) in [(big, 600 * 1024), (near, 112 * 1024), (more, 200 * 1024)] {
        assert!(p.release(g.token, g.addr as usize, len).is_ok());
    }
}

#[test]
fn budgets_are_judged_from_the_synced_bytes_less_the_drift_and_shared_by_the_open_caches() {
    let p = Pool::new(8 << 20);
    let (a, block_a) = p.cache_open();
    let (_b, block_b) = p.cache_open();
    let warning = (0.7 * f64::from(8 << 20)).ceil() as i32 - 1;
    let slack = 2 * SMALL_MAX_I32;
    assert_eq!(budgets(&block_a).0, pow2((warning - slack) / 2), "two caches share the room");
    assert_eq!(budgets(&block_a), budgets(&block_b));
    let gs = p.cache_fill(a, 20, 4, crate::admission::Priority::Normal, HOLDER).unwrap();
    for g in &gs {
        lend(&block_a, g, 100);
    }
    let lent = 4 * CLASS_SIZES[20] as i32;
    let _other = p.alloc(4096, false, HOLDER).unwrap();
    assert_eq!(block_a.get(WORD_SYNCED), 0, "another thread's call leaves a cache's synced bytes");
    assert_eq!(
        budgets(&block_a).0,
        pow2((warning - 4096 - lent - slack) / 2),
        "cache a's drift up counts against the room"
    );
    assert!(p.cache_sync(a, &[]).is_empty());
    assert_eq!(block_a.get(WORD_SYNCED), lent, "a sync makes the bytes lent synced");
    assert_eq!(budgets(&block_a).0, pow2((warning - 4096 - lent - slack) / 2), "and then they count as synced");
    for g in &gs {
        give(&block_a, g, 100);
    }
    p.cache_close(a);
    assert_eq!((block_a.get(WORD_GATE), budgets(&block_a)), (0, (0, 0)), "a closed cache has none");
    assert_eq!(budgets(&block_b).0, pow2(warning - 4096 - SMALL_MAX_I32), "the open one has all the room");
}

#[test]
fn a_cache_that_drifted_away_from_a_threshold_cannot_come_back_once_the_core_lent_that_room() {
    // 2 MiB, warning at 0.7: a cache lends 384 KiB and syncs; it takes them back with no sync
    // (its drift is far from the threshold); the core then lends up to just below warning,
    // judging the bytes truly in use. The cache must not lend the 384 KiB again unjudged.
    let p = Pool::with_config(PoolConfig {
        admission: crate::admission::Admission::Cap,
        ..PoolConfig::with_max_bytes(2 << 20)
    });
    let (id, block) = p.cache_open();
    let gs = p.cache_fill(id, CLASS_SIZES.len() - 1, 48, crate::admission::Priority::Normal, HOLDER).unwrap();
    let slot = CLASS_SIZES[CLASS_SIZES.len() - 1] as i32;
    for g in &gs {
        lend(&block, g, slot as usize);
    }
    assert!(p.cache_sync(id, &[]).is_empty());
    for g in &gs {
        give(&block, g, slot as usize);
    }
    let drift = block.get(WORD_IN_USE) - block.get(WORD_SYNCED);
    assert_eq!(drift, -48 * slot);
    let near = p.alloc(1400 * 1024, false, HOLDER).unwrap();
    assert_eq!(p.level(), Level::Normal);
    let (up, _) = budgets(&block);
    assert!(up < 0, "the up budget is negative: {up}");
    assert!(
        drift + slot > up,
        "lending one more slot from here leaves the budget: the cache syncs and the core judges it"
    );
    let room = (0.7 * f64::from(2 << 20)).ceil() as i32 - 1 - (1400 * 1024 + block.get(WORD_IN_USE));
    assert!(block.get(WORD_SYNCED) + up - block.get(WORD_IN_USE) <= room, "what it may still lend fits");
    assert!(p.release(near.token, near.addr as usize, 1400 * 1024).is_ok());
    p.cache_close(id);
}

#[test]
fn making_a_loan_ordinary_keeps_the_drift_and_ref_count_only_reads() {
    let p = Pool::new(64 << 20);
    let (id, block) = p.cache_open();
    let gs = p.cache_fill(id, 20, 4, crate::admission::Priority::Normal, HOLDER).unwrap();
    let cap = CLASS_SIZES[20] as i32;
    block.set(WORD_SYNCED, 0);
    lend(&block, &gs[0], 100);
    lend(&block, &gs[1], 100);
    let drift = block.get(WORD_IN_USE) - block.get(WORD_SYNCED);
    assert_eq!(drift, 2 * cap);
    let before = p.stats();
    assert_eq!(p.ref_count(gs[0].token, gs[0].addr as usize, 100), Ok(1));
    assert_eq!(block.get(WORD_LIVE), 2, "ref_count left the loan the cache's");
    let after = p.stats();
    assert_eq!(
        (after.counters.in_use_bytes, after.live_buffers, after.cached_slots),
        (before.counters.in_use_bytes, before.live_buffers, before.cached_slots)
    );
    assert_eq!(p.retain(gs[0].token, gs[0].addr as usize, 100), Ok(2));
    assert_eq!(block.get(WORD_IN_USE), cap, "its bytes left the block");
    assert_eq!(block.get(WORD_IN_USE) - block.get(WORD_SYNCED), drift, "and the drift did not move");
    assert_eq!(p.stats().counters.in_use_bytes, before.counters.in_use_bytes, "the total did not either");
    p.release(gs[0].token, gs[0].addr as usize, 100).unwrap();
    assert!(matches!(p.release(gs[0].token, gs[0].addr as usize, 100), Ok(Release::Last(_))));
    p.finish_release(gs[0].token).unwrap();
    give(&block, &gs[1], 100);
    let entries: Vec<(u32, usize)> = gs[1..].iter().map(|g| (g.entry, g.addr as usize)).collect();
    assert!(p.cache_flush(id, &entries).0.iter().all(Option::is_some));
    p.cache_close(id);
    assert_eq!(p.stats().counters.in_use_bytes, 0);
}

#[test]
fn large_mappings_are_cache_loans_too_counted_as_cached_or_live_and_flushed_back_to_the_mapping_cache() {
    let p = Pool::new(64 << 20);
    let (id, block) = p.cache_open();
    let len = crate::large::class_len(20_000);
    let gs = p.cache_fill_large(id, len, 3, crate::admission::Priority::Normal, HOLDER).unwrap();
    assert_eq!(gs.len(), 3);
    assert!(gs.iter().all(|g| g.len == len && g.slot.is_none() && g.mapping.is_some_and(|m| m.len == len)));
    let s = p.stats();
    assert_eq!((s.large_live, s.large_cached, s.live_buffers, s.counters.in_use_bytes), (0, 3, 0, 0));
    assert_eq!((s.counters.reserved_bytes, s.counters.external_bytes, s.cached_slots), (3 * len, 3 * len, 0));
    lend(&block, &gs[0], 20_000);
    let s = p.stats();
    assert_eq!((s.large_live, s.large_cached, s.live_buffers, s.counters.in_use_bytes), (1, 2, 1, len));
    assert_eq!(s.counters.requested_bytes, 20_000);
    // A check against the loan makes it ordinary, still live.
    assert_eq!(p.retain(gs[0].token, gs[0].addr as usize, 20_000), Ok(2));
    let s = p.stats();
    assert_eq!((s.large_live, s.large_cached, s.live_buffers, s.counters.in_use_bytes), (1, 2, 1, len));
    p.release(gs[0].token, gs[0].addr as usize, 20_000).unwrap();
    assert!(matches!(p.release(gs[0].token, gs[0].addr as usize, 20_000), Ok(Release::Last(_))));
    let done = p.finish_release(gs[0].token).unwrap();
    assert_eq!(done.mapping, gs[0].mapping, "its ArrayBuffer may be kept, as any bound mapping's");
    let entries: Vec<(u32, usize)> = gs[1..].iter().map(|g| (g.entry, g.addr as usize)).collect();
    assert!(p.cache_flush(id, &entries).0.iter().all(Option::is_some));
    let s = p.stats();
    assert_eq!(
        (s.large_live, s.large_cached, s.counters.reserved_bytes),
        (0, 3, 3 * len),
        "all three in the mapping cache"
    );
    let stale = gs[1].mapping.unwrap();
    assert_eq!(
        p.reuse_mapping(stale, AllocRequest { bind: true, ..AllocRequest::new(len, false) }, HOLDER).err(),
        Some(PoolError::Stale),
        "a flushed entry's ArrayBuffer lends nothing again"
    );
    p.cache_close(id);
}

#[test]
fn a_collected_large_cache_arraybuffer_comes_back_if_cached_and_is_a_gc_reclaim_if_lent() {
    let p = Pool::new(64 << 20);
    let (id, block) = p.cache_open();
    let len = crate::large::class_len(100_000);
    let gs = p.cache_fill_large(id, len, 2, crate::admission::Priority::Normal, HOLDER).unwrap();
    lend(&block, &gs[0], 99_000);
    assert!(p.mapping_buffer_finalized(gs[0].mapping.unwrap(), |_| false).is_some());
    assert!(p.mapping_buffer_finalized(gs[1].mapping.unwrap(), |_| false).is_some());
    let s = p.stats();
    assert_eq!((s.counters.gc_reclaims, s.live_buffers, s.large_live, s.counters.in_use_bytes), (1, 0, 0, 0));
    assert_eq!((s.large_cached, s.counters.external_bytes), (2, 0));
    p.cache_close(id);
}

#[test]
fn a_cache_given_large_mappings_leaves_the_largest_as_its_slack() {
    let p = Pool::new(64 << 20);
    let (id, block) = p.cache_open();
    let before = budgets(&block).0;
    let len = crate::large::class_len(1 << 20);
    p.cache_fill_large(id, len, 1, crate::admission::Priority::Normal, HOLDER).unwrap();
    let warning = (0.7 * f64::from(64 << 20)).ceil() as i32 - 1;
    assert_eq!(before, pow2(warning - SMALL_MAX_I32));
    assert_eq!(budgets(&block).0, pow2(warning - len as i32));
}

#[test]
fn a_tracked_buffer_lent_from_a_cache_is_reported_as_a_leak_when_collected_and_listed_as_tracked() {
    let p = Pool::new(64 << 20);
    let (id, block) = p.cache_open();
    let gs = p.cache_fill(id, 5, 2, crate::admission::Priority::Normal, HOLDER).unwrap();
    lend(&block, &gs[0], 10);
    lend(&block, &gs[1], 10);
    // The JavaScript side marks a sampled allocation in its entry word.
    block.set(WORD_ENTRIES + gs[0].entry as usize, 10 | ENTRY_TRACKED);
    let live = p.live(0);
    assert_eq!(live.iter().filter(|b| b.tracked).count(), 1, "live() lists it as tracked");
    let bytes = CLASS_SIZES[5];
    assert!(p.slot_buffer_finalized(gs[0].slot.unwrap(), bytes, |_| false).is_some());
    assert!(p.slot_buffer_finalized(gs[1].slot.unwrap(), bytes, |_| false).is_some());
    let s = p.stats();
    assert_eq!((s.counters.gc_reclaims, s.counters.leaks, s.live_buffers), (2, 1, 0), "only the tracked one is a leak");
    p.cache_close(id);
}

#[test]
fn a_flush_ends_only_slots_whose_arraybuffer_shows_them() {
    let p = Pool::new(64 << 20);
    let (id, _block) = p.cache_open();
    let gs = p.cache_fill(id, 7, 2, crate::admission::Priority::Normal, HOLDER).unwrap();
    let swapped = [(gs[0].entry, gs[1].addr as usize), (gs[1].entry, gs[0].addr as usize)];
    assert!(
        p.cache_flush(id, &swapped).0.iter().all(Option::is_none),
        "an entry with another slot's memory ends nothing"
    );
    assert_eq!(p.stats().cached_slots, 2);
    let right: Vec<(u32, usize)> = gs.iter().map(|g| (g.entry, g.addr as usize)).collect();
    assert!(p.cache_flush(id, &right).0.iter().all(Option::is_some));
    p.cache_close(id);
}
