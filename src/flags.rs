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

// Every alignment has an index in the mask, and no two flags share a bit.
const _: () = assert!(
    extmem_core::size_class::ALIGNMENTS.len() <= FLAG_ALIGN_MASK as usize + 1,
    "an alignment index would not fit the mask"
);
const _: () = {
    let all = [FLAG_ALIGN_MASK, FLAG_ESSENTIAL, FLAG_PREFAULT, FLAG_SERVES_SMALL, FLAG_WILL_RETRY];
    let mut seen = 0;
    let mut i = 0;
    while i < all.len() {
        assert!(seen & all[i] == 0, "two flags share a bit");
        seen |= all[i];
        i += 1;
    }
};
