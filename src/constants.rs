//! The facts JavaScript needs about the core, exported once so that `lib/` builds its tables from
//! them instead of writing them again: size classes, alignments, the flag bits of the hot-path
//! calls, level names, default watermarks and their check, limits, system call names, where each
//! figure sits in the scratch array and in a batch release's `io`, the thread cache's block, and
//! the hot-path functions with their arities.

use std::collections::BTreeMap;

use crate::exports;
use crate::flags::{FLAG_ALIGN_MASK, FLAG_ESSENTIAL, FLAG_PREFAULT, FLAG_SERVES_SMALL, FLAG_WILL_RETRY};
use crate::native_pool::JsWatermarks;
use crate::release_all;
use crate::scratch;
use extmem_core::error::Syscall;
use extmem_core::loan::MAX_REFS;
use extmem_core::pool::cache;
use extmem_core::size_class::{class_for, ALIGNMENTS, CLASS_SIZES, SMALL_MAX};
use extmem_core::watermark::{Level, Watermarks, WatermarksError};
use napi_derive::napi;

// `class_of` below holds class indexes as `u8`.
const _: () = assert!(CLASS_SIZES.len() <= u8::MAX as usize + 1, "a class index must fit the u8 class table");

/// The flag bits, by name.
#[napi(object)]
#[derive(Debug)]
pub struct JsFlags {
    pub align_mask: u32,
    pub essential: u32,
    pub prefault: u32,
    pub serves_small: u32,
    pub will_retry: u32,
}

/// The outcomes `releaseMany` and `finishMany` report per Buffer (see `release_all`), by name.
#[napi(object)]
#[derive(Debug)]
pub struct JsReleaseOutcomes {
    pub skipped: f64,
    pub retained: f64,
    pub last: f64,
    pub ended: f64,
    pub kept: f64,
    pub kept_mapping: f64,
    pub direct: f64,
}

/// Where each figure sits in the scratch array (see `scratch`), by name, and what a last release
/// kept.
#[napi(object)]
#[derive(Debug)]
pub struct JsScratchLayout {
    /// Numbers the scratch array holds.
    pub length: u32,
    pub token: u32,
    #[napi(js_name = "class")]
    pub class_index: u32,
    pub slot: u32,
    pub mapping_len: u32,
    pub mapping_addr: u32,
    pub epoch: u32,
    pub kept: u32,
    pub cached_elsewhere: u32,
    pub requested: u32,
    pub available: u32,
    pub errno: u32,
    pub level: u32,
    pub syscall: u32,
    pub cache_id: u32,
    /// The values at `kept`.
    pub kept_nothing: f64,
    pub kept_slot: f64,
    pub kept_mapping: f64,
}

/// Where each figure of one Buffer sits in the `io` of `releaseMany` and `finishMany` (see
/// `release_all`), by name: Buffer `i`'s figure `f` is at `stride * i + f`.
#[napi(object)]
#[derive(Debug)]
pub struct JsReleaseIo {
    pub stride: u32,
    pub token: u32,
    pub outcome: u32,
    pub length: u32,
    pub epoch: u32,
    #[napi(js_name = "class")]
    pub class_index: u32,
    pub slot: u32,
    pub mapping_len: u32,
    pub mapping_addr: u32,
}

