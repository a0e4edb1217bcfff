//! Other Unixes (macOS, the BSDs): `sysconf` for the page size, `hw.memsize` / `hw.physmem` for
//! physical memory; the clock is `Instant`; no container limit and no huge-page advice.

use std::sync::OnceLock;
use std::time::Instant;

use memmap2::MmapMut;

pub(super) fn now_ms() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_millis() as u64
}

pub(super) fn page_size() -> Option<usize> {
    // SAFETY: sysconf only reads system configuration.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()
}

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

#[cfg(not(target_vendor = "apple"))]
pub(super) fn physical_memory() -> Option<usize> {
    // SAFETY: sysconf only reads system configuration.
    let pages = usize::try_from(unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) }).ok()?;
    Some(pages.saturating_mul(page_size()?))
}

pub(super) fn memory_limit() -> Option<usize> {
    None
}

pub(super) fn advise_huge_pages(_map: &MmapMut) {}

pub(super) fn grow(_map: &mut MmapMut, _new_len: usize) -> bool {
    false
}

pub(super) unsafe fn shrink(_map: &mut MmapMut, _new_len: usize) -> bool {
    false
}

pub(super) unsafe fn move_pages(from: MmapMut, _into: &mut MmapMut) -> Result<(), MmapMut> {
    Err(from)
}
