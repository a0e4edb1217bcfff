//! `NativePool`: the JavaScript class over one core [`Pool`]. Arguments are validated by the
//! JavaScript layer before they reach it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use napi::bindgen_prelude::{Either, Env, Float64Array};
use napi_derive::napi;

use crate::events;
use crate::pool_external;
use crate::raw::{self, RawValue};
use crate::stats::JsPoolStats;
use crate::status;
use extmem_core::admission::Admission;
use extmem_core::limits;
use extmem_core::pool::{Pool, PoolConfig};
use extmem_core::quarantine::QuarantineConfig;
use extmem_core::watermark::Watermarks;

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
    /// The quarantine's releases and milliseconds (see `extmem_core::quarantine`); none if absent.
    pub quarantine_releases: Option<f64>,
    pub quarantine_ms: Option<f64>,
}

impl JsPoolConfig {
    fn to_core(&self) -> napi::Result<PoolConfig> {
        let watermarks = Watermarks::new(self.warning, self.critical, self.shedding, self.hysteresis)
            .map_err(|e| napi::Error::new(napi::Status::InvalidArg, format!("watermarks: {e:?}")))?;
        let admission = match self.admission.as_str() {
            "cap" => Admission::Cap,
            "graded" => Admission::Graded,
            other => {
                return Err(napi::Error::new(
                    napi::Status::InvalidArg,
                    format!("admission: {other:?} is not 'graded' or 'cap'"),
                ))
            }
        };
        let quarantine = match (self.quarantine_releases, self.quarantine_ms) {
            (Some(releases), Some(ms)) => Some(QuarantineConfig { releases: releases as u32, min_ms: ms as u64 }),
            _ => None,
        };
        Ok(PoolConfig { max_bytes: cap(self.max_bytes), watermarks, admission, quarantine })
    }
}

/// Watermark thresholds, by name (each level's threshold under the level's name).
#[napi(object)]
#[derive(Debug)]
pub struct JsWatermarks {
    pub warning: f64,
    pub critical: f64,
    pub shedding: f64,
    pub hysteresis: f64,
}

/// A pool's quarantine: memory leaves after `releases` later releases of its size and `ms`.
#[napi(object)]
#[derive(Debug)]
pub struct JsQuarantine {
    pub releases: u32,
    pub ms: f64,
}

/// A live Buffer, as `live()` lists it.
#[napi(object)]
#[derive(Debug)]
pub struct JsLiveBuffer {
    pub size: f64,
    pub age_ms: f64,
    pub ref_count: u32,
    pub address: f64,
    /// Whether leak detection tracks it (the JavaScript layer holds its stack).
    pub tracked: bool,
    /// The token of its loan.
    pub token: f64,
    /// Whether it is parked: its memory left its thread, which then ended.
    pub parked: bool,
    /// Whether it is in transit between threads (shared, not yet adopted).
    pub in_transit: bool,
}

/// The process-wide default pool, shared by the main thread and every worker thread.
static DEFAULT_POOL: OnceLock<Arc<Pool>> = OnceLock::new();

/// The named pools of the process, by name: each lives while a thread uses it (a `Pool` object,
/// or a Buffer of it), and is made afresh by the next `named` call after that.
static NAMED_POOLS: Mutex<Option<HashMap<String, Weak<Pool>>>> = Mutex::new(None);

