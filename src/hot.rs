//! Allocating and releasing one Buffer: the bodies of `alloc`, `allocBound`, `reuse`,
//! `reuseMapping`, `release`, `releaseLast` and `finishRelease` (see [`crate::exports`]).
//!
//! napi-rs's generated glue measured ~120 ns per numeric argument and ~280 ns per class method
//! call on this project's machines, against ~11 ns for an empty Node-API function; these calls
//! are made once per allocation or release, so they read their arguments through [`Call`]
//! instead. Each takes the pool's External (see [`crate::pool_external`]) first, named `poolRef`
//! in the signatures below as in JavaScript. Arguments come from the JavaScript layer, which
//! checked them; results follow the binding's convention (a value, or a negative status with
//! details in the thread's scratch array).

use std::ffi::c_void;

use napi::sys;

use crate::call::{Call, Outcome};
use crate::escape;
use crate::hint::Hint;
use crate::lend;
use crate::raw;
use crate::scratch::{self, Keep};
use crate::status;
use extmem_core::admission::Priority;
use extmem_core::error::PoolError;
use extmem_core::loan::Holder;
use extmem_core::pool::{Grant, MappingRef, Pool, Release, SlotRef};
use extmem_core::slab::Slot;

/// The status of a refused allocation: [`status::STATUS_RETRY`] for a refusal at the cap that
/// the caller will follow with a flush of its thread's cache and a second try (the core did not
/// count it), else as [`status::refusal`].
fn refusal_of(pool: &Pool, e: &PoolError, will_retry: bool, priority: Priority) -> i32 {
    if will_retry && pool.is_cap_refusal(e, priority) {
        return status::STATUS_RETRY;
    }
    status::refusal(e)
}

/// Makes the external ArrayBuffer of a grant, to be lent on Node 22+ (see [`escape`]), and
/// records its witness with the loan; on failure nothing is lent: the loan is undone and the
/// memory reachable by no ArrayBuffer.
///
/// `hint` was made for the grant (a loan just lent for a Buffer of this thread) with
/// [`Hint::into_raw`] and not yet handed to Node.
fn lend_arraybuffer<const N: usize>(
    call: &Call<N>,
    pool: &Pool,
    grant: &Grant,
    len: usize,
    hint: *mut c_void,
) -> Outcome {
    // SAFETY: the grant's `len` bytes belong to this loan alone until it ends, and it ends only
    // after its ArrayBuffers are detached or finalized; `hint` is fresh.
    match unsafe { lend::external_arraybuffer(call.env(), grant.addr, len, hint) } {
        Ok((ab, witness)) => {
            pool.set_witness(grant.token, witness);
            Ok(ab)
        }
        // Node never took the hint: the grant's bound bytes are the pool's to take back.
        Err(false) => {
            pool.undo_alloc(grant);
            Err(status::STATUS_EXTERNAL_REFUSED)
        }
        // The finalizer runs later, finds the loan ended, and takes the bound bytes back itself.
        Err(true) => {
            pool.undo_alloc(&Grant { bound_bytes: 0, ..*grant });
            Err(status::STATUS_EXTERNAL_REFUSED)
        }
    }
}

/// `alloc(poolRef, size, zero, flags, tracked)`: the memory of one new loan of `size >= 1` bytes,
/// or a negative status; scratch holds the loan's token (`scratch::loan`). On Node 22+ it is an
/// ArrayBuffer of `size` bytes that the caller views; on Node 20 a Buffer.
pub fn alloc(call: &Call<5>) -> Outcome {
    let pool = call.pool(0)?;
    let req = call.request(1, false)?;
    let size = req.size;
    let hint = Hint::Loan { pool: pool.clone(), token: None }.into_raw();
    let holder = Holder { thread: call.env() as usize, hint: hint as usize, witness: 0 };
    let (will_retry, priority) = (req.will_retry, req.priority);
    let grant = match pool.alloc_with(req, holder) {
        Ok(g) => g,
        Err(e) => {
            // SAFETY: `hint` came from `Hint::into_raw`, and Node never saw it.
            unsafe { Hint::drop_raw(hint) };
            return Err(refusal_of(pool, &e, will_retry, priority));
        }
    };
    // SAFETY: `hint` came from `Hint::into_raw`; nothing else has it yet.
    unsafe { Hint::set_token(hint, Some(grant.token)) };
    let memory = if escape::can_escape() {
        lend_arraybuffer(call, pool, &grant, size, hint)?
    } else {
        // SAFETY: the grant's `size` bytes belong to this loan alone until it ends, and it ends
        // only after the Buffer is detached or finalized; `hint` is fresh.
        let made = unsafe { lend::external_buffer(call.env(), grant.addr, size, hint) };
        let Some(buffer) = made else {
            pool.undo_alloc(&grant);
            // SAFETY: `hint` came from `Hint::into_raw`, and Node did not take it.
            unsafe { Hint::drop_raw(hint) };
            return Err(status::STATUS_EXTERNAL_REFUSED);
        };
        buffer
    };
    scratch::loan(grant.token);
    Ok(memory)
}

