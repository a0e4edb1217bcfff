//! Pool events to JavaScript: one thread-safe function per thread (env), through which every pool
//! that thread listens to delivers its level changes and leaks, in the order they happened,
//! whichever thread caused them (an allocation, a release in a worker, a GC finalizer).
//!
//! The thread-safe function is weak (it never keeps the event loop alive). When the thread's env
//! is torn down, a cleanup hook removes its listeners from every pool, so a pool that outlives a
//! worker (the default pool) never calls into a dead env.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Weak};

use napi::bindgen_prelude::{Env, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;

use extmem_core::events::PoolEvent;
use extmem_core::pool::Pool;

/// An event as JavaScript receives it.
#[napi(object)]
#[derive(Debug)]
pub struct JsPoolEvent {
    /// The listening JS Pool's id (given to `listen`).
    pub subscriber: u32,
    /// `"watermark"`, `"leak"` or `"misuse"`.
    pub kind: String,
    pub level: Option<String>,
    pub previous: Option<String>,
    pub utilization: Option<f64>,
    pub in_use_bytes: Option<f64>,
    pub max_bytes: Option<f64>,
    pub size: Option<f64>,
    pub age_ms: Option<f64>,
    pub address: Option<f64>,
    /// For a leak or a misuse: the token of the Buffer's loan.
    pub token: Option<f64>,
    /// For a misuse: the offset of the first byte that changed while quarantined.
    pub offset: Option<f64>,
}

type EventSink = ThreadsafeFunction<(u32, PoolEvent), (), JsPoolEvent, Status, false, true>;

thread_local! {
    /// This thread's sink; set by `bindEvents`.
    static SINK: RefCell<Option<Arc<EventSink>>> = const { RefCell::new(None) };
    /// Listeners this thread registered, by pool (its address: a `Weak` keeps it unique) and
    /// listener id; removed when its env is torn down.
    static REGISTERED: RefCell<HashMap<(usize, u64), Weak<Pool>>> = RefCell::new(HashMap::new());
}

/// Binds this thread's event callback: `callback(event)` receives every event of every pool this
/// thread listens to.
#[napi(js_name = "bindEvents")]
pub fn bind_events(env: Env, callback: Function<JsPoolEvent, ()>) -> napi::Result<()> {
    let sink = callback
        .build_threadsafe_function::<(u32, PoolEvent)>()
        .weak::<true>()
        .callee_handled::<false>()
        .build_callback(move |ctx| Ok(to_js(ctx.value.0, &ctx.value.1)))?;
    SINK.with(|s| *s.borrow_mut() = Some(Arc::new(sink)));
    env.add_env_cleanup_hook((), |()| {
        for ((_, id), pool) in REGISTERED.with(|r| std::mem::take(&mut *r.borrow_mut())) {
            if let Some(pool) = pool.upgrade() {
                pool.unlisten(id);
            }
        }
        SINK.with(|s| s.borrow_mut().take());
    })?;
    Ok(())
}

/// Makes this thread's sink a listener of `pool`, tagging its events with `subscriber`.
pub fn listen(pool: &Arc<Pool>, subscriber: u32) -> Option<u64> {
    let sink = SINK.with(|s| s.borrow().clone())?;
    let id = pool.listen(Box::new(move |event| {
        sink.call((subscriber, event.clone()), ThreadsafeFunctionCallMode::NonBlocking);
    }));
    REGISTERED.with(|r| r.borrow_mut().insert((Arc::as_ptr(pool) as usize, id), Arc::downgrade(pool)));
    Some(id)
}

/// Removes a listener this thread added.
pub fn unlisten(pool: &Arc<Pool>, id: u64) {
    pool.unlisten(id);
    REGISTERED.with(|r| r.borrow_mut().remove(&(Arc::as_ptr(pool) as usize, id)));
}

fn to_js(subscriber: u32, event: &PoolEvent) -> JsPoolEvent {
    let mut e = JsPoolEvent {
        subscriber,
        kind: String::new(),
        level: None,
        previous: None,
        utilization: None,
        in_use_bytes: None,
        max_bytes: None,
        size: None,
        age_ms: None,
        address: None,
        token: None,
        offset: None,
    };
    match event {
        PoolEvent::Level(c) => {
            e.kind = "watermark".into();
            e.level = Some(c.level.name().into());
            e.previous = Some(c.previous.name().into());
            e.utilization = Some(c.utilization);
            e.in_use_bytes = Some(c.in_use_bytes as f64);
            e.max_bytes = Some(c.max_bytes as f64);
        }
        PoolEvent::Leak(l) => {
            e.kind = "leak".into();
            e.size = Some(l.size as f64);
            e.age_ms = Some(l.age_ms as f64);
            e.address = Some(l.address as f64);
            e.token = Some(l.token as f64);
        }
        PoolEvent::Misuse(m) => {
            e.kind = "misuse".into();
            e.size = Some(m.size as f64);
            e.address = Some(m.address as f64);
            e.offset = Some(m.offset as f64);
            e.token = Some(m.token as f64);
        }
    }
    e
}
