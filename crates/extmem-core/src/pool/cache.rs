//! Per-thread caches: slots and large mappings the core hands to one thread's JavaScript, which
//! lends them to Buffers and takes them back with no call into the core and no lock.
//!
//! A cached slot (or mapping of a large class, bound to the cache's ArrayBuffer over it, see
//! `bound_map`) is a *cache loan*: a loan whose [`Loan::cache`](crate::loan::Loan::cache) names
//! the cache and an entry of it. Large classes follow the small ones: cache class
//! `CLASS_COUNT + k` is the large class of length `large::class_lens()[k]`. While the slot sits
//! in the cache it counts as reserved and cached, not in use. The thread lends it to a Buffer and
//! takes it back by writing its [`CacheBlock`], a small array of 32-bit words that both sides can
//! see (JavaScript views it as an `Int32Array`):
//!
//! - the thread adds each lend and release to the block's counters (bytes in use, bytes
//!   requested, live Buffers, allocations, releases), so [`Pool::stats`] adds them to its own and
//!   stays exact at the moment it is taken;
//! - the entry's word holds the lent Buffer's length while it is lent and 0 while the slot is in
//!   the cache, so a finalizer can tell a Buffer collected without release (a GC reclaim) from a
//!   cache that went away with its thread or its `Pool` object (the slot simply comes back);
//! - the core writes the *gate*: 1 while a cache hit cannot move the level (the pool is at
//!   `normal` or `warning`, and the bytes in use are far enough from the thresholds on both sides
//!   for every cache's allowed drift), 0 otherwise; beside it the *drift budgets*, how far each
//!   cache may move up and down from its synced bytes before it syncs again (the farther the pool
//!   is from the threshold on that side, the larger: see `State::drift_budgets`); and it counts
//!   up the *flush* word to ask every cache to give its slots back (at `critical`, after a refusal
//!   at the cap, on `trim`).
//!
//! Invariants:
//! - each word has one writer: the gate, the drift budgets and the flush word the core (under the
//!   pool's lock), every other word the cache's own thread (its JavaScript, or the core on that
//!   thread inside one of its calls or finalizers, while no JavaScript of it runs: the synced
//!   word is written only so, by [`Pool::cache_sync`] and `State::materialize`); every other
//!   thread only loads them;
//! - a thread keeps its drift, `WORD_IN_USE - WORD_SYNCED`, at most its up budget above and its
//!   down budget below 0 (it reads them at each lend and release), syncing first or taking the
//!   core's path where a move would leave that range; `State::materialize` lowers both words
//!   by the same bytes (they move to the core's counters, and the total does not change), so no
//!   path lets a cache go past its budgets. That is what the budgets count on: the core gives
//!   each of `n` open caches `1/n` of the room between the synced bytes in use and each threshold
//!   of the current band, less every cache's drift so far and one slot per cache for a move racing
//!   the core's write of smaller budgets (a share that is negative where the core lent the room
//!   that a cache's drift away from the threshold left), so with the gate open no cache hit or
//!   put-back can cross a
//!   threshold; the level moves only in calls into the core, each of which judges it (and the
//!   budgets) again;
//! - a flush request (the flush word counted up) is honoured at the thread's next lend or
//!   release whatever the gate says meanwhile: the gate may open again before that thread runs;
//! - an entry is lent only while its ArrayBuffer has a witness (a lend in JavaScript never makes
//!   one): `cache_sync` makes the witnesses of slots put back since the last sync before the
//!   thread lends them again;
//! - any core call that checks a cache-served Buffer against its loan first turns the cache loan
//!   into an ordinary loan (`State::materialize`); JavaScript forgets the entry before any such
//!   call, so the two never disagree about which loans the cache still serves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use super::{Finished, MappingRef, Pool, PoolConfig, SlotRef, State};
use crate::error::PoolError;
use crate::loan::{self, CacheLoan, LoanMemory, LoanTerms, Owner};
use crate::size_class::{CLASS_COUNT, CLASS_SIZES};
use crate::watermark::Level;

