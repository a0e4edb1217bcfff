'use strict'
// The seam between the JavaScript layer and the native side: the only module that loads the
// binding. Every other file takes from here what it calls (the table below), the core's facts
// (src/constants.rs, never written again in JS), the errors a native status stands for, and the
// runtime's way of making a Buffer over native memory and of detaching it. A second backend would
// plug in here.
//
// The loader (binding.js, generated) looks for extmem.<platform>.node beside it and then for the
// package @extmem/binding-<platform>. Where neither loads, its error becomes ERR_EXTMEM_NO_BINARY,
// which names the platform and the way to build a binary for it. lib/index.js loads this first.

const { isMainThread } = require('node:worker_threads')
const errors = require('./errors')
const { platformArchABI } = require('./platform')
const { transferOf, bufferOf, byteOffsetOf } = require('./intrinsics')
const { PooledBuffer } = require('./pooled-buffer')

let binding
try {
  binding = require('../binding.js')
} catch (cause) {
  throw errors.noBinary(platformArchABI(), cause)
}

// The native functions, each named once. The hot ones take the pool reference first (poolRef,
// the native pool's External) and report through a status (a negative number) and the scratch
// array below rather than by throwing.
const {
  NativePool,
  constants,
  checkWatermarks,
  bindEvents,
  hot_alloc: nativeAlloc,
  hot_allocBound: nativeAllocBound,
  hot_reuse: nativeReuse,
  hot_reuseMapping: nativeReuseMapping,
  hot_release: nativeRelease,
  hot_finishRelease: nativeFinishRelease,
  hot_releaseLast: nativeReleaseLast,
  hot_releaseMany: nativeReleaseMany,
  hot_finishMany: nativeFinishMany,
  hot_resizeBegin: nativeResizeBegin,
  hot_resizeAbort: nativeResizeAbort,
  hot_resizeEnd: nativeResizeEnd,
  hot_share: nativeShare,
  hot_adopt: nativeAdopt,
  hot_reclaimShared: nativeReclaimShared,
  hot_cacheOpen: nativeCacheOpen,
  hot_cacheFill: nativeCacheFill,
  hot_cacheSync: nativeCacheSync,
  hot_cacheFlush: nativeCacheFlush,
  hot_cacheClose: nativeCacheClose,
  hot_cacheDecay: nativeCacheDecay,
  STATUS_EXHAUSTED,
  STATUS_THROTTLED,
  STATUS_CLOSED,
  STATUS_SHARED,
  STATUS_HANDLE_USED,
  STATUS_BAD_HANDLE,
  STATUS_TOO_MANY_REFS,
  STATUS_EXTERNAL_REFUSED,
  STATUS_OS,
  STATUS_STALE,
  STATUS_RETRY,
} = binding

// The core's facts, from the core (src/constants.rs).
const CONSTANTS = constants()
/** Slot size of each class. */
const CLASS_SIZES = CONSTANTS.classSizes
/** The largest small size; larger Buffers get a mapping of their own. */
const SMALL_MAX = CONSTANTS.smallMax
/** The class of each small size, per alignment: at `alignIndex * (SMALL_MAX + 1) + size`. */
const CLASS_OF = Uint8Array.from(CONSTANTS.classOf)
/** Allowed alignments; the index is the native flag value. */
const ALIGNS = CONSTANTS.alignments
/** Bits of the `flags` argument of the allocating calls. */
const FLAGS = CONSTANTS.flags
/** What nativeReleaseMany and nativeFinishMany did with each Buffer. */
const OUTCOME = CONSTANTS.releaseOutcomes
/** Watermark levels by native index. */
const LEVELS = Object.freeze(CONSTANTS.levels)
/** Default watermarks. */
const WATERMARKS = CONSTANTS.watermarks
/** The options a named pool compares: option `i` is bit `1 << i` of `given`, and index `i` of a mismatch. */
const NAMED_OPTIONS = Object.freeze(CONSTANTS.namedOptions)
/** System calls by native index, as ERR_EXTMEM_OS names them. */
const SYSCALLS = CONSTANTS.syscalls
/** Mapping lengths of the large classes, ascending: Buffers up to the last keep their ArrayBuffer. */
const LARGE_LENS = CONSTANTS.largeClassLens
/** The most references a loan holds. */
const MAX_REFS = CONSTANTS.maxRefs
/** Layout of a thread cache's block shared with the core (see ./thread-cache.js). */
const CACHE_LAYOUT = CONSTANTS.cache
/** Where each figure sits in the scratch array, by name, and what a last release kept (src/scratch.rs). */
const SCRATCH = Object.freeze(CONSTANTS.scratch)
/** Where each figure of Buffer `i` sits in the io of a batch release: at `stride * i + figure`. */
const RELEASE_IO = Object.freeze(CONSTANTS.releaseIo)

