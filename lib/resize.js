'use strict'
// resize(): a loan's memory grows or shrinks as realloc's does. A slot with room keeps its
// memory, a large Buffer grows by moving its pages (mremap on Linux), anything else is copied;
// the old Buffer is detached before its memory moves or changes hands.

const { nativeResizeBegin, nativeResizeAbort, nativeResizeEnd, detach, wrap } = require('./native')
const errors = require('./errors')
const { PooledBuffer } = require('./pooled-buffer')

const { clearCacheRef } = PooledBuffer

/**
 * The Buffer of `size` (> 0) bytes that loan `token` of `buf` (one reference, of `lender`'s pool)
 * becomes, `buf` detached; bytes past the old length zero if `zero`. On any error nothing changed.
 */
function resizeLoan(lender, buf, token, size, zero, caller) {
  // The native call names the token: the loan becomes ordinary (see ./thread-cache.js).
  clearCacheRef(buf)
  const status = nativeResizeBegin(lender.poolRef, buf, token, size, zero, 0, false)
  if (status !== 0) throw lender.failure(status, caller)
  // Detach the old Buffer before its memory moves or changes hands.
  let memory
  try {
    memory = detach(buf)
  } catch {
    nativeResizeAbort(lender.poolRef, token)
    throw errors.notDetachable(caller)
  }
  const out = nativeResizeEnd(lender.poolRef, memory, token, size)
  if (typeof out !== 'object') throw lender.failure(out, caller)
  return wrap(out, size, token, lender.origin)
}

module.exports = { resizeLoan }
