//! The allocation hot path as raw Node-API callbacks: `alloc`, `allocBound`, `reuse`, `release`.
//!
//! napi-rs's generated glue measured ~120 ns per numeric argument and ~280 ns per class method
//! call on this project's machines, against ~11 ns for an empty Node-API function; these four
//! calls are made once per allocation or release, so they read their arguments with plain
//! Node-API calls instead. Each takes the pool's handle (an External made by
//! `NativePool.handle`) first. Arguments come from the JavaScript layer, which checked them;
//! results follow the binding's convention (a value, or a negative status with details in the
//! thread's scratch array).

use std::ffi::{c_char, c_void};
use std::ptr;
use std::sync::Arc;

use napi::bindgen_prelude::{Env, Object};
use napi::{sys, JsValue};
use napi_derive::napi;

use super::loan_handle::{self, Hint};
use super::raw;
use super::scratch;
use super::status;
use crate::core::admission::Priority;
use crate::core::error::PoolError;
use crate::core::loan::Owner;
use crate::core::pool::{AllocRequest, Pool, SlotRef};
use crate::core::size_class::ALIGNMENTS;
use crate::core::slab::Slot;

/// `alloc` flags: bits 0–1 index [`ALIGNMENTS`]; bit 2 asks for essential priority; bit 3 for a
/// prefaulted mapping.
const FLAG_ALIGN_MASK: u32 = 0b11;
const FLAG_ESSENTIAL: u32 = 0b100;
const FLAG_PREFAULT: u32 = 0b1000;

/// `Owner::handle` of a loan whose Buffer views a slot-bound ArrayBuffer. Other loans hold the
/// pointer to their Buffer's finalizer hint there (never 1: it is aligned).
const OWNER_BOUND: usize = 1;

/// The token of a hint whose loan ended by release: not a token at all, so never reclaimed.
const ENDED: u64 = u64::MAX;

/// An External over the pool, for the hot-path calls.
///
/// # Safety
/// `env` is the current env.
pub unsafe fn make_handle(env: sys::napi_env, pool: &Arc<Pool>) -> sys::napi_value {
    unsafe extern "C" fn drop_handle(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
        // SAFETY: `data` is the Box made below, finalized once.
        drop(unsafe { Box::from_raw(data.cast::<Arc<Pool>>()) });
    }
    let data = Box::into_raw(Box::new(pool.clone()));
    let mut out = ptr::null_mut();
    // SAFETY: `data` lives until `drop_handle` runs.
    unsafe { sys::napi_create_external(env, data.cast(), Some(drop_handle), ptr::null_mut(), &mut out) };
    out
}

/// Registers the hot-path functions on the module's exports.
#[napi(module_exports)]
pub fn register(exports: Object, env: Env) -> napi::Result<()> {
    let functions: [(&str, unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value); 4] =
        [("alloc", alloc), ("allocBound", alloc_bound), ("reuse", reuse), ("release", release)];
    for (name, callback) in functions {
        let mut f = ptr::null_mut();
        // SAFETY: a valid env, name and callback; `f` is a valid out-pointer.
        let status = unsafe {
            sys::napi_create_function(
                env.raw(),
                name.as_ptr().cast::<c_char>(),
                name.len() as isize,
                Some(callback),
                ptr::null_mut(),
                &mut f,
            )
        };
        if status != sys::Status::napi_ok {
            return Err(napi::Error::from_reason(format!("cannot create the native function {name}")));
        }
        let key = std::ffi::CString::new(format!("hot_{name}")).expect("no NUL in names");
        // SAFETY: `exports` and `f` are live values of this env; `key` is NUL-terminated.
        let status = unsafe { sys::napi_set_named_property(env.raw(), exports.raw(), key.as_ptr(), f) };
        if status != sys::Status::napi_ok {
            return Err(napi::Error::from_reason(format!("cannot export the native function {name}")));
        }
    }
    Ok(())
}

/// Up to `N` arguments (missing ones are `undefined`).
unsafe fn args<const N: usize>(env: sys::napi_env, info: sys::napi_callback_info) -> [sys::napi_value; N] {
    let mut argv = [ptr::null_mut(); N];
    let mut argc = N;
    // SAFETY: `argv` holds `argc` slots.
    unsafe { sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), ptr::null_mut()) };
    argv
}

