//! The per-thread slot caches' native calls (see `extmem_core::pool::cache`): open a cache, fill
//! it with slots, record the witnesses of slots put back, and flush it. Cache hits and releases
//! into a cache make no native call at all; JavaScript (`lib/thread-cache.js`) serves them.
//!
//! A cache's entries travel in a private Array of triples `ab, entry, token` that JavaScript
//! made and holds alone (no prototype, so reading or writing its elements runs no JavaScript).

use napi::sys;

use crate::call::{Call, Outcome};
use crate::escape;
use crate::flags::FLAG_ESSENTIAL;
use crate::hint::{self, Hint};
use crate::lend;
use crate::raw;
use crate::scratch;
use crate::status;
use extmem_core::admission::Priority;
use extmem_core::loan::Holder;
use extmem_core::pool::cache::{self, FILL_BATCH};
use extmem_core::size_class::CLASS_COUNT;

/// `cacheOpen(poolRef)`: a new cache of this thread; returns an external ArrayBuffer over its
/// block (viewed as an Int32Array), with the cache's id in scratch (`scratch::cache_id`). When
/// that ArrayBuffer is collected (the thread's Pool object went, or the thread ended) the cache
/// closes. A negative status on Node 20, which has no caches.
pub fn open(call: &Call<1>) -> Outcome {
    let pool = call.pool(0)?;
    if !escape::can_escape() {
        return Err(status::STATUS_BAD_ARGUMENT);
    }
    let (id, block) = pool.cache_open();
    let (addr, len) = (block.as_ptr(), block.byte_len());
    let hint = Hint::Cache { pool: pool.clone(), id, _block: block }.into_raw();
    // SAFETY: the block lives as long as the hint, which Node frees in the finalizer only.
    match unsafe { raw::create_external_arraybuffer(call.env(), addr, len, hint::finalize, hint) } {
        Some(ab) => {
            scratch::cache_id(id);
            Ok(ab)
        }
        None => {
            // SAFETY: Node did not take the hint.
            unsafe { Hint::drop_raw(hint) };
            pool.cache_close(id);
            Err(status::STATUS_EXTERNAL_REFUSED)
        }
    }
}

/// `cacheFill(poolRef, id, class, n, flags, out)`: hands up to `n` free slots of cache class
/// `class` (or mappings, for a large class) to the cache, each with a new ArrayBuffer over all of
/// it, written as triples to `out` from index 0. Returns how many, or a negative status (a
/// refusal, with its figures in scratch).
pub fn fill(call: &Call<6>) -> Outcome {
    let pool = call.pool(0)?;
    let (id, class) = (call.f64(1)? as u64, call.u32(2)? as usize);
    if class >= cache::cache_classes() || !escape::can_escape() {
        return Err(status::STATUS_BAD_ARGUMENT);
    }
    let n = (call.u32(3)? as usize).clamp(1, FILL_BATCH);
    let priority = if call.u32(4)? & FLAG_ESSENTIAL != 0 { Priority::Essential } else { Priority::Normal };
    let holder = Holder { thread: call.env() as usize, hint: 0, witness: 0 };
    let grants = if class < CLASS_COUNT {
        pool.cache_fill(id, class, n, priority, holder)
    } else {
        pool.cache_fill_large(id, cache::class_bytes(class), n, priority, holder)
    }
    .map_err(|e| status::refusal(&e))?;
    let (env, out) = (call.env(), call.arg(5));
    let mut made = 0u32;
    for (i, g) in grants.iter().enumerate() {
        if made as usize != i {
            pool.cache_undo(g, false);
            continue;
        }
        let hint = match (g.slot, g.mapping) {
            (Some(slot), _) => Hint::Slot { pool: pool.clone(), slot, bytes: g.len },
            (None, Some(at)) => Hint::Mapping { pool: pool.clone(), at },
            (None, None) => unreachable!("a grant is a slot or a mapping"),
        }
        .into_raw();
        // SAFETY: the slot or mapping is the cache loan's alone until it ends, which is only
        // after its ArrayBuffers are detached or finalized; `hint` is fresh.
        match unsafe { lend::external_arraybuffer(env, g.addr, g.len, hint) } {
            Ok((ab, witness)) => {
                pool.set_cache_witness(g.token, witness);
                let token = call.number(g.token as f64);
                let entry = call.number(f64::from(g.entry));
                // SAFETY: `out` is the caller's private Array; the values are live.
                let written = unsafe {
                    raw::set_element(env, out, 3 * made, ab)
                        && raw::set_element(env, out, 3 * made + 1, entry)
                        && raw::set_element(env, out, 3 * made + 2, token)
                };
                if !written {
                    // SAFETY: a live ArrayBuffer of this env, which nothing else holds.
                    unsafe { raw::detach(env, ab) };
                    // SAFETY: made just above by this env.
                    unsafe { escape::forget(env, witness) };
                    pool.cache_undo(g, true);
                    continue;
                }
                made += 1;
            }
            Err(node_has_it) => pool.cache_undo(g, node_has_it),
        }
    }
    if made == 0 {
        return Err(status::STATUS_EXTERNAL_REFUSED);
    }
    Ok(call.number(f64::from(made)))
}

