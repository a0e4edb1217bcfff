'use strict'
// The end of a reference: release(), `[Symbol.dispose]()` and the one-by-one part of a scope's
// close(). A Buffer lent by this thread's cache goes back to it with no native call; any other
// drops a reference natively, and the last one ends the loan, after the Buffer (and every view of
// it) was detached, so that its memory is reachable by nothing but the pool from then on. The
// ArrayBuffer it was detached to may be kept to serve the next loan of its slot or mapping
// (./small-buffers.js, ./large-buffers.js).

const {
  nativeRelease,
  nativeFinishRelease,
  nativeReleaseLast,
  scratch,
  SCRATCH,
  TRANSFER,
  detach,
} = require('./native')
const errors = require('./errors')
const { PooledBuffer } = require('./pooled-buffer')
const { GIVEN_TRACKED } = require('./thread-cache')
const { keepSlot } = require('./small-buffers')
const { keepMapping } = require('./large-buffers')
const { recordRelease } = require('./release-history')
const { deref, lengthOf, mapSize, mapDelete } = require('./intrinsics')

const { clearCacheRef, wasRetained, originOf } = PooledBuffer

/**
 * Drops one reference of the loan `token` of `buf`, a Buffer of `lender`'s pool; returns the
 * references left, or throws the error for `caller`.
 */
function drop(lender, buf, token, caller) {
  const ref = clearCacheRef(buf)
  if (ref >= 0 && !lender.closed && lender.cache != null && originOf(buf).poolRef === lender.poolRef) {
    let given
    try {
      given = lender.cache.give(buf, lengthOf(buf), ref, token)
    } catch {
      throw errors.notDetachable(caller)
    }
    if (given !== 0) {
      if (given === GIVEN_TRACKED) mapDelete(lender.traces, token)
      return 0
    }
  }
  const dropped = dropReference(lender.poolRef, buf, token, caller)
  if (typeof dropped === 'number') {
    if (!(dropped > 0)) throw lender.failure(dropped, caller)
    lender.cache?.poll()
    return dropped
  }
  if (lender.quarantine !== null) lender.quarantine.released(buf, token, caller)
  // Any release honours a flush the core asked of this thread's cache (once it succeeded: a
  // refused call changes nothing).
  lender.cache?.poll()
  // A slot-bound or mapping-bound Buffer: keep its new ArrayBuffer for the next loan.
  const kept = scratch[SCRATCH.kept]
  if (kept === SCRATCH.keptSlot) {
    keepSlot(lender, scratch[SCRATCH.class], dropped, scratch[SCRATCH.slot], scratch[SCRATCH.epoch])
  } else if (kept === SCRATCH.keptMapping) {
    keepMapping(lender, dropped, scratch[SCRATCH.mappingAddr], scratch[SCRATCH.mappingLen], scratch[SCRATCH.epoch])
  }
  // The memory is the pool's again: nothing below can reach it, patched or not.
  if (mapSize(lender.traces) !== 0) mapDelete(lender.traces, token)
  return 0
}

/**
 * Drops one reference of the loan `token` of `buf` in the pool of `poolRef`. Returns the
 * references left (> 0) or a negative status; or, once the last reference is gone and the loan
 * ended, the ArrayBuffer the memory was detached to (Node 22+; null on Node 20), with scratch
 * telling whether it stays bound to its slot (`SCRATCH.keptSlot`) or mapping
 * (`SCRATCH.keptMapping`) for the caller to keep (see nativeFinishRelease). With `keep` false
 * nothing is kept: the ArrayBuffer is detached too.
 *
 * The Buffer (and every view of it) is detached *before* the loan ends, so its memory is
 * reachable by nothing but the pool from then on.
 */
function dropReference(poolRef, buf, token, caller, keep = true) {
  if (!wasRetained(buf) && originOf(buf).poolRef === poolRef) {
    // A Buffer of this pool (its origin record names this pool) that is attached and was never
    // retained: this is its last reference, and its loan is live. Detach first, then one native
    // call ends the loan (checking the Buffer against it all the same). Anything else (another
    // pool's Buffer, one retained) goes the way that checks before it detaches.
    const length = lengthOf(buf)
    let memory
    try {
      memory = detach(buf)
    } catch {
      throw errors.notDetachable(caller)
    }
    const status = nativeReleaseLast(poolRef, memory, token, length, keep)
    return status === 0 ? (TRANSFER ? memory : null) : status
  }
  const refs = nativeRelease(poolRef, buf, token)
  if (refs !== 0) return refs
  let memory
  try {
    memory = detach(buf)
  } catch {
    throw errors.notDetachable(caller)
  }
  const status = nativeFinishRelease(poolRef, memory, token, keep)
  return status === 0 ? (TRANSFER ? memory : null) : status
}

/**
 * `[Symbol.dispose]()` of a PooledBuffer (see ./pooled-buffer.js) holding `token`, as `caller`:
 * drops one reference, as release() does.
 */
function disposeLoan(buf, token, caller) {
  const origin = originOf(buf)
  const lender = deref(origin.lender)
  if (lender !== undefined) {
    drop(lender, buf, token, caller)
    // leakDetection 'paranoid' (./release-history.js): where the loan ended.
    if (lender.trackEvery === 1 && lengthOf(buf) === 0) recordRelease(buf, caller)
    return
  }
  // Its Pool object was collected: the native pool still has the loan.
  clearCacheRef(buf)
  // Nothing will keep its ArrayBuffer: it is detached, and its memory leaves at once.
  const dropped = dropReference(origin.poolRef, buf, token, caller, false)
  if (typeof dropped === 'number' && !(dropped > 0)) throw errors.notPooled(caller)
}

/** `[Symbol.dispose]()` of a FastPooledBuffer: releaseFast(). */
function disposeFast(buf, origin) {
  // Once its Pool object is collected, so are its arenas: nothing is left to give back to.
  deref(origin.lender)?.fast?.dispose(buf)
}

module.exports = { drop, disposeLoan, disposeFast }
