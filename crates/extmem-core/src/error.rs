//! Why a pool operation was refused. Every refusal leaves the pool exactly as it was.

use std::fmt;

use crate::watermark::Level;

/// A refused pool operation. The binding maps each variant to a status, and the JavaScript layer
/// each status to one `ERR_*` code and its message (the only place the texts are written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolError {
    /// The memory cannot be had within `maxBytes` (`ERR_EXTMEM_EXHAUSTED`).
    /// Also the refusal of a normal-priority allocation at the shedding level.
    Exhausted {
        /// Bytes asked for.
        requested: usize,
        /// Bytes of the cap not held from the OS, after cached memory was given back.
        available: usize,
        /// The watermark level when it was refused.
        level: Level,
        /// Bytes of slots that threads' caches held (not lent) when it was refused. The refusing
        /// thread gives its own cache back before its last try, so these are other threads':
        /// they come back at each of those threads' next call.
        cached_elsewhere: usize,
    },
    /// Graded admission refuses the allocation at this level (`ERR_EXTMEM_THROTTLED`).
    Throttled {
        /// Bytes asked for.
        requested: usize,
        /// Bytes of the cap not held from the OS.
        available: usize,
        /// The watermark level when it was refused.
        level: Level,
    },
    /// The Buffer was not handed out by this pool (`ERR_EXTMEM_NOT_POOLED`).
    NotPooled,
    /// The pool is closed (`ERR_EXTMEM_CLOSED`).
    Closed,
    /// One Buffer holds as many references as a `u32` counts (`ERR_OUT_OF_RANGE`).
    TooManyRefs,
    /// The Buffer holds more than one reference, so it cannot be resized or handed off
    /// (`ERR_EXTMEM_SHARED`).
    Shared,
    /// A hand-off handle whose Buffer was already adopted or reclaimed (`ERR_EXTMEM_HANDLE_USED`).
    HandleUsed,
    /// A hand-off handle that this pool did not make: forged, or another pool's
    /// (`ERR_EXTMEM_INVALID_HANDLE`).
    BadHandle,
    /// A slot cannot be reused through a kept ArrayBuffer: it is taken, or a newer ArrayBuffer
    /// was made over it. Internal: the caller drops the ArrayBuffer and allocates afresh.
    Stale,
    /// The OS refused the memory although the cap allowed it (`ERR_EXTMEM_OS`).
    Os {
        /// Bytes asked for.
        requested: usize,
        /// The call that failed.
        syscall: Syscall,
        /// Its `errno` (positive; 0 if the OS gave none).
        errno: i32,
    },
}

/// A system call the pool makes, as an [`PoolError::Os`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syscall {
    /// Mapping anonymous memory: a slab chunk or a large Buffer's own mapping.
    Mmap,
}

impl Syscall {
    /// Every call, in the order of their indexes (`as usize`).
    pub const ALL: [Syscall; 1] = [Syscall::Mmap];

    /// The call's name, as Node names system calls in its errors.
    pub fn name(self) -> &'static str {
        match self {
            Syscall::Mmap => "mmap",
        }
    }
}

impl PoolError {
    /// The refusal of `requested` bytes because `syscall` failed with `error`.
    #[cold]
    pub fn os(requested: usize, syscall: Syscall, error: &std::io::Error) -> PoolError {
        PoolError::Os { requested, syscall, errno: error.raw_os_error().unwrap_or(0) }
    }
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Exhausted { requested, available, level, cached_elsewhere } => write!(
                f,
                "cannot lend {requested} bytes within the cap: {available} bytes available at level {level} \
                 ({cached_elsewhere} bytes cached by other threads)"
            ),
            PoolError::Throttled { requested, available, level } => write!(
                f,
                "admission refuses {requested} bytes at level {level} ({available} bytes of the cap available)"
            ),
            PoolError::NotPooled => f.write_str("the buffer was not handed out by this pool"),
            PoolError::Closed => f.write_str("the pool is closed"),
            PoolError::TooManyRefs => f.write_str("the buffer holds as many references as a u32 counts"),
            PoolError::Shared => f.write_str("the buffer holds more than one reference"),
            PoolError::HandleUsed => f.write_str("the hand-off handle was already adopted or reclaimed"),
            PoolError::BadHandle => f.write_str("the hand-off handle was not made by this pool"),
            PoolError::Stale => f.write_str("the kept ArrayBuffer no longer names a free slot or mapping"),
            PoolError::Os { requested, syscall, errno } => write!(
                f,
                "{} failed for {requested} bytes: {}",
                syscall.name(),
                std::io::Error::from_raw_os_error(*errno)
            ),
        }
    }
}

impl std::error::Error for PoolError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_without_a_trailing_period() {
        let all = [
            PoolError::Exhausted { requested: 10, available: 4, level: Level::Shedding, cached_elsewhere: 0 },
            PoolError::Throttled { requested: 10, available: 4, level: Level::Warning },
            PoolError::NotPooled,
            PoolError::Closed,
            PoolError::TooManyRefs,
            PoolError::Shared,
            PoolError::HandleUsed,
            PoolError::BadHandle,
            PoolError::Stale,
            PoolError::Os { requested: 10, syscall: Syscall::Mmap, errno: 12 },
        ];
        for e in all {
            let m = e.to_string();
            assert!(m.starts_with(|c: char| c.is_lowercase()) && !m.ends_with('.'), "{m:?}");
        }
        let e: Box<dyn std::error::Error> = Box::new(PoolError::Closed);
        assert_eq!(e.to_string(), "the pool is closed");
        assert!(PoolError::Os { requested: 10, syscall: Syscall::Mmap, errno: 12 }
            .to_string()
            .starts_with("mmap failed"));
    }
}
