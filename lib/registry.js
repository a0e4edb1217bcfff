'use strict'
// The Pool objects of this thread, for pools() and the metric exporters (./prometheus.js,
// ./opentelemetry.js).
//
// Invariants: the list holds each Pool object weakly (a WeakRef), so listing keeps nothing alive;
// an entry whose Pool object was collected is dropped by a FinalizationRegistry (and skipped until
// then). Entries are in the order the Pool objects were made. The list is per thread, as this
// module is loaded once per thread: defaultPool and named pools appear in every thread that has a
// Pool object over them, a private pool only in its own. Built-ins are the ones captured at load
// (./intrinsics.js): `new Pool()` runs no built-in that user code can replace later.

const {
  SafeSet,
  SafeWeakRef,
  SafeFinalizationRegistry,
  setAdd,
  setDelete,
  forEachOfSet,
  deref,
  registryRegister,
} = require('./intrinsics')

/** WeakRefs of the Pool objects made in this thread, in the order they were made. */
const refs = new SafeSet()
/** Drops the WeakRef of a collected Pool object (the held value is the WeakRef, never the Pool). */
const forget = new SafeFinalizationRegistry((ref) => setDelete(refs, ref))

/** Adds `pool`, a Pool object just made, to this thread's list. */
function track(pool) {
  const ref = new SafeWeakRef(pool)
  setAdd(refs, ref)
  registryRegister(forget, pool, ref)
}

/** The Pool objects of this thread that are not collected yet (closed ones included), oldest first. */
function pools() {
  const out = []
  forEachOfSet(refs, (ref) => {
    const pool = deref(ref)
    if (pool !== undefined) out[out.length] = pool
  })
  return out
}

module.exports = { track, pools }
