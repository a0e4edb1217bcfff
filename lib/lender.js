'use strict'
// What one Pool object lends on this thread: its pool reference (poolRef), the origin record its
// Buffers name, this thread's slot cache, the ArrayBuffers it keeps for reuse, the traces of the
// Buffers leak detection sampled; and the allocation that picks a path for each size. The Pool
// (./pool.js) validates and calls in here; the paths live in files of their own:
// ./small-buffers.js, ./large-buffers.js, ./release.js, ./scope-release.js, ./resize.js,
// ./handoff.js.
//
// A Lender is private to its Pool object: no user code ever holds one, so its fields are plain
// ones, read on the hot paths as the Pool's private fields were. It holds its Pool object (for
// the extmem:refused channel); Buffers reach it only weakly, through their origin record.

const diagnostics = require('node:diagnostics_channel')
const {
  nativeAlloc,
  CLASS_SIZES,
  SMALL_MAX,
  LARGE_LENS,
  FLAGS,
  STATUS_RETRY,
  scratch,
  SCRATCH,
  TRANSFER,
  wrap,
  isRefusal,
  statusError,
} = require('./native')
const { captureTrace } = require('./leaks')
const { F64, I32, SafeMap, SafeWeakRef, freeze, mapSet, privateArray } = require('./intrinsics')
const { ThreadCache } = require('./thread-cache')
const { PooledBuffer } = require('./pooled-buffer')
const { allocSmall, dropKeptSlots } = require('./small-buffers')
const { allocLarge, dropKeptMappings, decayKeptMappings } = require('./large-buffers')
const { disposeLoan, disposeFast } = require('./release')

const { willRetry: FLAG_WILL_RETRY } = FLAGS
/** The largest mapping that keeps its ArrayBuffer (Node 22+). */
const LARGE_MAX = LARGE_LENS[LARGE_LENS.length - 1]
/** Bytes of each thread-cache class: the small classes, then the large ones (cache class `CLASS_SIZES.length + k`). */
const CACHE_CLASS_BYTES = new F64(CLASS_SIZES.length + LARGE_LENS.length)
for (let c = 0; c < CLASS_SIZES.length; c++) CACHE_CLASS_BYTES[c] = CLASS_SIZES[c]
for (let k = 0; k < LARGE_LENS.length; k++) CACHE_CLASS_BYTES[CLASS_SIZES.length + k] = LARGE_LENS[k]

const { tokenOf } = PooledBuffer
const refusedChannel = diagnostics.channel('extmem:refused')

class Lender {
  /**
   * @param pool the Pool object
   * @param nativePool its NativePool
   * @param label what the pool's refusals name it
   * @param trackEvery allocations per one that leak detection tracks (0: none)
   * @param threadCache false: no thread cache
   * @param quarantine the stacks 'misuse' events name (./quarantine.js), or null
   */
  constructor(pool, nativePool, label, trackEvery, threadCache, quarantine) {
    this.pool = pool
    this.label = label
    this.native = nativePool
    /** The pool reference: the native pool's External, which every hot-path native function takes first. */
    this.poolRef = nativePool.poolRef()
    /**
     * What this pool's Buffers name as their origin (see ./pooled-buffer.js): the Pool object and
     * this Lender, held weakly (a Buffer never keeps either alive); the pool reference (which keeps
     * the native pool alive as long as a Buffer needs it); and what `[Symbol.dispose]()` does.
     */
    this.origin = freeze({
      pool: new SafeWeakRef(pool),
      lender: new SafeWeakRef(this),
      poolRef: this.poolRef,
      dispose: disposeLoan,
      disposeFast,
    })
    this.closed = false
    /** Allocations per tracked one (0: leak detection off); and how many until the next. */
    this.trackEvery = trackEvery
    this.untilTracked = trackEvery
    /** Loan token -> captured allocation trace, for this thread's live tracked Buffers. */
    this.traces = new SafeMap()
    /**
     * With a quarantine: the stacks 'misuse' events name; else null. Every Buffer of such a pool
     * is a loan of its own, released through the core: no thread cache and no kept ArrayBuffers,
     * so that the core's quarantine sees every release.
     */
    this.quarantine = quarantine
    /** Whether this Pool object warned of a misuse nobody listened to. */
    this.warnedMisuse = false
    /** This thread's slot cache: undefined until first used, null where there is none (Node 20). */
    this.cache = threadCache && quarantine === null ? undefined : null
    /** The fast path's arenas (./fast.js; created on first use). */
    this.fast = null
    /**
     * Per size class, ArrayBuffers of released slots kept for reuse (TRANSFER only), as flat
     * triples `ab, slot, epoch` below `keptTop[class]` (entries above it are cleared): see
     * ./small-buffers.js. The arrays have no prototype and are worked with plain loops and
     * indexes, never with Array methods, so that no patched built-in (nor an accessor on
     * `Array.prototype`) ever holds one.
     */
    this.kept = null
    this.keptTop = null
    /**
     * Per large class, ArrayBuffers bound to released mappings, kept for reuse (TRANSFER only), as
     * flat quadruples `ab, addr, len, epoch` below `keptLargeTop[class]`: see ./large-buffers.js.
     */
    this.keptLarge = null
    this.keptLargeTop = null
    /** Per large class, the lowest top since the last decay tick (what lay below it went unused). */
    this.keptLargeLow = null
    /** Bytes of the kept mapping ArrayBuffers, and most worth keeping (what the pool caches). */
    this.keptLargeBytes = 0
    this.mappingCacheBytes = 0
    if (TRANSFER) {
      this.kept = privateArray()
      for (let c = 0; c < CLASS_SIZES.length; c++) this.kept[c] = privateArray()
      this.keptTop = new I32(CLASS_SIZES.length)
      this.keptLarge = privateArray()
      for (let c = 0; c < LARGE_LENS.length; c++) this.keptLarge[c] = privateArray()
      this.keptLargeTop = new I32(LARGE_LENS.length)
      this.keptLargeLow = new I32(LARGE_LENS.length)
      this.mappingCacheBytes = nativePool.mappingCacheBytes
    }
  }

