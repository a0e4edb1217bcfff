//! Releasing many Buffers at once, for `Scope.close()`: `finishMany(poolRef, list, io)`, after
//! `releaseMany(poolRef, list, io)` for the Buffers that need it.
//!
//! Each Buffer goes the way a single release takes it, in the same order: JavaScript detaches it
//! (on Node 22+ by transferring its ArrayBuffer with the `transfer` captured at load; on Node 20
//! `finishMany` detaches it), and only then does its loan end. A Buffer of this pool that was never
//! retained is detached at once and marked [`DIRECT`] (as `releaseLast` takes one); any other
//! first has a reference dropped by `releaseMany` and is detached only if that was its last. So a
//! batch gives the same guarantee as single releases: no memory is reusable while a Buffer or
//! view over it is attached. Each call takes the pool's lock once for the whole batch.
//!
//! `io` is a Float64Array of [`IO_STRIDE`] numbers per Buffer, each at its named index (exported
//! to JavaScript as `constants().releaseIo`): `[token, outcome, length]` going in and after
//! [`LAST`]; `[epoch, KEPT, class, slot]` for a [`KEPT`] slot and `[epoch, KEPT_MAPPING, len,
//! addr]` for a [`KEPT_MAPPING`] one. Both calls check each Buffer against its token as `release`
//! does (the live loan of that token must be that Buffer's address and length), so a wrong token,
//! or a Buffer that is not the loan's, is skipped: the batch can end no loan but those of the
//! Buffers it was given.

use crate::call::{Call, Outcome};
use crate::escape;
use crate::hint::Hint;
use crate::layout::{all_below, distinct};
use crate::raw;
use crate::status;
use extmem_core::pool::Release;

/// Numbers per Buffer in `io`.
pub const IO_STRIDE: usize = 4;
/// Index of the Buffer's loan token (going in).
pub const IO_TOKEN: usize = 0;
/// Index of the outcome (both ways).
pub const IO_OUTCOME: usize = 1;
/// Index of the Buffer's length: set by JavaScript for a [`DIRECT`] one, by `releaseMany` for a
/// [`LAST`] one.
pub const IO_LENGTH: usize = 2;
/// Index of a kept slot's or mapping's epoch (replacing the token).
pub const IO_EPOCH: usize = 0;
/// Index of a kept slot's class.
pub const IO_CLASS: usize = 2;
/// Index of a kept slot's index in its class.
pub const IO_SLOT: usize = 3;
/// Index of a kept mapping's length.
pub const IO_MAPPING_LEN: usize = 2;
/// Index of a kept mapping's address.
pub const IO_MAPPING_ADDR: usize = 3;

// Every figure sits among a Buffer's numbers, and the figures of one record never share one.
const _: () = {
    let all = [IO_TOKEN, IO_OUTCOME, IO_LENGTH, IO_EPOCH, IO_CLASS, IO_SLOT, IO_MAPPING_LEN, IO_MAPPING_ADDR];
    assert!(all_below(all, IO_STRIDE), "an io index past a Buffer's numbers");
    assert!(distinct([IO_TOKEN, IO_OUTCOME, IO_LENGTH]), "a Buffer's token, outcome and length overlap");
    assert!(distinct([IO_EPOCH, IO_OUTCOME, IO_CLASS, IO_SLOT]), "a kept slot's figures overlap");
    assert!(distinct([IO_EPOCH, IO_OUTCOME, IO_MAPPING_LEN, IO_MAPPING_ADDR]), "a kept mapping's figures overlap");
};

/// Where figure `field` of Buffer `i` sits in `io`.
#[inline]
const fn io_index(i: usize, field: usize) -> usize {
    IO_STRIDE * i + field
}

