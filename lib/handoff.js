'use strict'
// Hand-off between the threads of a shared pool (defaultPool, a named pool): share() detaches a
// Buffer and returns a handle, a plain object that survives postMessage; the memory stays in
// transit until one thread adopts the handle (a new Buffer over it) or reclaims it (back to the
// pool). A handle serves once: its secret, which the core checks, is spent by either.

const { nativeShare, nativeAdopt, nativeReclaimShared, detach, wrap } = require('./native')
const errors = require('./errors')
const { PooledBuffer } = require('./pooled-buffer')
const { lengthOf, mapSize, mapDelete } = require('./intrinsics')

const { clearCacheRef } = PooledBuffer

/**
 * The handle of loan `token` of `buf` (one reference, of `lender`'s pool named `name`), `buf`
 * detached; its memory in transit.
 */
function shareLoan(lender, buf, token, name, caller) {
  // The Buffer's real length (an own `length` property cannot change it), read before the
  // detach; the native call checks it against the loan, which the caller confirmed, so
  // nothing below refuses a Buffer it has consumed.
  const size = lengthOf(buf)
  // The native call names the token: the loan becomes ordinary (see ./thread-cache.js).
  clearCacheRef(buf)
  // Detach first: from here on no Buffer of this thread reaches the memory.
  let memory
  try {
    memory = detach(buf)
  } catch {
    throw errors.notDetachable(caller)
  }
  const secret = nativeShare(lender.poolRef, memory, token, size)
  if (secret < 0) throw lender.failure(secret, caller)
  if (mapSize(lender.traces) !== 0) mapDelete(lender.traces, token)
  return { pool: name, token, secret, size }
}

/** A Buffer over the memory of `handle` (checked by handleOf) in `lender`'s pool. */
function adoptLoan(lender, { token, secret, size }, caller) {
  const memory = nativeAdopt(lender.poolRef, token, secret, size)
  if (typeof memory !== 'object') throw lender.failure(memory, caller)
  return wrap(memory, size, token, lender.origin)
}

/** Gives the memory of `handle` (checked by handleOf) back to `lender`'s pool. */
function reclaimLoan(lender, { token, secret }, caller) {
  const status = nativeReclaimShared(lender.poolRef, token, secret)
  if (status !== 0) throw lender.failure(status, caller)
}

/**
 * The fields of a handle from share(), checked for a Pool object that is `closed` or not, of a
 * pool that several threads share (`shared`) named `name` (null: defaultPool); or the error.
 */
function handleOf(handle, closed, shared, name, caller) {
  if (typeof handle !== 'object' || handle === null)
    throw errors.invalidArgType('handle', 'an object from share()', handle, caller)
  const { pool, token, secret, size } = handle
  for (const [k, v] of [
    ['handle.token', token],
    ['handle.secret', secret],
    ['handle.size', size],
  ]) {
    if (typeof v !== 'number') throw errors.invalidArgType(k, 'of type number', v, caller)
    if (!Number.isSafeInteger(v) || v < 0) throw errors.invalidHandle(`${k} is not one it makes`, caller)
  }
  if (closed) throw errors.closed(caller)
  if (!shared || pool !== name)
    throw errors.invalidHandle(`it comes from ${pool === null ? 'defaultPool' : `the pool named '${pool}'`}`, caller)
  return { token, secret, size }
}

module.exports = { shareLoan, adoptLoan, reclaimLoan, handleOf }
