//! `NativePool`: the JavaScript class over one core [`Pool`]. Arguments are validated by the
//! JavaScript layer before they reach it.

use std::sync::{Arc, OnceLock};

use napi::bindgen_prelude::Env;
use napi_derive::napi;

use super::loan_handle::{self, LoanHandle};
use super::raw::{self, RawValue};
use super::scratch;
use super::stats::JsPoolStats;
use super::status;
use crate::core::limits;
use crate::core::loan::Owner;
use crate::core::pool::{Pool, Release};

/// The process-wide default pool, shared by the main thread and every worker thread.
static DEFAULT_POOL: OnceLock<Arc<Pool>> = OnceLock::new();

/// One pool, as seen from one thread's JavaScript.
#[napi]
#[derive(Debug)]
pub struct NativePool {
    core: Arc<Pool>,
}

#[napi]
impl NativePool {
    /// A new pool capped at `max_bytes` (0: the default cap).
    #[napi(constructor)]
    pub fn new(max_bytes: f64) -> Self {
        NativePool { core: Arc::new(Pool::new(cap(max_bytes))) }
    }

    /// The process-wide default pool; `max_bytes` (0: the default cap) applies only if this call
    /// creates it.
    #[napi(factory)]
    pub fn shared(max_bytes: f64) -> Self {
        NativePool { core: DEFAULT_POOL.get_or_init(|| Arc::new(Pool::new(cap(max_bytes)))).clone() }
    }

    /// The default cap: half of the smaller of physical memory and the cgroup limit.
    #[napi(js_name = "defaultMaxBytes")]
    pub fn default_max_bytes() -> f64 {
        limits::default_max_bytes() as f64
    }

    /// Whether two handles name the same pool.
    #[napi(js_name = "samePool")]
    pub fn same_pool(&self, other: &NativePool) -> bool {
        Arc::ptr_eq(&self.core, &other.core)
    }

    #[napi(getter, js_name = "maxBytes")]
    pub fn max_bytes(&self) -> f64 {
        self.core.max_bytes() as f64
    }

    /// A new external Buffer of `size >= 1` bytes, or a negative status. On success scratch[0]
    /// holds the loan's token; on exhaustion scratch[1..3] the requested and available bytes.
    #[napi]
    pub fn alloc(&self, env: Env, size: f64, zero: bool) -> RawValue {
        let size = size as usize;
        let env = env.raw();
        let handle = LoanHandle::new_raw(self.core.clone());
        let owner = Owner { thread: env as usize, handle: handle as usize };
        let grant = match self.core.alloc(size, zero, owner) {
            Ok(g) => g,
            Err(e) => {
                // SAFETY: `handle` was never handed to Node; this is its only owner.
                drop(unsafe { Box::from_raw(handle) });
                if let crate::core::error::PoolError::Exhausted { requested, available } = e {
                    scratch::write(&[0.0, requested as f64, available as f64]);
                }
                return number(env, status::of(&e));
            }
        };
        // SAFETY: the grant's `size` bytes belong to this loan alone until it ends, and it ends
        // only after the Buffer is detached or finalized; `handle` is freed by the finalizer.
        let buffer = unsafe { raw::create_external_buffer(env, grant.addr, size, loan_handle::finalize, handle.cast()) };
        let Some(buffer) = buffer else {
            self.core.undo_alloc(grant.token);
            // SAFETY: Node did not take the hint, so this is still its only owner.
            drop(unsafe { Box::from_raw(handle) });
            return number(env, status::STATUS_EXTERNAL_REFUSED);
        };
        // SAFETY: `handle` lives until the finalizer runs, which cannot happen during this call;
        // `buffer` is a live object of this env.
        unsafe {
            (*handle).token = grant.token;
            (*handle).weak = raw::weak_ref(env, buffer);
        }
        scratch::write(&[grant.token as f64]);
        RawValue(buffer)
    }

    /// Adds a reference; returns the new count or a negative status.
    #[napi]
    pub fn retain(&self, env: Env, buffer: RawValue, token: f64) -> i64 {
        let Some(info) = (unsafe { raw::view_info(env.raw(), buffer.0) }) else {
            return status::STATUS_NOT_POOLED.into();
        };
        match self.core.retain(token as u64, info.data, info.len) {
            Ok(n) => n.into(),
            Err(e) => status::of(&e).into(),
        }
    }