// The words the core writes come first, on a cache line of their own (the block is aligned to
// one): the thread reads them at every lend and release, and a write of the thread's own words
// next to them would take the line away from every other thread's core call, and back.

/// Word of the gate (written by the core): 1 while cache hits may be served.
pub const WORD_GATE: usize = 0;
/// Word counted up by the core to ask every cache to flush.
pub const WORD_FLUSH: usize = 1;
/// The up budget (written by the core): how far `WORD_IN_USE` may rise above `WORD_SYNCED` before
/// the thread syncs again (negative: how far below it must stay); 0 while the gate is shut.
pub const WORD_DRIFT_UP: usize = 2;
/// The down budget (written by the core): how far `WORD_IN_USE` may fall below `WORD_SYNCED`
/// (negative: how far above it must stay).
pub const WORD_DRIFT_DOWN: usize = 3;
/// The gate of the large classes (written by the core): 1 while the gate is open and admission
/// admits a large Buffer of normal priority (at `normal`, or with `admission: 'cap'`).
pub const WORD_GATE_LARGE: usize = 4;
/// Words in one cache line.
const LINE_WORDS: usize = 16;
/// Bytes in use by Buffers lent from the cache (slot sizes).
pub const WORD_IN_USE: usize = LINE_WORDS;
/// Bytes requested by Buffers lent from the cache.
pub const WORD_REQUESTED: usize = LINE_WORDS + 1;
/// Buffers lent from the cache and not yet back.
pub const WORD_LIVE: usize = LINE_WORDS + 2;
/// Lends from the cache since the last sync.
pub const WORD_ALLOCATIONS: usize = LINE_WORDS + 3;
/// Releases into the cache since the last sync.
pub const WORD_RELEASES: usize = LINE_WORDS + 4;
/// The block's bytes in use at the thread's last sync, less the bytes of cache loans made
/// ordinary since then: `WORD_IN_USE - WORD_SYNCED` is the drift of the Buffers the cache lent
/// and took back since its last sync, which the thread keeps within its budgets.
pub const WORD_SYNCED: usize = LINE_WORDS + 5;
/// First word of the Buffers lent from the cache per class: class `c` is word `WORD_CLASSES + c`.
pub const WORD_CLASSES: usize = LINE_WORDS + 6;
/// Most large classes (four per doubling from `SMALL_MAX` to `large::CLASS_MAX`, fewer where pages
/// round some together).
pub const LARGE_CLASSES_MAX: usize = 28;
/// Cache classes: the small ones, then the large ones.
pub const CACHE_CLASSES: usize = CLASS_COUNT + LARGE_CLASSES_MAX;
/// First entry word: entry `e` is word `WORD_ENTRIES + e`.
pub const WORD_ENTRIES: usize = (WORD_CLASSES + CACHE_CLASSES).next_multiple_of(LINE_WORDS);
/// Bit of an entry word: the Buffer lent is tracked (leak detection sampled its allocation); the
/// bits below it are the Buffer's length.
pub const ENTRY_TRACKED: i32 = 1 << 30;
const ENTRY_LEN_MASK: i32 = ENTRY_TRACKED - 1;
const _: () = assert!(crate::large::CLASS_MAX < ENTRY_TRACKED as usize, "a lent length stays below the tracked bit");
/// Most cache loans (cached or lent from the cache) one cache has at once.
pub const MAX_ENTRIES: usize = 8192;
/// Bytes of one cache's block. The binding views it with an external ArrayBuffer, which V8
/// counts in `process.memoryUsage().external`; the pool's `externalBytes` do not (they count the
/// memory lent and cached).
pub const BLOCK_BYTES: usize = (WORD_ENTRIES + MAX_ENTRIES).next_multiple_of(LINE_WORDS) * 4;
/// JavaScript names a cache loan `entry * CLASS_SPAN + class` (one number per Buffer), so every
/// class index must be below it, and every name a safe integer.
pub const CLASS_SPAN: usize = 64;
const _: () = assert!(CACHE_CLASSES <= CLASS_SPAN, "a class index would overflow into the entry of a cacheRef");
const _: () = assert!((MAX_ENTRIES * CLASS_SPAN) < (1 << 31), "a cacheRef must stay a small integer");
/// The largest drift budget (it bounds the block's words far below `i32::MAX`).
pub const DRIFT_CAP: usize = 256 * 1024 * 1024;
/// What one lend or release of a small class moves at most (the largest slot): the slack the
/// budgets leave per cache for a move racing the core's write of smaller ones; a cache that was
/// given large mappings leaves the largest of them instead (`CacheRec::move_max`).
const MOVE_MAX: usize = crate::size_class::SMALL_MAX;
/// Most bytes one cache lends to Buffers of large classes at once (its block's words are 32-bit).
pub const LARGE_LENT_MAX: usize = 1 << 30;
/// Slots one cache keeps per class to begin with (and no more than [`CACHE_BYTES_PER_CLASS`]).
pub const CACHE_SLOTS_PER_CLASS: usize = 64;
/// Bytes one cache keeps per class to begin with.
pub const CACHE_BYTES_PER_CLASS: usize = 64 * 1024;
/// Most slots one cache keeps per class once demand grew it (and no more than
/// [`CACHE_BYTES_MAX_PER_CLASS`]): a thread with that many Buffers of a class in flight gives them
/// back and takes them again without a call into the core.
pub const CACHE_SLOTS_MAX_PER_CLASS: usize = 4096;
/// Most bytes one cache keeps per class once demand grew it.
pub const CACHE_BYTES_MAX_PER_CLASS: usize = 16 * 1024 * 1024;
/// Most slots one [`Pool::cache_fill`] hands over.
pub const FILL_BATCH: usize = 64;

