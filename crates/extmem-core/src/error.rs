//! Why a pool operation was refused. Every refusal leaves the pool exactly as it was.

use std::fmt;

use crate::watermark::Level;

/// A refused pool operation. The binding maps each variant to one stable `ERR_*` code.
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
    /// The Buffer is a view of a pooled Buffer, which never owns (`ERR_EXTMEM_VIEW_OWNERSHIP`).
    View,
    /// The Buffer's last reference was already released (`ERR_EXTMEM_RELEASED`).
    Released,
    /// The pool is closed (`ERR_EXTMEM_CLOSED`).
    Closed,
    /// One Buffer holds as many references as a `u32` counts (`ERR_OUT_OF_RANGE`).
    TooManyRefs,
    /// A slot cannot be reused through a kept ArrayBuffer: it is taken, or a newer ArrayBuffer
    /// was made over it. Internal: the caller drops the ArrayBuffer and allocates afresh.
    Stale,
}

impl PoolError {
    /// The Node-style error code.
    pub fn code(&self) -> &'static str {
        match self {
            PoolError::Exhausted { .. } => "ERR_EXTMEM_EXHAUSTED",
            PoolError::Throttled { .. } => "ERR_EXTMEM_THROTTLED",
            PoolError::NotPooled => "ERR_EXTMEM_NOT_POOLED",
            PoolError::View => "ERR_EXTMEM_VIEW_OWNERSHIP",
            PoolError::Released => "ERR_EXTMEM_RELEASED",
            PoolError::Closed => "ERR_EXTMEM_CLOSED",
            PoolError::TooManyRefs => "ERR_OUT_OF_RANGE",
            PoolError::Stale => "ERR_EXTMEM_STALE",
        }
    }
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Exhausted { requested, available, level } => write!(
                f,
                "cannot allocate {requested} bytes: {available} bytes of the pool's maxBytes are available (level {level})"
            ),
            PoolError::Throttled { requested, level, .. } => {
                write!(f, "allocation of {requested} bytes throttled at level {level}")
            }
            PoolError::NotPooled => f.write_str("the Buffer was not allocated by this pool"),
            PoolError::View => f.write_str(
                "the Buffer is a view (subarray or slice) of a pooled Buffer; only the Buffer that alloc returned can be retained or released",
            ),
            PoolError::Released => f.write_str("the Buffer was already released"),
            PoolError::Closed => f.write_str("the pool is closed"),
            PoolError::TooManyRefs => f.write_str("the Buffer's reference count would exceed 4294967295"),
            PoolError::Stale => f.write_str("the kept ArrayBuffer no longer owns its slot"),
        }
    }
}

impl std::error::Error for PoolError {}