/// `allocBound(poolRef, size, zero, flags, tracked)` (Node 22+): a new slab loan of `size <= 8192`
/// bytes whose memory is a new ArrayBuffer over the whole slot, kept by JavaScript across later
/// loans of the slot (see `reuse`); or a negative status. On success scratch holds
/// the loan and its slot or mapping (`scratch::bound_slot`, `scratch::bound_mapping`); the caller
/// views the first `size` bytes.
pub fn alloc_bound(call: &Call<5>) -> Outcome {
    let pool = call.pool(0)?;
    if !escape::can_escape() {
        return Err(status::STATUS_BAD_ARGUMENT);
    }
    let req = call.request(1, true)?;
    let (will_retry, priority) = (req.will_retry, req.priority);
    let grant = pool
        .alloc_with(req, Holder { thread: call.env() as usize, hint: 0, witness: 0 })
        .map_err(|e| refusal_of(pool, &e, will_retry, priority))?;
    if let Some(at) = grant.mapping {
        let hint = Hint::Mapping { pool: pool.clone(), at }.into_raw();
        // The mapping is this loan's alone; later loans reach it only through this ArrayBuffer
        // (or one it was transferred to) while its epoch is the mapping's.
        let ab = lend_arraybuffer(call, pool, &grant, grant.capacity, hint)?;
        scratch::bound_mapping(grant.token, at.len, at.addr, at.epoch);
        return Ok(ab);
    }
    let Some(slot) = grant.slot else {
        pool.undo_alloc(&grant);
        return Err(status::STATUS_BAD_ARGUMENT);
    };
    let hint = Hint::Slot { pool: pool.clone(), slot, bytes: grant.capacity }.into_raw();
    // The slot is this loan's alone; later loans reach it only through this ArrayBuffer (or one
    // it was transferred to) while its epoch is the slot's newest.
    let ab = lend_arraybuffer(call, pool, &grant, grant.capacity, hint)?;
    scratch::bound_slot(grant.token, slot.class, slot.slot.index(), slot.epoch);
    Ok(ab)
}

/// `reuseMapping(poolRef, addr, len, epoch, size, zero, flags, tracked, ab)`: lends the cached
/// mapping at `addr` again through the ArrayBuffer `ab` of `epoch` that the caller kept (over all
/// `len` bytes of it). Returns the new loan's token, or a negative status: `STATUS_STALE` if that
/// ArrayBuffer no longer owns the mapping or the mapping is not cached (drop it), a refusal
/// otherwise (keep it).
pub fn reuse_mapping(call: &Call<9>) -> Outcome {
    let pool = call.pool(0)?;
    let at = MappingRef { addr: call.f64(1)? as usize, len: call.f64(2)? as usize, epoch: call.f64(3)? as u64 };
    let req = call.request(4, true)?;
    // The mapping is checked against the kept ArrayBuffer's memory, not its name alone.
    // SAFETY: argument 8 is a live value of the current env.
    let shown = unsafe { raw::arraybuffer_info(call.env(), call.arg(8)) }.ok_or(status::STATUS_BAD_ARGUMENT)?;
    if shown != (at.addr, at.len) {
        return Err(status::STATUS_STALE);
    }
    // SAFETY: argument 8 is a live value of the current env.
    let witness = unsafe { escape::witness(call.env(), call.arg(8)) }.ok_or(status::STATUS_EXTERNAL_REFUSED)?;
    match pool.reuse_mapping(at, req, Holder { thread: call.env() as usize, hint: 0, witness }) {
        Ok(g) => Ok(call.number(g.token as f64)),
        Err(e) => {
            // SAFETY: made just above by this env, and used by nothing.
            unsafe { escape::forget(call.env(), witness) };
            Err(status::refusal(&e))
        }
    }
}