/// The number of cache classes of this machine: the small classes and the large ones.
pub fn cache_classes() -> usize {
    CLASS_COUNT + crate::large::class_lens().len()
}

/// Bytes of one entry of cache class `class` (a slot's size, or a large class's length).
pub fn class_bytes(class: usize) -> usize {
    if class < CLASS_COUNT {
        CLASS_SIZES[class]
    } else {
        crate::large::class_lens()[class - CLASS_COUNT]
    }
}

/// The cache class of a large mapping of `len` bytes, if `len` is a large class's length.
pub fn large_class_of(len: usize) -> Option<usize> {
    crate::large::class_lens().iter().position(|&l| l == len).map(|k| CLASS_COUNT + k)
}

/// How many entries of cache class `class` one cache keeps to begin with (at least 2, so that a
/// batch can be witnessed while the other half is lent). The cache doubles it while its releases
/// find it full (the thread's working set is larger), up to [`max_capacity_of`], and halves it
/// again while it stays unused (see lib/thread-cache.js).
pub fn capacity_of(class: usize) -> usize {
    (CACHE_BYTES_PER_CLASS / class_bytes(class)).clamp(2, CACHE_SLOTS_PER_CLASS)
}

/// Most bytes one cache keeps per large class once demand grew it.
pub const CACHE_BYTES_MAX_PER_LARGE_CLASS: usize = 64 * 1024 * 1024;

/// How many entries of cache class `class` one cache keeps at most.
pub fn max_capacity_of(class: usize) -> usize {
    let most = if class < CLASS_COUNT { CACHE_BYTES_MAX_PER_CLASS } else { CACHE_BYTES_MAX_PER_LARGE_CLASS };
    (most / class_bytes(class)).clamp(capacity_of(class), CACHE_SLOTS_MAX_PER_CLASS)
}

/// One cache line of a block's words.
#[derive(Debug)]
#[repr(C, align(64))]
struct Line([AtomicI32; LINE_WORDS]);
const _: () = assert!(size_of::<Line>() == 4 * LINE_WORDS, "a block's lines have no padding between them");
const _: () = assert!(WORD_GATE_LARGE < LINE_WORDS, "the core's words share no line with the thread's");

/// The words a cache's thread and the core share.
#[derive(Debug)]
pub struct CacheBlock {
    lines: Box<[Line]>,
}

