'use strict'
// The Pool: argument checks, errors, events and ergonomics over the native pool. It validates at
// each public entry and delegates: what a Pool object lends on this thread, and the allocation
// paths, are its Lender's (./lender.js, ./small-buffers.js, ./large-buffers.js); the end of a
// reference is ./release.js, a scope's batch ./scope-release.js, resize() ./resize.js and the
// hand-off between threads ./handoff.js.
//
// Ownership, as these files keep it: the Buffer that alloc() returns carries its loan's token in a
// private field (see ./pooled-buffer.js; views made by subarray() or slice() never do). retain()
// and release() accept only such a Buffer; the native side accepts the token only if the Buffer's
// address and length match the live loan, so neither a stale token nor a forged Buffer reaches
// memory it does not own.

const { EventEmitter } = require('node:events')
const { NativePool, checkWatermarks, SMALL_MAX, ALIGNS, FLAGS, LEVELS, WATERMARKS, NAMED_OPTIONS } = require('./native')
const errors = require('./errors')
const { subscribe, deliver, kDeliver } = require('./events')
const { INTERVALS, formatTrace } = require('./leaks')
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
  allocFlags,
} = require('./validate')
const { mapGet, mapClear, lengthOf } = require('./intrinsics')
const { Scope, kMake, kAllocFor, kReleaseAll, kFiguresOf, arenaOption } = require('./scope')
const { QuarantineRecords, quarantineOption } = require('./quarantine')
const { track } = require('./registry')
const { keepReleaseHistory } = require('./release-history')
const { Lender } = require('./lender')
const { drop } = require('./release')
const { releaseAll } = require('./scope-release')
const { resizeLoan } = require('./resize')
const { shareLoan, adoptLoan, reclaimLoan, handleOf } = require('./handoff')

const { servesSmall: FLAG_SERVES_SMALL } = FLAGS
const { tokenOf, markRetained, clearCacheRef } = PooledBuffer
const { serialOf } = FastPooledBuffer
/** alloc(0)'s Buffer: it holds no memory and needs no release. */
const EMPTY = new ArrayBuffer(0)

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
const RESIZE_OPTIONS = ['zero']

/** Marks the construction of the default pool's Pool object (not an option users can pass). */
const kShared = Symbol('extmem.shared')

