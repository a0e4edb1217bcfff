//! Releasing many Buffers at once, for `Scope.close()`: `finishMany(handle, list, io)`, after
//! `releaseMany(handle, list, io)` for the Buffers that need it.
//!
//! Each Buffer goes the way a single release takes it, in the same order: JavaScript detaches it
//! (on Node 22+ by transferring its ArrayBuffer with the `transfer` captured at load; on Node 20
//! `finishMany` detaches it), and only then does its loan end. A Buffer of this pool that was never
//! retained is detached at once and marked [`DIRECT`] (as `releaseLast` takes one); any other
//! first has a reference dropped by `releaseMany` and is detached only if that was its last. So a
//! batch gives the same guarantee as single releases: no memory is reusable while a Buffer or
//! view over it is attached. Each call takes the pool's lock once for the whole batch.
//!
//! `io` is a Float64Array of 4 numbers per Buffer, `[token, outcome, class, slot]` (for a
//! [`DIRECT`] one the length replaces the class; for a [`KEPT`] slot the epoch replaces the
//! token; a [`KEPT_MAPPING`] one is `[epoch, KEPT_MAPPING, len, addr]`). Both calls check each Buffer against its token as `release` does (the live loan of that
//! token must be that Buffer's address and length), so a wrong token, or a Buffer that is not the
//! loan's, is skipped: the batch can end no loan but those of the Buffers it was given.

use crate::call::{Call, Outcome};
use crate::escape;
use crate::hint::Hint;
use crate::raw;
use crate::status;
use extmem_core::pool::Release;

/// Nothing to do for this Buffer: JavaScript found it detached already, or it is no live loan of
/// this pool, or (set by JavaScript) it could not be detached.
pub const SKIPPED: f64 = 0.0;
/// A reference was dropped; others remain.
pub const RETAINED: f64 = 1.0;
/// The last reference: nothing changed yet. JavaScript detaches the Buffer, then `finishMany`.
pub const LAST: f64 = 2.0;
/// The loan ended.
pub const ENDED: f64 = 3.0;
/// The loan ended, and its slot's ArrayBuffer (`list[i]`) is to be kept for the slot's next
/// loan: `io[4 * i + 1 ..]` is `[KEPT, class, slot]`, and the slot's epoch is returned in place of
/// the token at `io[4 * i]`.
pub const KEPT: f64 = 4.0;
/// The loan ended, and its mapping's ArrayBuffer (`list[i]`) is to be kept for the mapping's next
/// loan: `io[4 * i ..]` is `[epoch, KEPT_MAPPING, len, addr]`.
pub const KEPT_MAPPING: f64 = 6.0;
/// Set by JavaScript: a Buffer of this pool that was never retained, so that this is its last
/// reference, already detached (Node 22+); `buffers[i]` is the ArrayBuffer its memory was
/// transferred to and `io[4 * i + 2]` its length. `releaseMany` leaves it alone; `finishMany`
/// checks it against its loan as `release` does, then ends the loan.
pub const DIRECT: f64 = 5.0;

/// `releaseMany(handle, list, io)`: drops one reference of the loan of each Buffer `list[i]`
/// whose outcome `io[4 * i + 1]` is [`RETAINED`] on entry (JavaScript asks so for each Buffer it
/// does not handle as [`DIRECT`]), if it is the live Buffer of the token `io[4 * i]`; writes
/// each outcome. `list` is an Array without prototype that JavaScript made and holds alone. Returns
/// the number of Buffers whose last reference this was, or a negative status.
pub fn release_many(call: &Call<3>) -> Outcome {
    let pool = call.pool(0)?;
    let (env, list) = (call.env(), call.arg(1));
    // SAFETY: a live value of the current env; no JavaScript runs while the slice is used.
    let io = unsafe { raw::float64_elements(env, call.arg(2)) }.ok_or(status::STATUS_BAD_ARGUMENT)?;
    let n = io.len() / 4;
    let mut wanted = Vec::new();
    let mut buffers = Vec::new();
    let asked: Vec<usize> = (0..n).filter(|&i| io[4 * i + 1] == RETAINED).collect();
    for i in asked {
        // SAFETY: `list` is the caller's private Array (see above); its elements are data.
        let view = unsafe { raw::element(env, list, i as u32) }
            // SAFETY: a live value of the current env.
            .and_then(|buf| unsafe { raw::view_info(env, buf) });
        let token = io[4 * i];
        match view {
            Some(v) if token.is_finite() && token >= 0.0 => {
                wanted.push(i);
                buffers.push((token as u64, v.data, v.len));
            }
            _ => io[4 * i + 1] = SKIPPED,
        }
    }
    let mut last = 0u32;
    for ((&i, outcome), &(_, _, len)) in wanted.iter().zip(pool.release_all(&buffers)).zip(&buffers) {
        io[4 * i + 1] = match outcome {
            Some(Release::Retained(_)) => RETAINED,
            Some(Release::Last(_)) => {
                last += 1;
                // The length checked, for finishMany to check the detached memory against.
                io[4 * i + 2] = len as f64;
                LAST
            }
            None => SKIPPED,
        };
    }
    Ok(call.number(f64::from(last)))
}

