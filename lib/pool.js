'use strict'
// The Pool: argument checks, errors, events and ergonomics over the native pool.
//
// Ownership, as this file keeps it: the Buffer that alloc() returns carries its loan's token in a
// private field (see ./pooled-buffer.js; views made by subarray() or slice() never do). retain()
// and release() accept only such a Buffer; the native side accepts the token only if the Buffer's
// address and length match the live loan, so neither a stale token nor a forged Buffer reaches
// memory it does not own.

const { EventEmitter } = require('node:events')
const diagnostics = require('node:diagnostics_channel')
const { isMainThread } = require('node:worker_threads')
const native = require('../binding.js')
const errors = require('./errors')
const { subscribe, kDeliver } = require('./events')
const { INTERVALS, captureTrace, formatTrace, warnOnce } = require('./leaks')
const { jsonSafe } = require('./json')
const { FastArenas } = require('./fast')
const { PooledBuffer, FastPooledBuffer } = require('./pooled-buffer')
const {
  validateSize,
  validateBuffer,
  validateByteCount,
  validateOptions,
  validateOneOf,
  validateWatermarks,
} = require('./validate')

const {
  NativePool,
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
} = native
const {
  F64,
  I32,
  SafeMap,
  SafeWeakRef,
  freeze,
  mapGet,
  mapSet,
  mapDelete,
  mapClear,
  mapSize,
  deref,
  transferOf,
  bufferOf,
  lengthOf,
  byteOffsetOf,
  privateArray,
  zeroFill,
} = require('./intrinsics')
const { Scope, kMake, kAllocFor, kReleaseAll, kFiguresOf, arenaOption } = require('./scope')
const { ThreadCache, GIVEN_TRACKED } = require('./thread-cache')
const { QuarantineRecords, quarantineOption, warnMisuse } = require('./quarantine')
const { track } = require('./registry')
const { keepReleaseHistory, recordRelease } = require('./release-history')

// Node 22+: every Buffer is a view over an ArrayBuffer that the native side made and transferred
// once (see src/escape.rs). Release detaches it by transferring its ArrayBuffer; a
// released slot's new ArrayBuffer is kept to serve the next loan of that slot, instead of a new
// external ArrayBuffer per loan (~0.8 us). Node 20 has no transfer(): there each loan gets its own
// external Buffer, which the native side detaches.
const TRANSFER = transferOf !== null

// The core's facts, from the core (src/constants.rs): nothing here writes them again.
const CONSTANTS = native.constants()
/** Slot size of each class. */
const CLASS_SIZES = CONSTANTS.classSizes
/** The largest small size; larger Buffers get a mapping of their own. */
const SMALL_MAX = CONSTANTS.smallMax
/** The class of each small size, per alignment: at `alignIndex * (SMALL_MAX + 1) + size`. */
const CLASS_OF = Uint8Array.from(CONSTANTS.classOf)
/** Allowed alignments; the index is the native flag value. */
const ALIGNS = CONSTANTS.alignments
const {
  alignMask: FLAG_ALIGN_MASK,
  essential: FLAG_ESSENTIAL,
  prefault: FLAG_PREFAULT,
  servesSmall: FLAG_SERVES_SMALL,
  willRetry: FLAG_WILL_RETRY,
} = CONSTANTS.flags
/** What hot_releaseMany and hot_finishMany did with each Buffer. */
const OUTCOME = CONSTANTS.releaseOutcomes
/** Watermark levels by native index. */
const LEVELS = Object.freeze(CONSTANTS.levels)
/** System calls by native index, as ERR_EXTMEM_OS names them. */
const SYSCALLS = CONSTANTS.syscalls
/** Kept ArrayBuffers per class and Pool object (a bound on memory parked in one thread). */
const MAX_KEPT = 128
/** Most Buffers a scope's close() releases one by one beside those of the cache (a batch costs more). */
const SINGLE_RELEASES_MAX = 2
/** Mapping lengths of the large classes, ascending: Buffers up to the last keep their ArrayBuffer. */
const LARGE_LENS = CONSTANTS.largeClassLens
const LARGE_MAX = LARGE_LENS[LARGE_LENS.length - 1]
/** Bytes of each thread-cache class: the small classes, then the large ones (cache class `CLASS_SIZES.length + k`). */
const CACHE_CLASS_BYTES = new F64(CLASS_SIZES.length + LARGE_LENS.length)
for (let c = 0; c < CLASS_SIZES.length; c++) CACHE_CLASS_BYTES[c] = CLASS_SIZES[c]
for (let k = 0; k < LARGE_LENS.length; k++) CACHE_CLASS_BYTES[CLASS_SIZES.length + k] = LARGE_LENS[k]
/** Kept ArrayBuffers per large class and Pool object (what they show stays mapped only while the pool caches it). */
const MAX_KEPT_LARGE = 4096

// Per thread (this module is loaded once per thread): extra results of native calls.
const scratch = new Float64Array(4)
if (!native.bindScratch(scratch)) throw new Error('extmem: the native scratch array could not be bound')
// No other thread outlives the main thread's env (Node stops its workers first), so its loans
// need no witness (see src/escape.rs).
if (isMainThread) native.markMainThread()

const tokenOf = PooledBuffer.tokenOf
const takeCacheRef = PooledBuffer.takeCacheRef
const wasRetained = PooledBuffer.wasRetained
const serialOf = FastPooledBuffer.serialOf
/** alloc(0)'s Buffer: it holds no memory and needs no release. */
const EMPTY = new ArrayBuffer(0)

const watermarkChannel = diagnostics.channel('extmem:watermark')
const leakChannel = diagnostics.channel('extmem:leak')
const misuseChannel = diagnostics.channel('extmem:misuse')
const refusedChannel = diagnostics.channel('extmem:refused')

const POOL_OPTIONS = [
  'name',
  'label',
  'maxBytes',
  'watermarks',
  'admission',
  'leakDetection',
  'threadCache',
  'quarantine',
]
/** The label of a private Pool made without one (see `label`). */
const ANONYMOUS = 'anonymous'
/** Bits of the options a named Pool was given (see NativePool.named). */
const GIVEN = { maxBytes: 1, watermarks: 2, admission: 4, quarantine: 8 }
const ALLOC_OPTIONS = ['align', 'priority', 'prefault']
const RESIZE_OPTIONS = ['zero']

/** Marks the construction of the default pool's Pool object (not an option users can pass). */
const kShared = Symbol('extmem.shared')

