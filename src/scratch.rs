//! A small Float64Array per thread through which native calls hand extra results to JavaScript
//! without allocating. A call writes one of the records below, each by a function of its own,
//! every figure at its named index (exported to JavaScript as `constants().scratch`, so that
//! `lib/` never writes a position):
//! - [`loan`]: `[token]`, after an allocation;
//! - [`bound_slot`] / [`bound_mapping`]: `[token, class, slot, epoch]` / `[token, len, addr,
//!   epoch]`, after an allocation whose ArrayBuffer JavaScript keeps for the slot's (mapping's)
//!   next loans;
//! - [`kept`]: `[KEPT_SLOT, class, slot, epoch]` / `[KEPT_MAPPING, len, addr, epoch]` /
//!   `[KEPT_NOTHING]`, after a last release: whether JavaScript keeps the ArrayBuffer it detached
//!   the Buffer to;
//! - [`refusal`] / [`os_refusal`]: `[cached elsewhere bytes (ERR_EXTMEM_EXHAUSTED only),
//!   requested bytes, available bytes, level index]` / `[0, requested bytes, errno, system call
//!   index]`;
//! - [`cache_id`]: `[id]`, after a thread cache opened.
//!
//! JavaScript reads it right after the call that wrote it, before any other native call.

use std::cell::Cell;

use napi::bindgen_prelude::Env;
use napi_derive::napi;

use crate::layout::{all_below, distinct};
use crate::raw::{self, RawValue};

/// Number of f64 slots JavaScript must provide.
pub const SCRATCH_LEN: usize = 4;

/// Index of a loan's token.
pub const TOKEN: usize = 0;
/// Index of a slot's class (after a slot-bound loan or a kept slot).
pub const CLASS: usize = 1;
/// Index of a slot's index in its class.
pub const SLOT: usize = 2;
/// Index of a mapping's length (after a mapping-bound loan or a kept mapping).
pub const MAPPING_LEN: usize = 1;
/// Index of a mapping's address.
pub const MAPPING_ADDR: usize = 2;
/// Index of a slot's or mapping's epoch: its kept ArrayBuffer lends it again only while it is
/// the newest.
pub const EPOCH: usize = 3;
/// Index of what a last release kept: [`KEPT_NOTHING`], [`KEPT_SLOT`] or [`KEPT_MAPPING`].
pub const KEPT: usize = 0;
/// Index of the bytes threads' caches held when the cap refused.
pub const CACHED_ELSEWHERE: usize = 0;
/// Index of the bytes a refused allocation asked for.
pub const REQUESTED: usize = 1;
/// Index of the bytes still available when the cap or admission refused.
pub const AVAILABLE: usize = 2;
/// Index of the OS's errno when it refused.
pub const ERRNO: usize = 2;
/// Index of the level of a refusal (its `Level` as a number).
pub const LEVEL: usize = 3;
/// Index of the system call that failed (see `constants().syscalls`).
pub const SYSCALL: usize = 3;
/// Index of a new thread cache's id.
pub const CACHE_ID: usize = 0;

/// A last release kept nothing: the ArrayBuffer it detached the Buffer to is dropped.
pub const KEPT_NOTHING: f64 = 0.0;
/// A last release kept the slot's ArrayBuffer for its next loan.
pub const KEPT_SLOT: f64 = 1.0;
/// A last release kept the mapping's ArrayBuffer for its next loan.
pub const KEPT_MAPPING: f64 = 2.0;

// Every index is a slot JavaScript provides, and the figures of one record never share one.
const _: () = {
    let all = [TOKEN, CLASS, SLOT, MAPPING_LEN, MAPPING_ADDR, EPOCH, KEPT, CACHED_ELSEWHERE, REQUESTED];
    assert!(all_below(all, SCRATCH_LEN), "a scratch index past the array JavaScript provides");
    assert!(all_below([AVAILABLE, ERRNO, LEVEL, SYSCALL, CACHE_ID], SCRATCH_LEN));
    assert!(distinct([TOKEN, CLASS, SLOT, EPOCH]), "a slot-bound loan's figures overlap");
    assert!(distinct([TOKEN, MAPPING_LEN, MAPPING_ADDR, EPOCH]), "a mapping-bound loan's figures overlap");
    assert!(distinct([KEPT, CLASS, SLOT, EPOCH]) && distinct([KEPT, MAPPING_LEN, MAPPING_ADDR, EPOCH]));
    assert!(distinct([CACHED_ELSEWHERE, REQUESTED, AVAILABLE, LEVEL]), "a refusal's figures overlap");
    assert!(distinct([CACHED_ELSEWHERE, REQUESTED, ERRNO, SYSCALL]), "an OS refusal's figures overlap");
    assert!(distinct([KEPT_NOTHING as usize, KEPT_SLOT as usize, KEPT_MAPPING as usize]));
};

thread_local! {
    /// The thread's scratch array; null until `bindScratch` ran on this thread.
    static SCRATCH: Cell<*mut f64> = const { Cell::new(std::ptr::null_mut()) };
}

