//! Windows: `GetSystemInfo` for the page size, `GlobalMemoryStatusEx` for physical memory; the
//! clock is `Instant`; no container limit and no huge-page advice.

use std::sync::OnceLock;
use std::time::Instant;

use memmap2::MmapMut;
use windows_sys::Win32::System::SystemInformation::{GetSystemInfo, GlobalMemoryStatusEx, MEMORYSTATUSEX, SYSTEM_INFO};

pub(super) fn now_ms() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_millis() as u64
}

pub(super) fn page_size() -> Option<usize> {
    // SAFETY: SYSTEM_INFO is plain data, all zeroes a valid value; GetSystemInfo fills it.
    let mut info: SYSTEM_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid out-pointer.
    unsafe { GetSystemInfo(&mut info) };
    usize::try_from(info.dwPageSize).ok().filter(|&p| p > 0)
}

pub(super) fn physical_memory() -> Option<usize> {
    // SAFETY: MEMORYSTATUSEX is plain data, all zeroes a valid value.
    let mut status: MEMORYSTATUSEX = unsafe { std::mem::zeroed() };
    status.dwLength = std::mem::size_of::<MEMORYSTATUSEX>() as u32;
    // SAFETY: `status` is a valid out-pointer with its length set, as the call requires.
    let ok = unsafe { GlobalMemoryStatusEx(&mut status) } != 0;
    ok.then(|| usize::try_from(status.ullTotalPhys).unwrap_or(usize::MAX))
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