class Pool extends EventEmitter {
  #native
  /** The pool's handle for the hot-path native functions. */
  #handle
  #closed = false
  /** Whether several threads use this pool (defaultPool, or a named pool). */
  #shared
  /** The name handles carry: null for defaultPool, the name of a named pool. */
  #name = null
  /** What events, live(), extmem:refused and the metrics call this Pool object: a non-empty string. */
  #label
  #unsubscribe
  /** Allocations per tracked one (0: leak detection off); and how many until the next. */
  #trackEvery
  #untilTracked
  /** Loan token -> captured allocation trace, for this thread's live tracked Buffers. */
  #traces = new SafeMap()
  /**
   * Per size class, ArrayBuffers of released slots kept for reuse (TRANSFER only), as flat
   * triples `ab, slot, epoch` below `#keptTop[class]` (entries above it are cleared). Each is
   * private to this object and was detached from every Buffer that used it; the native side lends
   * its slot again only while it is the newest ArrayBuffer over a free slot, so a kept one can
   * never alias another owner's memory. The arrays have no prototype and are worked with plain
   * loops and indexes, never with Array methods, so that no patched built-in (nor an accessor on
   * `Array.prototype`) ever holds one.
   */
  #kept = null
  #keptTop = null
  /**
   * Per large class, ArrayBuffers bound to released mappings, kept for reuse (TRANSFER only), as
   * flat quadruples `ab, addr, len, epoch` below `#keptLargeTop[class]`; kept as `#kept` is, and
   * lent again only while the core still caches that mapping and the ArrayBuffer is its own.
   */
  #keptLarge = null
  #keptLargeTop = null
  /** Per large class, the lowest top since the last decay tick (what lay below it went unused). */
  #keptLargeLow = null
  /** Bytes of the kept mapping ArrayBuffers, and most worth keeping (what the pool caches). */
  #keptLargeBytes = 0
  #mappingCacheBytes = 0
  /** The fast path's arenas (created on first use). */
  #fast = null
  /**
   * With a quarantine (see ./quarantine.js): the stacks 'misuse' events name; else null. Every
   * Buffer of such a pool is a loan of its own, released through the core: no thread cache and
   * no kept ArrayBuffers, so that the core's quarantine sees every release.
   */
  #quarantine = null
  /** Whether this Pool object warned of a misuse nobody listened to. */
  #warnedMisuse = false
  /** This thread's slot cache: undefined until first used, null where there is none (Node 20). */
  #cache = undefined
  /**
   * What this pool's Buffers name as their owner: `{ pool, handle }`, the Pool object held weakly
   * (a Buffer never keeps its Pool object alive) and the native handle (which keeps the native
   * pool alive as long as a Buffer needs it).
   */
  #owner

  /**
   * @param {{ name?: string, label?: string, maxBytes?: number, watermarks?: object, admission?: 'graded'|'cap', leakDetection?: 'off'|'sampled'|'paranoid', threadCache?: boolean, quarantine?: boolean|{ releases?: number, ms?: number } }} [options]
   */
  constructor(options) {
    super()
    const isDefault = options?.[kShared] === true
    const opts = validateOptions(options, 'options', POOL_OPTIONS, Pool)
    const name = opts.name
    if (name !== undefined) {
      if (typeof name !== 'string') throw errors.invalidArgType('options.name', 'of type string', name, Pool)
      if (name.length === 0) throw errors.invalidArgValue('options.name', name, 'must not be empty', Pool)
    }
    const label = opts.label
    if (label !== undefined) {
      if (typeof label !== 'string') throw errors.invalidArgType('options.label', 'of type string', label, Pool)
      if (label.length === 0) throw errors.invalidArgValue('options.label', label, 'must not be empty', Pool)
    }
    if (opts.maxBytes !== undefined) validateByteCount(opts.maxBytes, 'options.maxBytes', Pool)
    const marks = validateWatermarks(
      opts.watermarks,
      'options.watermarks',
      CONSTANTS.watermarks,
      native.checkWatermarks,
      Pool,
    )
    const admission = opts.admission ?? 'graded'
    validateOneOf(admission, 'options.admission', ['graded', 'cap'], Pool)
    if (opts.threadCache !== undefined && typeof opts.threadCache !== 'boolean')
      throw errors.invalidArgType('options.threadCache', 'of type boolean', opts.threadCache, Pool)
    if (opts.threadCache === false) this.#cache = null
    const leakDetection = opts.leakDetection ?? 'sampled'
    validateOneOf(leakDetection, 'options.leakDetection', Object.keys(INTERVALS), Pool)
    const quarantine = quarantineOption(opts.quarantine, Pool)
    const config = {
      maxBytes: opts.maxBytes ?? 0,
      ...marks,
      admission,
      ...(quarantine !== null && { quarantineReleases: quarantine.releases, quarantineMs: quarantine.ms }),
    }
    if (isDefault) {
      this.#native = NativePool.shared(config)
    } else if (name !== undefined) {
      let given = 0
      for (const option of Object.keys(GIVEN)) if (opts[option] !== undefined) given |= GIVEN[option]
      try {
        this.#native = NativePool.named(name, config, given)
      } catch (err) {
        const option = /^mismatch:(\w+)/.exec(err?.message ?? '')?.[1]
        if (option === undefined) throw err
        throw errors.optionsMismatch(name, option, Pool)
      }
      this.#name = name
    } else {
      this.#native = new NativePool(config)
    }
    const shared = isDefault || name !== undefined
    this.#handle = this.#native.handle()
    this.#owner = freeze({ pool: new SafeWeakRef(this), handle: this.#handle })
    this.#shared = shared
    this.#trackEvery = INTERVALS[leakDetection]
    this.#untilTracked = this.#trackEvery
    this.#unsubscribe = subscribe(this, this.#native)
    // A named pool's own quarantine decides, whatever this object was given.
    if (this.#native.quarantine() !== null) {
      this.#quarantine = new QuarantineRecords()
      this.#cache = null
    }
    if (TRANSFER) {
      this.#kept = privateArray()
      for (let c = 0; c < CLASS_SIZES.length; c++) this.#kept[c] = privateArray()
      this.#keptTop = new I32(CLASS_SIZES.length)
      this.#keptLarge = privateArray()
      for (let c = 0; c < LARGE_LENS.length; c++) this.#keptLarge[c] = privateArray()
      this.#keptLargeTop = new I32(LARGE_LENS.length)
      this.#keptLargeLow = new I32(LARGE_LENS.length)
      this.#mappingCacheBytes = this.#native.mappingCacheBytes
    }
    this.#label = label ?? (isDefault ? 'default' : (name ?? ANONYMOUS))
    if (leakDetection === 'paranoid') keepReleaseHistory(this, Pool.prototype)
    track(this)
  }

