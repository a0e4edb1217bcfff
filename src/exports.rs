//! The hot-path functions: the one table of what JavaScript calls as `native.hot_<name>`, each
//! with the number of arguments it reads and its body (a plain `fn(&Call<N>) -> Outcome`).
//!
//! From each line the table generates the function's Node-API callback (which reads exactly its
//! `N` arguments through [`call::run`], as cheaply as a hand-written one), its registration on
//! the module's exports, and its entry in `constants().functions` (`hot_<name>` → `N`), against
//! which `__test__/native-surface.spec.js` checks every call `lib/` makes. Adding a function is a
//! line here and a body in the module of its concept. A line whose argument count is not the
//! body's `N` does not compile.
//!
//! Every function takes the pool's External (`poolRef`, see [`crate::pool_external`]) first.

use std::collections::BTreeMap;
use std::ffi::{c_char, CString};
use std::ptr;

use napi::bindgen_prelude::{Env, Object};
use napi::{sys, JsValue};
use napi_derive::napi;

use crate::call;
use crate::escape;
use crate::{cache, handoff, hot, release_all, resize};

/// A Node-API callback.
type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

/// One hot-path function.
#[derive(Debug, Clone, Copy)]
pub struct HotFunction {
    /// Its name: exported as `hot_<name>`, and the JavaScript function's `name`.
    pub name: &'static str,
    /// The number of arguments it reads (missing ones are `undefined`, extra ones ignored).
    pub arity: usize,
    /// Its Node-API callback.
    callback: Callback,
}

/// The table: `name => arity, body;`, one line per function.
macro_rules! hot_functions {
    ($($name:literal => $arity:expr, $body:path;)*) => {
        /// Every hot-path function, in the order of the table.
        pub const HOT_FUNCTIONS: &[HotFunction] = &[$(HotFunction {
            name: $name,
            arity: $arity,
            callback: {
                unsafe extern "C" fn callback(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
                    // SAFETY: Node calls this callback with its current env and call info.
                    unsafe { call::run::<{ $arity }>(env, info, $body) }
                }
                callback
            },
        }),*];
    };
}

hot_functions! {
    // Allocate and release one Buffer (hot.rs).
    "alloc" => 5, hot::alloc;
    "allocBound" => 5, hot::alloc_bound;
    "reuse" => 9, hot::reuse;
    "reuseMapping" => 9, hot::reuse_mapping;
    "release" => 3, hot::release;
    "finishRelease" => 4, hot::finish_release;
    "releaseLast" => 5, hot::release_last;
    // Many at once, for a scope (release_all.rs).
    "releaseMany" => 3, release_all::release_many;
    "finishMany" => 3, release_all::finish_many;
    // Resize (resize.rs).
    "resizeBegin" => 7, resize::begin;
    "resizeAbort" => 2, resize::abort;
    "resizeEnd" => 4, resize::end;
    // Hand-off between threads (handoff.rs).
    "share" => 4, handoff::share;
    "adopt" => 4, handoff::adopt;
    "reclaimShared" => 3, handoff::reclaim_shared;
    // Per-thread slot caches (cache.rs).
    "cacheOpen" => 1, cache::open;
    "cacheFill" => 6, cache::fill;
    "cacheSync" => 4 + cache::SYNC_BATCH, cache::sync;
    "cacheFlush" => 4, cache::flush;
    "cacheClose" => 2, cache::close;
    "cacheDecay" => 1, cache::decay;
}

// Each name is exported once: a second line of the same name would silently replace the first.
const _: () = {
    const fn same(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }
    let mut i = 0;
    while i < HOT_FUNCTIONS.len() {
        let mut j = i + 1;
        while j < HOT_FUNCTIONS.len() {
            assert!(!same(HOT_FUNCTIONS[i].name, HOT_FUNCTIONS[j].name), "a hot-path function is in the table twice");
            j += 1;
        }
        i += 1;
    }
};

/// The JavaScript name of every hot-path function (`hot_<name>`), with its number of arguments:
/// `constants().functions`.
pub fn arities() -> BTreeMap<String, u32> {
    HOT_FUNCTIONS.iter().map(|f| (format!("hot_{}", f.name), f.arity as u32)).collect()
}

/// Registers the hot-path functions on the module's exports, and looks up what
/// [`escape`] needs before any user code of this thread can run.
#[napi(module_exports)]
pub fn register(exports: Object, env: Env) -> napi::Result<()> {
    // SAFETY: the current env.
    unsafe { escape::init(env.raw()) };
    for f in HOT_FUNCTIONS {
        let mut function = ptr::null_mut();
        // SAFETY: a valid env, name and callback; `function` is a valid out-pointer.
        let status = unsafe {
            sys::napi_create_function(
                env.raw(),
                f.name.as_ptr().cast::<c_char>(),
                f.name.len() as isize,
                Some(f.callback),
                ptr::null_mut(),
                &mut function,
            )
        };
        if status != sys::Status::napi_ok {
            return Err(napi::Error::from_reason(format!("cannot create the native function {}", f.name)));
        }
        let key = CString::new(format!("hot_{}", f.name))
            .map_err(|_| napi::Error::from_reason(format!("a NUL in the name {}", f.name)))?;
        // SAFETY: `exports` and `function` are live values of this env; `key` is NUL-terminated.
        let status = unsafe { sys::napi_set_named_property(env.raw(), exports.raw(), key.as_ptr(), function) };
        if status != sys::Status::napi_ok {
            return Err(napi::Error::from_reason(format!("cannot export the native function {}", f.name)));
        }
    }
    Ok(())
}