impl CacheBlock {
    fn new() -> Self {
        let lines = (WORD_ENTRIES + MAX_ENTRIES).div_ceil(LINE_WORDS);
        CacheBlock { lines: (0..lines).map(|_| Line(std::array::from_fn(|_| AtomicI32::new(0)))).collect() }
    }

    /// The first word, for the binding's view of the block; valid while the block lives.
    pub fn as_ptr(&self) -> *mut u8 {
        self.lines.as_ptr() as *mut u8
    }

    /// Bytes of the block.
    pub fn byte_len(&self) -> usize {
        self.lines.len() * size_of::<Line>()
    }

    fn word(&self, word: usize) -> &AtomicI32 {
        &self.lines[word / LINE_WORDS].0[word % LINE_WORDS]
    }

    fn get(&self, word: usize) -> i32 {
        self.word(word).load(Ordering::Acquire)
    }

    fn set(&self, word: usize, value: i32) {
        self.word(word).store(value, Ordering::Release);
    }

    /// Sets a word the core writes, only if it changes (a store takes the line from the thread).
    fn update(&self, word: usize, value: i32) {
        if self.get(word) != value {
            self.set(word, value);
        }
    }

    fn add(&self, word: usize, delta: i32) {
        self.word(word).fetch_add(delta, Ordering::AcqRel);
    }
}

/// The core's record of one cache.
#[derive(Debug)]
pub(super) struct CacheRec {
    block: Arc<CacheBlock>,
    /// The loan key of each entry in use.
    entries: HashMap<u32, usize>,
    free_entries: Vec<u32>,
    /// Whether its thread still serves from it (false once closed, or once its thread's view
    /// of the block was collected).
    open: bool,
    /// The most one lend or release of this cache moves: the largest entry it was given.
    move_max: usize,
}

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

/// The caches of one pool and their totals.
///
/// Invariant: `loans`, `bytes` and `per_class` count the cache loans of slots (cached or lent)
/// and `large_loans`, `large_bytes` those of large mappings, over every record; they change only
/// through [`Caches::count_loan`] and [`Caches::uncount_loan`], as a cache loan is made and ends.
#[derive(Debug)]
pub(super) struct Caches {
    recs: HashMap<u64, CacheRec>,
    next_id: u64,
    /// Cache loans of slots, cached or lent.
    pub(super) loans: usize,
    /// Their slot bytes.
    pub(super) bytes: usize,
    /// Cache loans of slots per class.
    pub(super) per_class: [usize; CLASS_COUNT],
    /// Cache loans of large mappings, cached or lent, and their bytes.
    pub(super) large_loans: usize,
    pub(super) large_bytes: usize,
}

/// Figures of the Buffers lent from caches, summed over the blocks.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Lent {
    pub(super) in_use: usize,
    pub(super) requested: usize,
    pub(super) live: usize,
    pub(super) allocations: u64,
    pub(super) releases: u64,
}

impl Default for Caches {
    fn default() -> Self {
        Caches {
            recs: HashMap::new(),
            next_id: 0,
            loans: 0,
            bytes: 0,
            per_class: [0; CLASS_COUNT],
            large_loans: 0,
            large_bytes: 0,
        }
    }
}

impl Caches {
    /// A cache loan of cache class `class`, `bytes` long, was made.
    fn count_loan(&mut self, class: usize, bytes: usize) {
        if class < CLASS_COUNT {
            self.loans += 1;
            self.bytes += bytes;
            self.per_class[class] += 1;
        } else {
            self.large_loans += 1;
            self.large_bytes += bytes;
        }
    }

    /// A cache loan of cache class `class`, `bytes` long, is one no more.
    fn uncount_loan(&mut self, class: usize, bytes: usize) {
        if class < CLASS_COUNT {
            self.loans -= 1;
            self.bytes -= bytes;
            self.per_class[class] -= 1;
        } else {
            self.large_loans -= 1;
            self.large_bytes -= bytes;
        }
    }

