'use strict'
// Large Buffers (above SMALL_MAX bytes, up to the last large class) on Node 22+: each is a
// mapping of its class, lent by this thread's cache; else through an ArrayBuffer the Lender kept,
// bound to a mapping the core still caches, if it is still good; else a new one bound to its
// mapping. Larger Buffers, and all on Node 20, are loans of their own (Lender.allocOwn).
//
// Kept mapping ArrayBuffers are lent again only while the core still caches that mapping and the
// ArrayBuffer is its own; they are kept only up to what the pool caches, and a decay tick gives
// up those that went unused, so that idle memory leaves V8's external count.

const {
  nativeAllocBound,
  nativeReuseMapping,
  STATUS_STALE,
  CLASS_SIZES,
  LARGE_LENS,
  scratch,
  SCRATCH,
  freeArrayBuffer,
} = require('./native')
const { PooledBuffer } = require('./pooled-buffer')
const { zeroFill } = require('./intrinsics')

/** Kept ArrayBuffers per large class and Pool object (what they show stays mapped only while the pool caches it). */
const MAX_KEPT_LARGE = 4096

/** The large class of `size` bytes (SMALL_MAX < size <= the last length): the first whose length holds it. */
function largeClassOf(size) {
  let lo = 0
  let hi = LARGE_LENS.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (LARGE_LENS[mid] < size) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** A large Buffer of `size` bytes of `lender`'s pool, over a mapping of its class. */
function allocLarge(lender, size, zero, flags, tracked, caller) {
  const cls = largeClassOf(size)
  const cache = lender.cache === undefined ? lender.openCache() : lender.cache
  // Past what the cache holds, the kept ArrayBuffers serve first: a fill could take their
  // mappings from under them.
  const mayFill = lender.keptLargeTop[cls] === 0
  const lent = cache === null ? null : cache.lend(CLASS_SIZES.length + cls, size, flags, tracked, mayFill)
  if (lent !== null) {
    // The whole mapping: its ArrayBuffer shows all of it.
    if (zero) zeroFill(lent)
    return new PooledBuffer(lent, 0, size, cache.token, lender.origin, cache.ref)
  }
  const kept = lender.keptLarge[cls]
  let top = lender.keptLargeTop[cls]
  while (top !== 0) {
    const ab = kept[top - 4]
    const token = nativeReuseMapping(
      lender.poolRef,
      kept[top - 3],
      kept[top - 2],
      kept[top - 1],
      size,
      zero,
      flags,
      tracked,
      ab,
    )
    if (token < 0 && token !== STATUS_STALE) throw lender.failure(token, caller)
    kept[top - 4] = undefined
    top -= 4
    lender.keptLargeTop[cls] = top
    if (top < lender.keptLargeLow[cls]) lender.keptLargeLow[cls] = top
    lender.keptLargeBytes -= kept[top + 2]
    if (token >= 0) return new PooledBuffer(ab, 0, size, token, lender.origin)
    // Stale (its mapping went back to the OS, or was bound anew): give its memory up now.
    freeArrayBuffer(ab)
  }
  // Any allocation runs the decay timer that gives kept memory back (see ./thread-cache.js).
  if (lender.cache === undefined) lender.openCache()
  const ab = lender.allocNative(nativeAllocBound, size, zero, flags, tracked)
  if (typeof ab !== 'object') throw lender.failure(ab, caller)
  return new PooledBuffer(ab, 0, size, scratch[SCRATCH.token], lender.origin)
}

/** Keeps `ab`, bound to the mapping at `addr` of `len` bytes at `epoch`, for its next loan. */
function keepMapping(lender, ab, addr, len, epoch) {
  const cls = largeClassOf(len)
  const kept = lender.keptLarge[cls]
  const top = lender.keptLargeTop[cls]
  // Kept only while it can serve: no more than the pool caches mappings for (beyond that its
  // mapping would be unmapped anyway), and its memory is given up at once otherwise.
  if (
    lender.closed ||
    LARGE_LENS[cls] !== len ||
    top >= MAX_KEPT_LARGE * 4 ||
    lender.keptLargeBytes + len > lender.mappingCacheBytes
  ) {
    freeArrayBuffer(ab)
    return
  }
  kept[top] = ab
  kept[top + 1] = addr
  kept[top + 2] = len
  kept[top + 3] = epoch
  lender.keptLargeTop[cls] = top + 4
  lender.keptLargeBytes += len
}

/**
 * The decay tick (see ./thread-cache.js): gives up three quarters of the kept mapping
 * ArrayBuffers that went unused since the last tick, the oldest first, so that idle memory
 * leaves V8's external count and its mappings can go back to the OS.
 */
function decayKeptMappings(lender) {
  if (lender.keptLarge === null) return
  for (let c = 0; c < LARGE_LENS.length; c++) {
    const kept = lender.keptLarge[c]
    const top = lender.keptLargeTop[c]
    const low = lender.keptLargeLow[c] < top ? lender.keptLargeLow[c] : top
    const drop = low - 4 * ((low / 4) >> 2)
    if (drop !== 0) {
      for (let i = 0; i < drop; i += 4) {
        freeArrayBuffer(kept[i])
        lender.keptLargeBytes -= kept[i + 2]
      }
      for (let i = drop; i < top; i++) kept[i - drop] = kept[i]
      for (let i = top - drop; i < top; i++) kept[i] = undefined
      lender.keptLargeTop[c] = top - drop
    }
    lender.keptLargeLow[c] = lender.keptLargeTop[c]
  }
}

/** Lets go of the kept mapping ArrayBuffers, giving their memory up now. */
function dropKeptMappings(lender) {
  for (let c = 0; c < lender.keptLarge.length; c++) {
    const kept = lender.keptLarge[c]
    for (let i = 0; i < lender.keptLargeTop[c]; i += 4) freeArrayBuffer(kept[i])
    for (let i = 0; i < lender.keptLargeTop[c]; i++) kept[i] = undefined
    lender.keptLargeTop[c] = 0
    lender.keptLargeLow[c] = 0
  }
  lender.keptLargeBytes = 0
}

module.exports = { allocLarge, keepMapping, decayKeptMappings, dropKeptMappings }
