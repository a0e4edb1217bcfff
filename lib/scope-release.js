'use strict'
// A scope's close() (./scope.js): drops one reference of each of its Buffers. Those lent by this
// thread's cache go back to it; a few others are released one by one, as release() takes them
// (./release.js); more go in one batch, whose two native calls take the pool's lock once each.

const { nativeReleaseMany, nativeFinishMany, OUTCOME, RELEASE_IO: IO, TRANSFER, detach } = require('./native')
const errors = require('./errors')
const { PooledBuffer } = require('./pooled-buffer')
const { GIVEN_TRACKED } = require('./thread-cache')
const { drop } = require('./release')
const { keepSlot } = require('./small-buffers')
const { keepMapping } = require('./large-buffers')
const { F64, lengthOf, mapSize, mapDelete } = require('./intrinsics')

const { tokenOf, clearCacheRef, wasRetained, originOf } = PooledBuffer

/** Most Buffers a scope's close() releases one by one beside those of the cache (a batch costs more). */
const SINGLE_RELEASES_MAX = 2

/**
 * Drops one reference of each Buffer of `list` (a private Array of PooledBuffers of `lender`'s
 * pool, which this call uses up), reporting errors as `caller`'s. Returns the references dropped.
 */
function releaseAll(lender, list, caller) {
  const n = list.length
  if (n === 0) return 0
  const cache = lender.closed ? null : lender.cache
  let checked = 0
  let stuck = 0
  let cached = 0
  let direct = 0
  // First those lent by this thread's cache: back into it, as release() does, with no native
  // call. The others are left in `list` (the rest made undefined).
  let others = 0
  for (let i = 0; i < n; i++) {
    const buf = list[i]
    const token = tokenOf(buf)
    // A Buffer released meanwhile (or whose memory someone moved out) reads as empty: skip it,
    // as anything that is not a Buffer of the safe path.
    if (typeof token !== 'number' || lengthOf(buf) === 0) {
      list[i] = undefined
      continue
    }
    const ref = clearCacheRef(buf)
    if (ref >= 0 && cache != null && originOf(buf).poolRef === lender.poolRef) {
      let given
      try {
        given = cache.give(buf, lengthOf(buf), ref, token)
      } catch {
        stuck++
        list[i] = undefined
        continue
      }
      if (given !== 0) {
        cached++
        list[i] = undefined
        if (given === GIVEN_TRACKED) mapDelete(lender.traces, token)
        continue
      }
    }
    others++
  }
  if (others <= SINGLE_RELEASES_MAX || lender.quarantine !== null) {
    // A few: one by one, as release() takes each (a batch's native calls cost more).
    let dropped = cached
    let failure = null
    for (let i = 0; i < n && others !== 0; i++) {
      const buf = list[i]
      if (buf === undefined) continue
      list[i] = undefined
      others--
      try {
        drop(lender, buf, tokenOf(buf), caller)
        dropped++
      } catch (err) {
        // The rest are released all the same; the first error is told after them.
        failure ??= err
      }
    }
    if (stuck !== 0) throw errors.notDetachable(caller)
    if (failure !== null) throw failure
    return dropped
  }
  const io = new F64(IO.stride * n)
  for (let i = 0; i < n; i++) {
    const buf = list[i]
    if (buf === undefined) continue
    const token = tokenOf(buf)
    io[IO.stride * i + IO.token] = token
    if (TRANSFER && !wasRetained(buf) && originOf(buf).poolRef === lender.poolRef) {
      // As in release(): this pool's, attached and never retained, so this is its last
      // reference: detach it now; finishMany checks it against its loan and ends it.
      io[IO.stride * i + IO.outcome] = OUTCOME.direct
      io[IO.stride * i + IO.length] = lengthOf(buf)
      direct++
      try {
        list[i] = detach(buf)
      } catch {
        io[IO.stride * i + IO.outcome] = OUTCOME.skipped
        stuck++
      }
    } else {
      io[IO.stride * i + IO.outcome] = OUTCOME.retained
      checked++
    }
  }
  let tokens = null
  if (mapSize(lender.traces) !== 0) {
    tokens = new F64(n)
    for (let i = 0; i < n; i++) tokens[i] = io[IO.stride * i + IO.token]
  }
  if (checked !== 0) {
    // The others: drop a reference each first; detach those whose last one it was.
    const last = nativeReleaseMany(lender.poolRef, list, io)
    if (last < 0) throw lender.failure(last, caller)
    for (let i = 0; last !== 0 && TRANSFER && i < n; i++) {
      if (io[IO.stride * i + IO.outcome] !== OUTCOME.last) continue
      try {
        list[i] = detach(list[i])
      } catch {
        io[IO.stride * i + IO.outcome] = OUTCOME.skipped
        stuck++
      }
    }
  }
  if (direct + checked !== 0) {
    const status = nativeFinishMany(lender.poolRef, list, io)
    if (status < 0) throw lender.failure(status, caller)
  }
  let dropped = cached
  for (let i = 0; i < n; i++) {
    const outcome = io[IO.stride * i + IO.outcome]
    if (outcome === OUTCOME.skipped) continue
    dropped++
    const at = IO.stride * i
    if (outcome === OUTCOME.kept) keepSlot(lender, io[at + IO.class], list[i], io[at + IO.slot], io[at + IO.epoch])
    else if (outcome === OUTCOME.keptMapping) {
      keepMapping(lender, list[i], io[at + IO.mappingAddr], io[at + IO.mappingLen], io[at + IO.epoch])
    }
    if (tokens !== null && outcome !== OUTCOME.retained) mapDelete(lender.traces, tokens[i])
  }
  for (let i = 0; i < n; i++) list[i] = undefined
  if (stuck !== 0) throw errors.notDetachable(caller)
  return dropped
}

module.exports = { releaseAll }