    /// Buffers lent from caches per class, summed over the blocks.
    pub(super) fn lent_per_class(&self) -> [usize; CLASS_COUNT] {
        let mut out = [0; CLASS_COUNT];
        for rec in self.recs.values() {
            for (c, n) in out.iter_mut().enumerate() {
                *n += rec.block.get(WORD_CLASSES + c).max(0) as usize;
            }
        }
        out
    }

    /// Buffers lent from caches of large classes and their bytes, summed over the blocks.
    pub(super) fn lent_large(&self) -> (usize, usize) {
        let lens = crate::large::class_lens();
        let (mut n, mut bytes) = (0, 0);
        for rec in self.recs.values() {
            for (k, &len) in lens.iter().enumerate() {
                let lent = rec.block.get(WORD_CLASSES + CLASS_COUNT + k).max(0) as usize;
                n += lent;
                bytes += lent * len;
            }
        }
        (n, bytes)
    }

    /// What the blocks say now.
    pub(super) fn lent(&self) -> Lent {
        let mut l = Lent::default();
        for rec in self.recs.values() {
            let b = &rec.block;
            l.in_use += b.get(WORD_IN_USE).max(0) as usize;
            l.requested += b.get(WORD_REQUESTED).max(0) as usize;
            l.live += b.get(WORD_LIVE).max(0) as usize;
            l.allocations += b.get(WORD_ALLOCATIONS).max(0) as u64;
            l.releases += b.get(WORD_RELEASES).max(0) as u64;
        }
        l
    }

    fn open_count(&self) -> usize {
        self.recs.values().filter(|r| r.open).count()
    }

    /// Writes the gates and the drift budgets (up, down) of every cache (`None`: shut); `large`:
    /// whether admission admits a large Buffer of normal priority now.
    pub(super) fn set_gates(&self, budgets: Option<(i32, i32)>, large: bool) {
        for rec in self.recs.values() {
            let (up, down) = budgets.filter(|_| rec.open).unwrap_or((0, 0));
            let open = budgets.is_some() && rec.open;
            // The budgets first: a thread that sees the gate open sees budgets that go with it.
            rec.block.update(WORD_DRIFT_UP, up);
            rec.block.update(WORD_DRIFT_DOWN, down);
            rec.block.update(WORD_GATE_LARGE, i32::from(open && large));
            rec.block.update(WORD_GATE, i32::from(open));
        }
    }

    /// Shuts the gate of one cache.
    fn shut(rec: &CacheRec) {
        rec.block.set(WORD_GATE, 0);
        rec.block.set(WORD_GATE_LARGE, 0);
        rec.block.set(WORD_DRIFT_UP, 0);
        rec.block.set(WORD_DRIFT_DOWN, 0);
    }

    /// Asks every cache to give its slots back at its thread's next call.
    pub(super) fn ask_flush(&self) {
        for rec in self.recs.values() {
            Self::shut(rec);
            rec.block.add(WORD_FLUSH, 1);
        }
    }
}

