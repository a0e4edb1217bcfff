//! What the binding keeps for each live external Buffer: the finalizer's hint.

use std::ffi::c_void;
use std::sync::Arc;

use napi::sys;

use super::raw;
use crate::core::pool::Pool;

/// The finalizer hint of one external Buffer. Created with the Buffer; freed by its finalizer,
/// which Node runs exactly once, after the Buffer is collected or, once detached, after its
/// ArrayBuffer record is. The pool's `Arc` keeps the pool's memory alive for as long as any of
/// its Buffers can be finalized, so a Buffer may outlive the JavaScript `Pool` object.
#[derive(Debug)]
pub struct LoanHandle {
    pub pool: Arc<Pool>,
    /// The loan; set right after the core grants it.
    pub token: u64,
    /// Weak reference to the Buffer, so that `close()` can detach it; null once the loan ended.
    pub weak: sys::napi_ref,
}

impl LoanHandle {
    /// A new handle, owned by the caller as a raw pointer until handed to Node as a hint.
    pub fn new_raw(pool: Arc<Pool>) -> *mut LoanHandle {
        Box::into_raw(Box::new(LoanHandle { pool, token: 0, weak: std::ptr::null_mut() }))
    }
}

/// Ends the loan of a collected Buffer, unless it already ended (released or closed).
///
/// # Safety
/// Called by Node once per external Buffer, with the hint given at creation.
pub unsafe extern "C" fn finalize(env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` came from `LoanHandle::new_raw` and Node finalizes each Buffer once.
    let handle = unsafe { Box::from_raw(hint.cast::<LoanHandle>()) };
    // SAFETY: the reference belongs to this env and is deleted only here or when the loan ends.
    unsafe { raw::delete_ref(env, handle.weak) };
    handle.pool.reclaim(handle.token);
}
