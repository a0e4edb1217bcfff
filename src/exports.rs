//! The hot-path functions JavaScript calls as `native.hot_<name>`, registered on the module's
//! exports.

use std::ffi::c_char;
use std::ptr;

use napi::bindgen_prelude::{Env, Object};
use napi::{sys, JsValue};
use napi_derive::napi;

use crate::cache;
use crate::escape;
use crate::handoff;
use crate::hot;
use crate::release_all;
use crate::resize;

/// Registers the hot-path functions on the module's exports, and looks up what
/// [`escape`] needs before any user code of this thread can run.
#[napi(module_exports)]
pub fn register(exports: Object, env: Env) -> napi::Result<()> {
    // SAFETY: the current env.
    unsafe { escape::init(env.raw()) };
    let functions: [(&str, unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value); 21] = [
        ("alloc", hot::alloc),
        ("allocBound", hot::alloc_bound),
        ("reuse", hot::reuse),
        ("reuseMapping", hot::reuse_mapping),
        ("release", hot::release),
        ("finishRelease", hot::finish_release),
        ("releaseLast", hot::release_last),
        ("releaseMany", release_all::release_many),
        ("finishMany", release_all::finish_many),
        ("resizeBegin", resize::resize_begin),
        ("resizeAbort", resize::resize_abort),
        ("resizeEnd", resize::resize_end),
        ("share", handoff::share),
        ("adopt", handoff::adopt),
        ("reclaimShared", handoff::reclaim_shared),
        ("cacheOpen", cache::cache_open),
        ("cacheFill", cache::cache_fill),
        ("cacheSync", cache::cache_sync),
        ("cacheFlush", cache::cache_flush),
        ("cacheClose", cache::cache_close),
        ("cacheDecay", cache::cache_decay),
    ];
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
        let key = std::ffi::CString::new(format!("hot_{name}"))
            .map_err(|_| napi::Error::from_reason(format!("a NUL in the name {name}")))?;
        // SAFETY: `exports` and `f` are live values of this env; `key` is NUL-terminated.
        let status = unsafe { sys::napi_set_named_property(env.raw(), exports.raw(), key.as_ptr(), f) };
        if status != sys::Status::napi_ok {
            return Err(napi::Error::from_reason(format!("cannot export the native function {name}")));
        }
    }
    Ok(())
}