/// `reuse(poolRef, class, slot, epoch, size, zero, flags, tracked, ab)`: lends the slot again
/// through the ArrayBuffer `ab` of `epoch` that the caller kept. Returns the new loan's token, or
/// a negative status: `STATUS_STALE` if that ArrayBuffer no longer owns the slot (drop it), a
/// refusal otherwise (keep it).
pub fn reuse(call: &Call<9>) -> Outcome {
    let pool = call.pool(0)?;
    let slot =
        SlotRef { class: call.u32(1)? as usize, slot: Slot::from_index(call.u32(2)?), epoch: call.f64(3)? as u64 };
    let req = call.request(4, true)?;
    // The core checks the slot against the kept ArrayBuffer's memory, not the slot's name alone.
    // SAFETY: argument 8 is a live value of the current env.
    let (at, _) = unsafe { raw::arraybuffer_info(call.env(), call.arg(8)) }.ok_or(status::STATUS_BAD_ARGUMENT)?;
    // SAFETY: argument 8 is a live value of the current env.
    let witness = unsafe { escape::witness(call.env(), call.arg(8)) }.ok_or(status::STATUS_EXTERNAL_REFUSED)?;
    match pool.reuse_at(slot, req, Holder { thread: call.env() as usize, hint: 0, witness }, Some(at)) {
        Ok(g) => Ok(call.number(g.token as f64)),
        Err(e) => {
            // SAFETY: made just above by this env, and used by nothing.
            unsafe { escape::forget(call.env(), witness) };
            Err(status::refusal(&e))
        }
    }
}

/// `release(poolRef, buffer, token)`: drops a reference; returns the references left, or a
/// negative status. On the last one it returns 0 and changes nothing: the caller detaches the
/// Buffer (on Node 22+, by transferring its ArrayBuffer), then calls `finishRelease`.
pub fn release(call: &Call<3>) -> Outcome {
    let pool = call.pool(0)?;
    let view = call.view(1).ok_or(status::STATUS_NOT_POOLED)?;
    let token = call.f64(2)? as u64;
    match pool.release(token, view.data, view.len) {
        Ok(Release::Retained(left)) => Ok(call.number(f64::from(left))),
        Ok(Release::Last(_)) => Ok(call.number(0.0)),
        Err(e) => Err(status::of(&e)),
    }
}

/// `releaseLast(poolRef, memory, token, length, keep)`: `release` and `finishRelease` in one call,
/// for a Buffer that was never retained, so that this is its last reference. `memory` is the
/// ArrayBuffer the caller transferred the Buffer's memory to (Node 22+: the Buffer is detached
/// already), or the Buffer itself (Node 20), which this detaches first; `length` is the Buffer's
/// length. Checks the Buffer against its loan as `release` does. Returns and writes what
/// `finishRelease` does; or the references left if, after all, others remain (the loan stays, and
/// goes back to the pool when its memory is collected); or a negative status.
pub fn release_last(call: &Call<5>) -> Outcome {
    let pool = call.pool(0)?;
    let token = call.f64(2)? as u64;
    let len = call.f64(3)? as usize;
    let env = call.env();
    let (data, buffer) = if escape::can_escape() {
        // SAFETY: a live value of the current env.
        let (data, _) = unsafe { raw::arraybuffer_info(env, call.arg(1)) }.ok_or(status::STATUS_BAD_ARGUMENT)?;
        (data, None)
    } else {
        let view = call.view(1).ok_or(status::STATUS_NOT_POOLED)?;
        (view.data, Some(view.buffer))
    };
    match pool.release(token, data, len).map_err(|e| status::of(&e))? {
        Release::Retained(left) => return Ok(call.number(f64::from(left))),
        Release::Last(_) => {}
    }
    end_released(call, pool, token, data, buffer, call.bool(4)?)
}

/// `finishRelease(poolRef, memory, token, keep)`: ends the loan of `token` after `release` returned 0
/// (`keep` false: nothing will keep the ArrayBuffer, so it is detached even if bound).
/// `memory` is the Buffer itself on Node 20, which this call detaches first; on Node 22+ it is the
/// ArrayBuffer that the caller transferred the Buffer's memory to (so the Buffer is detached
/// already), which this call detaches too unless the loan was slot-bound (then the caller keeps
/// it for the slot's or mapping's next loan). On success returns 0 and scratch holds what the
/// caller keeps (`scratch::kept`).
pub fn finish_release(call: &Call<4>) -> Outcome {
    let pool = call.pool(0)?;
    let token = call.f64(2)? as u64;
    let keep = call.bool(3)?;
    // The loan ends only if the memory given is its own (the Buffer's, or the ArrayBuffer it was
    // transferred to), never by the token alone.
    if escape::can_escape() {
        // SAFETY: a live value of the current env.
        let (at, _) = unsafe { raw::arraybuffer_info(call.env(), call.arg(1)) }.ok_or(status::STATUS_BAD_ARGUMENT)?;
        end_released(call, pool, token, at, None, keep)
    } else {
        let view = call.view(1).ok_or(status::STATUS_NOT_POOLED)?;
        end_released(call, pool, token, view.data, Some(view.buffer), keep)
    }
}

