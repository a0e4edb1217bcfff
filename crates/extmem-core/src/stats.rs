//! The pool's figures. They are kept under the pool's lock and change only together with the
//! memory they describe, so every snapshot is exact, never an estimate.

/// Running counters of one pool.
///
/// Invariants, at every moment outside a pool operation:
/// - `reserved_bytes` = slab chunks + live mappings + cached mappings, and `<= max_bytes`;
/// - `in_use_bytes` = the sum of the live loans' capacities; `requested_bytes` the sum of their lengths;
/// - `external_bytes` = the lengths of the pool's live external ArrayBuffers: one per unbound
///   loan (its length), plus one per slot-bound ArrayBuffer (the slot's size) until it is collected;
/// - `allocations - releases - gc_reclaims` = live loans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Bytes held from the OS.
    pub reserved_bytes: usize,
    /// Bytes lent out, by slot or mapping capacity.
    pub in_use_bytes: usize,
    /// Bytes lent out, as asked.
    pub requested_bytes: usize,
    /// Bytes that V8 counts as external memory for this pool's Buffers.
    pub external_bytes: usize,
    /// Highest `in_use_bytes` seen.
    pub peak_in_use_bytes: usize,
    /// Successful allocations.
    pub allocations: u64,
    /// Loans ended by the release of their last reference.
    pub releases: u64,
    /// Loans ended by the finalizer of a Buffer collected without release.
    pub gc_reclaims: u64,
    /// Refused allocations, all reasons.
    pub failed_allocations: u64,
    /// Refused at the hard cap.
    pub refused_cap: u64,
    /// Refused by graded admission at warning or critical.
    pub refused_throttled: u64,
    /// Refused by graded admission at shedding.
    pub refused_shedding: u64,
    /// Refused by the OS (a failed `mmap`) although the cap allowed it.
    pub refused_os: u64,
    /// Tracked Buffers collected without release.
    pub leaks: u64,
    /// Loans parked for good (see [`Loan::parked`](crate::loan::Loan::parked)); they stay counted
    /// in `in_use_bytes` and the live loans.
    pub parked_buffers: usize,
    /// Capacity of the parked loans.
    pub parked_bytes: usize,
    /// Loans handed off by [`Pool::share`](crate::pool::Pool::share) and not yet adopted or
    /// reclaimed; they stay counted in `in_use_bytes` and the live loans.
    pub in_transit_buffers: usize,
    /// Requested bytes of the loans in transit.
    pub in_transit_bytes: usize,
    /// Pieces of released memory the quarantine holds (see [`crate::quarantine`]); their bytes
    /// stay reserved, and are neither in use nor free.
    pub quarantined_buffers: usize,
    /// Bytes the quarantine holds.
    pub quarantined_bytes: usize,
    /// Memory written to while the quarantine held it.
    pub misuses: u64,
}

/// Slot counts of one size class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassStats {
    /// Slot capacity.
    pub size: usize,
    /// Slots handed out.
    pub in_use: usize,
    /// Slots free in mapped chunks.
    pub free: usize,
    /// Slots threads' caches hold for their next Buffers.
    pub cached: usize,
}

/// A consistent snapshot of a pool.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolStats {
    /// The hard cap on `reserved_bytes`.
    pub max_bytes: usize,
    /// The counters.
    pub counters: Counters,
    /// Live Buffers.
    pub live_buffers: usize,
    /// Slots that threads' caches hold and no Buffer uses (reserved, not in use).
    pub cached_slots: usize,
    /// Their bytes.
    pub cached_bytes: usize,
    /// Per size class.
    pub classes: Vec<ClassStats>,
    /// Live large mappings.
    pub large_live: usize,
    /// Cached large mappings.
    pub large_cached: usize,
    /// Bytes of cached large mappings.
    pub large_cached_bytes: usize,
    /// The watermark level.
    pub level: crate::watermark::Level,
    /// Whether the pool is closed.
    pub closed: bool,
}
