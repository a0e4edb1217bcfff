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
use super::events;
use crate::core::admission::{Admission, Priority};
use crate::core::error::PoolError;
use crate::core::limits;
use crate::core::loan::Owner;
use crate::core::pool::{AllocRequest, Pool, PoolConfig, Release};
use crate::core::size_class::ALIGNMENTS;
use crate::core::watermark::Watermarks;

/// `alloc` flags: bits 0–1 index [`ALIGNMENTS`]; bit 2 asks for essential priority.
const FLAG_ALIGN_MASK: u32 = 0b11;
const FLAG_ESSENTIAL: u32 = 0b100;

/// Pool settings from JavaScript (already validated there).
#[napi(object)]
#[derive(Debug)]
pub struct JsPoolConfig {
    /// 0 for the default cap.
    pub max_bytes: f64,
    pub warning: f64,
    pub critical: f64,
    pub shedding: f64,
    pub hysteresis: f64,
    /// `"graded"` or `"cap"`.
    pub admission: String,
}

impl JsPoolConfig {
    fn to_core(&self) -> napi::Result<PoolConfig> {
        let watermarks = Watermarks::new(self.warning, self.critical, self.shedding, self.hysteresis)
            .ok_or_else(|| napi::Error::new(napi::Status::InvalidArg, "invalid watermarks"))?;
        let admission = if self.admission == "cap" { Admission::Cap } else { Admission::Graded };
        Ok(PoolConfig { max_bytes: cap(self.max_bytes), watermarks, admission })
    }
}

/// A live Buffer, as `live()` lists it.
#[napi(object)]
#[derive(Debug)]
pub struct JsLiveBuffer {
    pub size: f64,
    pub age_ms: f64,
    pub ref_count: u32,
    pub address: f64,
    pub stack: Option<String>,
}

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
    /// A new pool.
    #[napi(constructor)]
    pub fn new(config: JsPoolConfig) -> napi::Result<Self> {
        Ok(NativePool { core: Arc::new(Pool::with_config(config.to_core()?)) })
    }

    /// The process-wide default pool; `config` applies only if this call creates it.
    #[napi(factory)]
    pub fn shared(config: JsPoolConfig) -> napi::Result<Self> {
        let config = config.to_core()?;
        Ok(NativePool { core: DEFAULT_POOL.get_or_init(|| Arc::new(Pool::with_config(config))).clone() })
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

    /// The watermark level, as an index: 0 normal, 1 warning, 2 critical, 3 shedding.
    #[napi]
    pub fn level(&self) -> u32 {
        self.core.level() as u32
    }

    /// A new external Buffer of `size >= 1` bytes, or a negative status. `flags`: see
    /// `FLAG_*`; `stack` makes it a tracked Buffer. On success scratch[0] holds the loan's token;
    /// on a refusal scratch[1..4] the requested bytes, available bytes and level index.
    #[napi]
    pub fn alloc(&self, env: Env, size: f64, zero: bool, flags: u32, stack: Option<String>) -> RawValue {
        let size = size as usize;
        let env = env.raw();
        let req = AllocRequest {
            size,
            zero,
            align: ALIGNMENTS[((flags & FLAG_ALIGN_MASK) as usize).min(ALIGNMENTS.len() - 1)],
            priority: if flags & FLAG_ESSENTIAL != 0 { Priority::Essential } else { Priority::Normal },
            trace: stack.map(Arc::from),
        };
        let handle = LoanHandle::new_raw(self.core.clone());
        let owner = Owner { thread: env as usize, handle: handle as usize };
        let grant = match self.core.alloc_with(req, owner) {
            Ok(g) => g,
            Err(e) => {
                // SAFETY: `handle` was never handed to Node; this is its only owner.
                drop(unsafe { Box::from_raw(handle) });
                if let PoolError::Exhausted { requested, available, level } | PoolError::Throttled { requested, available, level } = e {
                    scratch::write(&[0.0, requested as f64, available as f64, level as u32 as f64]);
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

    /// The address of a live Buffer of this pool, or a negative status.
    #[napi(js_name = "addressOf")]
    pub fn address_of(&self, env: Env, buffer: RawValue, token: f64) -> f64 {
        // SAFETY: `buffer` is a live value of this env.
        let Some(info) = (unsafe { raw::view_info(env.raw(), buffer.0) }) else {
            return status::STATUS_NOT_POOLED.into();
        };
        match self.core.ref_count(token as u64, info.data, info.len) {
            Ok(_) => info.data as f64,
            Err(e) => status::of(&e).into(),
        }
    }

    /// The live Buffers at least `older_than_ms` old, oldest first.
    #[napi]
    pub fn live(&self, older_than_ms: f64) -> Vec<JsLiveBuffer> {
        self.core
            .live(older_than_ms.max(0.0) as u64)
            .into_iter()
            .map(|l| JsLiveBuffer {
                size: l.size as f64,
                age_ms: l.age_ms as f64,
                ref_count: l.refs,
                address: l.address as f64,
                stack: l.stack.map(|s| s.to_string()),
            })
            .collect()
    }

    /// Delivers this pool's events to this thread's event callback, tagged with `subscriber`.
    /// Returns the listener id, or -1 if no callback is bound on this thread.
    #[napi]
    pub fn listen(&self, subscriber: u32) -> f64 {
        events::listen(&self.core, subscriber).map_or(-1.0, |id| id as f64)
    }

    /// Stops a listener added by `listen` on this thread.
    #[napi]
    pub fn unlisten(&self, id: f64) {
        events::unlisten(&self.core, id as u64);
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
