'use strict'
// Scopes: an arena allocator over a pool. A Scope owns one reference of each Buffer it allocated;
// close() (or `using`) drops all of them at once, in one native call, as Java's Arena frees what
// was allocated in it.
//
// Invariants kept here:
// - `#buffers` holds each Buffer of this scope whose reference the scope still owns: added when
//   allocated, removed by scope.release(); close() drops one reference of each that is still
//   attached (one released by pool.release() or `using` meanwhile is detached, and skipped);
// - a scope's children are closed with it, in the same native call; a closed scope refuses new
//   work with ERR_EXTMEM_CLOSED;
// - the Array handed to the native call is private (no prototype, see ./intrinsics.js): the call
//   puts the ArrayBuffers of released slots in it, for the pool to keep.

const errors = require('./errors')
const { validateBuffer } = require('./validate')
const { privateArray } = require('./intrinsics')
const { PooledBuffer } = require('./pooled-buffer')

const tokenOf = PooledBuffer.tokenOf

/** The Pool's side of a Scope (methods the Pool implements under these keys). */
const kAllocFor = Symbol('extmem.allocFor')
const kReleaseAll = Symbol('extmem.releaseAll')
const kFiguresOf = Symbol('extmem.figuresOf')

class Scope {
  #pool
  #parent
  #children = new Set()
  #buffers = new Set()
  #closed = false

  /** Made by pool.scope() and scope.scope() only. */
  constructor(pool, parent) {
    this.#pool = pool
    this.#parent = parent
  }

  /** Whether close() was called (on this scope or an ancestor). */
  get closed() {
    return this.#closed
  }

  /** A zero-filled Buffer of `size` bytes, owned by this scope. */
  alloc(size, options) {
    return this.#take(size, true, options, this.alloc)
  }

  /** A Buffer of `size` bytes with unspecified contents, owned by this scope. */
  allocUnsafe(size, options) {
    return this.#take(size, false, options, this.allocUnsafe)
  }

  #take(size, zero, options, caller) {
    if (this.#closed) throw errors.closed(caller)
    const buf = this.#pool[kAllocFor](size, zero, options, caller)
    if (buf.length !== 0) this.#buffers.add(buf)
    return buf
  }

  /** Releases one of this scope's Buffers early (the scope's reference); returns the references left. */
  release(buf) {
    validateBuffer(buf, this.release)
    if (this.#closed) throw errors.closed(this.release)
    if (!this.#buffers.has(buf)) throw errors.notPooled(this.release, ' in this scope')
    const left = this.#pool.release(buf)
    this.#buffers.delete(buf)
    return left
  }

  /** A child scope: closed with this one at the latest. */
  scope() {
    if (this.#closed) throw errors.closed(this.scope)
    const child = new Scope(this.#pool, this)
    this.#children.add(child)
    return child
  }

  /**
   * Drops this scope's reference of every Buffer it and its children still own, in one native
   * call: a Buffer with no other reference is detached and its memory reused at once. Returns how
   * many Buffers that was (0 once closed).
   */
  close() {
    if (this.#closed) return 0
    const list = privateArray()
    this.#collect(list)
    const parent = this.#parent
    if (parent !== null) parent.#children.delete(this)
    return this.#pool[kReleaseAll](list, this.close)
  }

  [Symbol.dispose]() {
    this.close()
  }

  /** Moves the Buffers of this scope and its children to `list` and marks them all closed. */
  #collect(list) {
    this.#closed = true
    for (const buf of this.#buffers) list[list.length] = buf
    this.#buffers.clear()
    for (const child of this.#children) child.#collect(list)
    this.#children.clear()
  }

  /** Figures of the live Buffers this scope and its children own: `{ liveBuffers, inUseBytes, requestedBytes }`. */
  stats() {
    const bufs = []
    this.#gather(bufs)
    const tokens = new Float64Array(bufs.length)
    for (let i = 0; i < bufs.length; i++) tokens[i] = tokenOf(bufs[i])
    const [liveBuffers, inUseBytes, requestedBytes] = this.#pool[kFiguresOf](tokens)
    return { liveBuffers, inUseBytes, requestedBytes }
  }

  #gather(bufs) {
    for (const buf of this.#buffers) bufs.push(buf)
    for (const child of this.#children) child.#gather(bufs)
  }
}

module.exports = { Scope, kAllocFor, kReleaseAll, kFiguresOf }
