//! Resizing a pooled Buffer (`pool.resize`), in three calls around the JavaScript detach of the
//! old Buffer, so that its memory never moves or changes hands while a Buffer over it is attached:
//! - `resizeBegin(poolRef, buffer, token, size, zero, flags, tracked)`: everything that can fail
//!   (see `extmem_core::pool::resize`); 0 or a negative status, and then nothing changed;
//! - JavaScript detaches the old Buffer (Node 22+: transfers its ArrayBuffer), or, if it cannot,
//!   `resizeAbort(poolRef, token)`;
//! - `resizeEnd(poolRef, memory, token, size)`: `memory` is the ArrayBuffer the old one was
//!   transferred to (Node 22+) or the old Buffer, which this detaches first (Node 20). Moves the
//!   contents and returns what the new Buffer views: on Node 22+ an ArrayBuffer (`memory` itself
//!   when a slot-bound Buffer stayed in place: the new Buffer views its first `size` bytes), on
//!   Node 20 a Buffer; or a negative status.

use crate::call::{Call, Outcome};
use crate::escape;
use crate::hint::{self, Hint};
use crate::lend;
use crate::raw;
use crate::status;
use extmem_core::loan::Holder;
use extmem_core::pool::Pool;

/// `resizeBegin(poolRef, buffer, token, size, zero, flags, tracked)` (see the module doc).
pub fn begin(call: &Call<7>) -> Outcome {
    let pool = call.pool(0)?;
    let view = call.view(1).ok_or(status::STATUS_NOT_POOLED)?;
    let token = call.f64(2)? as u64;
    let req = call.request(3, false)?;
    pool.resize_begin(token, view.data, view.len, req).map_err(|e| status::refusal(&e))?;
    Ok(call.number(0.0))
}

/// `resizeAbort(poolRef, token)` (see the module doc).
pub fn abort(call: &Call<2>) -> Outcome {
    call.pool(0)?.resize_abort(call.f64(1)? as u64);
    Ok(call.number(0.0))
}

/// `resizeEnd(poolRef, memory, token, size)` (see the module doc).
pub fn end(call: &Call<4>) -> Outcome {
    let pool = call.pool(0)?;
    let env = call.env();
    let token = call.f64(2)? as u64;
    let size = call.f64(3)? as usize;
    let escapes = escape::can_escape();
    if escapes {
        // The memory given must be the loan's (its Buffer's ArrayBuffer, transferred), never
        // another that the token alone would let through.
        // SAFETY: a live value of the current env.
        let at = unsafe { raw::arraybuffer_info(env, call.arg(1)) }.map(|(data, _)| data);
        if at.is_none() || at != pool.loan_addr(token) {
            pool.resize_abort(token);
            return Err(status::STATUS_NOT_POOLED);
        }
    } else {
        let view = call.view(1).ok_or(status::STATUS_BAD_ARGUMENT)?;
        if Some(view.data) != pool.loan_addr(token) {
            pool.resize_abort(token);
            return Err(status::STATUS_NOT_POOLED);
        }
        // SAFETY: the live ArrayBuffer of a typed array of the current env (Node 20: detaching an
        // ArrayBuffer marked untransferable works).
        if view.len != 0 && !unsafe { raw::detach(env, view.buffer) } {
            pool.resize_abort(token);
            return Err(status::STATUS_EXTERNAL_REFUSED);
        }
    }
    // Nothing in JavaScript reaches the old memory any more but `memory`, which is ours alone.
    let r = pool.resize_end(token).ok_or(status::STATUS_NOT_POOLED)?;
    // SAFETY: the old Buffer's witness, made by this env; the new Buffer gets its own.
    unsafe { escape::forget(env, r.holder.witness) };
    // SAFETY: the old Buffer's hint: alive, as its memory was attached until now.
    unsafe { Hint::forget_loan(r.holder.hint) };
    let thread = env as usize;
    if r.bound {
        // Node 22+, a slot-bound Buffer in place: the new Buffer views `memory` again.
        let ab = call.arg(1);
        // SAFETY: a live ArrayBuffer of the current env.
        let Some(witness) = (unsafe { escape::witness(env, ab) }) else {
            // SAFETY: as above; it was never exposed, so nothing marked it.
            unsafe { raw::detach(env, ab) };
            return Err(lost(pool, token));
        };
        pool.set_holder(token, Holder { thread, hint: 0, witness });
        return Ok(ab);
    }
    if escapes {
        // SAFETY: the ArrayBuffer JavaScript transferred the old Buffer to, seen by no one else.
        unsafe { raw::detach(env, call.arg(1)) };
    }
    let hint = Hint::Loan { pool: pool.clone(), token: Some(token) }.into_raw();
    if escapes {
        // SAFETY: the loan's `size` bytes at `r.addr` are its alone until it ends; `hint` is fresh.
        match unsafe { lend::external_arraybuffer(env, r.addr, size, hint) } {
            Ok((ab, witness)) => {
                pool.set_holder(token, Holder { thread, hint: hint as usize, witness });
                Ok(ab)
            }
            Err(_) => Err(lost(pool, token)),
        }
    } else {
        // SAFETY: as above; the finalizer frees `hint`.
        match unsafe { raw::create_external_buffer(env, r.addr, size, hint::finalize, hint) } {
            Some(buffer) => {
                pool.set_holder(token, Holder { thread, hint: hint as usize, witness: 0 });
                Ok(buffer)
            }
            None => {
                // SAFETY: Node did not take `hint`.
                unsafe { Hint::drop_raw(hint) };
                Err(lost(pool, token))
            }
        }
    }
}

/// Ends a resized loan whose new Buffer could not be made (the runtime refuses external memory):
/// its memory goes back to the pool, reachable by nothing.
fn lost(pool: &Pool, token: u64) -> i32 {
    pool.finish_release(token);
    status::STATUS_EXTERNAL_REFUSED
}
