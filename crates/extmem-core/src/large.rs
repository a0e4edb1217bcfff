//! Large allocations: one page-aligned anonymous mapping each, and a bounded cache of released
//! mappings for reuse.
//!
//! Mappings of [`HUGE_PAGE_MIN`] or more are advised `MADV_HUGEPAGE` (transparent huge pages are
//! often in `madvise` mode, where only advised mappings get them). A mapping may be prefaulted
//! (`MAP_POPULATE`) so that its first touch costs no page faults. Cached mappings decay: one
//! unused for [`CACHE_DECAY_MS`] is unmapped at the pool's next large allocation or decay tick.
//!
//! A mapping is owned by one [`memmap2::MmapMut`] at every moment: by the loan that uses it, or by
//! the cache. Dropping the owner unmaps it; nothing else does.

use std::collections::{BTreeMap, VecDeque};
use std::io;

use memmap2::{MmapMut, MmapOptions};

use crate::os;

/// Most mappings the cache holds: enough for thousands of mid-size Buffers in flight (its bytes
/// are bounded apart, by the pool).
pub const CACHE_MAX_ENTRIES: usize = 4096;

/// Smallest mapping advised to use transparent huge pages: one huge page.
pub const HUGE_PAGE_MIN: usize = 2 * 1024 * 1024;

/// Milliseconds a cached mapping may stay unused before it is unmapped.
pub const CACHE_DECAY_MS: u64 = 10_000;

/// Rounds `size` up to a whole number of pages.
#[inline]
pub fn mapping_len(size: usize) -> usize {
    let page = os::page_size();
    size.div_ceil(page) * page
}

/// Largest size whose mapping is rounded up to a class (see [`class_lens`]).
pub const CLASS_MAX: usize = 1 << 20;

/// Mapping lengths of the large classes, ascending: four per doubling above
/// [`SMALL_MAX`](crate::size_class::SMALL_MAX) up to [`CLASS_MAX`], each a whole number of pages.
/// A Buffer that keeps its ArrayBuffer across loans (see `AllocRequest::bind`) gets a mapping of
/// its class's length, so that a kept ArrayBuffer serves any size of its class, as a slot does;
/// rounding up wastes less than a quarter, as the small classes do.
pub fn class_lens() -> &'static [usize] {
    static LENS: std::sync::OnceLock<Vec<usize>> = std::sync::OnceLock::new();
    LENS.get_or_init(|| {
        let mut lens: Vec<usize> = Vec::new();
        let mut base = crate::size_class::SMALL_MAX;
        while base < CLASS_MAX {
            for k in 1..=4 {
                let len = mapping_len(base + k * base / 4);
                if lens.last().is_none_or(|&last| len > last) {
                    lens.push(len);
                }
            }
            base *= 2;
        }
        lens
    })
}

/// The mapping length of a Buffer of `size` bytes (above `SMALL_MAX`) that keeps its ArrayBuffer
/// across loans: its class's length up to [`CLASS_MAX`], whole pages above.
pub fn class_len(size: usize) -> usize {
    let lens = class_lens();
    lens.get(lens.partition_point(|&len| len < size)).copied().unwrap_or_else(|| mapping_len(size))
}

/// Maps `len` bytes of fresh, zeroed anonymous memory, faulted in at once if `prefault`.
#[cold]
pub fn map(len: usize, prefault: bool) -> io::Result<MmapMut> {
    debug_assert_eq!(len % os::page_size(), 0);
    let mut options = MmapOptions::new();
    options.len(len);
    if prefault {
        // MAP_POPULATE on Linux; memmap2 ignores it elsewhere, where the first touch faults.
        options.populate();
    }
    let map = options.map_anon()?;
    if len >= HUGE_PAGE_MIN {
        os::advise_huge_pages(&map);
    }
    Ok(map)
}

/// Released mappings kept for reuse, binned by length, each with the time it was released (in
/// [`os::now_ms`] milliseconds) and its place in the order of release.
///
/// It holds a thread's working set of mid sizes: taking and putting back cost a lookup among the
/// bins that fit (at most a quarter more than asked, so a few bins), not a scan of every entry.
///
/// Invariants: `bytes` is the sum of the lengths of the entries, and never exceeds `max_bytes`;
/// there are at most [`CACHE_MAX_ENTRIES`] entries; every bin is non-empty and ordered by release,
/// oldest first; `count` is the number of entries.
#[derive(Debug)]
pub struct MappingCache {
    bins: BTreeMap<usize, VecDeque<Cached>>,
    count: usize,
    bytes: usize,
    max_bytes: usize,
    next_seq: u64,
}

/// A cached mapping, when it was released, and its place in the order of release.
#[derive(Debug)]
struct Cached {
    map: MmapMut,
    released_ms: u64,
    seq: u64,
}

