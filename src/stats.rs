//! The JavaScript shape of a stats snapshot. Byte counts are numbers: exact below 2^53.

use napi_derive::napi;

use extmem_core::stats::PoolStats;

/// Slot counts of one size class.
#[napi(object)]
#[derive(Debug)]
pub struct JsClassStats {
    pub size: f64,
    pub in_use: f64,
    pub free: f64,
    /// Slots that threads' caches hold for their next Buffers.
    pub cached: f64,
}

/// The slab pool.
#[napi(object)]
#[derive(Debug)]
pub struct JsSmallStats {
    pub classes: Vec<JsClassStats>,
    /// Slots that threads' caches hold for their next Buffers (reserved, not in use).
    pub cached_slots: f64,
    pub cached_bytes: f64,
}

/// Large mappings.
#[napi(object)]
#[derive(Debug)]
pub struct JsLargeStats {
    pub live: f64,
    pub cached: f64,
    pub cached_bytes: f64,
}

/// Refused allocations by reason.
#[napi(object)]
#[derive(Debug)]
pub struct JsRefusedStats {
    /// At the hard cap (`ERR_EXTMEM_EXHAUSTED`).
    pub cap: f64,
    /// By graded admission at warning or critical (`ERR_EXTMEM_THROTTLED`).
    pub throttled: f64,
    /// By graded admission at shedding (`ERR_EXTMEM_EXHAUSTED`).
    pub shedding: f64,
    /// By the OS: a failed `mmap` (`ERR_EXTMEM_OS`).
    pub os: f64,
}

/// A consistent snapshot of a pool.
#[napi(object)]
#[derive(Debug)]
pub struct JsPoolStats {
    pub max_bytes: f64,
    pub reserved_bytes: f64,
    pub in_use_bytes: f64,
    pub requested_bytes: f64,
    pub external_bytes: f64,
    pub peak_in_use_bytes: f64,
    pub live_buffers: f64,
    pub allocations: f64,
    pub releases: f64,
    pub gc_reclaims: f64,
    pub failed_allocations: f64,
    pub refused: JsRefusedStats,
    pub leaks: f64,
    /// Buffers whose memory left their thread, which then ended: kept for good, never reused.
    pub parked_buffers: f64,
    pub parked_bytes: f64,
    /// Buffers handed off by `share()` and not yet adopted or reclaimed.
    pub in_transit_buffers: f64,
    pub in_transit_bytes: f64,
    /// Released memory a quarantine holds back (0 without one), and the writes it found.
    pub quarantined_buffers: f64,
    pub quarantined_bytes: f64,
    pub misuses: f64,
    pub level: String,
    pub utilization: f64,
    pub small: JsSmallStats,
    pub large: JsLargeStats,
    pub closed: bool,
}

impl From<PoolStats> for JsPoolStats {
    fn from(s: PoolStats) -> Self {
        let c = s.counters;
        JsPoolStats {
            max_bytes: s.max_bytes as f64,
            reserved_bytes: c.reserved_bytes as f64,
            in_use_bytes: c.in_use_bytes as f64,
            requested_bytes: c.requested_bytes as f64,
            external_bytes: c.external_bytes as f64,
            peak_in_use_bytes: c.peak_in_use_bytes as f64,
            live_buffers: s.live_buffers as f64,
            allocations: c.allocations as f64,
            releases: c.releases as f64,
            gc_reclaims: c.gc_reclaims as f64,
            failed_allocations: c.failed_allocations as f64,
            refused: JsRefusedStats {
                cap: c.refused_cap as f64,
                throttled: c.refused_throttled as f64,
                shedding: c.refused_shedding as f64,
                os: c.refused_os as f64,
            },
            leaks: c.leaks as f64,
            parked_buffers: c.parked_buffers as f64,
            parked_bytes: c.parked_bytes as f64,
            in_transit_buffers: c.in_transit_buffers as f64,
            in_transit_bytes: c.in_transit_bytes as f64,
            quarantined_buffers: c.quarantined_buffers as f64,
            quarantined_bytes: c.quarantined_bytes as f64,
            misuses: c.misuses as f64,
            level: s.level.name().into(),
            utilization: c.in_use_bytes as f64 / s.max_bytes as f64,
            small: JsSmallStats {
                classes: s
                    .classes
                    .into_iter()
                    .map(|k| JsClassStats {
                        size: k.size as f64,
                        in_use: k.in_use as f64,
                        free: k.free as f64,
                        cached: k.cached as f64,
                    })
                    .collect(),
                cached_slots: s.cached_slots as f64,
                cached_bytes: s.cached_bytes as f64,
            },
            large: JsLargeStats {
                live: s.large_live as f64,
                cached: s.large_cached as f64,
                cached_bytes: s.large_cached_bytes as f64,
            },
            closed: s.closed,
        }
    }
}
