//! Whether pooled memory may have left its thread.
//!
//! On Node 22 and later any JavaScript can move an ArrayBuffer's memory to a new ArrayBuffer with
//! `ArrayBuffer.prototype.transfer()`, and post that one to another thread. Node runs the external
//! memory's finalizer once the last ArrayBuffer over it is gone, in whatever thread, which is
//! exact: except when the thread that made it ends. At a worker's teardown Node runs the
//! finalizers of all the external memory that worker made, even memory still alive in another
//! thread, and afterwards nothing ever tells when that memory is really free.
//!
//! So every ArrayBuffer the pool lends on Node 22+ has a *witness*: a weak reference to it, kept
//! with the loan. A finalizer that runs while the thread can still run JavaScript is exact, and
//! the loan ends. A finalizer that runs at teardown ends the loan only if its witness shows the
//! lent ArrayBuffer still alive and attached in this (dying) thread, so nothing else can hold
//! the memory; otherwise the memory may have moved out, and the loan is parked for good.
//!
//! The witness must name an ArrayBuffer that Node does not detach itself at teardown. Node
//! detaches the ArrayBuffer it made for the external memory (the first of the chain) before it
//! runs the finalizer; so the pool never lends that one: it transfers it once, at creation, and
//! lends the result ([`transfer`]).
//!
//! Node 20 has no `transfer()` and copies external ArrayBuffers on `postMessage`: memory cannot
//! leave its thread there, loans have no witness, and every finalizer ends its loan.

use std::cell::Cell;
use std::ptr;

use napi::sys;

use crate::raw;

thread_local! {
    /// `ArrayBuffer.prototype.transfer` of this thread's env, held by a strong reference; null on
    /// Node 20 (or before `init`).
    static TRANSFER: Cell<sys::napi_ref> = const { Cell::new(ptr::null_mut()) };
    /// Whether loans of this thread need witnesses: false on the main thread (see
    /// [`mark_main_thread`]).
    static NEEDS_WITNESS: Cell<bool> = const { Cell::new(true) };
}

/// Marks this thread as the process's main thread, whose loans need no witness: Node stops every
/// worker (`stop_sub_worker_contexts`) before the main env runs its cleanup and finalizers
/// (`FreeEnvironment`), so when the main env's finalizers run at teardown no other thread can
/// hold its memory any more. Saves a weak reference per Buffer put back and the GC's work on it.
#[napi_derive::napi(js_name = "markMainThread")]
pub fn mark_main_thread() {
    NEEDS_WITNESS.with(|w| w.set(false));
}

/// Looks up `ArrayBuffer.prototype.transfer` for this thread, at module load (before any user
/// code of this module can run). Returns whether the runtime has it.
///
/// # Safety
/// `env` is the current env.
pub unsafe fn init(env: sys::napi_env) -> bool {
    // SAFETY: per the contract; every out-pointer is a valid local.
    unsafe {
        let mut global = ptr::null_mut();
        let mut ctor = ptr::null_mut();
        let mut proto = ptr::null_mut();
        let mut transfer = ptr::null_mut();
        let mut kind = sys::ValueType::napi_undefined;
        let found = sys::napi_get_global(env, &mut global) == sys::Status::napi_ok
            && sys::napi_get_named_property(env, global, c"ArrayBuffer".as_ptr(), &mut ctor) == sys::Status::napi_ok
            && sys::napi_get_named_property(env, ctor, c"prototype".as_ptr(), &mut proto) == sys::Status::napi_ok
            && sys::napi_get_named_property(env, proto, c"transfer".as_ptr(), &mut transfer) == sys::Status::napi_ok
            && sys::napi_typeof(env, transfer, &mut kind) == sys::Status::napi_ok
            && kind == sys::ValueType::napi_function;
        if !found {
            return false;
        }
        let Some(r) = raw::strong_ref(env, transfer) else { return false };
        TRANSFER.with(|t| t.set(r));
        true
    }
}

/// Whether memory can leave its thread here (the runtime has `ArrayBuffer.prototype.transfer`).
pub fn can_escape() -> bool {
    TRANSFER.with(|t| !t.get().is_null())
}

