//! Zero-copy hand-off of a Buffer between threads of one pool (`pool.share` / `pool.adopt` /
//! `pool.reclaim`), over `extmem_core::pool::handoff`:
//! - `share(poolRef, memory, token, length)`: `memory` is the ArrayBuffer JavaScript transferred
//!   the Buffer's to (Node 22+; this detaches it) or the Buffer itself (Node 20; this detaches
//!   it). The JavaScript layer checked that the Buffer is live with one reference, and no
//!   JavaScript ran since. Returns the handle's secret, or a negative status;
//! - `adopt(poolRef, token, secret, size)`: a new ArrayBuffer (Node 22+) or Buffer (Node 20) over
//!   the loan's `size` bytes (which must be its size), owned by this thread; or a negative status;
//! - `reclaimShared(poolRef, token, secret)`: ends a loan in transit; 0 or a negative status.
//!
//! Memory in transit keeps its pool alive: a named pool whose last `Pool` object went (its
//! thread ended after posting the handle) is still the pool a thread joining that name later
//! finds, and adopts from. [`IN_TRANSIT`] holds the pool of every loan in transit, from `share`
//! until `adopt` or `reclaimShared` takes it out (the only ways a loan leaves transit).

/// The pool of each loan in transit, by token (a token names its pool too, so it is unique in
/// the process).
static IN_TRANSIT: Mutex<Option<HashMap<u64, Arc<Pool>>>> = Mutex::new(None);

fn pin(token: u64, pool: &Arc<Pool>) {
    let mut pins = IN_TRANSIT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    pins.get_or_insert_with(HashMap::new).insert(token, pool.clone());
}

fn unpin(token: u64) {
    let pool = {
        let mut pins = IN_TRANSIT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pins.as_mut().and_then(|p| p.remove(&token))
    };
    // Dropped outside the lock: the last reference drops the pool.
    drop(pool);
}

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use extmem_core::pool::Pool;

use crate::call::{Call, Outcome};
use crate::escape;
use crate::hint::{self, Hint};
use crate::lend;
use crate::raw;
use crate::status;
use extmem_core::loan::Holder;

/// `share(poolRef, memory, token, length)`: puts the loan in transit (see the module doc).
pub fn share(call: &Call<4>) -> Outcome {
    let pool = call.pool(0)?;
    let env = call.env();
    let token = call.f64(2)? as u64;
    let len = call.f64(3)? as usize;
    let escapes = escape::can_escape();
    let (data, buffer) = if escapes {
        // SAFETY: a live value of the current env.
        let (data, _) = unsafe { raw::arraybuffer_info(env, call.arg(1)) }.ok_or(status::STATUS_BAD_ARGUMENT)?;
        (data, call.arg(1))
    } else {
        let view = call.view(1).ok_or(status::STATUS_BAD_ARGUMENT)?;
        (view.data, view.buffer)
    };
    let shared = pool.share(token, data, len).map_err(|e| status::of(&e))?;
    pin(token, pool);
    // The memory is in transit: no ArrayBuffer of this thread may reach it any more.
    // SAFETY: a live ArrayBuffer of the current env: the one JavaScript transferred the Buffer's
    // to, which no one else has (Node 22+), or the Buffer's own (Node 20, where detaching works
    // whatever marks it carries).
    unsafe { raw::detach(env, buffer) };
    // SAFETY: the old Buffer's witness, made by this env.
    unsafe { escape::forget(env, shared.holder.witness) };
    // SAFETY: the old Buffer's hint: alive, as its memory was attached until now.
    unsafe { Hint::forget_loan(shared.holder.hint) };
    Ok(call.number(shared.secret as f64))
}

/// `adopt(poolRef, token, secret, size)`: takes a loan in transit for this thread (see the module
/// doc).
pub fn adopt(call: &Call<4>) -> Outcome {
    let pool = call.pool(0)?;
    let env = call.env();
    let token = call.f64(1)? as u64;
    let secret = call.f64(2)? as u64;
    let size = call.f64(3)? as usize;
    let hint = Hint::Loan { pool: pool.clone(), token: Some(token) }.into_raw();
    let holder = Holder { thread: env as usize, hint: hint as usize, witness: 0 };
    let addr = match pool.adopt(token, secret, size, holder) {
        Ok(got) => {
            unpin(token);
            got
        }
        Err(e) => {
            // SAFETY: `hint` came from `Hint::into_raw`, and Node never saw it.
            unsafe { Hint::drop_raw(hint) };
            return Err(status::of(&e));
        }
    };
    let made = if escape::can_escape() {
        // SAFETY: the loan's `size` bytes at `addr` are its alone (it was in transit: no
        // ArrayBuffer reached them) until it ends; `hint` is fresh.
        unsafe { lend::external_arraybuffer(env, addr, size, hint) }.ok().map(|(ab, witness)| {
            pool.set_witness(token, witness);
            ab
        })
    } else {
        // SAFETY: as above; the finalizer frees `hint`.
        let buffer = unsafe { raw::create_external_buffer(env, addr, size, hint::finalize, hint) };
        if buffer.is_none() {
            // SAFETY: Node did not take `hint`.
            unsafe { Hint::drop_raw(hint) };
        }
        buffer
    };
    made.ok_or_else(|| {
        // The runtime refuses external memory: nothing can hold the Buffer, so the loan ends.
        pool.finish_release(token);
        status::STATUS_EXTERNAL_REFUSED
    })
}

/// `reclaimShared(poolRef, token, secret)`: ends a loan in transit (see the module doc).
pub fn reclaim_shared(call: &Call<3>) -> Outcome {
    let pool = call.pool(0)?;
    let token = call.f64(1)? as u64;
    pool.reclaim_shared(token, call.f64(2)? as u64).map_err(|e| status::of(&e))?;
    unpin(token);
    Ok(call.number(0.0))
}