/// Most slots one `cacheSync` call witnesses.
pub const SYNC_BATCH: usize = 32;

/// `cacheSync(poolRef, id, entries, n, ab0, …, ab31)`: records the witnesses of `n` slots put back
/// since the last sync: `ab_i`, the ArrayBuffer of entry `entries[i]` (a Float64Array). Folds the
/// cache's counts into the pool's and moves the level and the gates. Returns 0, or a negative
/// status. (The ArrayBuffers come as arguments: reading them from an Array costs ~100 ns each.)
pub fn sync(call: &Call<{ 4 + SYNC_BATCH }>) -> Outcome {
    let pool = call.pool(0)?;
    let (id, n) = (call.f64(1)? as u64, (call.u32(3)? as usize).min(SYNC_BATCH));
    let env = call.env();
    // SAFETY: a live value of the current env; no JavaScript runs while the slice is used.
    let entries = unsafe { raw::float64_elements(env, call.arg(2)) }.ok_or(status::STATUS_BAD_ARGUMENT)?;
    if entries.len() < n {
        return Err(status::STATUS_BAD_ARGUMENT);
    }
    let mut witnessed = Vec::with_capacity(n);
    for (i, &entry) in entries.iter().take(n).enumerate() {
        // SAFETY: a live value of the current env (a witness of anything but an ArrayBuffer
        // never finds one attached).
        let Some(witness) = (unsafe { escape::witness(env, call.arg(4 + i)) }) else {
            break;
        };
        witnessed.push((entry as u32, witness));
    }
    let complete = witnessed.len() == n;
    for stale in pool.cache_sync(id, &witnessed) {
        // SAFETY: witnesses of this cache's loans, made by this env, replaced and used no more.
        unsafe { escape::forget(env, stale) };
    }
    if !complete {
        return Err(status::STATUS_EXTERNAL_REFUSED);
    }
    Ok(call.number(0.0))
}

/// `cacheFlush(poolRef, id, list, n)`: gives the slots (and mappings) of the `n` triples of `list`
/// back to the pool and detaches their ArrayBuffers. Returns the bytes the pool gave back to the
/// OS meanwhile (mappings its mapping cache had no room for).
pub fn flush(call: &Call<4>) -> Outcome {
    let pool = call.pool(0)?;
    let (id, list, n) = (call.f64(1)? as u64, call.arg(2), call.u32(3)?);
    let env = call.env();
    let mut entries = Vec::with_capacity(n as usize);
    let mut abs = Vec::with_capacity(n as usize);
    for i in 0..n {
        // SAFETY: `list` is the caller's private Array; its elements are data.
        let (ab, entry) = unsafe { (raw::element(env, list, 3 * i), raw::element(env, list, 3 * i + 1)) };
        let (Some(ab), Some(entry)) = (ab, entry) else { continue };
        // The core checks the slot against the ArrayBuffer's memory, not the entry alone.
        // SAFETY: a live value of the current env.
        let Some((data, _)) = (unsafe { raw::arraybuffer_info(env, ab) }) else { continue };
        let mut e = 0u32;
        // SAFETY: a live value of the current env; a valid out-pointer.
        if unsafe { sys::napi_get_value_uint32(env, entry, &mut e) } == sys::Status::napi_ok {
            entries.push((e, data));
            abs.push(ab);
        }
    }
    let (ended, freed) = pool.cache_flush(id, &entries);
    for (done, ab) in ended.into_iter().zip(abs) {
        let Some(done) = done else { continue };
        // SAFETY: the loan's witness, made by this env; the loan has ended.
        unsafe { escape::forget(env, done.holder.witness) };
        // The slot is free now: nothing may reach it through the cache's ArrayBuffer.
        // SAFETY: a live ArrayBuffer of the current env, which only the caller holds.
        unsafe { raw::detach(env, ab) };
    }
    Ok(call.number(freed as f64))
}

/// `cacheClose(poolRef, id)`: closes the cache (its thread flushed it first). Returns 0.
pub fn close(call: &Call<2>) -> Outcome {
    let pool = call.pool(0)?;
    pool.cache_close(call.f64(1)? as u64);
    Ok(call.number(0.0))
}

/// `cacheDecay(poolRef)`: gives back the pool's memory that stayed unused (see `Pool::decay`);
/// each thread's cache calls it on its timer, so memory comes back with no call of the user's.
/// Returns the bytes given back.
pub fn decay(call: &Call<1>) -> Outcome {
    let pool = call.pool(0)?;
    Ok(call.number(pool.decay() as f64))
}