// Per thread (this module is loaded once per thread): extra results of native calls.
const scratch = new Float64Array(SCRATCH.length)
if (!binding.bindScratch(scratch)) throw new Error('extmem: the native scratch array could not be bound')
// No other thread outlives the main thread's env (Node stops its workers first), so its loans
// need no witness (see src/escape.rs).
if (isMainThread) binding.markMainThread()

// How a Buffer is made over native memory, and how it is detached. Node 22+: every Buffer is a
// view over an ArrayBuffer that the native side made and transferred once (see src/escape.rs);
// release detaches it by transferring its ArrayBuffer, and a released slot's new ArrayBuffer can
// be kept to serve the next loan of that slot, instead of a new external ArrayBuffer per loan
// (~0.8 us). Node 20 has no transfer(): there each loan gets its own external Buffer, which the
// native side detaches.
const TRANSFER = transferOf !== null

/**
 * What the native side takes as the memory of `buf` when a loan ends or moves: on Node 22+ the
 * ArrayBuffer that `buf` is detached to here (throws if it cannot be); on Node 20 `buf` itself,
 * which the native side detaches.
 */
const detach = TRANSFER
  ? function detach(buf) {
      return transferOf(bufferOf(buf))
    }
  : function detach(buf) {
      return buf
    }

/** The PooledBuffer of `size` bytes of loan `token` over `memory`, what a native call returned. */
const wrap = TRANSFER
  ? function wrap(memory, size, token, origin) {
      return new PooledBuffer(memory, 0, size, token, origin)
    }
  : function wrap(memory, size, token, origin) {
      return new PooledBuffer(bufferOf(memory), byteOffsetOf(memory), size, token, origin)
    }

/**
 * Gives up the memory of an ArrayBuffer the pool kept and will not lend again: `transfer(0)`
 * releases its backing store now (its finalizer then tells the core), rather than when the GC
 * finds it.
 */
function freeArrayBuffer(ab) {
  try {
    transferOf(ab, 0)
  } catch {
    // Not detachable: it goes with the GC.
  }
}

/** Whether the error of `status` is a refusal (of the cap, of graded admission or of the OS). */
function isRefusal(status) {
  return status === STATUS_EXHAUSTED || status === STATUS_THROTTLED || status === STATUS_OS
}

/** The error a native `status` of `nativePool` stands for (figures from the scratch array). */
function statusError(status, nativePool, caller) {
  switch (status) {
    case STATUS_EXHAUSTED:
      return errors.exhausted(
        scratch[SCRATCH.requested],
        scratch[SCRATCH.available],
        LEVELS[scratch[SCRATCH.level]],
        nativePool.maxBytes,
        scratch[SCRATCH.cachedElsewhere],
        caller,
      )
    case STATUS_THROTTLED:
      return errors.throttled(
        scratch[SCRATCH.requested],
        scratch[SCRATCH.available],
        LEVELS[scratch[SCRATCH.level]],
        nativePool.watermarks()[LEVELS[scratch[SCRATCH.level]]],
        caller,
      )
    case STATUS_CLOSED:
      return errors.closed(caller)
    case STATUS_SHARED:
      return errors.shared(caller)
    case STATUS_HANDLE_USED:
      return errors.handleUsed(caller)
    case STATUS_BAD_HANDLE:
      return errors.invalidHandle('forged, or made by another pool', caller)
    case STATUS_TOO_MANY_REFS:
      return errors.outOfRange('refCount', `<= ${MAX_REFS}`, MAX_REFS + 1, caller)
    case STATUS_EXTERNAL_REFUSED:
      return errors.externalRefused(caller)
    case STATUS_OS:
      return errors.os(SYSCALLS[scratch[SCRATCH.syscall]], scratch[SCRATCH.errno], scratch[SCRATCH.requested], caller)
    default:
      return errors.notPooled(caller)
  }
}

module.exports = {
  NativePool,
  checkWatermarks,
  bindEvents,
  nativeAlloc,
  nativeAllocBound,
  nativeReuse,
  nativeReuseMapping,
  nativeRelease,
  nativeFinishRelease,
  nativeReleaseLast,
  nativeReleaseMany,
  nativeFinishMany,
  nativeResizeBegin,
  nativeResizeAbort,
  nativeResizeEnd,
  nativeShare,
  nativeAdopt,
  nativeReclaimShared,
  nativeCacheOpen,
  nativeCacheFill,
  nativeCacheSync,
  nativeCacheFlush,
  nativeCacheClose,
  nativeCacheDecay,
  STATUS_STALE,
  STATUS_RETRY,
  CLASS_SIZES,
  SMALL_MAX,
  CLASS_OF,
  ALIGNS,
  FLAGS,
  OUTCOME,
  LEVELS,
  WATERMARKS,
  NAMED_OPTIONS,
  LARGE_LENS,
  CACHE_LAYOUT,
  SCRATCH,
  RELEASE_IO,
  scratch,
  TRANSFER,
  detach,
  wrap,
  freeArrayBuffer,
  isRefusal,
  statusError,
}