/// The layout of a thread cache's block and its bounds (see `extmem_core::pool::cache`).
#[napi(object)]
#[derive(Debug)]
pub struct JsCacheLayout {
    pub gate: u32,
    pub flush: u32,
    pub in_use: u32,
    pub requested: u32,
    pub live: u32,
    pub allocations: u32,
    pub releases: u32,
    pub synced: u32,
    pub classes: u32,
    pub entries: u32,
    /// Words of the drift budgets: how far a cache may move its bytes in use up and down before it
    /// syncs again.
    pub drift_up: u32,
    pub drift_down: u32,
    /// Word of the large classes' gate.
    pub gate_large: u32,
    /// Bit of an entry word that says the Buffer lent is tracked.
    pub entry_tracked: u32,
    /// Most bytes a cache lends to Buffers of large classes at once.
    pub large_lent_max: u32,
    /// Entries a cache keeps per cache class to begin with (the small classes, then the large).
    pub capacity: Vec<u32>,
    /// Most slots a cache keeps per class once demand grew it.
    pub capacity_max: Vec<u32>,
    /// Most slots one `cacheFill` hands over.
    pub fill_batch: u32,
    /// Most slots one `cacheSync` call witnesses.
    pub sync_batch: u32,
    /// A Buffer's cache entry is `entry * class_span + class` in JavaScript.
    pub class_span: u32,
    /// Bytes of one cache's block (external memory, counted in the pool's `externalBytes`).
    pub block_bytes: u32,
}

/// Everything in this module's doc, as one object.
#[napi(object)]
#[derive(Debug)]
pub struct JsConstants {
    /// Slot sizes of the size classes, ascending.
    pub class_sizes: Vec<u32>,
    /// The class of every small request: at `align * (small_max + 1) + size` (for `align` the
    /// index of an alignment, `size` in 1..=small_max), the index of its class.
    pub class_of: Vec<u8>,
    /// The largest small size: larger Buffers get a mapping of their own.
    pub small_max: u32,
    /// Mapping lengths of the large classes, ascending (see `extmem_core::large::class_lens`):
    /// a Buffer of up to the last of them that keeps its ArrayBuffer maps its class's length.
    pub large_class_lens: Vec<f64>,
    /// The alignments `alloc` accepts; a Buffer's flag bits 0–1 are an index into them.
    pub alignments: Vec<u32>,
    pub flags: JsFlags,
    /// Level names by index, lowest first.
    pub levels: Vec<String>,
    /// The default watermark thresholds.
    pub watermarks: JsWatermarks,
    /// The most references one Buffer can hold.
    pub max_refs: f64,
    /// The options a named pool compares, in the order of `NativePool.named`'s bits and index.
    pub named_options: Vec<String>,
    /// System call names by index, as `ERR_EXTMEM_OS` reports them.
    pub syscalls: Vec<String>,
    pub release_outcomes: JsReleaseOutcomes,
    pub release_io: JsReleaseIo,
    pub scratch: JsScratchLayout,
    pub cache: JsCacheLayout,
    /// The hot-path functions the binding exports, by JavaScript name (`hot_alloc`, …), with the
    /// number of arguments each reads (see `exports`).
    pub functions: BTreeMap<String, u32>,
}