unsafe fn pool_of<'a>(env: sys::napi_env, handle: sys::napi_value) -> Option<&'a Arc<Pool>> {
    let mut data = ptr::null_mut();
    // SAFETY: a valid out-pointer; a non-External fails and leaves `data` null.
    let status = unsafe { sys::napi_get_value_external(env, handle, &mut data) };
    // SAFETY: every External given to JavaScript by this module is a `make_handle` Box, alive
    // while JavaScript can pass it.
    (status == sys::Status::napi_ok && !data.is_null()).then(|| unsafe { &*data.cast::<Arc<Pool>>() })
}

unsafe fn f64_of(env: sys::napi_env, v: sys::napi_value) -> f64 {
    let mut out = 0.0;
    // SAFETY: a valid out-pointer; a non-number leaves 0.
    unsafe { sys::napi_get_value_double(env, v, &mut out) };
    out
}

unsafe fn u32_of(env: sys::napi_env, v: sys::napi_value) -> u32 {
    let mut out = 0;
    // SAFETY: as for `f64_of`.
    unsafe { sys::napi_get_value_uint32(env, v, &mut out) };
    out
}

unsafe fn bool_of(env: sys::napi_env, v: sys::napi_value) -> bool {
    let mut out = false;
    // SAFETY: as for `f64_of`.
    unsafe { sys::napi_get_value_bool(env, v, &mut out) };
    out
}

unsafe fn number(env: sys::napi_env, n: f64) -> sys::napi_value {
    let mut out = ptr::null_mut();
    // SAFETY: a valid out-pointer.
    unsafe { sys::napi_create_double(env, n, &mut out) };
    out
}

/// The request of `[size, zero, flags, tracked]` arguments.
unsafe fn request(env: sys::napi_env, a: &[sys::napi_value], bind: bool) -> AllocRequest {
    // SAFETY: values of this env.
    let (size, zero, flags) = unsafe { (f64_of(env, a[0]) as usize, bool_of(env, a[1]), u32_of(env, a[2])) };
    AllocRequest {
        size,
        zero,
        align: ALIGNMENTS[((flags & FLAG_ALIGN_MASK) as usize).min(ALIGNMENTS.len() - 1)],
        priority: if flags & FLAG_ESSENTIAL != 0 { Priority::Essential } else { Priority::Normal },
        // SAFETY: as above.
        tracked: unsafe { bool_of(env, a[3]) },
        bind,
        prefault: flags & FLAG_PREFAULT != 0,
    }
}

/// A refusal: its figures to scratch[1..4], its status as the result.
unsafe fn refusal(env: sys::napi_env, e: &PoolError) -> sys::napi_value {
    if let PoolError::Exhausted { requested, available, level } | PoolError::Throttled { requested, available, level } =
        e
    {
        scratch::write(&[0.0, *requested as f64, *available as f64, *level as u32 as f64]);
    }
    // SAFETY: the current env.
    unsafe { number(env, status::of(e).into()) }
}

/// `alloc(handle, size, zero, flags, tracked)`: a new external Buffer of `size >= 1` bytes for
/// one loan, or a negative status. On success scratch[0] holds the loan's token.
unsafe extern "C" fn alloc(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY (whole body): `env` and `info` come from Node for this call; values are of this env.
    unsafe {
        let a = args::<5>(env, info);
        let Some(pool) = pool_of(env, a[0]) else { return number(env, status::STATUS_NOT_POOLED.into()) };
        let req = request(env, &a[1..], false);
        let size = req.size;
        let hint = Hint::Loan { pool: pool.clone(), token: ENDED }.into_raw();
        let grant = match pool.alloc_with(req, Owner { thread: env as usize, handle: hint as usize }) {
            Ok(g) => g,
            Err(e) => {
                Hint::drop_raw(hint);
                return refusal(env, &e);
            }
        };
        Hint::set_token(hint, grant.token);
        // The grant's `size` bytes belong to this loan alone until it ends, and it ends only
        // after the Buffer is detached or finalized; the finalizer frees `hint`.
        let Some(buffer) = raw::create_external_buffer(env, grant.addr, size, loan_handle::finalize, hint) else {
            pool.undo_alloc(grant.token);
            Hint::drop_raw(hint);
            return number(env, status::STATUS_EXTERNAL_REFUSED.into());
        };
        scratch::write(&[grant.token as f64]);
        buffer
    }
}

