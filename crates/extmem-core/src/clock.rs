//! The clock loans are timed with: coarse and cheap (see [`os::now_ms`](crate::os::now_ms)).

/// Milliseconds on a monotonic clock with an arbitrary origin, precise to a few milliseconds.
#[inline]
pub fn now_ms() -> u64 {
    crate::os::now_ms()
}