/// The end of `releaseLast` and `finishRelease`, whose last reference is gone: detaches
/// `buffer` (Node 20: the ArrayBuffer of the Buffer passed as argument 1), or else takes argument
/// 1 as the ArrayBuffer the memory was transferred to; then ends the loan of `token`, if its
/// memory starts at `at`, and writes what the caller keeps to scratch (`scratch::kept`). Returns 0.
fn end_released<const N: usize>(
    call: &Call<N>,
    pool: &Pool,
    token: u64,
    at: usize,
    buffer: Option<sys::napi_value>,
    keep: bool,
) -> Outcome {
    let env = call.env();
    if let Some(buffer) = buffer {
        // SAFETY: the live ArrayBuffer of a typed array of the current env (detaching one that
        // is detached already does nothing).
        if !unsafe { raw::detach(env, buffer) } {
            return Err(status::STATUS_EXTERNAL_REFUSED);
        }
    }
    let moved_to = if buffer.is_none() { Some(call.arg(1)) } else { None };
    // SAFETY: the Buffer is detached: nothing in JavaScript reaches the memory but `moved_to`,
    // which only the caller holds, and no JavaScript runs before this returns.
    match unsafe { end_loan(env, pool, token, at, moved_to, keep) }.ok_or(status::STATUS_NOT_POOLED)? {
        Kept::Slot(s) => scratch::kept(Keep::Slot { class: s.class, slot: s.slot.index(), epoch: s.epoch }),
        Kept::Mapping(m) => scratch::kept(Keep::Mapping { len: m.len, addr: m.addr, epoch: m.epoch }),
        Kept::Nothing => scratch::kept(Keep::Nothing),
    }
    Ok(call.number(0.0))
}

/// What the caller of a release may keep: the ArrayBuffer the memory was transferred to, to lend
/// the same slot or mapping again through it.
enum Kept {
    /// Nothing: the ArrayBuffer is detached.
    Nothing,
    /// It stays bound to this slot.
    Slot(SlotRef),
    /// It stays bound to this mapping.
    Mapping(MappingRef),
}

/// Ends the loan of `token`, whose memory starts at `at`, after [`Pool::release`] answered `Last`;
/// returns the slot to keep `moved_to` for if the loan was slot-bound (`Some(None)` if not), or
/// `None` if there was no such live loan at `at`. `moved_to` is the ArrayBuffer the memory was
/// transferred to (Node 22+), which this detaches unless the slot keeps it.
///
/// # Safety
/// `env` is the current env, whose thread lent the loan. No JavaScript can reach the memory any
/// more but through `moved_to`, which only the caller holds, and none runs before this returns.
unsafe fn end_loan(
    env: sys::napi_env,
    pool: &Pool,
    token: u64,
    at: usize,
    moved_to: Option<sys::napi_value>,
    keep: bool,
) -> Option<Kept> {
    let done = pool.finish_release_at(token, at)?;
    // SAFETY: the loan's witness was made by this env (loans end on their own thread), and the
    // loan that used it has ended.
    unsafe { escape::forget(env, done.holder.witness) };
    match (keep && done.bound, done.slot, done.mapping) {
        (true, Some(slot), _) => return Some(Kept::Slot(slot)),
        (true, None, Some(mapping)) => return Some(Kept::Mapping(mapping)),
        _ => {}
    }
    // SAFETY: the memory was attached until now, so Node has not finalized the hint.
    unsafe { Hint::forget_loan(done.holder.hint) };
    if let Some(ab) = moved_to {
        // V8 stops counting the memory as external now, not when the GC gets round to it. (It
        // was never exposed, so nothing marked it.)
        // SAFETY: a live ArrayBuffer of the current env, per the contract.
        unsafe { raw::detach(env, ab) };
    }
    Some(Kept::Nothing)
}
