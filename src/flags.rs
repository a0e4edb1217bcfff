//! The bits of the `flags` argument of the hot-path calls that allocate (see [`crate::call`]),
//! exported to JavaScript by `constants().flags`.

/// Bits 0–1 index `extmem_core::size_class::ALIGNMENTS`.
pub const FLAG_ALIGN_MASK: u32 = 0b11;
/// Essential priority.
pub const FLAG_ESSENTIAL: u32 = 0b100;
/// Prefault a new large mapping.
pub const FLAG_PREFAULT: u32 = 0b1000;
/// The memory serves small Buffers (a fast-path arena).
pub const FLAG_SERVES_SMALL: u32 = 0b1_0000;
/// On a refusal at the cap the caller flushes its thread's cache and asks again (see
/// `AllocRequest::will_retry`).
pub const FLAG_WILL_RETRY: u32 = 0b10_0000;