/// The numbers of `io`, if it holds a whole number of Buffers.
///
/// # Safety
/// As `raw::float64_elements`: `io` is a live value of the current env, and no JavaScript runs
/// while the slice is used.
unsafe fn io_of<'a>(env: napi::sys::napi_env, io: napi::sys::napi_value) -> Result<&'a mut [f64], i32> {
    // SAFETY: the caller's promise.
    let io = unsafe { raw::float64_elements(env, io) }.ok_or(status::STATUS_BAD_ARGUMENT)?;
    if io.len() % IO_STRIDE == 0 {
        Ok(io)
    } else {
        Err(status::STATUS_BAD_ARGUMENT)
    }
}

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
/// loan: Buffer `i`'s numbers are `[epoch, KEPT, class, slot]` (at [`IO_EPOCH`], [`IO_OUTCOME`],
/// [`IO_CLASS`], [`IO_SLOT`]).
pub const KEPT: f64 = 4.0;
/// The loan ended, and its mapping's ArrayBuffer (`list[i]`) is to be kept for the mapping's next
/// loan: Buffer `i`'s numbers are `[epoch, KEPT_MAPPING, len, addr]` (at [`IO_EPOCH`],
/// [`IO_OUTCOME`], [`IO_MAPPING_LEN`], [`IO_MAPPING_ADDR`]).
pub const KEPT_MAPPING: f64 = 6.0;
/// Set by JavaScript: a Buffer of this pool that was never retained, so that this is its last
/// reference, already detached (Node 22+); `buffers[i]` is the ArrayBuffer its memory was
/// transferred to and its number at [`IO_LENGTH`] its length. `releaseMany` leaves it alone;
/// `finishMany` checks it against its loan as `release` does, then ends the loan.
pub const DIRECT: f64 = 5.0;

// The outcomes are told apart by value.
const _: () = assert!(
    distinct([
        SKIPPED as usize,
        RETAINED as usize,
        LAST as usize,
        ENDED as usize,
        KEPT as usize,
        KEPT_MAPPING as usize,
        DIRECT as usize
    ]),
    "two batch outcomes share a value"
);

/// `releaseMany(poolRef, list, io)`: drops one reference of the loan of each Buffer `list[i]`
/// whose outcome is [`RETAINED`] on entry (JavaScript asks so for each Buffer it
/// does not handle as [`DIRECT`]), if it is the live Buffer of its token; writes
/// each outcome. `list` is an Array without prototype that JavaScript made and holds alone. Returns
/// the number of Buffers whose last reference this was, or a negative status.
pub fn release_many(call: &Call<3>) -> Outcome {
    let pool = call.pool(0)?;
    let (env, list) = (call.env(), call.arg(1));
    // SAFETY: a live value of the current env; no JavaScript runs while the slice is used.
    let io = unsafe { io_of(env, call.arg(2)) }?;
    let n = io.len() / IO_STRIDE;
    let mut wanted = Vec::new();
    let mut buffers = Vec::new();
    let asked: Vec<usize> = (0..n).filter(|&i| io[io_index(i, IO_OUTCOME)] == RETAINED).collect();
    for i in asked {
        // SAFETY: `list` is the caller's private Array (see above); its elements are data.
        let view = unsafe { raw::element(env, list, i as u32) }
            // SAFETY: a live value of the current env.
            .and_then(|buf| unsafe { raw::view_info(env, buf) });
        let token = io[io_index(i, IO_TOKEN)];
        match view {
            Some(v) if token.is_finite() && token >= 0.0 => {
                wanted.push(i);
                buffers.push((token as u64, v.data, v.len));
            }
            _ => io[io_index(i, IO_OUTCOME)] = SKIPPED,
        }
    }
    let mut last = 0u32;
    for ((&i, outcome), &(_, _, len)) in wanted.iter().zip(pool.release_all(&buffers)).zip(&buffers) {
        io[io_index(i, IO_OUTCOME)] = match outcome {
            Some(Release::Retained(_)) => RETAINED,
            Some(Release::Last(_)) => {
                last += 1;
                // The length checked, for finishMany to check the detached memory against.
                io[io_index(i, IO_LENGTH)] = len as f64;
                LAST
            }
            None => SKIPPED,
        };
    }
    Ok(call.number(f64::from(last)))
}

