'use strict'
// Scopes: an arena allocator over a pool. A Scope owns one reference of each Buffer it allocated;
// close() (or `using`) drops all of them at once, in one native call, as Java's Arena frees what
// was allocated in it.
//
// Invariants kept here:
// - `#buffers` holds each Buffer of this scope whose reference the scope still owns: added when
//   allocated, removed by scope.release(); close() drops one reference of each that is still
//   attached (one released by pool.release() or `using` meanwhile is detached, and skipped). From
//   a scope's first scope.release() on, `#index` maps each of them to its index in `#buffers`, so
//   that scope.release() finds and removes one in constant time (and a scope that never releases
//   one alone pays nothing for it);
// - a scope's children are closed with it, in the same native call; a closed scope refuses new
//   work with ERR_EXTMEM_CLOSED;
// - the Array handed to the native call is private (no prototype, see ./intrinsics.js): the call
//   puts the ArrayBuffers of released slots in it, for the pool to keep;
// - `#buffers` is a private Array worked with indexes only, and the Map and the Set only with
//   methods captured at load, so no patched built-in sees them (and even a Buffer slipped
//   into one could only be released as its owner could release it: the native side checks each
//   Buffer against its own loan).

const errors = require('./errors')
const { validateBuffer, validateSize, validateOptions } = require('./validate')
const {
  F64,
  SafeSet,
  SafeMap,
  mapGet,
  mapSet,
  mapDelete,
  privateArray,
  lengthOf,
  setAdd,
  setDelete,
  setClear,
  forEachOfSet,
  bufferOf,
  arrayBufferLengthOf,
  zeroView,
} = require('./intrinsics')
const { PooledBuffer, ArenaBuffer } = require('./pooled-buffer')
const { SMALL_MAX } = require('./native')

/**
 * Bytes of an arena scope's chunks: each one Buffer of the pool, carved into the scope's small
 * Buffers. The first ARENA_SMALL_CHUNKS are the largest small slots (lent by the thread's cache
 * with no native call), so that a scope of a few Buffers costs what they would alone; the next
 * ones are 64 KiB.
 */
const ARENA_SMALL_CHUNK = SMALL_MAX
const ARENA_SMALL_CHUNKS = 2
const ARENA_CHUNK = 64 * 1024
/**
 * Largest Buffer carved from a chunk (the small ones, 8 KiB today); larger ones take a loan of
 * their own, as in any scope. Every chunk holds one.
 */
const ARENA_MAX = SMALL_MAX

const { tokenOf } = PooledBuffer

/**
 * Lists of closed scopes, emptied, for new scopes to reuse (making a private Array costs about
 * what the rest of a small scope does); and the list every closed scope has, never written.
 */
const spareLists = privateArray()
const SPARE_LISTS_MAX = 64
const CLOSED_LIST = privateArray()

/** An empty private Array, reused if one is spare. */
function takeList() {
  const n = spareLists.length
  if (n === 0) return privateArray()
  const list = spareLists[n - 1]
  spareLists[n - 1] = undefined
  spareLists.length = n - 1
  return list
}

/** Empties `list`, which nothing else holds any more, and keeps it for a new scope. */
function giveList(list) {
  list.length = 0
  if (spareLists.length < SPARE_LISTS_MAX) spareLists[spareLists.length] = list
}

/** What only pool.scope() and scope.scope() pass to the constructor. */
const kMake = Symbol('extmem.makeScope')

/** The Pool's side of a Scope (methods the Pool implements under these keys). */
const kAllocFor = Symbol('extmem.allocFor')
const kReleaseAll = Symbol('extmem.releaseAll')
const kFiguresOf = Symbol('extmem.figuresOf')

class Scope {
  #pool
  #parent
  /** Child scopes not closed yet (a Set made with the first one). */
  #children = null
  /**
   * The Buffers whose reference this scope owns (a private Array; see the invariants above);
   * CLOSED_LIST once closed.
   */
  #buffers = takeList()
  /** Each of `#buffers` to its index there, made by the first scope.release() (null until then). */
  #index = null
  #closed = false
  /**
   * An arena scope carves Buffers of up to ARENA_MAX bytes from 64 KiB chunks, each a Buffer of
   * the pool that the scope owns like any other (in `#buffers`): its close() releases the chunks,
   * and each release detaches the chunk's ArrayBuffer, so every Buffer carved from it at once.
   * `#chunk` is the ArrayBuffer carved now (null: none), `#end` the bytes carved from it at most,
   * `#offset` its first free byte.
   */
  #arena
  #chunk = null
  #end = 0
  #offset = 0
  /** Chunks taken so far (the first ARENA_SMALL_CHUNKS are small). */
  #chunks = 0

  /** Made by pool.scope() and scope.scope() only (`new Scope()` is ERR_ILLEGAL_CONSTRUCTOR). */
  constructor(key, pool, parent, arena = false) {
    if (key !== kMake) throw errors.illegalConstructor(Scope)
    this.#pool = pool
    this.#parent = parent
    this.#arena = arena
  }

  /** Whether close() was called (on this scope or an ancestor). */
  get closed() {
    return this.#closed
  }

  /** A zero-filled Buffer of `size` bytes, owned by this scope. */
  alloc(size, options) {
    return this.#alloc(size, true, options, this.alloc)
  }

  /** A Buffer of `size` bytes with unspecified contents, owned by this scope. */
  allocUnsafe(size, options) {
    return this.#alloc(size, false, options, this.allocUnsafe)
  }

