//! Windows: `GetSystemInfo` for the page size, `GlobalMemoryStatusEx` for physical memory;
//! everything else is the [`fallback`](super::fallback).

pub(super) use super::fallback::{advise_huge_pages, grow, memory_limit, move_pages, now_ms, shrink};
use windows_sys::Win32::System::SystemInformation::{GetSystemInfo, GlobalMemoryStatusEx, MEMORYSTATUSEX, SYSTEM_INFO};

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