/// `finishMany(poolRef, list, io)`: ends the loan of each `i` whose outcome is [`LAST`] (with the
/// Buffer's length at [`IO_LENGTH`], which `releaseMany` wrote) or [`DIRECT`], once JavaScript
/// detached its Buffer, if the memory given is the loan's (never by the token alone): `list[i]` is
/// then the ArrayBuffer the memory was transferred to (Node 22+), or the Buffer itself, which this
/// detaches first (Node 20). Writes [`ENDED`], [`KEPT`] or [`KEPT_MAPPING`] ([`SKIPPED`] for a
/// [`DIRECT`] one that is not its loan's). `list` is an Array without prototype that JavaScript
/// made and holds alone. Returns the number of loans ended, or a negative status.
pub fn finish_many(call: &Call<3>) -> Outcome {
    let pool = call.pool(0)?;
    let (env, list) = (call.env(), call.arg(1));
    // SAFETY: a live value of the current env; no JavaScript runs while the slice is used.
    let io = unsafe { io_of(env, call.arg(2)) }?;
    let n = io.len() / IO_STRIDE;
    let escapes = escape::can_escape();
    let mut ending = Vec::new();
    let mut endings = Vec::new();
    let last: Vec<usize> =
        (0..n).filter(|&i| io[io_index(i, IO_OUTCOME)] == LAST || io[io_index(i, IO_OUTCOME)] == DIRECT).collect();
    for i in last {
        if io[io_index(i, IO_OUTCOME)] == DIRECT {
            // SAFETY: `list` is the caller's private Array; `list[i]` the ArrayBuffer the memory
            // was transferred to, which only the caller holds.
            let moved = unsafe { raw::element(env, list, i as u32) }
                // SAFETY: a live value of the current env.
                .and_then(|ab| unsafe { raw::arraybuffer_info(env, ab) });
            let (Some((data, _)), true) = (moved, escapes) else {
                io[io_index(i, IO_OUTCOME)] = SKIPPED;
                continue;
            };
            ending.push(i);
            endings.push((io[io_index(i, IO_TOKEN)] as u64, Some((data, io[io_index(i, IO_LENGTH)] as usize))));
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
            io[io_index(i, IO_OUTCOME)] = SKIPPED;
            continue;
        };
        ending.push(i);
        endings.push((io[io_index(i, IO_TOKEN)] as u64, Some((at, io[io_index(i, IO_LENGTH)] as usize))));
    }
    let mut ended = 0u32;
    for (&i, done) in ending.iter().zip(pool.finish_all(&endings)) {
        let Some(done) = done else {
            io[io_index(i, IO_OUTCOME)] = SKIPPED;
            continue;
        };
        ended += 1;
        // SAFETY: the loan's witness was made by this env (loans end on their own thread), and
        // the loan that used it has ended.
        unsafe { escape::forget(env, done.holder.witness) };
        match (done.slot, done.mapping) {
            (Some(s), _) if done.bound => {
                io[io_index(i, IO_EPOCH)] = s.epoch as f64;
                io[io_index(i, IO_OUTCOME)] = KEPT;
                io[io_index(i, IO_CLASS)] = s.class as f64;
                io[io_index(i, IO_SLOT)] = f64::from(s.slot.index());
            }
            (None, Some(m)) if done.bound => {
                io[io_index(i, IO_EPOCH)] = m.epoch as f64;
                io[io_index(i, IO_OUTCOME)] = KEPT_MAPPING;
                io[io_index(i, IO_MAPPING_LEN)] = m.len as f64;
                io[io_index(i, IO_MAPPING_ADDR)] = m.addr as f64;
            }
            _ => {
                io[io_index(i, IO_OUTCOME)] = ENDED;
                // SAFETY: the hint is alive (its memory was attached until now) and only this
                // thread touches it.
                unsafe { Hint::forget_loan(done.holder.hint) };
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
