//! The pool's figures. They are kept under the pool's lock and change only together with the
//! memory they describe, so every snapshot is exact, never an estimate.

/// Running counters of one pool.
///
/// Invariants, at every moment outside a pool operation:
/// - `reserved_bytes` = slab chunks + live mappings + cached mappings, and `<= max_bytes`;
/// - `in_use_bytes` = the sum of the live loans' capacities; `requested_bytes` the sum of their lengths;
/// - `external_bytes` = the lengths of the pool's live external ArrayBuffers: one per unbound
///   loan (its length), plus one per slot-bound ArrayBuffer (the slot's size) until it is collected;
/// - `allocations - releases - gc_reclaims` = live loans;
/// - `failed_allocations` = the sum of the `refused_*` counters;
/// - `parked_*`, `in_transit_*` and `quarantined_*` describe exactly the loans parked, the loans in
///   transit and the memory the quarantine holds.
///
/// The fields are public to read; they change only through the methods of this file (one per
/// kind of change, each beside the invariant it keeps), as mimalloc moves every statistic through
/// one pair of helpers.
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

/// The bytes one ordinary loan accounts for: what `Counters::lend` adds when it begins and
/// `Counters::end` takes away when it ends (see [`Loan::bytes`](crate::loan::Loan::bytes)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoanBytes {
    /// Bytes of its slot or mapping.
    pub capacity: usize,
    /// Bytes its Buffer asked for.
    pub requested: usize,
    /// Bytes its own Buffer adds to external memory (0 when it uses a bound ArrayBuffer).
    pub external: usize,
}

/// Why an allocation was refused, as the counters tell refusals apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// At the hard cap (`refused_cap`).
    Cap,
    /// By graded admission at warning or critical (`refused_throttled`).
    Throttled,
    /// By graded admission at shedding (`refused_shedding`).
    Shedding,
    /// By the OS (`refused_os`).
    Os,
}

/// Every change of the counters goes through one of these, beside the invariant it keeps (see
/// [`Counters`]); the pool calls them under its lock together with the change of the memory they
/// describe, and no other code writes a field.
impl Counters {
    /// `bytes` more are held from the OS (a slab chunk or a mapping was mapped, or a mapping
    /// grew). Keeps `reserved_bytes` = chunks + live mappings + cached mappings; the caller made
    /// room under `max_bytes` first.
    #[inline]
    pub(crate) fn reserve(&mut self, bytes: usize) {
        self.reserved_bytes += bytes;
    }

    /// `bytes` went back to the OS (chunks trimmed, mappings unmapped or shortened). Keeps
    /// `reserved_bytes` = chunks + live mappings + cached mappings.
    #[inline]
    pub(crate) fn unreserve(&mut self, bytes: usize) {
        self.reserved_bytes -= bytes;
    }

    /// A loan began: one more allocation, and its bytes join those in use, requested and
    /// external. Keeps `in_use_bytes` and `requested_bytes` the sums over the live loans and
    /// `allocations - releases - gc_reclaims` the live loans (once the loan's end is counted by
    /// [`Counters::count_release`] or [`Counters::count_reclaim`]).
    #[inline]
    pub(crate) fn lend(&mut self, loan: LoanBytes) {
        self.allocations += 1;
        self.in_use_bytes += loan.capacity;
        self.requested_bytes += loan.requested;
        self.external_bytes += loan.external;
    }

    /// A loan ended (or an allocation is undone): its bytes leave those in use, requested and
    /// external; how it ended is counted apart. Keeps the sums over the live loans.
    #[inline]
    pub(crate) fn end(&mut self, loan: LoanBytes) {
        self.in_use_bytes -= loan.capacity;
        self.requested_bytes -= loan.requested;
        self.external_bytes -= loan.external;
    }

    /// A live loan's bytes changed from `from` to `to` (a resize, or a mapping it keeps longer).
    /// Keeps the sums over the live loans.
    #[inline]
    pub(crate) fn resize(&mut self, from: LoanBytes, to: LoanBytes) {
        self.in_use_bytes = self.in_use_bytes + to.capacity - from.capacity;
        self.requested_bytes = self.requested_bytes + to.requested - from.requested;
        self.external_bytes = self.external_bytes + to.external - from.external;
    }

    /// A cache loan became an ordinary loan of `loan`'s bytes: they join those in use and
    /// requested. Its allocation is not counted again: the cache's block counted it, and
    /// [`Counters::fold`] brings it here.
    #[inline]
    pub(crate) fn materialize(&mut self, loan: LoanBytes) {
        self.in_use_bytes += loan.capacity;
        self.requested_bytes += loan.requested;
        self.external_bytes += loan.external;
    }