  /** A Buffer of `size` (> 0) bytes, zero-filled if `zero`, for `caller`; with its trace if sampled. */
  allocate(size, zero, flags, caller) {
    let trace
    if (this.trackEvery !== 0 && --this.untilTracked === 0) {
      this.untilTracked = this.trackEvery
      trace = captureTrace(caller)
    }
    const tracked = trace !== undefined
    let buf
    if (this.quarantine !== null) {
      buf = this.allocOwn(size, zero, flags, tracked, caller)
      this.quarantine.allocated(buf, caller)
    } else if (TRANSFER && size <= SMALL_MAX) {
      buf = allocSmall(this, size, zero, flags, tracked, caller)
    } else {
      buf = this.allocLoan(size, zero, flags, tracked, caller)
      // Any allocation honours a flush the core asked of this thread's cache (once it
      // succeeded: a refused call changes nothing).
      this.cache?.poll()
    }
    if (tracked) mapSet(this.traces, tokenOf(buf), trace)
    return buf
  }

  /** A Buffer of one loan of its own (large; and small on Node 20). */
  allocLoan(size, zero, flags, tracked, caller) {
    if (TRANSFER && size <= LARGE_MAX) return allocLarge(this, size, zero, flags, tracked, caller)
    return this.allocOwn(size, zero, flags, tracked, caller)
  }

  /** A Buffer over a new external ArrayBuffer of its own, bound to nothing the pool keeps. */
  allocOwn(size, zero, flags, tracked, caller) {
    const memory = this.allocNative(nativeAlloc, size, zero, flags, tracked)
    if (typeof memory !== 'object') throw this.failure(memory, caller)
    return wrap(memory, size, scratch[SCRATCH.token], this.origin)
  }

  /**
   * `allocate(poolRef, size, zero, flags, tracked)` (nativeAlloc or nativeAllocBound); refused at
   * the cap while this thread's cache holds slots, the slots go back and it asks once more (the
   * core counts the refusal once).
   */
  allocNative(allocate, size, zero, flags, tracked) {
    const retry = this.cache?.holds() === true
    const memory = allocate(this.poolRef, size, zero, retry ? flags | FLAG_WILL_RETRY : flags, tracked)
    if (memory !== STATUS_RETRY) return memory
    this.cache.flush()
    return allocate(this.poolRef, size, zero, flags, tracked)
  }

  /** Opens this thread's slot cache (Node 22+; null elsewhere). */
  openCache() {
    this.cache = TRANSFER
      ? ThreadCache.open(this.poolRef, CACHE_CLASS_BYTES, CLASS_SIZES.length, () => decayKeptMappings(this))
      : null
    return this.cache
  }

  /** Lets go of the kept ArrayBuffers (their external bytes leave when the GC collects them). */
  dropKept() {
    if (this.kept === null) return
    dropKeptSlots(this)
    dropKeptMappings(this)
  }

  /**
   * The error of a native `status` for `caller`. Every refusal of this pool (at the cap, by graded
   * admission or by the OS) is made here once, and published on the extmem:refused channel if
   * anyone listens: `{ pool, label, code, ...the error's figures, error }`.
   */
  failure(status, caller) {
    const err = statusError(status, this.native, caller)
    if (isRefusal(status) && refusedChannel.hasSubscribers)
      refusedChannel.publish({ pool: this.pool, label: this.label, ...err, error: err })
    return err
  }
}

module.exports = { Lender }
