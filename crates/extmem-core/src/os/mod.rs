//! What the core asks of the operating system, one file per family, as memmap2 splits `unix.rs`
//! from `windows.rs`: a coarse monotonic clock, the page size, physical memory and the memory
//! limit a container sets, the huge-page advice for large mappings, and resizing a mapping without
//! copying its pages.
//!
//! Linux has all of them; elsewhere the clock is [`std::time::Instant`], there is no container
//! limit, no huge-page advice (the mapping works the same without it), and no resizing in place
//! (the caller copies instead): those fallbacks are one file, `fallback.rs`, that the other
//! platforms share, as the Unixes share `sysconf.rs`.

#[cfg(not(target_os = "linux"))]
mod fallback;
#[cfg(unix)]
mod sysconf;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as imp;

#[cfg(all(unix, not(target_os = "linux")))]
mod unix;
#[cfg(all(unix, not(target_os = "linux")))]
use unix as imp;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

use std::sync::OnceLock;

use memmap2::MmapMut;

/// Milliseconds on a monotonic clock with an arbitrary origin, precise to a few milliseconds.
#[inline]
pub fn now_ms() -> u64 {
    imp::now_ms()
}

/// The size of a page of memory, from the OS (4 KiB on x86-64, 16 KiB on Apple silicon).
pub fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| imp::page_size().filter(|&p| p.is_power_of_two()).unwrap_or(4096))
}

/// Bytes of physical memory, if the OS says.
pub fn physical_memory() -> Option<usize> {
    imp::physical_memory()
}

/// The memory limit of the container the process runs in (a cgroup on Linux), if any.
pub fn memory_limit() -> Option<usize> {
    imp::memory_limit()
}

/// Asks for transparent huge pages on `map` (Linux, where they are often in `madvise` mode). Advice
/// only: a kernel without them refuses it, and the mapping works the same.
pub fn advise_huge_pages(map: &MmapMut) {
    imp::advise_huge_pages(map)
}

/// Lengthens `map` to `new_len` bytes in place, if the addresses after it are free (`mremap` on
/// Linux); the new bytes read as zero. `false` (and `map` unchanged) otherwise.
pub fn grow(map: &mut MmapMut, new_len: usize) -> bool {
    debug_assert!(new_len >= map.len());
    imp::grow(map, new_len)
}

/// Shortens `map` to `new_len` bytes in place (`mremap` on Linux). `false` (and `map` unchanged)
/// if the OS cannot, or has no such call.
///
/// # Safety
/// Nothing uses the memory past `new_len` from now on.
pub unsafe fn shrink(map: &mut MmapMut, new_len: usize) -> bool {
    debug_assert!(new_len <= map.len());
    // SAFETY: per the contract.
    unsafe { imp::shrink(map, new_len) }
}

/// Moves the pages of `from` into the start of `into` without copying (`mremap` with
/// `MREMAP_FIXED` on Linux), replacing what `into` had there; `from`'s range is then unmapped and
/// `into` owns the pages. Gives `from` back untouched if the OS cannot (or has no such call).
///
/// # Safety
/// `into` is at least as long as `from`, and nothing uses an address into `from` from now on.
pub unsafe fn move_pages(from: MmapMut, into: &mut MmapMut) -> Result<(), MmapMut> {
    debug_assert!(into.len() >= from.len());
    // SAFETY: per the contract.
    unsafe { imp::move_pages(from, into) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_never_goes_back() {
        let a = now_ms();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = now_ms();
        assert!(b >= a + 10, "{a} then {b}");
    }

    #[test]
    fn the_os_answers() {
        assert!(page_size() >= 4096 && page_size().is_power_of_two());
        assert!(physical_memory().is_some_and(|m| m >= 64 << 20));
    }
}