impl State {
    /// The up and down drift budgets of each open cache now, or `None` if the gate must be shut
    /// (the pool is closed or past `warning`, or no cache is open). See the module docs: each
    /// budget is `1/n` of the room between the bytes in use and the threshold on its side, less
    /// the open caches' drift toward it and [`MOVE_MAX`] per cache, rounded to a power of two
    /// toward zero room. Closed caches serve nothing, so their bytes in use count as they are.
    ///
    /// A budget is negative when the synced bytes are already past a threshold that the bytes in
    /// use are not: a cache that drifted away from it (released without a sync) while the core
    /// lent more must not come back to its synced bytes unjudged. It then serves that way only
    /// while it stays that far on the near side of its synced bytes.
    pub(super) fn drift_budgets(&self, config: &PoolConfig) -> Option<(i32, i32)> {
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
    pub(super) fn update_gates(&mut self, config: &PoolConfig) {
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
    pub(super) fn cache_loan(&self, key: usize) -> Option<(CacheLoan, &CacheRec)> {
        let cl = self.loans.get(key)?.cache?;
        Some((cl, self.thread_caches.recs.get(&cl.cache)?))
    }

    /// Whether the live loan at `key` is a cache loan lent to the Buffer at `addr` of `len` bytes.
    pub(super) fn is_lent_from_cache(&self, key: usize, gen: u32, addr: usize, len: usize) -> bool {
        let is_cached = self.loans.get(key).is_some_and(|l| l.gen == gen && l.cache.is_some() && l.addr == addr);
        is_cached && len != 0 && self.cache_lent_len(key) == Some(len)
    }

    /// The length of the Buffer lent from the cache loan at `key` (0: it is in its cache).
    pub(super) fn cache_lent_len(&self, key: usize) -> Option<usize> {
        let (cl, rec) = self.cache_loan(key)?;
        Some((rec.block.get(WORD_ENTRIES + cl.entry as usize) & ENTRY_LEN_MASK).max(0) as usize)
    }

    /// Whether the Buffer lent from the cache loan at `key` is tracked.
    pub(super) fn cache_lent_tracked(&self, key: usize) -> bool {
        self.cache_loan(key)
            .is_some_and(|(cl, rec)| rec.block.get(WORD_ENTRIES + cl.entry as usize) & ENTRY_TRACKED != 0)
    }

    /// Turns the cache loan at `key`, lent to a Buffer of `len` bytes, into an ordinary loan of
    /// that Buffer with one reference: its figures move from the cache's block to the core's,
    /// and the entry is free again.
    ///
    /// Must run on the cache's thread (no JavaScript of it runs meanwhile).
    pub(super) fn materialize(&mut self, key: usize, len: usize) {
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
    fn insert_cache_loan(
        &mut self,
        cache: u64,
        memory: LoanMemory,
        addr: *mut u8,
        capacity: usize,
        owner: Owner,
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
        let (key, gen) = self.insert_loan(memory, addr, capacity, owner, terms);
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
    /// what ended, as [`Pool::finish_release`] does.
    pub(super) fn end_cached(&mut self, key: usize) -> Option<Finished> {
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
        Some(Finished { owner: l.owner, slot, bound: slot.is_some(), mapping: None })
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
    fn fold_counts(&mut self, block: &CacheBlock) {
        let allocations = block.word(WORD_ALLOCATIONS).swap(0, Ordering::AcqRel);
        let releases = block.word(WORD_RELEASES).swap(0, Ordering::AcqRel);
        self.counters.fold(allocations.max(0) as u64, releases.max(0) as u64);
    }
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
    /// as for [`AllocRequest::bind`](super::AllocRequest::bind)). Slots are not cleared. Refused
    /// if not even one can be had (the pool is closed, the cache is, admission refuses a small
    /// allocation at `priority`, or the cap).
    pub fn cache_fill(
        &self,
        cache: u64,
        class: usize,
        n: usize,
        priority: crate::admission::Priority,
        owner: Owner,
    ) -> Result<Vec<CacheGrant>, PoolError> {
        let mut st = self.state.lock();
        if st.quarantine.is_some() {
            // Every release must reach the quarantine (see `retire`).
            return Ok(Vec::new());
        }
        let size = CLASS_SIZES[class];
        let req = super::AllocRequest { priority, bind: true, ..super::AllocRequest::new(size, false) };
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
            let (key, gen, entry) = st.insert_cache_loan(cache, memory, addr, size, owner);
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
        owner: Owner,
    ) -> Result<Vec<CacheGrant>, PoolError> {
        let mut st = self.state.lock();
        let Some(class) = large_class_of(len) else { return Err(PoolError::Stale) };
        if st.quarantine.is_some() {
            // Every release must reach the quarantine (see `retire`).
            return Ok(Vec::new());
        }
        let req = super::AllocRequest { priority, bind: true, ..super::AllocRequest::new(len, false) };
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
            let (key, gen, entry) = st.insert_cache_loan(cache, memory, addr, capacity, owner);
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
            l.owner.witness = witness;
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
                Some(l) => stale.push(std::mem::replace(&mut l.owner.witness, witness)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::{AllocRequest, Pool, Release};
    use crate::size_class::MIN_ALIGN;

    const OWNER: Owner = Owner { thread: 1, hint: 0, witness: 7 };
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
        let grants = p.cache_fill(id, class, 4, crate::admission::Priority::Normal, OWNER).unwrap();
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
        let g = p.cache_fill(id, 3, 1, crate::admission::Priority::Normal, OWNER).unwrap()[0];
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
        assert_eq!(
            (s.live_buffers, s.counters.in_use_bytes, s.counters.allocations, s.counters.releases),
            (0, 0, 1, 1)
        );
    }

    #[test]
    fn a_collected_slot_is_a_gc_reclaim_if_lent_and_simply_comes_back_if_cached() {
        let p = Pool::new(64 << 20);
        let (id, block) = p.cache_open();
        let gs = p.cache_fill(id, 5, 2, crate::admission::Priority::Normal, OWNER).unwrap();
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
        let big = p.alloc(600 * 1024, false, OWNER).unwrap();
        assert_eq!(budgets(&block), (pow2(warning - 600 * 1024 - slack), DRIFT_CAP as i32));
        let near = p.alloc(112 * 1024, false, OWNER).unwrap();
        assert_eq!(block.get(WORD_GATE), 1, "the gate stays open: moves down need no judging");
        assert!(budgets(&block).0 <= 0, "every move up does");
        let _over = p.alloc(8 * 1024, false, OWNER).unwrap();
        assert_eq!(p.level(), Level::Warning);
        let hysteresis_floor = (0.68 * f64::from(1 << 20)).ceil() as i32;
        assert_eq!(
            budgets(&block).1,
            pow2(720 * 1024 - hysteresis_floor - slack),
            "at warning, down to its hysteresis"
        );
        let flushes = block.get(WORD_FLUSH);
        let more = p.alloc(200 * 1024, false, OWNER).unwrap();
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
        let gs = p.cache_fill(a, 20, 4, crate::admission::Priority::Normal, OWNER).unwrap();
        for g in &gs {
            lend(&block_a, g, 100);
        }
        let lent = 4 * CLASS_SIZES[20] as i32;
        let _other = p.alloc(4096, false, OWNER).unwrap();
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
        let gs = p.cache_fill(id, CLASS_SIZES.len() - 1, 48, crate::admission::Priority::Normal, OWNER).unwrap();
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
        let near = p.alloc(1400 * 1024, false, OWNER).unwrap();
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
        let gs = p.cache_fill(id, 20, 4, crate::admission::Priority::Normal, OWNER).unwrap();
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
        let gs = p.cache_fill_large(id, len, 3, crate::admission::Priority::Normal, OWNER).unwrap();
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
            p.reuse_mapping(stale, AllocRequest { bind: true, ..AllocRequest::new(len, false) }, OWNER).err(),
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
        let gs = p.cache_fill_large(id, len, 2, crate::admission::Priority::Normal, OWNER).unwrap();
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
        p.cache_fill_large(id, len, 1, crate::admission::Priority::Normal, OWNER).unwrap();
        let warning = (0.7 * f64::from(64 << 20)).ceil() as i32 - 1;
        assert_eq!(before, pow2(warning - SMALL_MAX_I32));
        assert_eq!(budgets(&block).0, pow2(warning - len as i32));
    }

    #[test]
    fn a_tracked_buffer_lent_from_a_cache_is_reported_as_a_leak_when_collected_and_listed_as_tracked() {
        let p = Pool::new(64 << 20);
        let (id, block) = p.cache_open();
        let gs = p.cache_fill(id, 5, 2, crate::admission::Priority::Normal, OWNER).unwrap();
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
        assert_eq!(
            (s.counters.gc_reclaims, s.counters.leaks, s.live_buffers),
            (2, 1, 0),
            "only the tracked one is a leak"
        );
        p.cache_close(id);
    }

    #[test]
    fn a_flush_ends_only_slots_whose_arraybuffer_shows_them() {
        let p = Pool::new(64 << 20);
        let (id, _block) = p.cache_open();
        let gs = p.cache_fill(id, 7, 2, crate::admission::Priority::Normal, OWNER).unwrap();
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
}