impl MappingCache {
    /// An empty cache that holds at most `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        MappingCache { bins: BTreeMap::new(), count: 0, bytes: 0, max_bytes, next_seq: 0 }
    }

    /// Takes the most recently released mapping of at least `len` bytes and at most a quarter more,
    /// so that reuse never wastes more than rounding a small size to its class does.
    pub fn take(&mut self, len: usize) -> Option<MmapMut> {
        let limit = len + len / 4;
        let (&bin, _) = self.bins.range(len..=limit).max_by_key(|(_, q)| q.back().map_or(0, |c| c.seq))?;
        let c = self.pop(bin, false);
        Some(c.map)
    }

    /// Takes the most recently released mapping of exactly `len` bytes (a class's length: one of
    /// another length may be bound to an ArrayBuffer a thread keeps for its own class).
    pub fn take_exact(&mut self, len: usize) -> Option<MmapMut> {
        let q = self.bins.get_mut(&len)?;
        let c = q.pop_back().expect("bins are never empty");
        if q.is_empty() {
            self.bins.remove(&len);
        }
        self.count -= 1;
        self.bytes -= c.map.len();
        Some(c.map)
    }

    /// Bytes it holds at most.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Takes the mapping at `addr` of exactly `len` bytes, if it is here.
    pub fn take_at(&mut self, addr: usize, len: usize) -> Option<MmapMut> {
        let q = self.bins.get_mut(&len)?;
        let i = q.iter().rposition(|c| c.map.as_ptr() as usize == addr)?;
        let c = q.remove(i).expect("just found");
        if q.is_empty() {
            self.bins.remove(&len);
        }
        self.count -= 1;
        self.bytes -= c.map.len();
        Some(c.map)
    }

    /// Removes the newest (or, `oldest`, the oldest) entry of the bin `bin`, which exists.
    fn pop(&mut self, bin: usize, oldest: bool) -> Cached {
        let q = self.bins.get_mut(&bin).expect("a bin that exists");
        let c = if oldest { q.pop_front() } else { q.pop_back() }.expect("bins are never empty");
        if q.is_empty() {
            self.bins.remove(&bin);
        }
        self.count -= 1;
        self.bytes -= c.map.len();
        c
    }

    /// The bin of the entry released first.
    fn oldest_bin(&self) -> Option<usize> {
        self.bins.iter().min_by_key(|(_, q)| q.front().map_or(u64::MAX, |c| c.seq)).map(|(&bin, _)| bin)
    }

    /// Unmaps the mappings released more than [`CACHE_DECAY_MS`] before `now`; returns the bytes
    /// unmapped, which leave the pool's reserved memory.
    #[must_use = "the bytes unmapped leave the pool's reserved memory"]
    pub fn expire(&mut self, now: u64) -> usize {
        let old: Vec<usize> = self
            .bins
            .iter()
            .filter(|(_, q)| q.front().is_some_and(|c| now.saturating_sub(c.released_ms) > CACHE_DECAY_MS))
            .map(|(&bin, _)| bin)
            .collect();
        let mut unmapped = 0;
        for bin in old {
            while self
                .bins
                .get(&bin)
                .and_then(|q| q.front())
                .is_some_and(|c| now.saturating_sub(c.released_ms) > CACHE_DECAY_MS)
            {
                unmapped += self.pop(bin, true).map.len();
            }
        }
        unmapped
    }

    /// Keeps `map` for reuse, unmapping the oldest entries to make room, or unmaps `map` itself
    /// if it can never fit. Returns the bytes unmapped, which leave the pool's reserved memory.
    #[must_use = "the bytes unmapped leave the pool's reserved memory"]
    pub fn put(&mut self, map: MmapMut, now: u64) -> usize {
        if map.len() > self.max_bytes {
            return map.len();
        }
        let mut unmapped = 0;
        while self.bytes + map.len() > self.max_bytes || self.count >= CACHE_MAX_ENTRIES {
            let bin = self.oldest_bin().expect("over a bound, so not empty");
            unmapped += self.pop(bin, true).map.len();
        }
        self.bytes += map.len();
        self.count += 1;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bins.entry(map.len()).or_default().push_back(Cached { map, released_ms: now, seq });
        unmapped
    }

    /// Unmaps every cached mapping; returns the bytes given back.
    pub fn clear(&mut self) -> usize {
        let freed = self.bytes;
        self.bins.clear();
        self.count = 0;
        self.bytes = 0;
        freed
    }

    /// Number of cached mappings.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes held by cached mappings.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_up_to_pages() {
        assert_eq!(mapping_len(8193), 8193usize.div_ceil(os::page_size()) * os::page_size());
        assert_eq!(mapping_len(os::page_size() * 4), os::page_size() * 4);
    }

    #[test]
    fn cache_reuses_most_recent_fitting_mapping() {
        let mut c = MappingCache::new(1 << 20);
        let a = map(16 * os::page_size(), false).unwrap();
        let b = map(16 * os::page_size(), false).unwrap();
        let b_addr = b.as_ptr();
        assert_eq!(c.put(a, 0), 0);
        assert_eq!(c.put(b, 0), 0);
        assert_eq!(c.bytes(), 32 * os::page_size());
        assert!(c.take(32 * os::page_size()).is_none(), "too small");
        assert!(c.take(8 * os::page_size()).is_none(), "too wasteful");
        assert_eq!(c.take(15 * os::page_size()).unwrap().as_ptr(), b_addr);
        assert_eq!(c.len(), 1);
        assert_eq!(c.clear(), 16 * os::page_size());
        assert!(c.is_empty());
    }

    #[test]
    fn cache_stays_within_its_bound() {
        let mut c = MappingCache::new(8 * os::page_size());
        let mut unmapped = 0;
        for _ in 0..5 {
            unmapped += c.put(map(3 * os::page_size(), false).unwrap(), 0);
            assert!(c.bytes() <= 8 * os::page_size());
        }
        assert_eq!(c.len(), 2);
        assert_eq!(unmapped, 3 * 3 * os::page_size(), "every eviction is reported");
        assert_eq!(c.put(map(9 * os::page_size(), false).unwrap(), 0), 9 * os::page_size(), "too large to keep");
        let mut many = MappingCache::new(1 << 30);
        let evicted: usize =
            (0..CACHE_MAX_ENTRIES + 3).map(|_| many.put(map(os::page_size(), false).unwrap(), 0)).sum();
        assert_eq!((many.len(), evicted), (CACHE_MAX_ENTRIES, 3 * os::page_size()));
    }

    #[test]
    fn large_classes_are_four_per_doubling_in_whole_pages() {
        let lens = class_lens();
        assert!(lens.windows(2).all(|w| w[0] < w[1] && w[1] <= w[0] * 3 / 2 + os::page_size()));
        assert!(lens.iter().all(|&l| l % os::page_size() == 0));
        assert_eq!(*lens.last().unwrap(), CLASS_MAX);
        assert_eq!(class_len(8193), lens[0]);
        assert_eq!(class_len(CLASS_MAX), CLASS_MAX);
        assert_eq!(class_len(CLASS_MAX + 1), mapping_len(CLASS_MAX + 1));
        for &l in lens {
            assert_eq!(class_len(l), l);
            assert_eq!(class_len(l - 1), l, "a size just below a class's length rounds up to it");
        }
    }

    #[test]
    fn a_mapping_is_taken_back_by_its_address() {
        let mut c = MappingCache::new(1 << 20);
        let a = map(4 * os::page_size(), false).unwrap();
        let b = map(4 * os::page_size(), false).unwrap();
        let (a_addr, b_addr) = (a.as_ptr() as usize, b.as_ptr() as usize);
        assert_eq!(c.put(a, 0) + c.put(b, 0), 0);
        assert!(c.take_at(a_addr, 5 * os::page_size()).is_none(), "only of exactly its length");
        assert_eq!(c.take_at(a_addr, 4 * os::page_size()).unwrap().as_ptr() as usize, a_addr);
        assert!(c.take_at(a_addr, 4 * os::page_size()).is_none(), "once");
        assert_eq!((c.len(), c.bytes()), (1, 4 * os::page_size()));
        assert_eq!(c.take(4 * os::page_size()).unwrap().as_ptr() as usize, b_addr);
    }

    #[test]
    fn cached_mappings_decay() {
        let mut c = MappingCache::new(1 << 30);
        assert_eq!(c.put(map(os::page_size(), false).unwrap(), 1_000), 0);
        assert_eq!(c.put(map(2 * os::page_size(), false).unwrap(), 5_000), 0);
        assert_eq!(c.expire(1_000 + CACHE_DECAY_MS), 0, "not yet");
        assert_eq!(c.expire(1_001 + CACHE_DECAY_MS), os::page_size(), "the older one goes");
        assert_eq!((c.len(), c.bytes()), (1, 2 * os::page_size()));
        assert_eq!(c.expire(u64::MAX), 2 * os::page_size());
        assert!(c.is_empty());
    }

    #[test]
    fn prefaulted_and_huge_mappings_work_as_plain_ones() {
        let mut m = map(HUGE_PAGE_MIN * 2, true).unwrap();
        m[0] = 1;
        m[HUGE_PAGE_MIN * 2 - 1] = 2;
        assert_eq!(m.iter().map(|&b| b as usize).sum::<usize>(), 3);
    }
}
