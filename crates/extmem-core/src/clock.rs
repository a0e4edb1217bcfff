//! A cheap monotonic clock for loan ages: `CLOCK_MONOTONIC_COARSE` costs a few nanoseconds (no
//! syscall) and is precise to a few milliseconds, which is all an age in milliseconds needs.

/// Milliseconds on a monotonic clock with an arbitrary origin.
#[inline]
pub fn now_ms() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_MONOTONIC_COARSE exists on every Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

#[cfg(test)]
mod tests {
    #[test]
    fn never_goes_back() {
        let a = super::now_ms();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = super::now_ms();
        assert!(b >= a + 10, "{a} then {b}");
    }
}
