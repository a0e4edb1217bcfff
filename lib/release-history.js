'use strict'
// Double releases, with their history: a Pool made with leakDetection 'paranoid' remembers where
// each of its Buffers was released, so that the ERR_EXTMEM_RELEASED of a second release (or of a
// retain() after the last release) carries the stack of the first one beside its own
// (`err.firstReleaseStack`, and the first frame in the message).
//
// Invariants:
// - Only paranoid Pool objects reach this file: keepReleaseHistory() gives such an object its own
//   release(), retain() and scope-close entry, wrapping the prototype's; every other Pool object
//   runs the prototype's methods untouched, so this costs it nothing.
// - A record is keyed weakly by the Buffer object that alloc() returned. A released Buffer is
//   detached for good and its object is never lent again (a new loan of the same memory is a new
//   Buffer), so a record never describes another loan; it goes when the GC collects the Buffer.
// - A release is recorded only when it ended the loan (the Buffer was attached before and is
//   detached after): dropping one of several references is not a release that a second one repeats.

const { isUint8Array } = require('node:util/types')
const { SafeWeakMap, weakMapGet, weakMapSet, lengthOf, uncurry } = require('./intrinsics')
const { captureTrace, formatTrace } = require('./leaks')
const { kReleaseAll } = require('./scope')
const errors = require('./errors')

const { defineProperty } = Object

/** Buffer -> the captured trace of the release that ended its loan. */
const releases = new SafeWeakMap()

/** Whether `buf` is a typed array that holds memory now (a pooled Buffer before its last release). */
function attached(buf) {
  return isUint8Array(buf) && lengthOf(buf) !== 0
}

/** Records that the release by `caller` (a public entry) just ended the loan of `buf`. */
function recordRelease(buf, caller) {
  weakMapSet(releases, buf, captureTrace(caller))
}

/**
 * `err` as thrown by a release or retain of `buf`; for an ERR_EXTMEM_RELEASED of a Buffer whose
 * release was recorded, a new ERR_EXTMEM_RELEASED whose stack starts above `caller` and that
 * carries the first release's stack.
 */
function withHistory(err, buf, caller) {
  if (err === null || typeof err !== 'object' || err.code !== 'ERR_EXTMEM_RELEASED' || !isUint8Array(buf)) return err
  const trace = weakMapGet(releases, buf)
  return trace === undefined ? err : errors.released(caller, formatTrace(trace))
}

/** Defines an own method of `pool`, not enumerable, as the prototype's are. */
function define(pool, key, fn) {
  defineProperty(pool, key, { value: fn, writable: true, configurable: true, enumerable: false })
}

/**
 * Makes `pool`, a Pool object with leakDetection 'paranoid', record its releases: release(),
 * retain() and the scopes' close() (`kReleaseAll`) become own methods that call `proto`'s (the
 * Pool prototype). `[Symbol.dispose]` records through recordRelease() itself.
 */
function keepReleaseHistory(pool, proto) {
  const protoRelease = uncurry(proto.release)
  const protoRetain = uncurry(proto.retain)
  const protoReleaseAll = uncurry(proto[kReleaseAll])
  define(pool, 'release', function release(buf) {
    const was = attached(buf)
    let refs
    try {
      refs = protoRelease(this, buf)
    } catch (err) {
      throw withHistory(err, buf, release)
    }
    if (was && refs === 0 && lengthOf(buf) === 0) recordRelease(buf, release)
    return refs
  })
  define(pool, 'retain', function retain(buf) {
    try {
      return protoRetain(this, buf)
    } catch (err) {
      throw withHistory(err, buf, retain)
    }
  })
  define(pool, kReleaseAll, function releaseAll(list, caller) {
    // The Buffers of `list` that hold memory now (the call uses `list` up).
    const held = []
    for (let i = 0; i < list.length; i++) if (attached(list[i])) held[held.length] = list[i]
    try {
      return protoReleaseAll(this, list, caller)
    } finally {
      let trace
      for (let i = 0; i < held.length; i++) {
        if (lengthOf(held[i]) !== 0) continue
        trace ??= captureTrace(caller)
        weakMapSet(releases, held[i], trace)
      }
    }
  })
}

module.exports = { keepReleaseHistory, recordRelease }
