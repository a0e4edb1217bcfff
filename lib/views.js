'use strict'
// Views and their owners: pool.releaseOwner(x) drops one reference of the loan a view lies in.
//
// A view (a subarray() or slice()) never owns its memory: retain() and release() refuse it. To let
// code that holds only a view give the memory back, a pooled Buffer's subarray() and slice()
// record, once per ArrayBuffer, which Buffer that ArrayBuffer belongs to. Each loan of the safe
// path has an ArrayBuffer of its own (a release detaches it, and the next loan of the memory gets
// a new one), so the ArrayBuffer a view lies over names exactly one loan: the record is keyed by
// it, read through the built-in getter captured at load (never `view.buffer`, which user code can
// shadow), and held weakly (a record lives as long as the ArrayBuffer, and keeps the Buffer that
// owns it reachable only through it).
//
// Costs: nothing on the allocation path; one WeakMap lookup on a pooled Buffer's subarray() and
// slice() (views of views inherit Node's own methods and cost nothing more). Views made another
// way (`new Uint8Array(buf.buffer, …)`, `Buffer.from(buf.buffer, …)`) are found only if some
// subarray() or slice() of the same Buffer recorded it. Fast-path Buffers (allocFast) and their
// views are never recorded: they share an arena's ArrayBuffer, and releaseOwner refuses them as
// release() does.

const { isUint8Array } = require('node:util/types')
const { PooledBuffer } = require('./pooled-buffer')
const {
  bufferOf,
  lengthOf,
  byteOffsetOf,
  uncurry,
  SafeWeakMap,
  weakMapGet: weakGet,
  weakMapSet: weakSet,
  weakMapHas: weakHas,
} = require('./intrinsics')
const errors = require('./errors')

/** Buffer's own subarray() and slice(), as they were when this module loaded. */
const subarrayOf = uncurry(Buffer.prototype.subarray)
const sliceOf = uncurry(Buffer.prototype.slice)

/** ArrayBuffer -> the PooledBuffer whose loan it holds, for Buffers a view was made of. */
const owners = new SafeWeakMap()

/** Records `buf` (a PooledBuffer) as the owner of its ArrayBuffer. */
function record(buf) {
  const ab = bufferOf(buf)
  if (!weakHas(owners, ab)) weakSet(owners, ab, buf)
}

// On the prototype of the safe path's Buffers only: Node's Buffers, views and fast-path Buffers
// keep Buffer.prototype's methods.
Object.defineProperties(PooledBuffer.prototype, {
  subarray: {
    value: function subarray(start, end) {
      const view = subarrayOf(this, start, end)
      record(this)
      return view
    },
    writable: true,
    configurable: true,
  },
  slice: {
    value: function slice(start, end) {
      const view = sliceOf(this, start, end)
      record(this)
      return view
    },
    writable: true,
    configurable: true,
  },
})

/**
 * The Buffer that owns the loan `x` lies in: `x` itself if it is a Buffer from alloc(), the
 * recorded owner of its ArrayBuffer if it is a view, or undefined if there is none on record.
 * `x` must be a Buffer (checked by the caller).
 */
function ownerOf(x) {
  if (PooledBuffer.tokenOf(x) !== undefined) return x
  const owner = weakGet(owners, bufferOf(x))
  if (owner === undefined) return undefined
  // The view must lie inside its owner's bytes (a view over the slack of a slot does not).
  const offset = byteOffsetOf(x) - byteOffsetOf(owner)
  return offset >= 0 && offset + lengthOf(x) <= lengthOf(owner) ? owner : undefined
}

/**
 * The owner that `pool` would release for `x`, or the error release() gives: `x` must be a Buffer
 * of `pool`'s safe path or a view of one that ownerOf finds, still live.
 */
function ownerFor(pool, x, caller) {
  const owner = isBuffer(x) ? ownerOf(x) : undefined
  if (owner !== undefined) return owner
  // Anything else gets release()'s own error (a type error, a fast-path Buffer's, another
  // pool's, a foreign Buffer's); a view with no owner on record gets one that says why.
  try {
    pool.refCount(x)
  } catch (err) {
    if (err?.code !== 'ERR_EXTMEM_VIEW_OWNERSHIP') {
      Error.captureStackTrace(err, caller)
      throw err
    }
  }
  throw errors.viewOwnership(caller, errors.UNKNOWN_OWNER)
}

/** Whether `x` is a real Buffer (a Uint8Array by brand and an instance of Buffer); never throws. */
function isBuffer(x) {
  try {
    return isUint8Array(x) && x instanceof Buffer
  } catch {
    return false
  }
}

/** `pool.releaseOwner(x)`: drops one reference of the loan `x` (a pooled Buffer or a view of one) lies in. */
function releaseOwner(x) {
  const owner = ownerFor(this, x, releaseOwner)
  try {
    return this.release(owner)
  } catch (err) {
    Error.captureStackTrace(err, releaseOwner)
    throw err
  }
}

/** Installs releaseOwner() as a method of `Pool`. */
function install(Pool) {
  Object.defineProperty(Pool.prototype, 'releaseOwner', { value: releaseOwner, writable: true, configurable: true })
}

module.exports = { ownerOf, ownerFor, isBuffer, install }
