'use strict'
// Small Buffers (up to SMALL_MAX bytes) on Node 22+: each is a slot of a size class, lent by
// this thread's cache (./thread-cache.js) with no native call; else through an ArrayBuffer the
// Lender kept from a released loan of the slot, if it is still good; else by the native side,
// bound to its slot. (On Node 20, and with a quarantine, every Buffer is a loan of its own:
// Lender.allocOwn.)
//
// A kept ArrayBuffer is private to its Pool object and was detached from every Buffer that used
// it; the native side lends its slot again only while it is the newest ArrayBuffer over a free
// slot, so a kept one can never alias another owner's memory.

const {
  nativeAllocBound,
  nativeReuse,
  STATUS_STALE,
  CLASS_OF,
  SMALL_MAX,
  FLAGS,
  scratch,
  SCRATCH,
} = require('./native')
const { PooledBuffer } = require('./pooled-buffer')
const { zeroFill } = require('./intrinsics')

const { alignMask: FLAG_ALIGN_MASK } = FLAGS
/** Kept ArrayBuffers per class and Pool object (a bound on memory parked in one thread). */
const MAX_KEPT = 128

/** A small Buffer of `size` bytes of `lender`'s pool: from the cache, a kept ArrayBuffer, or a new one. */
function allocSmall(lender, size, zero, flags, tracked, caller) {
  const cls = CLASS_OF[(flags & FLAG_ALIGN_MASK) * (SMALL_MAX + 1) + size]
  const cache = lender.cache === undefined ? lender.openCache() : lender.cache
  const lent = cache === null ? null : cache.lend(cls, size, flags, tracked)
  if (lent !== null) {
    // The whole slot: its ArrayBuffer shows all of it.
    if (zero) zeroFill(lent)
    return new PooledBuffer(lent, 0, size, cache.token, lender.origin, cache.ref)
  }
  const kept = lender.kept[cls]
  let top = lender.keptTop[cls]
  while (top !== 0) {
    const ab = kept[top - 3]
    const token = nativeReuse(lender.poolRef, cls, kept[top - 2], kept[top - 1], size, zero, flags, tracked, ab)
    if (token < 0 && token !== STATUS_STALE) throw lender.failure(token, caller)
    // Lent, or stale (another loan took the slot, or its chunk went back to the OS): either way
    // this entry is done with.
    kept[top - 3] = undefined
    top -= 3
    lender.keptTop[cls] = top
    if (token >= 0) {
      return new PooledBuffer(ab, 0, size, token, lender.origin)
    }
  }
  const ab = lender.allocNative(nativeAllocBound, size, zero, flags, tracked)
  if (typeof ab !== 'object') throw lender.failure(ab, caller)
  return new PooledBuffer(ab, 0, size, scratch[SCRATCH.token], lender.origin)
}

/** Keeps `ab`, the ArrayBuffer over slot `slot` of class `cls` at `epoch`, for the slot's next loan. */
function keepSlot(lender, cls, ab, slot, epoch) {
  if (lender.closed) return
  const kept = lender.kept[cls]
  const top = lender.keptTop[cls]
  if (top < MAX_KEPT * 3) {
    kept[top] = ab
    kept[top + 1] = slot
    kept[top + 2] = epoch
    lender.keptTop[cls] = top + 3
  }
}

/** Lets go of the kept slot ArrayBuffers. */
function dropKeptSlots(lender) {
  for (let c = 0; c < lender.kept.length; c++) {
    const kept = lender.kept[c]
    for (let i = 0; i < lender.keptTop[c]; i++) kept[i] = undefined
    lender.keptTop[c] = 0
  }
}

module.exports = { allocSmall, keepSlot, dropKeptSlots }