/// `allocBound(handle, size, zero, flags, tracked)`: a new slab loan of `size <= 8192` bytes whose
/// memory is a new external ArrayBuffer over the whole slot, kept by JavaScript across later
/// loans of the slot (see `reuse`); or a negative status. On success scratch holds
/// `[token, class, slot, epoch]`; the caller views the first `size` bytes.
unsafe extern "C" fn alloc_bound(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY (whole body): as in `alloc`.
    unsafe {
        let a = args::<5>(env, info);
        let Some(pool) = pool_of(env, a[0]) else { return number(env, status::STATUS_NOT_POOLED.into()) };
        let req = request(env, &a[1..], true);
        let grant = match pool.alloc_with(req, Owner { thread: env as usize, handle: OWNER_BOUND }) {
            Ok(g) => g,
            Err(e) => return refusal(env, &e),
        };
        let slot = grant.slot.expect("sizes up to 8192 come from a slot");
        let hint = Hint::Slot { pool: pool.clone(), slot, bytes: grant.capacity }.into_raw();
        // The slot is this loan's alone; later loans reach it only through this ArrayBuffer (or
        // one it was transferred to) while its epoch is the slot's newest.
        let Some(buffer) =
            raw::create_external_arraybuffer(env, grant.addr, grant.capacity, loan_handle::finalize, hint)
        else {
            pool.undo_alloc(grant.token);
            Hint::drop_raw(hint);
            return number(env, status::STATUS_EXTERNAL_REFUSED.into());
        };
        scratch::write(&[grant.token as f64, slot.class as f64, slot.slot.index() as f64, slot.epoch as f64]);
        buffer
    }
}

/// `reuse(handle, class, slot, epoch, size, zero, flags, tracked)`: lends the slot again through
/// the ArrayBuffer of `epoch` that the caller kept. Returns the new loan's token, or a negative
/// status: `STATUS_STALE` if that ArrayBuffer no longer owns the slot (drop it), a refusal
/// otherwise (keep it).
unsafe extern "C" fn reuse(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY (whole body): as in `alloc`.
    unsafe {
        let a = args::<8>(env, info);
        let Some(pool) = pool_of(env, a[0]) else { return number(env, status::STATUS_NOT_POOLED.into()) };
        let slot = SlotRef {
            class: u32_of(env, a[1]) as usize,
            slot: Slot::from_index(u32_of(env, a[2])),
            epoch: f64_of(env, a[3]) as u64,
        };
        match pool.reuse(slot, request(env, &a[4..], true), Owner { thread: env as usize, handle: OWNER_BOUND }) {
            Ok(g) => number(env, g.token as f64),
            Err(e) => refusal(env, &e),
        }
    }
}

/// `release(handle, buffer, token)`: drops a reference; returns the references left or a
/// negative status. On the last one the loan ends: a Buffer made for the loan is detached first;
/// for a slot-bound Buffer, scratch holds `[1, class, slot, epoch]` and the caller must detach it
/// (by transferring its ArrayBuffer) before any other JavaScript runs on this thread.
unsafe extern "C" fn release(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY (whole body): as in `alloc`.
    unsafe {
        let a = args::<3>(env, info);
        let Some(pool) = pool_of(env, a[0]) else { return number(env, status::STATUS_NOT_POOLED.into()) };
        let Some(view) = raw::view_info(env, a[1]) else { return number(env, status::STATUS_NOT_POOLED.into()) };
        let token = f64_of(env, a[2]) as u64;
        let left = match pool.release_bound(token, view.data, view.len, |o| o.handle == OWNER_BOUND) {
            Ok(Ok((left, slot))) => {
                // A slot-bound loan ended under the lock; the caller detaches its Buffer next.
                if let Some(s) = slot {
                    scratch::write(&[1.0, s.class as f64, s.slot.index() as f64, s.epoch as f64]);
                }
                left
            }
            Ok(Err(owner)) => {
                debug_assert_eq!(owner.thread, env as usize, "a Buffer never leaves its thread");
                if !raw::detach(env, view.buffer) {
                    return number(env, status::STATUS_EXTERNAL_REFUSED.into());
                }
                // The Buffer's finalizer runs later, maybe once the token's key and generation
                // name a new loan: it must find nothing to reclaim. The hint is alive (the loan
                // is) and only this thread touches it.
                Hint::set_token(owner.handle as *mut c_void, ENDED);
                pool.finish_release(token);
                scratch::write(&[0.0]);
                0
            }
            Err(e) => return number(env, status::of(&e).into()),
        };
        number(env, f64::from(left))
    }
}