/// The options a `named` call compares with the pool's, in the order of their bits in `given`
/// (option `i` is bit `1 << i`) and of the index it returns for a mismatch; exported as
/// `constants().namedOptions`.
pub const NAMED_OPTIONS: [&str; 4] = ["maxBytes", "watermarks", "admission", "quarantine"];

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

    /// The named pool `name`, shared by every thread that makes one of that name: made with
    /// `config` if no thread uses it, else joined. The options `given` (bits, see
    /// [`NAMED_OPTIONS`]) must equal the pool's; if one does not, no pool: the index in
    /// [`NAMED_OPTIONS`] of the first that differs.
    #[napi(ts_return_type = "NativePool | number")]
    pub fn named(name: String, config: JsPoolConfig, given: u32) -> napi::Result<Either<NativePool, u32>> {
        let wanted = config.to_core()?;
        // A panic cannot leave the map half-changed: each change is one call.
        let mut registry = NAMED_POOLS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let pools = registry.get_or_insert_with(HashMap::new);
        pools.retain(|_, pool| pool.strong_count() > 0);
        if let Some(core) = pools.get(&name).and_then(Weak::upgrade) {
            let have = core.config();
            // In the order of NAMED_OPTIONS.
            let differs = [
                have.max_bytes != wanted.max_bytes,
                have.watermarks != wanted.watermarks,
                have.admission != wanted.admission,
                have.quarantine != wanted.quarantine,
            ];
            if let Some(i) = (0..NAMED_OPTIONS.len()).find(|&i| given & (1 << i) != 0 && differs[i]) {
                return Ok(Either::B(i as u32));
            }
            return Ok(Either::A(NativePool { core }));
        }
        let core = Arc::new(Pool::with_config(wanted));
        pools.insert(name, Arc::downgrade(&core));
        Ok(Either::A(NativePool { core }))
    }

    /// The default cap: half of the smaller of physical memory and the cgroup limit.
    #[napi(js_name = "defaultMaxBytes")]
    pub fn default_max_bytes() -> f64 {
        limits::default_max_bytes() as f64
    }

    /// Most bytes of released mappings the pool caches.
    #[napi(getter, js_name = "mappingCacheBytes")]
    pub fn mapping_cache_bytes(&self) -> f64 {
        self.core.mapping_cache_max_bytes() as f64
    }

    #[napi(getter, js_name = "maxBytes")]
    pub fn max_bytes(&self) -> f64 {
        self.core.max_bytes() as f64
    }

    /// The pool's thresholds, `[warning, critical, shedding, hysteresis]`: a named pool's own,
    /// whatever a Pool that joined it was given. For the message of a refusal (cold path).
    #[napi]
    pub fn watermarks(&self) -> JsWatermarks {
        let [warning, critical, shedding, hysteresis] = self.core.config().watermarks.values();
        JsWatermarks { warning, critical, shedding, hysteresis }
    }

    /// The pool's quarantine, or null if it has none: a named pool's own, whatever a Pool that
    /// joined it was given.
    #[napi]
    pub fn quarantine(&self) -> Option<JsQuarantine> {
        self.core.config().quarantine.map(|q| JsQuarantine { releases: q.releases, ms: q.min_ms as f64 })
    }

    /// The watermark level, as an index: 0 normal, 1 warning, 2 critical, 3 shedding.
    #[napi]
    pub fn level(&self) -> u32 {
        self.core.level() as u32
    }

    /// The pool reference: the pool's External (see `crate::pool_external`), which every hot-path
    /// function (`hot_alloc`, …) takes first for this pool.
    #[napi(js_name = "poolRef", ts_return_type = "unknown")]
    pub fn pool_ref(&self, env: Env) -> napi::Result<RawValue> {
        // SAFETY: the current env.
        unsafe { pool_external::make(env.raw(), &self.core) }
            .map(RawValue)
            .ok_or_else(|| napi::Error::from_reason("extmem: cannot make the pool's reference"))
    }

    /// Adds a reference; returns the new count or a negative status.
    #[napi(ts_args_type = "buffer: Buffer, token: number")]
    pub fn retain(&self, env: Env, buffer: RawValue, token: f64) -> i64 {
        // SAFETY: `buffer` is a live value of this env.
        let Some(info) = (unsafe { raw::view_info(env.raw(), buffer.0) }) else {
            return status::STATUS_NOT_POOLED.into();
        };
        match self.core.retain(token as u64, info.data, info.len) {
            Ok(n) => n.into(),
            Err(e) => status::of(&e).into(),
        }
    }

    /// References held on a Buffer; a negative status if it is not a live Buffer of this pool.
    #[napi(js_name = "refCount", ts_args_type = "buffer: Buffer, token: number")]
    pub fn ref_count(&self, env: Env, buffer: RawValue, token: f64) -> i64 {
        // SAFETY: `buffer` is a live value of this env.
        let Some(info) = (unsafe { raw::view_info(env.raw(), buffer.0) }) else {
            return status::STATUS_NOT_POOLED.into();
        };
        match self.core.ref_count(token as u64, info.data, info.len) {
            Ok(n) => n.into(),
            Err(e) => status::of(&e).into(),
        }
    }

    /// The address of a live Buffer of this pool, or a negative status.
    #[napi(js_name = "addressOf", ts_args_type = "buffer: Buffer, token: number")]
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
                tracked: l.tracked,
                token: l.token as f64,
                parked: l.parked,
                in_transit: l.in_transit,
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

    /// `[loans, inUseBytes, requestedBytes]` of those of `tokens` that are live loans of this pool
    /// (a scope's Buffers).
    #[napi(js_name = "figuresOf")]
    pub fn figures_of(&self, tokens: Float64Array) -> Vec<f64> {
        let f = self.core.figures_of(tokens.iter().map(|&t| t as u64));
        vec![f.loans as f64, f.in_use_bytes as f64, f.requested_bytes as f64]
    }

    /// Whether a typed array's bytes lie inside a live Buffer of this pool.
    #[napi(js_name = "isViewOfLoan", ts_args_type = "buffer: Buffer")]
    pub fn is_view_of_loan(&self, env: Env, buffer: RawValue) -> bool {
        // SAFETY: `buffer` is a live value of this env.
        match unsafe { raw::view_info(env.raw(), buffer.0) } {
            Some(info) if info.data != 0 => self.core.is_view_of_loan(info.data, info.len),
            _ => false,
        }
    }

    /// Closes the pool: allocations and retains are refused from now on and free memory goes back
    /// to the OS. Buffers still out stay valid until released or collected. Returns their number.
    #[napi]
    pub fn close(&self) -> u32 {
        self.core.close() as u32
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

fn cap(max_bytes: f64) -> usize {
    if max_bytes >= 1.0 {
        max_bytes as usize
    } else {
        limits::default_max_bytes()
    }
}
