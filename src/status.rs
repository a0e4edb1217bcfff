//! Statuses the binding returns in place of a value, and the figures of a refusal that go with
//! them into scratch; the JavaScript layer maps each status to an error.

use napi_derive::napi;

use crate::scratch;
use extmem_core::error::PoolError;

/// The Buffer is not one this pool handed out.
#[napi]
pub const STATUS_NOT_POOLED: i32 = -1;
/// The pool is closed.
#[napi]
pub const STATUS_CLOSED: i32 = -2;
/// The reference count would overflow.
#[napi]
pub const STATUS_TOO_MANY_REFS: i32 = -3;
/// The cap refuses the allocation, or graded admission sheds it; scratch holds its figures
/// (`scratch::refusal`).
#[napi]
pub const STATUS_EXHAUSTED: i32 = -4;
/// Node-API refused to create an external Buffer (a V8 sandbox) or to detach it.
#[napi]
pub const STATUS_EXTERNAL_REFUSED: i32 = -5;

/// Graded admission refuses the allocation; scratch holds its figures (`scratch::refusal`).
#[napi]
pub const STATUS_THROTTLED: i32 = -6;

/// A kept slot ArrayBuffer can no longer be reused; drop it and allocate afresh.
#[napi]
pub const STATUS_STALE: i32 = -7;

/// An argument the JavaScript layer should have checked was not what the call takes.
#[napi]
pub const STATUS_BAD_ARGUMENT: i32 = -8;

/// The OS refused the memory; scratch holds its figures (`scratch::os_refusal`).
#[napi]
pub const STATUS_OS: i32 = -9;

/// The Buffer holds more than one reference, so it cannot be resized.
#[napi]
pub const STATUS_SHARED: i32 = -10;

/// A hand-off handle whose Buffer was already adopted or reclaimed.
#[napi]
pub const STATUS_HANDLE_USED: i32 = -11;

/// A hand-off handle this pool did not make.
#[napi]
pub const STATUS_BAD_HANDLE: i32 = -12;

/// Refused at the cap, uncounted, for a caller that asked to flush its thread's cache and ask
/// again (`AllocRequest::will_retry`).
#[napi]
pub const STATUS_RETRY: i32 = -13;

/// The status of a core refusal.
pub fn of(e: &PoolError) -> i32 {
    match e {
        PoolError::NotPooled => STATUS_NOT_POOLED,
        PoolError::Closed => STATUS_CLOSED,
        PoolError::TooManyRefs => STATUS_TOO_MANY_REFS,
        PoolError::Stale => STATUS_STALE,
        PoolError::Exhausted { .. } => STATUS_EXHAUSTED,
        PoolError::Throttled { .. } => STATUS_THROTTLED,
        PoolError::Os { .. } => STATUS_OS,
        PoolError::Shared => STATUS_SHARED,
        PoolError::HandleUsed => STATUS_HANDLE_USED,
        PoolError::BadHandle => STATUS_BAD_HANDLE,
    }
}

/// The status of a refusal, with its figures written to scratch (`scratch::refusal`,
/// `scratch::os_refusal`) (see the statuses above).
pub fn refusal(e: &PoolError) -> i32 {
    match *e {
        PoolError::Exhausted { requested, available, level, cached_elsewhere } => {
            scratch::refusal(cached_elsewhere, requested, available, level as u32)
        }
        PoolError::Throttled { requested, available, level } => scratch::refusal(0, requested, available, level as u32),
        PoolError::Os { requested, syscall, errno } => scratch::os_refusal(requested, errno, syscall as u32),
        _ => {}
    }
    of(e)
}
