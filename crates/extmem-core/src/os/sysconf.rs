//! What every Unix answers through `sysconf`: the page size and the number of physical pages.

pub(super) fn page_size() -> Option<usize> {
    // SAFETY: sysconf only reads system configuration.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()
}

/// Bytes of physical memory, as `_SC_PHYS_PAGES` pages (Linux, the BSDs; Apple has no such name).
#[cfg(not(target_vendor = "apple"))]
pub(super) fn physical_memory() -> Option<usize> {
    // SAFETY: sysconf only reads system configuration.
    let pages = usize::try_from(unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) }).ok()?;
    Some(pages.saturating_mul(page_size()?))
}
