//! The block of a thread's cache: the 32-bit words its thread and the core share, and the
//! capacities both sides read. The binding hands every offset and capacity here to JavaScript
//! (`constants().cache`), which views the block as an `Int32Array` and writes none of them twice.
//!
//! Each word has one writer (see the invariants in the parent module's docs). The core's words
//! come first, on a cache line of their own; it writes them under the pool's lock, and the thread
//! loads them at every lend and release:
//!
//! - [`WORD_GATE`]: 1 while a cache hit cannot move the level, 0 otherwise; written after the
//!   budgets, so a thread that sees it open sees budgets that go with it;
//! - [`WORD_FLUSH`]: counted up to ask the cache to give its slots back (the gate is shut with
//!   it); the thread honours it at its next lend or release, whatever the gate says by then;
//! - [`WORD_DRIFT_UP`], [`WORD_DRIFT_DOWN`]: how far `WORD_IN_USE` may rise above and fall below
//!   `WORD_SYNCED` (negative: how far on the other side it must stay), at most [`DRIFT_CAP`]
//!   either way; 0 while the gate is shut;
//! - [`WORD_GATE_LARGE`]: 1 while the gate is open and admission admits a large Buffer of normal
//!   priority.
//!
//! The thread's words follow, from the second line on. Its JavaScript writes them, or the core on
//! that thread inside one of its calls or finalizers (while no JavaScript of it runs); the core
//! loads them on any thread:
//!
//! - [`WORD_IN_USE`], [`WORD_REQUESTED`], [`WORD_LIVE`]: bytes in use (entry sizes), bytes
//!   requested and Buffers lent from the cache, added to at each lend and release; the core lowers
//!   them as it makes a cache loan ordinary (`State::materialize`), moving its figures to its own
//!   counters, so their sum with the core's stays exact;
//! - [`WORD_ALLOCATIONS`], [`WORD_RELEASES`]: lends and releases since the last sync; the core
//!   moves them into its counters (leaving 0) at each sync, and as the cache's record goes;
//! - [`WORD_SYNCED`]: written by the core only (on the thread): [`Pool::cache_sync`] sets it to
//!   `WORD_IN_USE`, `State::materialize` lowers it with `WORD_IN_USE`; the thread keeps its drift,
//!   `WORD_IN_USE - WORD_SYNCED`, within its budgets;
//! - `WORD_CLASSES + c` (from [`WORD_CLASSES`]): Buffers of cache class `c` lent from the cache,
//!   one word for each of at most [`CACHE_CLASSES`]; the core lowers it too as it makes a loan of
//!   the class ordinary;
//! - `WORD_ENTRIES + e` (from [`WORD_ENTRIES`], a line boundary): the length of the Buffer lent
//!   from entry `e`, with [`ENTRY_TRACKED`] if leak detection sampled it, and 0 while the entry's
//!   slot or mapping is in the cache; one word for each of at most [`MAX_ENTRIES`]. The core
//!   clears it as it makes the loan ordinary.
//!
//! The block is [`BLOCK_BYTES`] long. JavaScript names a cache loan by its entry and class
//! ([`CLASS_SPAN`]); how many entries of a class a cache keeps is [`capacity_of`] to begin with
//! and [`max_capacity_of`] at most, and one fill hands over at most [`FILL_BATCH`].
//!
//! [`Pool::cache_sync`]: crate::pool::Pool::cache_sync

use std::sync::atomic::{AtomicI32, Ordering};

use crate::size_class::{CLASS_COUNT, CLASS_SIZES};

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
pub(super) const ENTRY_LEN_MASK: i32 = ENTRY_TRACKED - 1;
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
pub(super) const MOVE_MAX: usize = crate::size_class::SMALL_MAX;
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
/// Most slots one [`Pool::cache_fill`](crate::pool::Pool::cache_fill) hands over.
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
    pub(super) fn new() -> Self {
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

    pub(super) fn word(&self, word: usize) -> &AtomicI32 {
        &self.lines[word / LINE_WORDS].0[word % LINE_WORDS]
    }

    pub(super) fn get(&self, word: usize) -> i32 {
        self.word(word).load(Ordering::Acquire)
    }

    pub(super) fn set(&self, word: usize, value: i32) {
        self.word(word).store(value, Ordering::Release);
    }

    /// Sets a word the core writes, only if it changes (a store takes the line from the thread).
    pub(super) fn update(&self, word: usize, value: i32) {
        if self.get(word) != value {
            self.set(word, value);
        }
    }

    pub(super) fn add(&self, word: usize, delta: i32) {
        self.word(word).fetch_add(delta, Ordering::AcqRel);
    }
}