    /// Drops a reference; on the last one detaches the Buffer, then returns its memory.
    /// Returns the references left or a negative status.
    #[napi]
    pub fn release(&self, env: Env, buffer: RawValue, token: f64) -> i64 {
        let env = env.raw();
        // SAFETY: `buffer` is a live value of this env.
        let Some(info) = (unsafe { raw::view_info(env, buffer.0) }) else {
            return status::STATUS_NOT_POOLED.into();
        };
        let token = token as u64;
        match self.core.release(token, info.data, info.len) {
            Ok(Release::Retained(n)) => n.into(),
            Ok(Release::Last(owner)) => {
                // SAFETY: `info.buffer` is this Buffer's live ArrayBuffer.
                if !unsafe { raw::detach(env, info.buffer) } {
                    return status::STATUS_EXTERNAL_REFUSED.into();
                }
                debug_assert_eq!(owner.thread, env as usize, "a Buffer never leaves its thread");
                // SAFETY: the loan is live, so its handle has not been finalized; same env.
                unsafe { end_weak(env, owner) };
                self.core.finish_release(token);
                0
            }
            Err(e) => status::of(&e).into(),
        }
    }

    /// References held on a Buffer; a negative status if it is not a live Buffer of this pool.
    #[napi(js_name = "refCount")]
    pub fn ref_count(&self, env: Env, buffer: RawValue, token: f64) -> i64 {
        let Some(info) = (unsafe { raw::view_info(env.raw(), buffer.0) }) else {
            return status::STATUS_NOT_POOLED.into();
        };
        match self.core.ref_count(token as u64, info.data, info.len) {
            Ok(n) => n.into(),
            Err(e) => status::of(&e).into(),
        }
    }

    /// Whether a typed array's bytes lie inside a live Buffer of this pool.
    #[napi(js_name = "isViewOfLoan")]
    pub fn is_view_of_loan(&self, env: Env, buffer: RawValue) -> bool {
        // SAFETY: `buffer` is a live value of this env.
        match unsafe { raw::view_info(env.raw(), buffer.0) } {
            Some(info) if info.len > 0 => self.core.is_view_of_loan(info.data, info.len),
            _ => false,
        }
    }

    /// Closes the pool. Buffers of this thread are detached and their memory returned now;
    /// Buffers of other threads stay valid until released there or collected. Returns how many
    /// Buffers were detached.
    #[napi]
    pub fn close(&self, env: Env) -> u32 {
        let env = env.raw();
        let mut detached = 0;
        for (token, owner) in self.core.close() {
            if owner.thread != env as usize {
                continue;
            }
            let handle = owner.handle as *mut LoanHandle;
            // SAFETY: the loan is live and of this env, so its handle is alive (only this
            // thread's finalizer frees it, and not during this call) and its reference is ours.
            unsafe {
                if let Some(buffer) = raw::deref(env, (*handle).weak) {
                    if let Some(info) = raw::view_info(env, buffer) {
                        raw::detach(env, info.buffer);
                        detached += 1;
                    }
                }
                end_weak(env, owner);
            }
            self.core.end_closed(token);
        }
        detached
    }

    #[napi]
    pub fn trim(&self) -> f64 {
        self.core.trim() as f64
    }

    #[napi]
    pub fn stats(&self) -> JsPoolStats {
        self.core.stats().into()
    }
}

/// Deletes the weak reference of a loan that is ending.
///
/// # Safety
/// `owner.handle` is the live `LoanHandle` of a loan of the current env `env`.
unsafe fn end_weak(env: napi::sys::napi_env, owner: Owner) {
    let handle = owner.handle as *mut LoanHandle;
    // SAFETY: per the contract.
    unsafe {
        raw::delete_ref(env, (*handle).weak);
        (*handle).weak = std::ptr::null_mut();
    }
}

fn cap(max_bytes: f64) -> usize {
    if max_bytes >= 1.0 { max_bytes as usize } else { limits::default_max_bytes() }
}

fn number(env: napi::sys::napi_env, n: i32) -> RawValue {
    let mut out = std::ptr::null_mut();
    // SAFETY: `env` is the current env; `out` a valid local.
    unsafe { napi::sys::napi_create_int32(env, n, &mut out) };
    RawValue(out)
}