  /**
   * What events, live(), the extmem:refused channel and the metrics call this Pool object:
   * `options.label`, else 'default' for defaultPool, a named pool's name, 'anonymous' for the others.
   */
  get label() {
    return this.#label
  }

  /** The hard cap on the memory this pool holds from the OS, in bytes. */
  get maxBytes() {
    return this.#native.maxBytes
  }

  /** The watermark level now: 'normal', 'warning', 'critical' or 'shedding'. */
  get level() {
    return LEVELS[this.#native.level()]
  }

  /**
   * The pool's quarantine, `{ releases, ms }` (released memory is held back until both have
   * passed), or null if it has none.
   */
  get quarantine() {
    const q = this.#native.quarantine()
    return q === null ? null : { releases: q[0], ms: q[1] }
  }

  /** Whether close() was called. */
  get closed() {
    return this.#closed
  }

  /** A zero-filled Buffer of `size` bytes (like Buffer.alloc). */
  alloc(size, options) {
    return this.#alloc(size, true, options, this.alloc)
  }

  /** A Buffer of `size` bytes whose contents are not initialised (like Buffer.allocUnsafe). */
  allocUnsafe(size, options) {
    return this.#alloc(size, false, options, this.allocUnsafe)
  }

  #alloc(size, zero, options, caller) {
    validateSize(size, caller)
    const flags = options === undefined ? 0 : allocFlags(options, caller)
    if (this.#closed) throw errors.closed(caller)
    if (size === 0) {
      return new PooledBuffer(EMPTY, 0, 0, null, this.#owner)
    }
    let trace
    if (this.#trackEvery !== 0 && --this.#untilTracked === 0) {
      this.#untilTracked = this.#trackEvery
      trace = captureTrace(caller)
    }
    const tracked = trace !== undefined
    let buf
    if (this.#quarantine !== null) {
      buf = this.#allocOwn(size, zero, flags, tracked, caller)
      this.#quarantine.allocated(buf, caller)
    } else if (TRANSFER && size <= SMALL_MAX) {
      buf = this.#allocSlot(size, zero, flags, tracked, caller)
    } else {
      buf = this.#allocLoan(size, zero, flags, tracked, caller)
      // Any allocation honours a flush the core asked of this thread's cache (once it
      // succeeded: a refused call changes nothing).
      this.#cache?.poll()
    }
    if (tracked) mapSet(this.#traces, tokenOf(buf), trace)
    return buf
  }

  /** A Buffer of one loan of its own (large; and small on Node 20). */
  #allocLoan(size, zero, flags, tracked, caller) {
    if (TRANSFER && size <= LARGE_MAX) return this.#allocMapping(size, zero, flags, tracked, caller)
    return this.#allocOwn(size, zero, flags, tracked, caller)
  }

  /** A Buffer over a new external ArrayBuffer of its own, bound to nothing the pool keeps. */
  #allocOwn(size, zero, flags, tracked, caller) {
    const memory = this.#allocNative(nativeAlloc, size, zero, flags, tracked)
    if (typeof memory !== 'object') throw this.#failure(memory, caller)
    // Node 20: a view over the native Buffer's ArrayBuffer, which release() detaches.
    return TRANSFER
      ? new PooledBuffer(memory, 0, size, scratch[0], this.#owner)
      : new PooledBuffer(bufferOf(memory), byteOffsetOf(memory), size, scratch[0], this.#owner)
  }

  /**
   * A small Buffer over a kept ArrayBuffer of its class if one is still good, else a new one.
   */
  #allocSlot(size, zero, flags, tracked, caller) {
    const cls = CLASS_OF[(flags & FLAG_ALIGN_MASK) * (SMALL_MAX + 1) + size]
    const cache = this.#cache === undefined ? this.#openCache() : this.#cache
    const lent = cache === null ? null : cache.take(cls, size, flags, tracked)
    if (lent !== null) {
      // The whole slot: its ArrayBuffer shows all of it.
      if (zero) zeroFill(lent)
      return new PooledBuffer(lent, 0, size, cache.token, this.#owner, cache.ref)
    }
    const kept = this.#kept[cls]
    let top = this.#keptTop[cls]
    while (top !== 0) {
      const ab = kept[top - 3]
      const token = nativeReuse(this.#handle, cls, kept[top - 2], kept[top - 1], size, zero, flags, tracked, ab)
      if (token < 0 && token !== native.STATUS_STALE) throw this.#failure(token, caller)
      // Lent, or stale (another loan took the slot, or its chunk went back to the OS): either way
      // this entry is done with.
      kept[top - 3] = undefined
      top -= 3
      this.#keptTop[cls] = top
      if (token >= 0) {
        return new PooledBuffer(ab, 0, size, token, this.#owner)
      }
    }
    const ab = this.#allocNative(nativeAllocBound, size, zero, flags, tracked)
    if (typeof ab !== 'object') throw this.#failure(ab, caller)
    return new PooledBuffer(ab, 0, size, scratch[0], this.#owner)
  }

  /**
   * A large Buffer (Node 22+) over a mapping of its class: lent by this thread's cache, else
   * through a kept ArrayBuffer bound to a cached mapping if one is still good, else a new one
   * bound to its mapping.
   */
  #allocMapping(size, zero, flags, tracked, caller) {
    const cls = largeClassOf(size)
    const cache = this.#cache === undefined ? this.#openCache() : this.#cache
    // Past what the cache holds, the kept ArrayBuffers serve first: a fill could take their
    // mappings from under them.
    const mayFill = this.#keptLargeTop[cls] === 0
    const lent = cache === null ? null : cache.take(CLASS_SIZES.length + cls, size, flags, tracked, mayFill)
    if (lent !== null) {
      // The whole mapping: its ArrayBuffer shows all of it.
      if (zero) zeroFill(lent)
      return new PooledBuffer(lent, 0, size, cache.token, this.#owner, cache.ref)
    }
    const kept = this.#keptLarge[cls]
    let top = this.#keptLargeTop[cls]
    while (top !== 0) {
      const ab = kept[top - 4]
      const token = nativeReuseMapping(
        this.#handle,
        kept[top - 3],
        kept[top - 2],
        kept[top - 1],
        size,
        zero,
        flags,
        tracked,
        ab,
      )
      if (token < 0 && token !== native.STATUS_STALE) throw this.#failure(token, caller)
      kept[top - 4] = undefined
      top -= 4
      this.#keptLargeTop[cls] = top
      if (top < this.#keptLargeLow[cls]) this.#keptLargeLow[cls] = top
      this.#keptLargeBytes -= kept[top + 2]
      if (token >= 0) return new PooledBuffer(ab, 0, size, token, this.#owner)
      // Stale (its mapping went back to the OS, or was bound anew): give its memory up now.
      freeArrayBuffer(ab)
    }
    // Any allocation runs the decay timer that gives kept memory back (see ./thread-cache.js).
    if (this.#cache === undefined) this.#openCache()
    const ab = this.#allocNative(nativeAllocBound, size, zero, flags, tracked)
    if (typeof ab !== 'object') throw this.#failure(ab, caller)
    return new PooledBuffer(ab, 0, size, scratch[0], this.#owner)
  }

  /**
   * `allocate(handle, size, zero, flags, tracked)` (nativeAlloc or nativeAllocBound); refused at
   * the cap while this thread's cache holds slots, the slots go back and it asks once more (the
   * core counts the refusal once).
   */
  #allocNative(allocate, size, zero, flags, tracked) {
    const retry = this.#cache?.holds() === true
    const memory = allocate(this.#handle, size, zero, retry ? flags | FLAG_WILL_RETRY : flags, tracked)
    if (memory !== native.STATUS_RETRY) return memory
    this.#cache.flush()
    return allocate(this.#handle, size, zero, flags, tracked)
  }

  /** Opens this thread's slot cache (Node 22+; null elsewhere). */
  #openCache() {
    this.#cache = TRANSFER
      ? ThreadCache.open(this.#handle, CACHE_CLASS_BYTES, CLASS_SIZES.length, scratch, () => this.#decayKept())
      : null
    return this.#cache
  }

  /**
   * The fast path: a Buffer of `size` bytes (1..8192, contents unspecified) carved from this
   * thread's arenas with no native call. Release it with releaseFast(). Unlike alloc(), a
   * reference kept after releaseFast() is NOT detached: it sees the bytes of the slot's next
   * owner, as a Buffer.allocUnsafe() Buffer sees its pool's.
   */
  allocFast(size) {
    validateSize(size, this.allocFast)
    if (size === 0 || size > SMALL_MAX)
      throw errors.outOfRange('size', `an integer >= 1 && <= ${SMALL_MAX}`, size, this.allocFast)
    if (this.#closed) throw errors.closed(this.allocFast)
    if (this.#quarantine !== null) throw errors.quarantine(this.allocFast)
    this.#fast ??= new FastArenas(
      CLASS_SIZES,
      CLASS_OF,
      this.#owner,
      (bytes, caller) => this.#takeArena(bytes, caller),
      (buf) => this.release(buf),
    )
    return this.#fast.alloc(size, this.allocFast)
  }

  /** Returns a Buffer from allocFast() to the pool at once (without detaching it). */
  releaseFast(buf) {
    validateBuffer(buf, this.releaseFast)
    if (serialOf(buf) === undefined && tokenOf(buf) !== undefined) {
      throw errors.notPooled(this.releaseFast, ' with allocFast(): it came from alloc(); give it back with release()')
    }
    if (this.#fast === null) throw this.#closed ? errors.closed(this.releaseFast) : errors.notPooled(this.releaseFast)
    this.#fast.release(buf, this.releaseFast)
  }

  /** An arena for the fast path: a pooled Buffer, which the core admits as the small Buffers it will hold. */
  #takeArena(bytes, caller) {
    return this.#allocLoan(bytes, false, FLAG_SERVES_SMALL, false, caller)
  }

  /** Adds a reference to a pooled Buffer; returns the new count. */
  retain(buf) {
    const token = this.#ownerToken(buf, this.retain)
    if (token === null) return 0
    takeCacheRef(buf)
    const refs = this.#native.retain(buf, token)
    if (refs < 0) throw this.#failure(refs, this.retain)
    PooledBuffer.markRetained(buf)
    return refs
  }

  /**
   * Drops a reference to a pooled Buffer; returns the references left. At 0 the Buffer (and
   * every view of it) is detached and its memory returns to the pool at once.
   */
  release(buf) {
    // A Buffer of the safe path, attached: the common case, checked by its brand alone (the
    // checks below give the same answer for it, and every other case their error).
    const token = tokenOf(buf)
    if (typeof token === 'number' && lengthOf(buf) !== 0) return this.#drop(buf, token, this.release)
    if (this.#ownerToken(buf, this.release, true) === null) return 0
    throw errors.released(this.release)
  }

  /** Drops one reference of the loan `token` of `buf`, a Buffer of this pool; returns the references left. */
  #drop(buf, token, caller) {
    const ref = takeCacheRef(buf)
    if (ref >= 0 && !this.#closed && this.#cache != null && PooledBuffer.ownerOf(buf).handle === this.#handle) {
      let given
      try {
        given = this.#cache.give(buf, lengthOf(buf), ref, token)
      } catch {
        throw errors.notDetachable(caller)
      }
      if (given !== 0) {
        if (given === GIVEN_TRACKED) mapDelete(this.#traces, token)
        return 0
      }
    }
    const dropped = dropReference(this.#handle, buf, token, caller)
    if (typeof dropped === 'number') {
      if (!(dropped > 0)) throw this.#failure(dropped, caller)
      this.#cache?.poll()
      return dropped
    }
    if (this.#quarantine !== null) this.#quarantine.released(buf, token, caller)
    // Any release honours a flush the core asked of this thread's cache (once it succeeded: a
    // refused call changes nothing).
    this.#cache?.poll()
    // A slot-bound or mapping-bound Buffer: keep its new ArrayBuffer for the next loan.
    if (scratch[0] === 1) this.#keep(scratch[1], dropped, scratch[2], scratch[3])
    else if (scratch[0] === 2) this.#keepMapping(dropped, scratch[2], scratch[1], scratch[3])
    // The memory is the pool's again: nothing below can reach it, patched or not.
    if (mapSize(this.#traces) !== 0) mapDelete(this.#traces, token)
    return 0
  }

  /** Keeps `ab`, the ArrayBuffer over slot `slot` of class `cls` at `epoch`, for the slot's next loan. */
  #keep(cls, ab, slot, epoch) {
    if (this.#closed) return
    const kept = this.#kept[cls]
    const top = this.#keptTop[cls]
    if (top < MAX_KEPT * 3) {
      kept[top] = ab
      kept[top + 1] = slot
      kept[top + 2] = epoch
      this.#keptTop[cls] = top + 3
    }
  }

  /** Keeps `ab`, bound to the mapping at `addr` of `len` bytes at `epoch`, for its next loan. */
  #keepMapping(ab, addr, len, epoch) {
    const cls = largeClassOf(len)
    const kept = this.#keptLarge[cls]
    const top = this.#keptLargeTop[cls]
    // Kept only while it can serve: no more than the pool caches mappings for (beyond that its
    // mapping would be unmapped anyway), and its memory is given up at once otherwise.
    if (
      this.#closed ||
      LARGE_LENS[cls] !== len ||
      top >= MAX_KEPT_LARGE * 4 ||
      this.#keptLargeBytes + len > this.#mappingCacheBytes
    ) {
      freeArrayBuffer(ab)
      return
    }
    kept[top] = ab
    kept[top + 1] = addr
    kept[top + 2] = len
    kept[top + 3] = epoch
    this.#keptLargeTop[cls] = top + 4
    this.#keptLargeBytes += len
  }

  /**
   * The decay tick (see ./thread-cache.js): gives up three quarters of the kept mapping
   * ArrayBuffers that went unused since the last tick, the oldest first, so that idle memory
   * leaves V8's external count and its mappings can go back to the OS.
   */
  #decayKept() {
    if (this.#keptLarge === null) return
    for (let c = 0; c < LARGE_LENS.length; c++) {
      const kept = this.#keptLarge[c]
      const top = this.#keptLargeTop[c]
      const low = this.#keptLargeLow[c] < top ? this.#keptLargeLow[c] : top
      const drop = low - 4 * ((low / 4) >> 2)
      if (drop !== 0) {
        for (let i = 0; i < drop; i += 4) {
          freeArrayBuffer(kept[i])
          this.#keptLargeBytes -= kept[i + 2]
        }
        for (let i = drop; i < top; i++) kept[i - drop] = kept[i]
        for (let i = top - drop; i < top; i++) kept[i] = undefined
        this.#keptLargeTop[c] = top - drop
      }
      this.#keptLargeLow[c] = this.#keptLargeTop[c]
    }
  }

  /**
   * A Scope over this pool: Buffers it allocates are released together by its close() (see
   * ./scope.js). With `{ arena: true }` its Buffers of up to 8 KiB are views of shared 64 KiB
   * chunks, made with no native call and detached together by close().
   */
  scope(options) {
    if (this.#closed) throw errors.closed(this.scope)
    return new Scope(kMake, this, null, arenaOption(options, this.scope))
  }

  /** For Scope: alloc() (`zero`) or allocUnsafe(), reporting errors as `caller`'s. */
  [kAllocFor](size, zero, options, caller) {
    return this.#alloc(size, zero, options, caller)
  }

  /**
   * For Scope: drops one reference of each Buffer of `list` (a private Array of this pool's
   * PooledBuffers, which this call uses up): those lent by this thread's cache go back to it,
   * up to SINGLE_RELEASES_MAX others one by one as release() takes them, more in one batch that
   * takes the pool's lock twice. Returns the references dropped.
   */
  [kReleaseAll](list, caller) {
    const n = list.length
    if (n === 0) return 0
    const cache = this.#closed ? null : this.#cache
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
      const ref = takeCacheRef(buf)
      if (ref >= 0 && cache != null && PooledBuffer.ownerOf(buf).handle === this.#handle) {
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
          if (given === GIVEN_TRACKED) mapDelete(this.#traces, token)
          continue
        }
      }
      others++
    }
    if (others <= SINGLE_RELEASES_MAX || this.#quarantine !== null) {
      // A few: one by one, as release() takes each (a batch's native calls cost more).
      let dropped = cached
      let failure = null
      for (let i = 0; i < n && others !== 0; i++) {
        const buf = list[i]
        if (buf === undefined) continue
        list[i] = undefined
        others--
        try {
          this.#drop(buf, tokenOf(buf), caller)
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
    const io = new F64(4 * n)
    for (let i = 0; i < n; i++) {
      const buf = list[i]
      if (buf === undefined) continue
      const token = tokenOf(buf)
      io[4 * i] = token
      if (TRANSFER && !wasRetained(buf) && PooledBuffer.ownerOf(buf).handle === this.#handle) {
        // As in release(): this pool's, attached and never retained, so this is its last
        // reference: detach it now; finishMany checks it against its loan and ends it.
        io[4 * i + 1] = OUTCOME.direct
        io[4 * i + 2] = lengthOf(buf)
        direct++
        try {
          list[i] = transferOf(bufferOf(buf))
        } catch {
          io[4 * i + 1] = OUTCOME.skipped
          stuck++
        }
      } else {
        io[4 * i + 1] = OUTCOME.retained
        checked++
      }
    }
    let tokens = null
    if (mapSize(this.#traces) !== 0) {
      tokens = new F64(n)
      for (let i = 0; i < n; i++) tokens[i] = io[4 * i]
    }
    if (checked !== 0) {
      // The others: drop a reference each first; detach those whose last one it was.
      const last = nativeReleaseMany(this.#handle, list, io)
      if (last < 0) throw this.#failure(last, caller)
      for (let i = 0; last !== 0 && TRANSFER && i < n; i++) {
        if (io[4 * i + 1] !== OUTCOME.last) continue
        try {
          list[i] = transferOf(bufferOf(list[i]))
        } catch {
          io[4 * i + 1] = OUTCOME.skipped
          stuck++
        }
      }
    }
    if (direct + checked !== 0) {
      const status = nativeFinishMany(this.#handle, list, io)
      if (status < 0) throw this.#failure(status, caller)
    }
    let dropped = cached
    for (let i = 0; i < n; i++) {
      const outcome = io[4 * i + 1]
      if (outcome === OUTCOME.skipped) continue
      dropped++
      if (outcome === OUTCOME.kept) this.#keep(io[4 * i + 2], list[i], io[4 * i + 3], io[4 * i])
      else if (outcome === OUTCOME.keptMapping) this.#keepMapping(list[i], io[4 * i + 3], io[4 * i + 2], io[4 * i])
      if (tokens !== null && outcome !== OUTCOME.retained) mapDelete(this.#traces, tokens[i])
    }
    for (let i = 0; i < n; i++) list[i] = undefined
    if (stuck !== 0) throw errors.notDetachable(caller)
    return dropped
  }

  /** For Scope: `[loans, inUseBytes, requestedBytes]` of the live loans among `tokens`. */
  [kFiguresOf](tokens) {
    return this.#native.figuresOf(tokens)
  }

  /**
   * Resizes a pooled Buffer, as realloc does: returns a Buffer of `size` bytes whose first
   * min(old, new) bytes are the old ones, and detaches `buf`. Bytes past the old length are
   * unspecified, or zero with `{ zero: true }`. A slot with room keeps its memory, a large Buffer
   * grows by moving its pages (mremap on Linux), anything else is copied. `buf` must hold one
   * reference; on any error nothing changed.
   */
  resize(buf, size, options) {
    const token = this.#ownerToken(buf, this.resize)
    validateSize(size, this.resize)
    let zero = false
    if (options !== undefined) {
      const opts = validateOptions(options, 'options', RESIZE_OPTIONS, this.resize)
      if (opts.zero !== undefined && typeof opts.zero !== 'boolean')
        throw errors.invalidArgType('options.zero', 'of type boolean', opts.zero, this.resize)
      zero = opts.zero === true
    }
    if (token === null) return this.#alloc(size, zero, undefined, this.resize)
    if (size === 0) {
      if (this.refCount(buf) !== 1) throw errors.shared(this.resize)
      this.#drop(buf, token, this.resize)
      return new PooledBuffer(EMPTY, 0, 0, null, this.#owner)
    }
    // The native call names the token: the loan becomes ordinary (see ./thread-cache.js).
    takeCacheRef(buf)
    const status = nativeResizeBegin(this.#handle, buf, token, size, zero, 0, false)
    if (status !== 0) throw this.#failure(status, this.resize)
    // Detach the old Buffer before its memory moves or changes hands.
    let memory = buf
    if (TRANSFER) {
      try {
        memory = transferOf(bufferOf(buf))
      } catch {
        nativeResizeAbort(this.#handle, token)
        throw errors.notDetachable(this.resize)
      }
    }
    const out = nativeResizeEnd(this.#handle, memory, token, size)
    if (typeof out !== 'object') throw this.#failure(out, this.resize)
    return TRANSFER
      ? new PooledBuffer(out, 0, size, token, this.#owner)
      : new PooledBuffer(bufferOf(out), byteOffsetOf(out), size, token, this.#owner)
  }

  /** The name of a named pool (null for the others). */
  get name() {
    return this.#name
  }

  /**
   * Hands `buf` (one reference) to whichever thread of this pool adopts the handle returned: a
   * plain object that survives postMessage. `buf` is detached; its memory stays in transit,
   * counted in `stats().inTransitBuffers`, until adopted or reclaimed. Only for pools that several
   * threads share (defaultPool, named pools).
   */
  share(buf) {
    const token = this.#ownerToken(buf, this.share)
    if (!this.#shared)
      throw errors.invalidState(
        'share() needs a pool that several threads share: defaultPool or a named Pool',
        this.share,
      )
    if (token === null) throw errors.notPooled(this.share, ': alloc(0) holds no memory to hand off')
    if (this.refCount(buf) !== 1) throw errors.shared(this.share)
    // The Buffer's real length (an own `length` property cannot change it), read before the
    // detach; the native call checks it against the loan, which refCount() just confirmed, so
    // nothing below refuses a Buffer it has consumed.
    const size = lengthOf(buf)
    // The native call names the token: the loan becomes ordinary (see ./thread-cache.js).
    takeCacheRef(buf)
    // Detach first: from here on no Buffer of this thread reaches the memory.
    let memory = buf
    if (TRANSFER) {
      try {
        memory = transferOf(bufferOf(buf))
      } catch {
        throw errors.notDetachable(this.share)
      }
    }
    const secret = nativeShare(this.#handle, memory, token, size)
    if (secret < 0) throw this.#failure(secret, this.share)
    if (mapSize(this.#traces) !== 0) mapDelete(this.#traces, token)
    return { pool: this.#name, token, secret, size }
  }

  /** A Buffer over the memory of a handle from share(), on any thread of this pool; a handle serves once. */
  adopt(handle) {
    const { token, secret, size } = this.#handleOf(handle, this.adopt)
    const memory = nativeAdopt(this.#handle, token, secret, size)
    if (typeof memory !== 'object') throw this.#failure(memory, this.adopt)
    return TRANSFER
      ? new PooledBuffer(memory, 0, size, token, this.#owner)
      : new PooledBuffer(bufferOf(memory), byteOffsetOf(memory), size, token, this.#owner)
  }

  /** Gives the memory of a handle that no one adopted back to the pool, from any thread. */
  reclaim(handle) {
    const { token, secret } = this.#handleOf(handle, this.reclaim)
    const status = nativeReclaimShared(this.#handle, token, secret)
    if (status !== 0) throw this.#failure(status, this.reclaim)
  }

  /** The fields of a handle from share(), checked; or the error. */
  #handleOf(handle, caller) {
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
    if (this.#closed) throw errors.closed(caller)
    if (!this.#shared || pool !== this.#name)
      throw errors.invalidHandle(`it comes from ${pool === null ? 'defaultPool' : `the pool named '${pool}'`}`, caller)
    return { token, secret, size }
  }

  /** References held on a pooled Buffer: 0 once it is released. */
  refCount(buf) {
    validateBuffer(buf, this.refCount)
    const token = tokenOf(buf)
    if (token === undefined) throw this.#foreign(buf, this.refCount)
    if (token === null || lengthOf(buf) === 0) return 0
    // Only reads: a Buffer lent from this thread's cache stays the cache's.
    const refs = this.#native.refCount(buf, token)
    if (refs < 0) throw errors.notPooled(this.refCount)
    return refs
  }

  /** Whether `buf` is a live (unreleased) Buffer that this pool handed out. */
  isPooled(buf) {
    // Never throws: anything that is not a PooledBuffer has no token.
    const token = tokenOf(buf)
    if (token === undefined || token === null || lengthOf(buf) === 0) return false
    return this.#native.refCount(buf, token) > 0
  }

  /** The native address of a pooled Buffer's first byte, as a BigInt (0n for alloc(0)'s Buffer). */
  addressOf(buf) {
    const token = this.#ownerToken(buf, this.addressOf)
    if (token === null) return 0n
    const address = this.#native.addressOf(buf, token)
    if (address < 0) throw this.#failure(address, this.addressOf)
    return BigInt(address)
  }

  /**
   * The live Buffers, oldest first: `{ size, ageMs, refCount, address, parked, stack? }` (`stack`
   * for Buffers that leak detection tracks; `parked` for memory that left its thread, which then
   * ended). `olderThanMs` keeps only those at least that old.
   */
  live(options) {
    const opts = validateOptions(options, 'options', ['olderThanMs'], this.live)
    const olderThanMs = opts.olderThanMs ?? 0
    if (typeof olderThanMs !== 'number')
      throw errors.invalidArgType('options.olderThanMs', 'of type number', olderThanMs, this.live)
    if (!(olderThanMs >= 0)) throw errors.outOfRange('options.olderThanMs', '>= 0', olderThanMs, this.live)
    return this.#native
      .live(olderThanMs)
      .map(({ size, ageMs, refCount, address, tracked, token, parked, inTransit }) => {
        const trace = tracked ? mapGet(this.#traces, token) : undefined
        const buffer = jsonSafe({
          size,
          ageMs,
          refCount,
          address: BigInt(address),
          parked,
          inTransit,
          label: this.#label,
        })
        if (trace !== undefined) buffer.stack = formatTrace(trace)
        return buffer
      })
  }

  /**
   * Gives cached memory back to the OS: released large mappings and slab chunks with no Buffer
   * in use. Returns the bytes given back.
   */
  trim() {
    if (this.#closed) throw errors.closed(this.trim)
    const flushed = this.#cache?.flush() ?? 0
    this.#dropKept()
    this.#fast?.trim()
    return flushed + this.#native.trim()
  }

  /** Lets go of the kept ArrayBuffers (their external bytes leave when the GC collects them). */
  #dropKept() {
    if (this.#kept === null) return
    for (let c = 0; c < this.#kept.length; c++) {
      const kept = this.#kept[c]
      for (let i = 0; i < this.#keptTop[c]; i++) kept[i] = undefined
      this.#keptTop[c] = 0
    }
    for (let c = 0; c < this.#keptLarge.length; c++) {
      const kept = this.#keptLarge[c]
      for (let i = 0; i < this.#keptLargeTop[c]; i += 4) freeArrayBuffer(kept[i])
      for (let i = 0; i < this.#keptLargeTop[c]; i++) kept[i] = undefined
      this.#keptLargeTop[c] = 0
      this.#keptLargeLow[c] = 0
    }
    this.#keptLargeBytes = 0
  }

  /**
   * A consistent snapshot of the pool's figures. `fast` describes this thread's fast-path arenas
   * (each arena counts as one Buffer of 64 KiB in the pool's own figures).
   */
  stats() {
    const s = this.#native.stats()
    s.fast = this.#fast === null ? { arenas: 0, arenaBytes: 0, inUseBytes: 0, liveBuffers: 0 } : this.#fast.stats()
    return s
  }

  /**
   * Closes the pool: allocations, retain() and trim() throw ERR_EXTMEM_CLOSED from now on, and all
   * free memory goes back to the OS. Buffers still out stay valid, and their memory theirs alone,
   * until released (release() still works) or collected; then it is unmapped. Returns how many
   * Buffers are still out.
   */
  close() {
    if (this.#shared)
      throw errors.invalidState(
        'a pool that several threads share (the default pool, a named pool) cannot be closed',
        this.close,
      )
    if (this.#closed) return this.#native.stats().liveBuffers
    this.#fast?.close()
    this.#cache?.close()
    this.#closed = true
    this.#dropKept()
    this.#unsubscribe()
    mapClear(this.#traces)
    return this.#native.close()
  }

  /** Receives this pool's events from the native side (see ./events.js). */
  [kDeliver](event) {
    if (event.kind === 'watermark') {
      const message = {
        level: event.level,
        previous: event.previous,
        utilization: event.utilization,
        inUseBytes: event.inUseBytes,
        maxBytes: event.maxBytes,
        label: this.#label,
      }
      if (watermarkChannel.hasSubscribers) watermarkChannel.publish({ pool: this, ...message })
      this.emit('watermark', message)
    } else if (event.kind === 'leak') {
      // Only the thread that allocated the Buffer holds its trace, and so reports the leak.
      const trace = mapGet(this.#traces, event.token)
      if (trace === undefined) return
      mapDelete(this.#traces, event.token)
      const leak = jsonSafe({
        size: event.size,
        ageMs: event.ageMs,
        address: BigInt(event.address),
        stack: formatTrace(trace),
        label: this.#label,
      })
      warnOnce(leak)
      if (leakChannel.hasSubscribers) leakChannel.publish(jsonSafe({ pool: this, ...leak }))
      this.emit('leak', leak)
    } else if (event.kind === 'misuse') {
      // The thread that released the Buffer holds its stacks; a pool of one thread reports
      // all the same when it has forgotten them.
      const found = this.#quarantine?.misuse(event, !this.#shared)
      if (found === undefined) return
      const misuse = { ...found, label: this.#label }
      if (misuseChannel.hasSubscribers) misuseChannel.publish({ pool: this, ...misuse })
      if (!this.emit('misuse', misuse) && !this.#warnedMisuse) {
        this.#warnedMisuse = true
        warnMisuse(misuse)
      }
    }
  }

  /** The token of the Buffer that alloc() returned, or the error for anything else. */
  #ownerToken(buf, caller, afterClose = false) {
    validateBuffer(buf, caller)
    if (this.#closed && !afterClose) throw errors.closed(caller)
    const token = tokenOf(buf)
    if (token === undefined) throw this.#foreign(buf, caller)
    if (token !== null && lengthOf(buf) === 0) throw errors.released(caller)
    return token
  }

  /** The error for a Buffer without a token: a fast-path Buffer, a view of a live pooled Buffer, or foreign. */
  #foreign(buf, caller) {
    if (serialOf(buf) !== undefined)
      return errors.notPooled(caller, ' with alloc(): it came from allocFast(); give it back with releaseFast()')
    return this.#native.isViewOfLoan(buf) ? errors.viewOwnership(caller) : errors.notPooled(caller)
  }

  static {
    // `using`: a pooled Buffer's `[Symbol.dispose]()` drops one reference, as release() (or
    // releaseFast()) does, and does nothing once the Buffer is fully released. On the prototype,
    // so it costs nothing per allocation.
    PooledBuffer.prototype[Symbol.dispose] = function dispose() {
      const token = tokenOf(this)
      if (token === undefined) throw errors.invalidThis('a Buffer from alloc() or allocUnsafe()', dispose)
      if (token === null || lengthOf(this) === 0) return
      const owner = PooledBuffer.ownerOf(this)
      const pool = deref(owner.pool)
      if (pool !== undefined) {
        pool.#drop(this, token, dispose)
        // leakDetection 'paranoid' (./release-history.js): where the loan ended.
        if (pool.#trackEvery === 1 && lengthOf(this) === 0) recordRelease(this, dispose)
        return
      }
      // Its Pool object was collected: the native pool still has the loan.
      takeCacheRef(this)
      // Nothing will keep its ArrayBuffer: it is detached, and its memory leaves at once.
      const dropped = dropReference(owner.handle, this, token, dispose, false)
      if (typeof dropped === 'number' && !(dropped > 0)) throw errors.notPooled(dispose)
    }
    FastPooledBuffer.prototype[Symbol.dispose] = function dispose() {
      if (serialOf(this) === undefined) throw errors.invalidThis('a Buffer from allocFast()', dispose)
      // Once its Pool object is collected, so are its arenas: nothing is left to give back to.
      deref(FastPooledBuffer.ownerOf(this).pool)?.#fast?.dispose(this)
    }
  }

  /**
   * Publishes a refusal (made by #failure: every refusal of this pool, at the cap, by graded
   * admission or by the OS, is made there once) on the extmem:refused channel, if anyone listens:
   * `{ pool, label, code, ...the error's figures, error }`. Returns the error.
   */
  #refused(err) {
    if (refusedChannel.hasSubscribers) refusedChannel.publish({ pool: this, label: this.#label, ...err, error: err })
    return err
  }

  #failure(status, caller) {
    switch (status) {
      case native.STATUS_EXHAUSTED:
        return this.#refused(
          errors.exhausted(scratch[1], scratch[2], LEVELS[scratch[3]], this.maxBytes, scratch[0], caller),
        )
      case native.STATUS_THROTTLED:
        return this.#refused(
          errors.throttled(
            scratch[1],
            scratch[2],
            LEVELS[scratch[3]],
            this.#native.watermarks()[scratch[3] - 1],
            caller,
          ),
        )
      case native.STATUS_CLOSED:
        return errors.closed(caller)
      case native.STATUS_SHARED:
        return errors.shared(caller)
      case native.STATUS_HANDLE_USED:
        return errors.handleUsed(caller)
      case native.STATUS_BAD_HANDLE:
        return errors.invalidHandle('forged, or made by another pool', caller)
      case native.STATUS_TOO_MANY_REFS:
        return errors.outOfRange('refCount', '<= 4294967295', 4294967296, caller)
      case native.STATUS_EXTERNAL_REFUSED:
        return errors.externalRefused(caller)
      case native.STATUS_OS:
        return this.#refused(errors.os(SYSCALLS[scratch[3]], scratch[2], scratch[1], caller))
      default:
        return errors.notPooled(caller)
    }
  }
}

/**
 * Drops one reference of the loan `token` of `buf` in the pool of `handle`. Returns the
 * references left (> 0) or a negative status; or, once the last reference is gone and the loan
 * ended, the ArrayBuffer the memory was detached to (Node 22+; null on Node 20), with scratch
 * telling whether it stays bound to its slot (`[1, class, slot, epoch]`) or mapping (`[2, len,
 * addr, epoch]`) for the caller to keep (see hot_finishRelease). With `keep` false nothing is
 * kept: the ArrayBuffer is detached too.
 *
 * The Buffer (and every view of it) is detached *before* the loan ends, so its memory is
 * reachable by nothing but the pool from then on.
 */
function dropReference(handle, buf, token, caller, keep = true) {
  if (!wasRetained(buf) && PooledBuffer.ownerOf(buf).handle === handle) {
    // A Buffer of this pool (its owner record names this handle) that is attached and was never
    // retained: this is its last reference, and its loan is live. Detach first, then one native
    // call ends the loan (checking the Buffer against it all the same). Anything else (another
    // pool's Buffer, one retained) goes the way that checks before it detaches.
    const length = lengthOf(buf)
    let memory = buf
    if (TRANSFER) {
      try {
        memory = transferOf(bufferOf(buf))
      } catch {
        throw errors.notDetachable(caller)
      }
    }
    const status = nativeReleaseLast(handle, memory, token, length, keep)
    return status === 0 ? (TRANSFER ? memory : null) : status
  }
  const refs = nativeRelease(handle, buf, token)
  if (refs !== 0) return refs
  let ab = null
  if (TRANSFER) {
    try {
      ab = transferOf(bufferOf(buf))
    } catch {
      throw errors.notDetachable(caller)
    }
  }
  const status = nativeFinishRelease(handle, TRANSFER ? ab : buf, token, keep)
  return status === 0 ? ab : status
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

/** The large class of `size` bytes (SMALL_MAX < size <= LARGE_MAX): the first whose length holds it. */
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

/** Native flags of alloc options `{ align, priority, prefault }`. */
function allocFlags(options, caller) {
  const opts = validateOptions(options, 'options', ALLOC_OPTIONS, caller)
  let flags = 0
  if (opts.align !== undefined) {
    let index = -1
    for (let i = 0; i < ALIGNS.length; i++) if (ALIGNS[i] === opts.align) index = i
    if (index < 0)
      throw errors.invalidArgValue('options.align', opts.align, `must be one of ${ALIGNS.join(', ')}`, caller)
    flags |= index
  }
  if (opts.priority !== undefined) {
    validateOneOf(opts.priority, 'options.priority', ['normal', 'essential'], caller)
    if (opts.priority === 'essential') flags |= FLAG_ESSENTIAL
  }
  if (opts.prefault !== undefined) {
    if (typeof opts.prefault !== 'boolean')
      throw errors.invalidArgType('options.prefault', 'of type boolean', opts.prefault, caller)
    if (opts.prefault) flags |= FLAG_PREFAULT
  }
  return flags
}

/** The Pool object of this thread over the process-wide default pool. */
function createDefaultPool(options) {
  return new Pool({ ...options, [kShared]: true })
}

module.exports = { Pool, createDefaultPool, LEVELS, defaultMaxBytes: NativePool.defaultMaxBytes }