/// `finishMany(handle, list, io)`: ends the loan of each `i` whose outcome is [`LAST`] (with the
/// Buffer's length at `io[4 * i + 2]`, which `releaseMany` wrote) or [`DIRECT`], once JavaScript
/// detached its Buffer, if the memory given is the loan's (never by the token alone): `list[i]` is then the ArrayBuffer the memory
/// was transferred to (Node 22+), or the Buffer itself, which this detaches first (Node 20).
/// Writes [`ENDED`], [`KEPT`] or [`KEPT_MAPPING`] ([`SKIPPED`] for a [`DIRECT`] one that is not its loan's). `list` is an Array without prototype that JavaScript made and holds alone. Returns
/// the number of loans ended, or a negative status.
pub fn finish_many(call: &Call<3>) -> Outcome {
    let pool = call.pool(0)?;
    let (env, list) = (call.env(), call.arg(1));
    // SAFETY: a live value of the current env; no JavaScript runs while the slice is used.
    let io = unsafe { raw::float64_elements(env, call.arg(2)) }.ok_or(status::STATUS_BAD_ARGUMENT)?;
    let n = io.len() / 4;
    let escapes = escape::can_escape();
    let mut ending = Vec::new();
    let mut endings = Vec::new();
    let last: Vec<usize> = (0..n).filter(|&i| io[4 * i + 1] == LAST || io[4 * i + 1] == DIRECT).collect();
    for i in last {
        if io[4 * i + 1] == DIRECT {
            // SAFETY: `list` is the caller's private Array; `list[i]` the ArrayBuffer the memory
            // was transferred to, which only the caller holds.
            let moved = unsafe { raw::element(env, list, i as u32) }
                // SAFETY: a live value of the current env.
                .and_then(|ab| unsafe { raw::arraybuffer_info(env, ab) });
            let (Some((data, _)), true) = (moved, escapes) else {
                io[4 * i + 1] = SKIPPED;
                continue;
            };
            ending.push(i);
            endings.push((io[4 * i] as u64, Some((data, io[4 * i + 2] as usize))));
            continue;
        }
        // The loan ends only if the memory is its own: the ArrayBuffer the Buffer was transferred
        // to (Node 22+), or the Buffer, which is detached here first (Node 20).
        // SAFETY: `list` is the caller's private Array (see above); its elements are data.
        let element = unsafe { raw::element(env, list, i as u32) };
        let at = if escapes {
            // SAFETY: a live value of the current env.
            element.and_then(|ab| unsafe { raw::arraybuffer_info(env, ab) }).map(|(data, _)| data)
        } else {
            // SAFETY: a live value of the current env.
            element.and_then(|buf| unsafe { raw::view_info(env, buf) }).and_then(|view| {
                // SAFETY: the live ArrayBuffer of a typed array of the current env.
                unsafe { raw::detach(env, view.buffer) }.then_some(view.data)
            })
        };
        let Some(at) = at else {
            io[4 * i + 1] = SKIPPED;
            continue;
        };
        ending.push(i);
        endings.push((io[4 * i] as u64, Some((at, io[4 * i + 2] as usize))));
    }
    let mut ended = 0u32;
    for (&i, done) in ending.iter().zip(pool.finish_all(&endings)) {
        let Some(done) = done else {
            io[4 * i + 1] = SKIPPED;
            continue;
        };
        ended += 1;
        // SAFETY: the loan's witness was made by this env (loans end on their own thread), and
        // the loan that used it has ended.
        unsafe { escape::forget(env, done.owner.witness) };
        match (done.slot, done.mapping) {
            (Some(s), _) if done.bound => {
                io[4 * i..4 * i + 4].copy_from_slice(&[s.epoch as f64, KEPT, s.class as f64, s.slot.index() as f64]);
            }
            (None, Some(m)) if done.bound => {
                io[4 * i..4 * i + 4].copy_from_slice(&[m.epoch as f64, KEPT_MAPPING, m.len as f64, m.addr as f64]);
            }
            _ => {
                io[4 * i + 1] = ENDED;
                // SAFETY: the hint is alive (its memory was attached until now) and only this
                // thread touches it.
                unsafe { Hint::forget_loan(done.owner.hint) };
                if escapes {
                    // SAFETY: `list` is the caller's private Array; `list[i]` the ArrayBuffer the
                    // memory moved to, which only the caller holds.
                    if let Some(ab) = unsafe { raw::element(env, list, i as u32) } {
                        // SAFETY: a live value of the current env; detaching anything else fails.
                        unsafe { raw::detach(env, ab) };
                    }
                }
            }
        }
    }
    Ok(call.number(f64::from(ended)))
}