class Pool extends EventEmitter {
  #native
  /** What this Pool object lends on this thread, and how (see ./lender.js). */
  #lender
  /** Whether several threads use this pool (defaultPool, or a named pool). */
  #shared
  /** The name handles carry: null for defaultPool, the name of a named pool. */
  #name = null
  /** What events, live(), extmem:refused and the metrics call this Pool object: a non-empty string. */
  #label
  #unsubscribe

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
    const marks = validateWatermarks(opts.watermarks, 'options.watermarks', WATERMARKS, checkWatermarks, Pool)
    const admission = opts.admission ?? 'graded'
    validateOneOf(admission, 'options.admission', ['graded', 'cap'], Pool)
    if (opts.threadCache !== undefined && typeof opts.threadCache !== 'boolean')
      throw errors.invalidArgType('options.threadCache', 'of type boolean', opts.threadCache, Pool)
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
      // The options this object was given, as bits in the order the native side compares them.
      let given = 0
      for (let i = 0; i < NAMED_OPTIONS.length; i++) if (opts[NAMED_OPTIONS[i]] !== undefined) given |= 1 << i
      const joined = NativePool.named(name, config, given)
      // A number: the index of the first option given that differs from the pool's.
      if (typeof joined === 'number') throw errors.optionsMismatch(name, NAMED_OPTIONS[joined], Pool)
      this.#native = joined
      this.#name = name
    } else {
      this.#native = new NativePool(config)
    }
    this.#shared = isDefault || name !== undefined
    // A named pool's own quarantine decides, whatever this object was given.
    const records = this.#native.quarantine() === null ? null : new QuarantineRecords()
    this.#label = label ?? (isDefault ? 'default' : (name ?? ANONYMOUS))
    this.#lender = new Lender(
      this,
      this.#native,
      this.#label,
      INTERVALS[leakDetection],
      opts.threadCache !== false,
      records,
    )
    this.#unsubscribe = subscribe(this, this.#native)
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
    return q === null ? null : { releases: q.releases, ms: q.ms }
  }

  /** Whether close() was called. */
  get closed() {
    return this.#lender.closed
  }

  /** The name of a named pool (null for the others). */
  get name() {
    return this.#name
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
    const flags = options === undefined ? 0 : allocFlags(options, ALIGNS, FLAGS, caller)
    const lender = this.#lender
    if (lender.closed) throw errors.closed(caller)
    if (size === 0) return new PooledBuffer(EMPTY, 0, 0, null, lender.origin)
    return lender.allocate(size, zero, flags, caller)
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
    const lender = this.#lender
    if (lender.closed) throw errors.closed(this.allocFast)
    if (lender.quarantine !== null) throw errors.quarantine(this.allocFast)
    // An arena is a pooled Buffer, which the core admits as the small Buffers it will hold.
    lender.fast ??= new FastArenas(
      lender.origin,
      (bytes, caller) => lender.allocLoan(bytes, false, FLAG_SERVES_SMALL, false, caller),
      (buf) => this.release(buf),
    )
    return lender.fast.alloc(size, this.allocFast)
  }

  /** Returns a Buffer from allocFast() to the pool at once (without detaching it). */
  releaseFast(buf) {
    validateBuffer(buf, this.releaseFast)
    if (serialOf(buf) === undefined && tokenOf(buf) !== undefined) {
      throw errors.notPooled(this.releaseFast, ' with allocFast(): it came from alloc(); give it back with release()')
    }
    const lender = this.#lender
    if (lender.fast === null) throw lender.closed ? errors.closed(this.releaseFast) : errors.notPooled(this.releaseFast)
    lender.fast.release(buf, this.releaseFast)
  }

  /** Adds a reference to a pooled Buffer; returns the new count. */
  retain(buf) {
    const token = this.#loanToken(buf, this.retain)
    if (token === null) return 0
    clearCacheRef(buf)
    const refs = this.#native.retain(buf, token)
    if (refs < 0) throw this.#lender.failure(refs, this.retain)
    markRetained(buf)
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
    if (typeof token === 'number' && lengthOf(buf) !== 0) return drop(this.#lender, buf, token, this.release)
    if (this.#loanToken(buf, this.release, true) === null) return 0
    throw errors.released(this.release)
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
    const token = this.#loanToken(buf, this.addressOf)
    if (token === null) return 0n
    const address = this.#native.addressOf(buf, token)
    if (address < 0) throw this.#lender.failure(address, this.addressOf)
    return BigInt(address)
  }

  /**
   * A Scope over this pool: Buffers it allocates are released together by its close() (see
   * ./scope.js). With `{ arena: true }` its Buffers of up to 8 KiB are views of shared 64 KiB
   * chunks, made with no native call and detached together by close().
   */
  scope(options) {
    if (this.#lender.closed) throw errors.closed(this.scope)
    return new Scope(kMake, this, null, arenaOption(options, this.scope))
  }

  /** For Scope: alloc() (`zero`) or allocUnsafe(), reporting errors as `caller`'s. */
  [kAllocFor](size, zero, options, caller) {
    return this.#alloc(size, zero, options, caller)
  }

  /**
   * For Scope: drops one reference of each Buffer of `list` (a private Array of this pool's
   * PooledBuffers, which this call uses up); see ./scope-release.js. Returns the references dropped.
   */
  [kReleaseAll](list, caller) {
    return releaseAll(this.#lender, list, caller)
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
    const token = this.#loanToken(buf, this.resize)
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
      drop(this.#lender, buf, token, this.resize)
      return new PooledBuffer(EMPTY, 0, 0, null, this.#lender.origin)
    }
    return resizeLoan(this.#lender, buf, token, size, zero, this.resize)
  }

  /**
   * Hands `buf` (one reference) to whichever thread of this pool adopts the handle returned: a
   * plain object that survives postMessage. `buf` is detached; its memory stays in transit,
   * counted in `stats().inTransitBuffers`, until adopted or reclaimed. Only for pools that several
   * threads share (defaultPool, named pools).
   */
  share(buf) {
    const token = this.#loanToken(buf, this.share)
    if (!this.#shared)
      throw errors.invalidState(
        'share() needs a pool that several threads share: defaultPool or a named Pool',
        this.share,
      )
    if (token === null) throw errors.notPooled(this.share, ': alloc(0) holds no memory to hand off')
    if (this.refCount(buf) !== 1) throw errors.shared(this.share)
    return shareLoan(this.#lender, buf, token, this.#name, this.share)
  }

  /** A Buffer over the memory of a handle from share(), on any thread of this pool; a handle serves once. */
  adopt(handle) {
    const fields = handleOf(handle, this.#lender.closed, this.#shared, this.#name, this.adopt)
    return adoptLoan(this.#lender, fields, this.adopt)
  }

  /** Gives the memory of a handle that no one adopted back to the pool, from any thread. */
  reclaim(handle) {
    const fields = handleOf(handle, this.#lender.closed, this.#shared, this.#name, this.reclaim)
    reclaimLoan(this.#lender, fields, this.reclaim)
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
    const traces = this.#lender.traces
    return this.#native
      .live(olderThanMs)
      .map(({ size, ageMs, refCount, address, tracked, token, parked, inTransit }) => {
        const trace = tracked ? mapGet(traces, token) : undefined
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
    const lender = this.#lender
    if (lender.closed) throw errors.closed(this.trim)
    const flushed = lender.cache?.flush() ?? 0
    lender.dropKept()
    lender.fast?.trim()
    return flushed + this.#native.trim()
  }

  /**
   * A consistent snapshot of the pool's figures. `fast` describes this thread's fast-path arenas
   * (each arena counts as one Buffer of 64 KiB in the pool's own figures).
   */
  stats() {
    const s = this.#native.stats()
    const fast = this.#lender.fast
    s.fast = fast === null ? { arenas: 0, arenaBytes: 0, inUseBytes: 0, liveBuffers: 0 } : fast.stats()
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
    const lender = this.#lender
    if (lender.closed) return this.#native.stats().liveBuffers
    lender.fast?.close()
    lender.cache?.close()
    lender.closed = true
    lender.dropKept()
    this.#unsubscribe()
    mapClear(lender.traces)
    return this.#native.close()
  }

  /** Receives this pool's events from the native side (see ./events.js). */
  [kDeliver](event) {
    deliver(this, event, this.#label, this.#lender, this.#shared)
  }

  /** The token of the Buffer that alloc() returned, or the error for anything else. */
  #loanToken(buf, caller, afterClose = false) {
    validateBuffer(buf, caller)
    if (this.#lender.closed && !afterClose) throw errors.closed(caller)
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
}

/** The Pool object of this thread over the process-wide default pool. */
function createDefaultPool(options) {
  return new Pool({ ...options, [kShared]: true })
}

module.exports = { Pool, createDefaultPool }
