//! The few raw Node-API calls the binding makes, each wrapped once with its safety argument.

use std::ffi::c_void;
use std::ptr;

use napi::bindgen_prelude::{FromNapiValue, ToNapiValue, TypeName};
use napi::{sys, Result, ValueType};

/// A JavaScript value passed through untouched.
#[derive(Debug, Clone, Copy)]
pub struct RawValue(pub sys::napi_value);

impl TypeName for RawValue {
    fn type_name() -> &'static str {
        "unknown"
    }
    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl FromNapiValue for RawValue {
    unsafe fn from_napi_value(_env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        Ok(RawValue(value))
    }
}

impl ToNapiValue for RawValue {
    unsafe fn to_napi_value(_env: sys::napi_env, value: Self) -> Result<sys::napi_value> {
        Ok(value.0)
    }
}

/// The bytes a typed array views, and the ArrayBuffer behind it.
#[derive(Debug, Clone, Copy)]
pub struct ViewInfo {
    pub data: usize,
    pub len: usize,
    pub buffer: sys::napi_value,
}

/// Reads the view of a typed array. `None` if `value` is not one.
///
/// # Safety
/// `env` is the current env and `value` a live value of it.
pub unsafe fn view_info(env: sys::napi_env, value: sys::napi_value) -> Option<ViewInfo> {
    // SAFETY: per the contract.
    unsafe { typedarray_info(env, value) }.map(|(_, view)| view)
}

/// The kind and view of a typed array (`len` in elements). `None` if `value` is not one.
///
/// # Safety
/// `env` is the current env and `value` a live value of it.
unsafe fn typedarray_info(env: sys::napi_env, value: sys::napi_value) -> Option<(sys::napi_typedarray_type, ViewInfo)> {
    let mut kind = 0;
    let mut len = 0;
    let mut data: *mut c_void = ptr::null_mut();
    let mut buffer = ptr::null_mut();
    let mut offset = 0;
    // SAFETY: all out-pointers are valid locals; the env and value are valid per the contract.
    let status =
        unsafe { sys::napi_get_typedarray_info(env, value, &mut kind, &mut len, &mut data, &mut buffer, &mut offset) };
    (status == sys::Status::napi_ok).then_some((kind, ViewInfo { data: data as usize, len, buffer }))
}

/// The finalizer Node calls when an external Buffer's memory is no longer referenced.
pub type Finalizer = unsafe extern "C" fn(sys::napi_env, *mut c_void, *mut c_void);

/// Creates a Buffer over `len` bytes at `data`, counted by V8 as external memory; `finalize` runs
/// with `hint` once the Buffer (or, after a detach, its ArrayBuffer record) is collected.
///
/// # Safety
/// `data..data+len` stays valid and owned by this Buffer alone until it is detached or `finalize` runs.
pub unsafe fn create_external_buffer(
    env: sys::napi_env,
    data: *mut u8,
    len: usize,
    finalize: Finalizer,
    hint: *mut c_void,
) -> Option<sys::napi_value> {
    let mut out = ptr::null_mut();
    // SAFETY: per the contract; `out` is a valid local.
    let status = unsafe { sys::napi_create_external_buffer(env, len, data.cast(), Some(finalize), hint, &mut out) };
    (status == sys::Status::napi_ok).then_some(out)
}

/// Creates an ArrayBuffer over `len` bytes at `data`, counted by V8 as external memory; `finalize`
/// runs with `hint` once it (and every ArrayBuffer it is transferred to) is collected.
///
/// # Safety
/// As for [`create_external_buffer`].
pub unsafe fn create_external_arraybuffer(
    env: sys::napi_env,
    data: *mut u8,
    len: usize,
    finalize: Finalizer,
    hint: *mut c_void,
) -> Option<sys::napi_value> {
    let mut out = ptr::null_mut();
    // SAFETY: per the contract; `out` is a valid local.
    let status =
        unsafe { sys::napi_create_external_arraybuffer(env, data.cast(), len, Some(finalize), hint, &mut out) };
    (status == sys::Status::napi_ok).then_some(out)
}

/// The bytes an ArrayBuffer holds: `(data, length)`; `None` if `value` is not an ArrayBuffer.
///
/// # Safety
/// `env` is the current env and `value` a live value of it.
pub unsafe fn arraybuffer_info(env: sys::napi_env, value: sys::napi_value) -> Option<(usize, usize)> {
    let mut data: *mut c_void = ptr::null_mut();
    let mut len = 0;
    // SAFETY: per the contract; valid out-pointers.
    let status = unsafe { sys::napi_get_arraybuffer_info(env, value, &mut data, &mut len) };
    (status == sys::Status::napi_ok).then_some((data as usize, len))
}

/// Detaches an ArrayBuffer: it and every view of it have length 0 from now on.
///
/// # Safety
/// `env` is the current env and `buffer` a live ArrayBuffer of it.
pub unsafe fn detach(env: sys::napi_env, buffer: sys::napi_value) -> bool {
    // SAFETY: per the contract.
    unsafe { sys::napi_detach_arraybuffer(env, buffer) == sys::Status::napi_ok }
}

/// A strong reference to `value`, which keeps it alive for as long as the env lives; `None` if
/// Node-API refused to make it.
///
/// # Safety
/// `env` is the current env and `value` a live object of it.
pub unsafe fn strong_ref(env: sys::napi_env, value: sys::napi_value) -> Option<sys::napi_ref> {
    let mut r = ptr::null_mut();
    // SAFETY: per the contract.
    let status = unsafe { sys::napi_create_reference(env, value, 1, &mut r) };
    (status == sys::Status::napi_ok && !r.is_null()).then_some(r)
}

/// The elements of a Float64Array, writable. `None` if `value` is not one.
///
/// # Safety
/// `env` is the current env and `value` a live value of it. The slice is used only while no
/// JavaScript that could reach the array runs, and not after the current callback returns.
pub unsafe fn float64_elements<'a>(env: sys::napi_env, value: sys::napi_value) -> Option<&'a mut [f64]> {
    // SAFETY: per the contract.
    let (kind, view) = unsafe { typedarray_info(env, value) }?;
    if kind != sys::TypedarrayType::float64_array {
        return None;
    }
    if view.len == 0 {
        return Some(&mut []);
    }
    // SAFETY: a Float64Array's `len` elements at `data`, aligned (V8 keeps them so); nothing else
    // touches them while the slice is used, per the contract.
    Some(unsafe { std::slice::from_raw_parts_mut(view.data as *mut f64, view.len) })
}

/// Element `i` of an object.
///
/// # Safety
/// `env` is the current env and `object` a live object of it whose element `i` is a plain data
/// property (reading it runs no JavaScript).
pub unsafe fn element(env: sys::napi_env, object: sys::napi_value, i: u32) -> Option<sys::napi_value> {
    let mut out = ptr::null_mut();
    // SAFETY: per the contract; a valid out-pointer.
    let status = unsafe { sys::napi_get_element(env, object, i, &mut out) };
    (status == sys::Status::napi_ok && !out.is_null()).then_some(out)
}

/// Sets element `i` of an object.
///
/// # Safety
/// `env` is the current env, `object` a live object of it whose element `i` is a plain data
/// property or absent, with no setter on its prototype chain (writing it runs no JavaScript), and
/// `value` a live value of it.
pub unsafe fn set_element(env: sys::napi_env, object: sys::napi_value, i: u32, value: sys::napi_value) -> bool {
    // SAFETY: per the contract.
    unsafe { sys::napi_set_element(env, object, i, value) == sys::Status::napi_ok }
}