/// `ab.transfer()`: a new ArrayBuffer over the same `len` bytes at `data`; `ab` is detached.
/// `None` if it failed, or gave anything else (`transfer` is looked up when this module loads:
/// code that patched it before that is not trusted with the memory).
///
/// # Safety
/// `env` is the current env, `ab` a live ArrayBuffer of it, and [`can_escape`] is true.
pub unsafe fn transfer(env: sys::napi_env, ab: sys::napi_value, data: usize, len: usize) -> Option<sys::napi_value> {
    let r = TRANSFER.with(Cell::get);
    // SAFETY: per the contract; `r` is a live strong reference of this env.
    unsafe {
        let mut f = ptr::null_mut();
        if r.is_null() || sys::napi_get_reference_value(env, r, &mut f) != sys::Status::napi_ok || f.is_null() {
            return None;
        }
        let mut out = ptr::null_mut();
        if sys::napi_call_function(env, ab, f, 0, ptr::null(), &mut out) != sys::Status::napi_ok || out.is_null() {
            return None;
        }
        (raw::arraybuffer_info(env, out) == Some((data, len))).then_some(out)
    }
}

/// A witness of `ab`: a weak reference to it, as a number for
/// [`Holder::witness`](extmem_core::loan::Holder::witness), or 0 on the main thread, which needs
/// none. `None` if it cannot be made.
///
/// # Safety
/// `env` is the current env and `ab` a live ArrayBuffer of it.
pub unsafe fn witness(env: sys::napi_env, ab: sys::napi_value) -> Option<usize> {
    if !NEEDS_WITNESS.with(Cell::get) {
        // The main thread: 0, a witness that says the memory cannot have left (see above).
        return Some(0);
    }
    let mut r = ptr::null_mut();
    // SAFETY: per the contract; `r` is a valid local.
    let status = unsafe { sys::napi_create_reference(env, ab, 0, &mut r) };
    (status == sys::Status::napi_ok && !r.is_null()).then_some(r as usize)
}

/// Deletes a witness made by [`witness`] (0: none). A failure leaves a dead weak reference, which
/// Node frees with the env; there is nothing else to do about it.
///
/// # Safety
/// `env` is the env that made it, on its thread; the witness is not used again.
pub unsafe fn forget(env: sys::napi_env, witness: usize) {
    if witness != 0 {
        // SAFETY: per the contract.
        unsafe { sys::napi_delete_reference(env, witness as sys::napi_ref) };
    }
}

/// Whether the memory a loan with `witness` lent may still be reachable from another thread
/// when its finalizer runs now: only at the teardown of the thread's env, and only if the lent
/// ArrayBuffer is gone or detached (its memory was moved out of it).
///
/// # Safety
/// `env` is the env that made the witness, on its thread, inside a finalizer.
pub unsafe fn may_be_reachable(env: sys::napi_env, witness: usize) -> bool {
    // SAFETY: per the contract.
    if witness == 0 || unsafe { can_run_js(env) } {
        return false;
    }
    let mut ab = ptr::null_mut();
    let mut detached = false;
    // SAFETY: a live reference of this env; valid out-pointers.
    unsafe {
        sys::napi_get_reference_value(env, witness as sys::napi_ref, &mut ab) != sys::Status::napi_ok
            || ab.is_null()
            || sys::napi_is_detached_arraybuffer(env, ab, &mut detached) != sys::Status::napi_ok
            || detached
    }
}

/// Whether `env` can still run JavaScript: false once Node tears it down (a worker that ended or
/// was terminated, or the process exiting). Node-API calls that may run JavaScript are refused
/// then; `napi_strict_equals` is one that runs none.
///
/// # Safety
/// `env` is the current env.
unsafe fn can_run_js(env: sys::napi_env) -> bool {
    let mut undefined = ptr::null_mut();
    let mut equal = false;
    // SAFETY: per the contract; valid out-pointers.
    unsafe {
        sys::napi_get_undefined(env, &mut undefined) == sys::Status::napi_ok
            && sys::napi_strict_equals(env, undefined, undefined, &mut equal) == sys::Status::napi_ok
            && equal
    }
}
