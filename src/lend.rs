//! The external memory a loan is lent through: an ArrayBuffer on Node 22+ (transferred once and
//! witnessed, see [`escape`]), a Buffer on Node 20; and the test switch that makes Node-API refuse
//! to create either, as under a V8 sandbox.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};

use napi::sys;
use napi_derive::napi;

use crate::escape;
use crate::hint::{self, Hint};
use crate::raw;

/// Test switch: makes every external ArrayBuffer creation fail, as under a V8 sandbox.
static FAIL_EXTERNAL: AtomicBool = AtomicBool::new(false);

/// Makes the creation of external ArrayBuffers fail (`true`) or work again (`false`), process-wide.
/// For tests of the refusal path; not part of the public API.
#[napi(js_name = "failExternalForTesting")]
pub fn fail_external_for_testing(fail: bool) {
    FAIL_EXTERNAL.store(fail, Ordering::Relaxed);
}

/// An external ArrayBuffer over the `len` bytes at `addr`, to be lent on Node 22+: created with
/// `hint`'s finalizer, transferred once so that the one lent is not the one Node detaches at
/// teardown (see [`escape`]), with its witness. On failure every ArrayBuffer made is detached,
/// the hint is dropped (`Err(false)`) or, if Node took it, told that no loan is left to reclaim
/// (`Err(true)`); the caller takes the loan back.
///
/// # Safety
/// The current env is `env`, on Node 22+ ([`escape::can_escape`]); the memory is a live loan's
/// alone until the loan ends, which is only after its ArrayBuffers are detached or finalized;
/// `hint` came from [`Hint::into_raw`] and was not yet handed to Node.
pub unsafe fn external_arraybuffer(
    env: sys::napi_env,
    addr: *mut u8,
    len: usize,
    hint: *mut c_void,
) -> Result<(sys::napi_value, usize), bool> {
    let created = if FAIL_EXTERNAL.load(Ordering::Relaxed) {
        None
    } else {
        // SAFETY: per the contract; the finalizer frees `hint`.
        unsafe { raw::create_external_arraybuffer(env, addr, len, hint::finalize, hint) }
    };
    let Some(first) = created else {
        // SAFETY: `hint` came from `Hint::into_raw`, and Node did not take it.
        unsafe { Hint::drop_raw(hint) };
        return Err(false);
    };
    // Node owns the hint from here on; its finalizer accounts for the ArrayBuffer's bytes.
    // SAFETY: `first` is a live ArrayBuffer of the current env, on Node 22+.
    let lent = unsafe { escape::transfer(env, first, addr as usize, len) }.and_then(|ab| {
        // SAFETY: `ab` is a live ArrayBuffer of the current env.
        unsafe { escape::witness(env, ab) }.map(|w| (ab, w))
    });
    lent.ok_or_else(|| {
        // Take the memory back from every ArrayBuffer (detaching `first` again, after a failed
        // transfer, does nothing).
        // SAFETY: `first` is a live ArrayBuffer of the current env.
        unsafe { raw::detach(env, first) };
        // SAFETY: the hint is alive until its finalizer runs, on this thread, later.
        unsafe { Hint::set_token(hint, None) };
        true
    })
}

/// An external Buffer over the `len` bytes at `addr`, to be lent on Node 20, created with
/// `hint`'s finalizer; `None` if Node-API refused (then Node did not take `hint`: the caller
/// drops it). Only `alloc` asks the test switch (as it always did); `adopt` and `resizeEnd` make
/// their Node 20 Buffers with [`raw::create_external_buffer`] directly.
///
/// # Safety
/// The memory is a live loan's alone until the loan ends, which is only after its Buffer is
/// detached or finalized; `hint` came from [`Hint::into_raw`] and was not yet handed to Node.
pub unsafe fn external_buffer(
    env: sys::napi_env,
    addr: *mut u8,
    len: usize,
    hint: *mut c_void,
) -> Option<sys::napi_value> {
    if FAIL_EXTERNAL.load(Ordering::Relaxed) {
        return None;
    }
    // SAFETY: per the contract; the finalizer frees `hint`.
    unsafe { raw::create_external_buffer(env, addr, len, hint::finalize, hint) }
}
