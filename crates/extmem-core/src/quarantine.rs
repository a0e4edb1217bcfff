//! The quarantine: released memory held back, filled with a poison byte, before it can be lent
//! again (a debug mode, as AddressSanitizer's quarantine is).
//!
//! A Buffer's release detaches every ArrayBuffer over its memory, so JavaScript cannot reach it
//! again; native code that took the address earlier (a socket write in progress, a read queued in
//! the thread pool) still can. Held here, such a late reader sees the poison byte instead of the
//! next owner's bytes, and a late writer changes the poison, which [`Quarantine::take_due`] and
//! the others report when the memory leaves.
//!
//! ## Invariants
//! - Memory leaves no earlier than `releases` later releases of its size and `min_ms` after its
//!   own, unless the caller takes it out to make room under its cap ([`Quarantine::take_oldest`])
//!   or empties it ([`Quarantine::take_all`]).
//! - Sizes are kept apart: a size's releases count only toward its own memory, and one size with
//!   few releases holds back none of the others.
//! - While held, memory is all [`POISON`] unless something wrote to it after its release.

use std::collections::{HashMap, VecDeque};

/// The byte released memory is filled with while it is held.
pub const POISON: u8 = 0xDD;

/// How long memory is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarantineConfig {
    /// Releases of the same size that must follow before memory leaves.
    pub releases: u32,
    /// Milliseconds that must pass after its release before memory leaves.
    pub min_ms: u64,
}

impl Default for QuarantineConfig {
    fn default() -> Self {
        QuarantineConfig { releases: 256, min_ms: 100 }
    }
}

/// Memory held, with what the caller needs to give it back.
#[derive(Debug)]
pub struct Held<T> {
    /// The caller's record of the memory.
    pub item: T,
    /// Its first byte.
    pub addr: usize,
    /// Its length (the size it is counted under).
    pub len: usize,
    /// Milliseconds (on the caller's clock) of its release.
    pub at_ms: u64,
    /// Releases of its size up to and including its own.
    seq: u64,
}

/// Memory that leaves the quarantine, and the offset of its first byte that is not [`POISON`]
/// any more (`None`: nothing wrote to it while it was held).
pub type Leaving<T> = (Held<T>, Option<usize>);

#[derive(Debug, Default)]
struct Size<T> {
    releases: u64,
    held: VecDeque<Held<T>>,
}

/// Memory held back after release, per size, oldest first.
#[derive(Debug)]
pub struct Quarantine<T> {
    config: QuarantineConfig,
    sizes: HashMap<usize, Size<T>>,
    bytes: usize,
    count: usize,
}

impl<T> Quarantine<T> {
    /// An empty quarantine.
    pub fn new(config: QuarantineConfig) -> Self {
        Quarantine { config, sizes: HashMap::new(), bytes: 0, count: 0 }
    }

