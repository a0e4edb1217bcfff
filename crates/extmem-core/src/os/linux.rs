//! Linux: `CLOCK_MONOTONIC_COARSE`, `sysconf` (shared with the other Unixes), the cgroup memory
//! limit, `MADV_HUGEPAGE`, `mremap`.

use std::fs;

use memmap2::{Advice, MmapMut};

pub(super) use super::sysconf::{page_size, physical_memory};

/// `CLOCK_MONOTONIC_COARSE` costs a few nanoseconds (no syscall) and is precise to a few
/// milliseconds, which is all an age in milliseconds needs.
#[inline]
pub(super) fn now_ms() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_MONOTONIC_COARSE exists on every Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// The cgroup (v2 or v1) memory limit. v2 writes "max" for none; v1 a huge number.
pub(super) fn memory_limit() -> Option<usize> {
    ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .find_map(|s| s.trim().parse::<u64>().ok())
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

pub(super) fn advise_huge_pages(map: &MmapMut) {
    let _ = map.advise(Advice::HugePage);
}

pub(super) fn grow(map: &mut MmapMut, new_len: usize) -> bool {
    // SAFETY: an anonymous mapping (no file to run past), lengthened in place: every address into
    // it stays valid.
    unsafe { map.remap(new_len, memmap2::RemapOptions::new()) }.is_ok()
}

pub(super) unsafe fn shrink(map: &mut MmapMut, new_len: usize) -> bool {
    // SAFETY: an anonymous mapping (no file to run past), shortened in place; the caller keeps
    // the rest of the contract.
    unsafe { map.remap(new_len, memmap2::RemapOptions::new()) }.is_ok()
}

pub(super) unsafe fn move_pages(from: MmapMut, into: &mut MmapMut) -> Result<(), MmapMut> {
    // SAFETY: both ranges are mappings we own; the kernel moves `from`'s pages over the start of
    // `into` (unmapping what was there) and unmaps `from`, or fails and changes nothing.
    let moved = unsafe {
        libc::mremap(
            from.as_ptr() as *mut libc::c_void,
            from.len(),
            from.len(),
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            into.as_mut_ptr() as *mut libc::c_void,
        )
    };
    if moved == libc::MAP_FAILED {
        return Err(from);
    }
    // `from`'s range is unmapped now: its owner must not unmap it again (someone else may map
    // there next). `into` still owns exactly its own range, moved pages included.
    std::mem::forget(from);
    Ok(())
}