/// The constants.
#[napi]
pub fn constants() -> JsConstants {
    let [warning, critical, shedding, hysteresis] = Watermarks::default().values();
    JsConstants {
        class_sizes: CLASS_SIZES.iter().map(|&s| s as u32).collect(),
        class_of: ALIGNMENTS
            .iter()
            .flat_map(|&align| {
                (0..=SMALL_MAX).map(move |size| if size == 0 { 0 } else { class_for(size, align) as u8 })
            })
            .collect(),
        small_max: SMALL_MAX as u32,
        large_class_lens: extmem_core::large::class_lens().iter().map(|&l| l as f64).collect(),
        alignments: ALIGNMENTS.iter().map(|&a| a as u32).collect(),
        flags: JsFlags {
            align_mask: FLAG_ALIGN_MASK,
            essential: FLAG_ESSENTIAL,
            prefault: FLAG_PREFAULT,
            serves_small: FLAG_SERVES_SMALL,
            will_retry: FLAG_WILL_RETRY,
        },
        levels: Level::ALL.iter().map(|l| l.name().to_owned()).collect(),
        watermarks: JsWatermarks { warning, critical, shedding, hysteresis },
        max_refs: f64::from(MAX_REFS),
        named_options: crate::native_pool::NAMED_OPTIONS.iter().map(|&o| o.to_owned()).collect(),
        syscalls: Syscall::ALL.iter().map(|s| s.name().to_owned()).collect(),
        release_outcomes: JsReleaseOutcomes {
            skipped: release_all::SKIPPED,
            retained: release_all::RETAINED,
            last: release_all::LAST,
            ended: release_all::ENDED,
            kept: release_all::KEPT,
            kept_mapping: release_all::KEPT_MAPPING,
            direct: release_all::DIRECT,
        },
        release_io: JsReleaseIo {
            stride: release_all::IO_STRIDE as u32,
            token: release_all::IO_TOKEN as u32,
            outcome: release_all::IO_OUTCOME as u32,
            length: release_all::IO_LENGTH as u32,
            epoch: release_all::IO_EPOCH as u32,
            class_index: release_all::IO_CLASS as u32,
            slot: release_all::IO_SLOT as u32,
            mapping_len: release_all::IO_MAPPING_LEN as u32,
            mapping_addr: release_all::IO_MAPPING_ADDR as u32,
        },
        scratch: JsScratchLayout {
            length: scratch::SCRATCH_LEN as u32,
            token: scratch::TOKEN as u32,
            class_index: scratch::CLASS as u32,
            slot: scratch::SLOT as u32,
            mapping_len: scratch::MAPPING_LEN as u32,
            mapping_addr: scratch::MAPPING_ADDR as u32,
            epoch: scratch::EPOCH as u32,
            kept: scratch::KEPT as u32,
            cached_elsewhere: scratch::CACHED_ELSEWHERE as u32,
            requested: scratch::REQUESTED as u32,
            available: scratch::AVAILABLE as u32,
            errno: scratch::ERRNO as u32,
            level: scratch::LEVEL as u32,
            syscall: scratch::SYSCALL as u32,
            cache_id: scratch::CACHE_ID as u32,
            kept_nothing: scratch::KEPT_NOTHING,
            kept_slot: scratch::KEPT_SLOT,
            kept_mapping: scratch::KEPT_MAPPING,
        },
        cache: JsCacheLayout {
            gate: cache::WORD_GATE as u32,
            flush: cache::WORD_FLUSH as u32,
            in_use: cache::WORD_IN_USE as u32,
            requested: cache::WORD_REQUESTED as u32,
            live: cache::WORD_LIVE as u32,
            allocations: cache::WORD_ALLOCATIONS as u32,
            releases: cache::WORD_RELEASES as u32,
            synced: cache::WORD_SYNCED as u32,
            classes: cache::WORD_CLASSES as u32,
            entries: cache::WORD_ENTRIES as u32,
            drift_up: cache::WORD_DRIFT_UP as u32,
            drift_down: cache::WORD_DRIFT_DOWN as u32,
            gate_large: cache::WORD_GATE_LARGE as u32,
            entry_tracked: cache::ENTRY_TRACKED as u32,
            large_lent_max: cache::LARGE_LENT_MAX as u32,
            capacity: (0..cache::cache_classes()).map(|c| cache::capacity_of(c) as u32).collect(),
            capacity_max: (0..cache::cache_classes()).map(|c| cache::max_capacity_of(c) as u32).collect(),
            fill_batch: cache::FILL_BATCH as u32,
            sync_batch: crate::cache::SYNC_BATCH as u32,
            class_span: cache::CLASS_SPAN as u32,
            block_bytes: cache::BLOCK_BYTES as u32,
        },
        functions: exports::arities(),
    }
}

/// Checks watermark thresholds as the core does: `""` if they hold, else `"order"` (not
/// `0 < warning < critical < shedding <= 1`) or `"hysteresis"` (not `0 <= hysteresis < warning`).
#[napi(js_name = "checkWatermarks")]
pub fn check_watermarks(warning: f64, critical: f64, shedding: f64, hysteresis: f64) -> &'static str {
    match Watermarks::new(warning, critical, shedding, hysteresis) {
        Ok(_) => "",
        Err(WatermarksError::Order) => "order",
        Err(WatermarksError::Hysteresis) => "hysteresis",
    }
}