    /// Its settings.
    pub fn config(&self) -> QuarantineConfig {
        self.config
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Pieces of memory held.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Fills `len` bytes at `addr` with [`POISON`] and holds them, with `item`, from `now_ms`.
    ///
    /// # Safety
    /// The memory is mapped and stays mapped while it is held, and no Rust reference to it is
    /// live: its loan has ended, so only native code that kept its address may still touch it.
    pub unsafe fn hold(&mut self, item: T, addr: usize, len: usize, now_ms: u64) {
        // SAFETY: per the contract; bytes, so any alignment will do.
        unsafe { std::ptr::write_bytes(addr as *mut u8, POISON, len) };
        let size = self.sizes.entry(len).or_insert_with(|| Size { releases: 0, held: VecDeque::new() });
        size.releases += 1;
        size.held.push_back(Held { item, addr, len, at_ms: now_ms, seq: size.releases });
        self.bytes += len;
        self.count += 1;
    }

    /// Takes out the memory of size `len` that has served its time at `now_ms`, oldest first.
    pub fn take_due(&mut self, len: usize, now_ms: u64) -> Vec<Leaving<T>> {
        let config = self.config;
        let mut out = Vec::new();
        if let Some(size) = self.sizes.get_mut(&len) {
            while let Some(h) = size.held.front() {
                let due = size.releases - h.seq >= u64::from(config.releases)
                    && now_ms.saturating_sub(h.at_ms) >= config.min_ms;
                if !due {
                    break;
                }
                out.push(size.held.pop_front().expect("a front"));
            }
        }
        self.leave(out)
    }

    /// Takes out the oldest memory, of any size, until at least `bytes` have left (or none is
    /// left): for room under a cap, before an allocation would be refused.
    pub fn take_oldest(&mut self, bytes: usize) -> Vec<Leaving<T>> {
        let mut out = Vec::new();
        let mut freed = 0;
        while freed < bytes {
            let oldest = self
                .sizes
                .iter()
                .filter_map(|(&len, s)| s.held.front().map(|h| (h.at_ms, h.seq, len)))
                .min()
                .map(|(_, _, len)| len);
            let Some(len) = oldest else { break };
            let h = self.sizes.get_mut(&len).and_then(|s| s.held.pop_front()).expect("a front");
            freed += h.len;
            out.push(h);
        }
        self.leave(out)
    }

    /// Takes out everything held.
    pub fn take_all(&mut self) -> Vec<Leaving<T>> {
        let mut out: Vec<Held<T>> = self.sizes.values_mut().flat_map(|s| s.held.drain(..)).collect();
        out.sort_by_key(|h| h.at_ms);
        self.leave(out)
    }

    fn leave(&mut self, out: Vec<Held<T>>) -> Vec<Leaving<T>> {
        out.into_iter()
            .map(|h| {
                self.bytes -= h.len;
                self.count -= 1;
                // SAFETY: held memory stays mapped until the caller gives it back, which it does
                // only after this (see `hold`).
                let changed = unsafe { first_changed(h.addr, h.len) };
                (h, changed)
            })
            .collect()
    }
}

/// The offset of the first byte of `len` at `addr` that is not [`POISON`].
///
/// # Safety
/// The memory is mapped. Native code may still write to it: it is read with volatile loads, as
/// memory another party shares.
unsafe fn first_changed(addr: usize, len: usize) -> Option<usize> {
    let word = u64::from_ne_bytes([POISON; 8]);
    let words = len / 8;
    let base = addr as *const u64;
    for i in 0..words {
        // SAFETY: in bounds of the mapped memory; slot and mapping addresses are 8-aligned.
        let w = unsafe { std::ptr::read_volatile(base.add(i)) };
        if w != word {
            let bytes = w.to_ne_bytes();
            return Some(i * 8 + bytes.iter().position(|&b| b != POISON).expect("a byte differs"));
        }
    }
    (words * 8..len).find(|&i| {
        // SAFETY: in bounds of the mapped memory.
        unsafe { std::ptr::read_volatile((addr as *const u8).add(i)) != POISON }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(n: usize) -> Vec<u64> {
        vec![0u64; n.div_ceil(8)]
    }

    #[test]
    fn memory_leaves_only_after_enough_releases_of_its_size_and_enough_time() {
        let mut q = Quarantine::new(QuarantineConfig { releases: 2, min_ms: 100 });
        let mut a = memory(64);
        let mut b = memory(64);
        let mut c = memory(64);
        let mut other = memory(128);
        // SAFETY: each vector outlives the quarantine's use of it, and nothing else touches it.
        unsafe {
            q.hold("a", a.as_mut_ptr() as usize, 64, 0);
            q.hold("other", other.as_mut_ptr() as usize, 128, 0);
            q.hold("b", b.as_mut_ptr() as usize, 64, 0);
        }
        assert_eq!((q.len(), q.bytes()), (3, 256));
        // One later release of its size, and time enough: not yet.
        assert!(q.take_due(64, 1_000).is_empty());
        // SAFETY: as above.
        unsafe { q.hold("c", c.as_mut_ptr() as usize, 64, 50) };
        // Two later releases, too early.
        assert!(q.take_due(64, 99).is_empty());
        let out = q.take_due(64, 100);
        assert_eq!(out.iter().map(|(h, _)| h.item).collect::<Vec<_>>(), ["a"]);
        assert_eq!(out[0].1, None);
        // Another size's releases never count toward this one.
        assert!(q.take_due(128, 1_000).is_empty());
        assert_eq!((q.len(), q.bytes()), (3, 256));
    }

    #[test]
    fn held_memory_is_poisoned_and_a_write_to_it_is_found_where_it_happened() {
        let mut q = Quarantine::new(QuarantineConfig { releases: 0, min_ms: 0 });
        let mut m = memory(100);
        let addr = m.as_mut_ptr() as usize;
        // SAFETY: `m` outlives the quarantine's use of it.
        unsafe { q.hold((), addr, 100, 0) };
        // SAFETY: in bounds; the quarantine holds no reference to it.
        let bytes = unsafe { std::slice::from_raw_parts_mut(addr as *mut u8, 100) };
        assert!(bytes.iter().all(|&b| b == POISON));
        bytes[61] = 7;
        let out = q.take_all();
        assert_eq!(out[0].1, Some(61));
        // A write in the tail that no whole word covers is found too.
        // SAFETY: as above.
        unsafe { q.hold((), addr, 100, 0) };
        // SAFETY: as above.
        unsafe { *(addr as *mut u8).add(99) = 0 };
        assert_eq!(q.take_due(100, 0)[0].1, Some(99));
    }

    #[test]
    fn room_is_made_from_the_oldest_memory_of_any_size() {
        let mut q = Quarantine::new(QuarantineConfig::default());
        let mut a = memory(64);
        let mut b = memory(4096);
        let mut c = memory(64);
        // SAFETY: each vector outlives the quarantine's use of it.
        unsafe {
            q.hold("a", a.as_mut_ptr() as usize, 64, 1);
            q.hold("b", b.as_mut_ptr() as usize, 4096, 2);
            q.hold("c", c.as_mut_ptr() as usize, 64, 3);
        }
        let out = q.take_oldest(100);
        assert_eq!(out.iter().map(|(h, _)| h.item).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!((q.len(), q.bytes()), (1, 64));
        assert_eq!(q.take_all().len(), 1);
        assert!(q.is_empty());
    }
}
