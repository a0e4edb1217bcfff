//! What a pool is asked and answers: its set-up, the requests, the grants and what each
//! operation did. Plain data: the rules live with [`Pool`] and its state.

use crate::admission::{Admission, Priority};
use crate::loan::Holder;
use crate::quarantine::QuarantineConfig;
use crate::size_class::MIN_ALIGN;
use crate::slab::Slot;
use crate::watermark::Watermarks;

use super::MappingRef;
// For the documentation's links only.
#[cfg(doc)]
use super::Pool;
#[cfg(doc)]
use crate::{large, loan::Loan};

/// How a pool is set up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolConfig {
    /// The hard cap on memory held from the OS.
    pub max_bytes: usize,
    /// Level thresholds.
    pub watermarks: Watermarks,
    /// Admission policy.
    pub admission: Admission,
    /// Whether released memory is held back, poisoned, before it is lent again, and how long (a
    /// debug mode; see [`crate::quarantine`]).
    pub quarantine: Option<QuarantineConfig>,
}

impl PoolConfig {
    /// A cap with default watermarks, graded admission and no quarantine.
    pub fn with_max_bytes(max_bytes: usize) -> Self {
        PoolConfig { max_bytes, watermarks: Watermarks::default(), admission: Admission::Graded, quarantine: None }
    }
}

/// One allocation request.
#[derive(Debug, Clone)]
pub struct AllocRequest {
    /// Bytes (at least 1).
    pub size: usize,
    /// Whether to zero-fill.
    pub zero: bool,
    /// Alignment of the first byte: 8, 64 or 4096.
    pub align: usize,
    /// Admission priority.
    pub priority: Priority,
    /// Whether leak detection tracks the Buffer: its collection without release is a leak.
    pub tracked: bool,
    /// The caller makes one ArrayBuffer over the whole slot or mapping that outlives this loan
    /// (to be reused by [`Pool::reuse`] or [`Pool::reuse_mapping`]). Its `capacity` bytes count as
    /// external from now until [`Pool::slot_buffer_finalized`] or
    /// [`Pool::mapping_buffer_finalized`], instead of `size` bytes for this loan only. A large
    /// one maps its class's length (see [`large::class_len`]).
    pub bind: bool,
    /// For a new large mapping: fault all its pages in now (`MAP_POPULATE`).
    pub prefault: bool,
    /// The memory will be carved into small Buffers (a fast-path arena): graded admission judges
    /// it as one small allocation, whatever its size.
    pub serves_small: bool,
    /// On a refusal at the cap the caller gives back what its thread's cache holds and asks
    /// again: this refusal is not counted (the second one is).
    pub will_retry: bool,
}

impl AllocRequest {
    /// `size` bytes, 8-aligned, normal priority, untracked.
    pub fn new(size: usize, zero: bool) -> Self {
        AllocRequest {
            size,
            zero,
            align: MIN_ALIGN,
            priority: Priority::Normal,
            tracked: false,
            bind: false,
            prefault: false,
            serves_small: false,
            will_retry: false,
        }
    }
}

/// Memory handed out by [`Pool::alloc`].
#[derive(Debug, Clone, Copy)]
pub struct Grant {
    /// Names the loan in later calls.
    pub token: u64,
    /// First byte of the memory, valid for the requested length until the loan ends.
    pub addr: *mut u8,
    /// Bytes of the slot or mapping.
    pub capacity: usize,
    /// The slab slot and the epoch of the ArrayBuffer to make over it; `None` for a mapping.
    pub slot: Option<SlotRef>,
    /// For a bound mapping (see [`AllocRequest::bind`]): it, and the epoch of the ArrayBuffer to
    /// make over all of it (or, after [`Pool::reuse_mapping`], of the one kept).
    pub mapping: Option<MappingRef>,
    /// External bytes counted from now on for a new ArrayBuffer bound to the slot (see
    /// [`AllocRequest::bind`]); [`Pool::undo_alloc`] takes them back if it is never made.
    pub bound_bytes: usize,
}

/// A slab slot and the epoch of the newest ArrayBuffer over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotRef {
    /// Size class index.
    pub class: usize,
    /// The slot.
    pub slot: Slot,
    /// Epoch of the newest ArrayBuffer over the slot.
    pub epoch: u64,
}

/// What [`Pool::finish_release`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// The loan's holder.
    pub holder: Holder,
    /// The slot it held, with the epoch of the newest ArrayBuffer over it.
    pub slot: Option<SlotRef>,
    /// Whether the loan used an ArrayBuffer bound to its slot (see [`AllocRequest::bind`]), which
    /// the caller may keep to lend the slot again through [`Pool::reuse`].
    pub bound: bool,
    /// The mapping it held through an ArrayBuffer bound to it, which the caller may keep to lend
    /// the mapping again through [`Pool::reuse_mapping`].
    pub mapping: Option<MappingRef>,
}

/// What became of a loan whose last ArrayBuffer was finalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reclaimed {
    /// It ended: its memory is the pool's again.
    Ended(Holder),
    /// It may still be reachable from another thread: parked for good.
    Parked(Holder),
}

/// What [`Pool::release`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// References remain; the count is given.
    Retained(u32),
    /// This was the last reference. Nothing has changed yet: the caller makes the Buffer
    /// unreachable (detaches it), then calls [`Pool::finish_release`].
    Last(Holder),
}

/// A live loan, as [`Pool::live`] lists it.
#[derive(Debug, Clone)]
pub struct LiveLoan {
    /// Length.
    pub size: usize,
    /// Milliseconds since allocation.
    pub age_ms: u64,
    /// References held.
    pub refs: u32,
    /// Address of the first byte.
    pub address: usize,
    /// Whether leak detection tracks it.
    pub tracked: bool,
    /// The token of its loan.
    pub token: u64,
    /// Whether it is parked (see [`Loan::parked`]).
    pub parked: bool,
    /// Whether it is in transit between threads (see [`Pool::share`]).
    pub in_transit: bool,
}

/// Figures of a set of loans: see [`Pool::figures_of`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoanFigures {
    /// Live loans among the tokens.
    pub loans: usize,
    /// Their bytes in use: slot sizes, or mapping lengths.
    pub in_use_bytes: usize,
    /// Their bytes requested.
    pub requested_bytes: usize,
}