/// Binds this thread's scratch array: a Float64Array of at least [`SCRATCH_LEN`] elements, kept
/// alive for the life of the thread's env.
#[napi(js_name = "bindScratch", ts_args_type = "array: Float64Array")]
pub fn bind_scratch(env: Env, array: RawValue) -> bool {
    // SAFETY: `array` is a live value of this env.
    let Some(info) = (unsafe { raw::view_info(env.raw(), array.0) }) else { return false };
    if info.len < SCRATCH_LEN || info.data % 8 != 0 {
        return false;
    }
    // SAFETY: as above; the strong reference is never deleted, so the array's memory stays valid
    // for as long as this env (and so this thread's JavaScript) runs.
    if unsafe { raw::strong_ref(env.raw(), array.0) }.is_none() {
        return false;
    }
    SCRATCH.with(|s| s.set(info.data as *mut f64));
    true
}

/// `[token]`: a new loan.
#[inline]
pub fn loan(token: u64) {
    let mut r = [0.0; TOKEN + 1];
    r[TOKEN] = token as f64;
    write(&r);
}

/// `[token, class, slot, epoch]`: a new loan bound to `slot` of `class`.
#[inline]
pub fn bound_slot(token: u64, class: usize, slot: u32, epoch: u64) {
    let mut r = [0.0; SCRATCH_LEN];
    (r[TOKEN], r[CLASS], r[SLOT], r[EPOCH]) = (token as f64, class as f64, f64::from(slot), epoch as f64);
    write(&r);
}

/// `[token, len, addr, epoch]`: a new loan bound to the mapping at `addr`.
#[inline]
pub fn bound_mapping(token: u64, len: usize, addr: usize, epoch: u64) {
    let mut r = [0.0; SCRATCH_LEN];
    (r[TOKEN], r[MAPPING_LEN], r[MAPPING_ADDR], r[EPOCH]) = (token as f64, len as f64, addr as f64, epoch as f64);
    write(&r);
}

/// What a last release keeps for the slot's or mapping's next loan.
#[derive(Debug, Clone, Copy)]
pub enum Keep {
    /// Nothing: the ArrayBuffer the Buffer was detached to is dropped.
    Nothing,
    /// The ArrayBuffer over slot `slot` of `class`, at `epoch`.
    Slot { class: usize, slot: u32, epoch: u64 },
    /// The ArrayBuffer over the mapping of `len` bytes at `addr`, at `epoch`.
    Mapping { len: usize, addr: usize, epoch: u64 },
}

/// `[KEPT_SLOT, class, slot, epoch]`, `[KEPT_MAPPING, len, addr, epoch]` or `[KEPT_NOTHING]`.
#[inline]
pub fn kept(keep: Keep) {
    let mut r = [0.0; SCRATCH_LEN];
    match keep {
        Keep::Nothing => {
            let mut r = [0.0; KEPT + 1];
            r[KEPT] = KEPT_NOTHING;
            return write(&r);
        }
        Keep::Slot { class, slot, epoch } => {
            (r[KEPT], r[CLASS], r[SLOT], r[EPOCH]) = (KEPT_SLOT, class as f64, f64::from(slot), epoch as f64);
        }
        Keep::Mapping { len, addr, epoch } => {
            (r[KEPT], r[MAPPING_LEN], r[MAPPING_ADDR], r[EPOCH]) =
                (KEPT_MAPPING, len as f64, addr as f64, epoch as f64);
        }
    }
    write(&r);
}

/// `[cached_elsewhere, requested, available, level]`: the cap or graded admission refused.
#[inline]
pub fn refusal(cached_elsewhere: usize, requested: usize, available: usize, level: u32) {
    let mut r = [0.0; SCRATCH_LEN];
    (r[CACHED_ELSEWHERE], r[REQUESTED], r[AVAILABLE], r[LEVEL]) =
        (cached_elsewhere as f64, requested as f64, available as f64, f64::from(level));
    write(&r);
}

/// `[0, requested, errno, syscall]`: the OS refused.
#[inline]
pub fn os_refusal(requested: usize, errno: i32, syscall: u32) {
    let mut r = [0.0; SCRATCH_LEN];
    (r[REQUESTED], r[ERRNO], r[SYSCALL]) = (requested as f64, f64::from(errno), f64::from(syscall));
    write(&r);
}

/// `[id]`: a new thread cache.
#[inline]
pub fn cache_id(id: u64) {
    let mut r = [0.0; CACHE_ID + 1];
    r[CACHE_ID] = id as f64;
    write(&r);
}

/// Writes `values` into the scratch array from slot 0.
#[inline]
fn write(values: &[f64]) {
    debug_assert!(values.len() <= SCRATCH_LEN);
    SCRATCH.with(|s| {
        let p = s.get();
        if !p.is_null() {
            // SAFETY: `p` is this thread's live scratch array of at least SCRATCH_LEN f64s.
            unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), p, values.len()) };
        }
    });
}
