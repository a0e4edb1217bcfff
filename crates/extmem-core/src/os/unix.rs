//! Other Unixes (macOS, the BSDs): `sysconf` for the page size, `hw.memsize` for physical memory
//! on Apple's systems (`sysconf` elsewhere); everything else is the [`fallback`](super::fallback).

pub(super) use super::fallback::{advise_huge_pages, grow, memory_limit, move_pages, now_ms, shrink};
pub(super) use super::sysconf::page_size;
#[cfg(not(target_vendor = "apple"))]
pub(super) use super::sysconf::physical_memory;

#[cfg(target_vendor = "apple")]
pub(super) fn physical_memory() -> Option<usize> {
    let mut bytes: u64 = 0;
    let mut len = std::mem::size_of::<u64>();
    // SAFETY: a NUL-terminated name, and an out-pointer of `len` bytes.
    let status = unsafe {
        libc::sysctlbyname(c"hw.memsize".as_ptr(), (&raw mut bytes).cast(), &mut len, std::ptr::null_mut(), 0)
    };
    (status == 0).then(|| usize::try_from(bytes).unwrap_or(usize::MAX))
}
