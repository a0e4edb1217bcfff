'use strict'
// The classes of the Buffers the pools hand out, built the way Node builds its own: Node's Buffers
// are instances of an internal `class FastBuffer extends Uint8Array` whose prototype is
// Buffer.prototype and whose `constructor` is Buffer. These are the same, one prototype link
// further: `Buffer.isBuffer()`, `instanceof Buffer`, `buf.constructor === Buffer` and every Buffer
// method hold, and `subarray()`/`slice()` give plain Buffers. Constructing one costs what
// `new Uint8Array(ab, offset, length)` costs, about half of `Buffer.from(ab, …)`.
//
// A Buffer's loan is in a private field: it has no own enumerable property, so `util.inspect` and
// `Object.keys` show what they show for `Buffer.alloc`, `Object.assign` copies nothing of it, and
// no code but this module can read or forge it. Views never have one.
//
// Each also names its pool's *origin record* (see ./lender.js), which says what `[Symbol.dispose]()`
// does (see ./release.js) and through which it finds the pool. The record holds the Pool object
// only weakly, so a Buffer never keeps its Pool object alive.

const errors = require('./errors')
const { lengthOf } = require('./intrinsics')

/** `#cacheRef` of a PooledBuffer neither lent by a cache nor ever retained, and of one retained. */
const NONE = -1
const RETAINED = -2

/** A Buffer of the safe path: the Buffer that alloc() returned for one loan. */
class PooledBuffer extends Uint8Array {
  /** The loan's token, or null for alloc(0)'s Buffer, which holds no memory. */
  #token
  /** Its pool's origin record. */
  #origin
  /**
   * Its entry in its thread's slot cache (see ./thread-cache.js) while its loan is the cache's
   * (>= 0); else RETAINED if it was ever retained (until then its release is its last, see
   * ./pool.js), or NONE. One field for both: every field is young-generation bytes per Buffer.
   */
  #cacheRef

  constructor(ab, offset, length, token, origin, cacheRef = NONE) {
    super(ab, offset, length)
    this.#token = token
    this.#origin = origin
    this.#cacheRef = cacheRef
  }

  /** Forgets a PooledBuffer's cache entry and returns it (< 0: none); see ./thread-cache.js. */
  static clearCacheRef(buf) {
    const ref = buf.#cacheRef
    if (ref >= 0) buf.#cacheRef = NONE
    return ref
  }

  /** Records that a PooledBuffer was retained (it may have more than one reference from now on). */
  static markRetained(buf) {
    buf.#cacheRef = RETAINED
  }

  /** Whether a PooledBuffer was ever retained. */
  static wasRetained(buf) {
    return buf.#cacheRef === RETAINED
  }

  /** The origin record of a PooledBuffer (the caller knows it is one). */
  static originOf(buf) {
    return buf.#origin
  }

  /**
   * `using`: drops one reference, as release() does, and does nothing once the Buffer is fully
   * released. On the prototype, so it costs nothing per allocation.
   */
  [Symbol.dispose]() {
    const token = PooledBuffer.tokenOf(this)
    if (token === undefined) throw errors.invalidThis('a Buffer from alloc() or allocUnsafe()', disposeLoan)
    if (token === null || lengthOf(this) === 0) return
    this.#origin.dispose(this, token, disposeLoan)
  }

  /** The token of `buf`'s loan (null: it holds no memory), or undefined if it is not a PooledBuffer. */
  static tokenOf(buf) {
    // Reading the field, not testing `#token in buf`: on Node 22 the brand check costs ~10 ns
    // more, and a Buffer that is not a PooledBuffer is the rare (error) case.
    try {
      return buf.#token
    } catch {
      return undefined
    }
  }
}

/** A Buffer of the fast path. */
class FastPooledBuffer extends Uint8Array {
  /** Its serial (see ./fast.js). */
  #serial
  /** Its pool's origin record. */
  #origin

  constructor(ab, offset, length, serial, origin) {
    super(ab, offset, length)
    this.#serial = serial
    this.#origin = origin
  }

  /** The origin record of a FastPooledBuffer (the caller knows it is one). */
  static originOf(buf) {
    return buf.#origin
  }

  /** `using`: releaseFast(). */
  [Symbol.dispose]() {
    if (FastPooledBuffer.serialOf(this) === undefined)
      throw errors.invalidThis('a Buffer from allocFast()', disposeFast)
    this.#origin.disposeFast(this, this.#origin)
  }

  /** The serial of `buf`, or undefined if it is not a FastPooledBuffer (read as in `tokenOf`). */
  static serialOf(buf) {
    try {
      return buf.#serial
    } catch {
      return undefined
    }
  }
}

/**
 * A Buffer of an arena scope (`pool.scope({ arena: true })`): a view of one of the scope's chunks,
 * released only with all of them by the scope's close(). It owns no loan.
 */
class ArenaBuffer extends Uint8Array {
  #arena = true

  // Written out: the implicit constructor spreads its arguments, through Array iteration that a
  // replaced Array.prototype[Symbol.iterator] would see (as it does on Node 20).
  constructor(ab, offset, length) {
    super(ab, offset, length)
  }

  /** Whether `buf` is an ArenaBuffer (never throws; read as in `tokenOf`). */
  static is(buf) {
    try {
      return buf.#arena
    } catch {
      return false
    }
  }
}

/** The dispose methods, which errors name as their caller (stacks start above them). */
const disposeLoan = PooledBuffer.prototype[Symbol.dispose]
const disposeFast = FastPooledBuffer.prototype[Symbol.dispose]

for (const C of [PooledBuffer, FastPooledBuffer, ArenaBuffer]) {
  Object.setPrototypeOf(C.prototype, Buffer.prototype)
  Object.defineProperty(C.prototype, 'constructor', { value: Buffer, writable: true, configurable: true })
}

module.exports = { PooledBuffer, FastPooledBuffer, ArenaBuffer }
