//! A small Float64Array per thread through which native calls hand extra results to JavaScript
//! without allocating. Each call documents what it writes; in short:
//! - after an allocation: `[token]`, or for a slot-bound one `[token, class, slot, epoch]`;
//! - after a refusal: `[cached elsewhere bytes (ERR_EXTMEM_EXHAUSTED only), requested bytes,
//!   available bytes, level index]`;
//! - after a last release: `[1, class, slot, epoch]` when JavaScript must detach the Buffer by
//!   transferring its ArrayBuffer (and may keep the new one for the slot), else `[0]`.
//!
//! JavaScript reads it right after the call that wrote it, before any other native call.

use std::cell::Cell;

use napi::bindgen_prelude::Env;
use napi_derive::napi;

use crate::raw::{self, RawValue};

/// Number of f64 slots JavaScript must provide.
const SCRATCH_LEN: usize = 4;

thread_local! {
    /// The thread's scratch array; null until `bindScratch` ran on this thread.
    static SCRATCH: Cell<*mut f64> = const { Cell::new(std::ptr::null_mut()) };
}

/// Binds this thread's scratch array: a Float64Array of at least 4 elements, kept alive for the
/// life of the thread's env.
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

/// Writes `values` into the scratch array from slot 0.
#[inline]
pub fn write(values: &[f64]) {
    debug_assert!(values.len() <= SCRATCH_LEN);
    SCRATCH.with(|s| {
        let p = s.get();
        if !p.is_null() {
            // SAFETY: `p` is this thread's live scratch array of at least SCRATCH_LEN f64s.
            unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), p, values.len()) };
        }
    });
}
