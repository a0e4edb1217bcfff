//! One native call from JavaScript on the hot path: its env and its arguments, read with plain
//! Node-API calls (napi-rs's generated glue measured ~120 ns per numeric argument here).
//!
//! A [`Call`] exists only inside the callback Node is running, so its env is the current one and
//! its arguments are live values of it: that is what makes its methods safe to call.

use std::ptr;
use std::sync::Arc;

use napi::sys;

use crate::flags::{FLAG_ALIGN_MASK, FLAG_ESSENTIAL, FLAG_PREFAULT, FLAG_SERVES_SMALL, FLAG_WILL_RETRY};
use crate::pool_external;
use crate::raw::{self, ViewInfo};
use crate::status;
use extmem_core::admission::Priority;
use extmem_core::pool::{AllocRequest, Pool};
use extmem_core::size_class::ALIGNMENTS;

/// A call's outcome: a value for JavaScript, or a negative status (details in scratch).
pub type Outcome = Result<sys::napi_value, i32>;

/// Largest size a request may carry (2^53: every larger number is inexact in JavaScript anyway).
const MAX_SIZE: f64 = 9_007_199_254_740_992.0;

/// The env and `N` arguments of the callback now running.
#[derive(Debug)]
pub struct Call<const N: usize> {
    env: sys::napi_env,
    args: [sys::napi_value; N],
}

impl<const N: usize> Call<N> {
    /// Reads exactly `N` arguments (missing ones are `undefined`), or `STATUS_BAD_ARGUMENT`.
    ///
    /// # Safety
    /// `env` and `info` are the ones Node passed to the callback now running, and the `Call`
    /// does not outlive it.
    pub unsafe fn new(env: sys::napi_env, info: sys::napi_callback_info) -> Result<Self, i32> {
        let mut args = [ptr::null_mut(); N];
        let mut argc = N;
        // SAFETY: per the contract; `args` holds `argc` slots, the other out-pointers are unused.
        let status =
            unsafe { sys::napi_get_cb_info(env, info, &mut argc, args.as_mut_ptr(), ptr::null_mut(), ptr::null_mut()) };
        if status != sys::Status::napi_ok || args.iter().any(|v| v.is_null()) {
            return Err(status::STATUS_BAD_ARGUMENT);
        }
        Ok(Call { env, args })
    }

    /// The current env.
    pub fn env(&self) -> sys::napi_env {
        self.env
    }

    /// Argument `i`, as it came.
    pub fn arg(&self, i: usize) -> sys::napi_value {
        self.args[i]
    }

    /// The pool whose External (made by `NativePool.poolRef()`, see [`pool_external`]) is argument
    /// `i`.
    pub fn pool(&self, i: usize) -> Result<&Arc<Pool>, i32> {
        // SAFETY: the current env and one of its live values, alive for as long as this call.
        unsafe { pool_external::pool(self.env, self.args[i]) }.ok_or(status::STATUS_NOT_POOLED)
    }

    /// Argument `i` as a number.
    pub fn f64(&self, i: usize) -> Result<f64, i32> {
        let mut out = 0.0;
        // SAFETY: the current env and one of its live values; a valid out-pointer.
        let status = unsafe { sys::napi_get_value_double(self.env, self.args[i], &mut out) };
        if status == sys::Status::napi_ok {
            Ok(out)
        } else {
            Err(status::STATUS_BAD_ARGUMENT)
        }
    }

    /// Argument `i` as an unsigned 32-bit integer.
    pub fn u32(&self, i: usize) -> Result<u32, i32> {
        let mut out = 0;
        // SAFETY: as in `f64`.
        let status = unsafe { sys::napi_get_value_uint32(self.env, self.args[i], &mut out) };
        if status == sys::Status::napi_ok {
            Ok(out)
        } else {
            Err(status::STATUS_BAD_ARGUMENT)
        }
    }

    /// Argument `i` as a boolean.
    pub fn bool(&self, i: usize) -> Result<bool, i32> {
        let mut out = false;
        // SAFETY: as in `f64`.
        let status = unsafe { sys::napi_get_value_bool(self.env, self.args[i], &mut out) };
        if status == sys::Status::napi_ok {
            Ok(out)
        } else {
            Err(status::STATUS_BAD_ARGUMENT)
        }
    }

    /// The view of argument `i` if it is a typed array.
    pub fn view(&self, i: usize) -> Option<ViewInfo> {
        // SAFETY: the current env and one of its live values.
        unsafe { raw::view_info(self.env, self.args[i]) }
    }

    /// The request of the arguments `[size, zero, flags, tracked]` from `i` on.
    pub fn request(&self, i: usize, bind: bool) -> Result<AllocRequest, i32> {
        let (size, zero, flags, tracked) = (self.f64(i)?, self.bool(i + 1)?, self.u32(i + 2)?, self.bool(i + 3)?);
        if !(1.0..=MAX_SIZE).contains(&size) {
            return Err(status::STATUS_BAD_ARGUMENT);
        }
        Ok(AllocRequest {
            size: size as usize,
            zero,
            align: ALIGNMENTS[((flags & FLAG_ALIGN_MASK) as usize).min(ALIGNMENTS.len() - 1)],
            priority: if flags & FLAG_ESSENTIAL != 0 { Priority::Essential } else { Priority::Normal },
            tracked,
            bind,
            prefault: flags & FLAG_PREFAULT != 0,
            serves_small: flags & FLAG_SERVES_SMALL != 0,
            will_retry: flags & FLAG_WILL_RETRY != 0,
        })
    }

    /// A JavaScript number; null (`undefined` to JavaScript) only if V8 cannot make one.
    pub fn number(&self, n: f64) -> sys::napi_value {
        let mut out = ptr::null_mut();
        // SAFETY: the current env; a valid out-pointer.
        unsafe { sys::napi_create_double(self.env, n, &mut out) };
        out
    }

    /// The call's result for an outcome.
    pub fn respond(&self, outcome: Outcome) -> sys::napi_value {
        outcome.unwrap_or_else(|status| self.number(status.into()))
    }
}

/// Runs `body` on the call Node is making now, with `N` arguments, and returns its result.
///
/// # Safety
/// `env` and `info` are the ones Node passed to the callback now running.
pub unsafe fn run<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    body: fn(&Call<N>) -> Outcome,
) -> sys::napi_value {
    // SAFETY: per the contract; the `Call` lives only in here.
    match unsafe { Call::<N>::new(env, info) } {
        Ok(call) => call.respond(body(&call)),
        Err(status) => Call { env, args: [ptr::null_mut(); N] }.number(status.into()),
    }
}