    /// An allocation is taken back as if it had never happened (its loan's bytes left by
    /// [`Counters::end`]). Keeps `allocations - releases - gc_reclaims` the live loans.
    #[inline]
    pub(crate) fn uncount_allocation(&mut self) {
        self.allocations -= 1;
    }

    /// A loan ended by the release of its last reference. Keeps `allocations - releases -
    /// gc_reclaims` the live loans.
    #[inline]
    pub(crate) fn count_release(&mut self) {
        self.releases += 1;
    }

    /// A loan ended because its Buffer was collected without release; a `leak` if leak
    /// detection tracked it. Keeps `allocations - releases - gc_reclaims` the live loans.
    #[inline]
    pub(crate) fn count_reclaim(&mut self, leak: bool) {
        self.gc_reclaims += 1;
        self.leaks += u64::from(leak);
    }

    /// Lends and releases that threads' caches counted in their blocks join the core's.
    #[inline]
    pub(crate) fn fold(&mut self, allocations: u64, releases: u64) {
        self.allocations += allocations;
        self.releases += releases;
    }

    /// An ArrayBuffer over a whole slot or mapping of `bytes` (bound, or a cache's) is made: its
    /// bytes count as external until [`Counters::uncount_external`]. Keeps `external_bytes` the
    /// lengths of the pool's live external ArrayBuffers.
    #[inline]
    pub(crate) fn count_external(&mut self, bytes: usize) {
        self.external_bytes += bytes;
    }

    /// Such an ArrayBuffer of `bytes` was finalized, or is never made after all.
    #[inline]
    pub(crate) fn uncount_external(&mut self, bytes: usize) {
        self.external_bytes -= bytes;
    }

    /// Bytes in use, all of them (the core's loans and the Buffers lent from caches), are
    /// `in_use` now: the peak follows. Keeps `peak_in_use_bytes` the highest seen.
    #[inline]
    pub(crate) fn note_peak(&mut self, in_use: usize) {
        self.peak_in_use_bytes = self.peak_in_use_bytes.max(in_use);
    }

    /// An allocation was refused, for `reason`. Keeps `failed_allocations` the sum of the
    /// `refused_*` counters.
    #[inline]
    pub(crate) fn count_refusal(&mut self, reason: Refused) {
        self.failed_allocations += 1;
        match reason {
            Refused::Cap => self.refused_cap += 1,
            Refused::Throttled => self.refused_throttled += 1,
            Refused::Shedding => self.refused_shedding += 1,
            Refused::Os => self.refused_os += 1,
        }
    }

    /// A live loan of `capacity` bytes is parked for good: it stays in use and live, and is
    /// counted among the parked from now on.
    #[inline]
    pub(crate) fn park(&mut self, capacity: usize) {
        self.parked_buffers += 1;
        self.parked_bytes += capacity;
    }

    /// A live loan of `requested` bytes went in transit, and its Buffer (which added `external`
    /// bytes) with it: it stays in use and live, and counts in transit until
    /// [`Counters::adopt`] or [`Counters::unsend`].
    #[inline]
    pub(crate) fn send(&mut self, requested: usize, external: usize) {
        self.external_bytes -= external;
        self.in_transit_buffers += 1;
        self.in_transit_bytes += requested;
    }

    /// A loan in transit of `requested` bytes was adopted by a new Buffer of that length, which
    /// counts as external.
    #[inline]
    pub(crate) fn adopt(&mut self, requested: usize) {
        self.external_bytes += requested;
        self.in_transit_buffers -= 1;
        self.in_transit_bytes -= requested;
    }

    /// A loan in transit of `requested` bytes leaves transit with no Buffer (it is reclaimed).
    #[inline]
    pub(crate) fn unsend(&mut self, requested: usize) {
        self.in_transit_buffers -= 1;
        self.in_transit_bytes -= requested;
    }

    /// Memory was written to while the quarantine held it.
    #[inline]
    pub(crate) fn count_misuse(&mut self) {
        self.misuses += 1;
    }

    /// The quarantine holds `buffers` pieces of memory, `bytes` in all, now.
    #[inline]
    pub(crate) fn set_quarantined(&mut self, buffers: usize, bytes: usize) {
        self.quarantined_buffers = buffers;
        self.quarantined_bytes = bytes;
    }

    /// These counters with the Buffers that threads' caches lend added (their bytes `in_use` and
    /// `requested`, and their lends and releases not folded yet), and the peak raised to the
    /// total in use: the figures a snapshot shows.
    pub(crate) fn with_lent(&self, in_use: usize, requested: usize, allocations: u64, releases: u64) -> Counters {
        let mut c = self.clone();
        c.in_use_bytes += in_use;
        c.requested_bytes += requested;
        c.allocations += allocations;
        c.releases += releases;
        c.note_peak(c.in_use_bytes);
        c
    }
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
