//! What a platform without Linux's calls does (the other Unixes, Windows): the clock is
//! [`Instant`], there is no container limit and no huge-page advice (a mapping works the same
//! without it), and no mapping is resized in place or has its pages moved (the caller copies).

use std::sync::OnceLock;
use std::time::Instant;

use memmap2::MmapMut;

pub(super) fn now_ms() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_millis() as u64
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
