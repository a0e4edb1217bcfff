//! The pool's External: the JavaScript value through which the hot-path calls name their pool
//! (JavaScript gets it from `NativePool.poolRef()` and passes it first to every `hot_*` call).
//! Made and read only here, so that what it holds is stated once.

use std::ffi::c_void;
use std::ptr;
use std::sync::Arc;

use napi::sys;

use extmem_core::pool::Pool;

/// A new External over `pool`; `None` if Node-API refused to make it. It holds a `Box` of a clone
/// of the `Arc`, which keeps the pool alive until the External is collected.
///
/// # Safety
/// `env` is the current env.
pub unsafe fn make(env: sys::napi_env, pool: &Arc<Pool>) -> Option<sys::napi_value> {
    unsafe extern "C" fn drop_pool(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
        // SAFETY: `data` is the Box made below, finalized once.
        drop(unsafe { Box::from_raw(data.cast::<Arc<Pool>>()) });
    }
    let data = Box::into_raw(Box::new(pool.clone()));
    let mut out = ptr::null_mut();
    // SAFETY: `data` lives until `drop_pool` runs.
    let status = unsafe { sys::napi_create_external(env, data.cast(), Some(drop_pool), ptr::null_mut(), &mut out) };
    if status != sys::Status::napi_ok || out.is_null() {
        // SAFETY: Node did not take `data`.
        drop(unsafe { Box::from_raw(data) });
        return None;
    }
    Some(out)
}

/// The pool of `value` if it is an External; `None` if it is not one.
///
/// # Safety
/// `env` is the current env and `value` a live value of it; the reference is used only while
/// `value` stays alive (during the callback that received it).
#[inline]
pub unsafe fn pool<'a>(env: sys::napi_env, value: sys::napi_value) -> Option<&'a Arc<Pool>> {
    let mut data = ptr::null_mut();
    // SAFETY: per the contract; a non-External fails, leaving null.
    let status = unsafe { sys::napi_get_value_external(env, value, &mut data) };
    if status != sys::Status::napi_ok || data.is_null() {
        return None;
    }
    // SAFETY: every External this module gives JavaScript is a `make` Box of an `Arc<Pool>`,
    // alive while `value` is, per the contract.
    Some(unsafe { &*data.cast::<Arc<Pool>>() })
}