  #alloc(size, zero, options, caller) {
    if (this.#closed) throw errors.closed(caller)
    if (this.#arena && options === undefined) {
      validateSize(size, caller)
      if (size !== 0 && size <= ARENA_MAX) return this.#carve(size, zero, caller)
    }
    const buf = this.#pool[kAllocFor](size, zero, options, caller)
    if (lengthOf(buf) !== 0) this.#own(buf)
    return buf
  }

  /** Takes ownership of one reference of `buf`, a PooledBuffer no scope owns. */
  #own(buf) {
    const list = this.#buffers
    const i = list.length
    list[i] = buf
    if (this.#index !== null) mapSet(this.#index, buf, i)
  }

  /** A Buffer of `size` bytes (1..ARENA_MAX) carved from this arena scope's chunk. */
  #carve(size, zero, caller) {
    let at = (this.#offset + 7) & ~7
    // A new chunk when this one is full, or gone (user code transferred its ArrayBuffer away).
    if (this.#chunk === null || at + size > this.#end || arrayBufferLengthOf(this.#chunk) === 0) {
      const bytes = this.#chunks < ARENA_SMALL_CHUNKS ? ARENA_SMALL_CHUNK : ARENA_CHUNK
      const chunk = this.#pool[kAllocFor](bytes, false, undefined, caller)
      this.#chunks++
      this.#own(chunk)
      this.#chunk = bufferOf(chunk)
      this.#end = bytes
      at = 0
    }
    const buf = new ArenaBuffer(this.#chunk, at, size)
    if (zero) zeroView(buf)
    this.#offset = at + size
    return buf
  }

  /** Releases one of this scope's Buffers early (the scope's reference); returns the references left. */
  release(buf) {
    validateBuffer(buf, this.release)
    if (this.#closed) throw errors.closed(this.release)
    if (ArenaBuffer.is(buf))
      throw errors.notPooled(
        this.release,
        ": an arena scope's Buffers share its chunks and go back together at close()",
      )
    const list = this.#buffers
    if (this.#index === null) {
      this.#index = new SafeMap()
      for (let j = 0; j < list.length; j++) mapSet(this.#index, list[j], j)
    }
    const i = mapGet(this.#index, buf)
    if (i === undefined) throw errors.notPooled(this.release, ' in this scope')
    const left = this.#pool.release(buf)
    // Not the scope's any more: the last one takes its place.
    const last = list.length - 1
    const moved = list[last]
    list[i] = moved
    mapSet(this.#index, moved, i)
    list.length = last
    mapDelete(this.#index, buf)
    return left
  }

  /** A child scope (an arena one with `{ arena: true }`): closed with this one at the latest. */
  scope(options) {
    if (this.#closed) throw errors.closed(this.scope)
    const child = new Scope(kMake, this.#pool, this, arenaOption(options, this.scope))
    this.#children ??= new SafeSet()
    setAdd(this.#children, child)
    return child
  }

  /**
   * Drops this scope's reference of every Buffer it and its children still own, in one native
   * call: a Buffer with no other reference is detached and its memory reused at once. Returns how
   * many Buffers that was (0 once closed).
   */
  close() {
    if (this.#closed) return 0
    this.#closed = true
    // This scope's own list, with its children's Buffers added: the scope is done with it.
    const list = this.#buffers
    if (this.#children !== null) this.#collectChildren(list)
    const parent = this.#parent
    if (parent !== null) setDelete(parent.#children, this)
    this.#buffers = CLOSED_LIST
    this.#index = null
    try {
      return this.#pool[kReleaseAll](list, this.close)
    } finally {
      giveList(list)
    }
  }

  [Symbol.dispose]() {
    this.close()
  }

  /** Moves the Buffers of this scope's children (and theirs) to `list` and marks them all closed. */
  #collectChildren(list) {
    forEachOfSet(this.#children, (child) => {
      child.#closed = true
      const own = child.#buffers
      child.#buffers = CLOSED_LIST
      child.#index = null
      for (let i = 0; i < own.length; i++) list[list.length] = own[i]
      giveList(own)
      if (child.#children !== null) child.#collectChildren(list)
    })
    setClear(this.#children)
  }

  /**
   * Figures of the live Buffers this scope and its children own: `{ liveBuffers, inUseBytes,
   * requestedBytes }`. A Buffer released meanwhile, or detached by resize() or share(), is no
   * longer the scope's, as close() sees it.
   */
  stats() {
    const bufs = privateArray()
    this.#gather(bufs)
    const tokens = new F64(bufs.length)
    for (let i = 0; i < bufs.length; i++) tokens[i] = tokenOf(bufs[i])
    const [liveBuffers, inUseBytes, requestedBytes] = this.#pool[kFiguresOf](tokens)
    return { liveBuffers, inUseBytes, requestedBytes }
  }

  #gather(bufs) {
    const own = this.#buffers
    for (let i = 0; i < own.length; i++) if (lengthOf(own[i]) !== 0) bufs[bufs.length] = own[i]
    if (this.#children !== null) forEachOfSet(this.#children, (child) => child.#gather(bufs))
  }
}

/** The `arena` option of pool.scope() and scope.scope(), checked. */
function arenaOption(options, caller) {
  if (options === undefined) return false
  const opts = validateOptions(options, 'options', ['arena'], caller)
  if (opts.arena !== undefined && typeof opts.arena !== 'boolean')
    throw errors.invalidArgType('options.arena', 'of type boolean', opts.arena, caller)
  return opts.arena === true
}

module.exports = { Scope, kMake, kAllocFor, kReleaseAll, kFiguresOf, arenaOption }
