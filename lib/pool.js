'use strict'
// The Pool: argument checks, errors and ergonomics over the native pool.
//
// Ownership, as this file keeps it: the Buffer that alloc() returns carries its loan's token under
// a private symbol (views made by subarray() or slice() never do). retain() and release() accept
// only such a Buffer; the native side accepts the token only if the Buffer's address and length
// match the live loan, so neither a stale nor a copied token reaches memory it does not own.

const { EventEmitter } = require('node:events')
const native = require('../binding.js')
const errors = require('./errors')
const { validateSize, validateBuffer, validateByteCount, validateOptions } = require('./validate')

const { NativePool } = native

// Per thread (this module is loaded once per thread): extra results of native calls.
const scratch = new Float64Array(4)
if (!native.bindScratch(scratch)) throw new Error('extmem: the native scratch array could not be bound')

/** Token of a pooled Buffer, on the Buffer that alloc() returned. */
const kLoan = Symbol('extmem.loan')
/** Token of alloc(0)'s empty Buffer, which holds no memory and needs no release. */
const EMPTY_LOAN = -1

/** Keeps the default pool from being closed by a caller of close(). */
const kDefault = Symbol('extmem.default')

const POOL_OPTIONS = ['maxBytes']

class Pool extends EventEmitter {
  #native
  #closed = false

  /**
   * @param {{ maxBytes?: number }} [options]
   */
  constructor(options) {
    super()
    const opts = validateOptions(options, 'options', POOL_OPTIONS, Pool)
    if (opts.maxBytes !== undefined) validateByteCount(opts.maxBytes, 'options.maxBytes', Pool)
    this.#native = opts[kDefault] ?? new NativePool(opts.maxBytes ?? 0)
  }

  /** The hard cap on the memory this pool holds from the OS, in bytes. */
  get maxBytes() {
    return this.#native.maxBytes
  }

  /** Whether close() was called. */
  get closed() {
    return this.#closed
  }

  /** A zero-filled Buffer of `size` bytes (like Buffer.alloc). */
  alloc(size) {
    return this.#alloc(size, true, this.alloc)
  }

  /** A Buffer of `size` bytes whose contents are not initialised (like Buffer.allocUnsafe). */
  allocUnsafe(size) {
    return this.#alloc(size, false, this.allocUnsafe)
  }

  #alloc(size, zero, caller) {
    validateSize(size, caller)
    if (this.#closed) throw errors.closed(caller)
    if (size === 0) {
      const empty = Buffer.alloc(0)
      empty[kLoan] = EMPTY_LOAN
      return empty
    }
    const buf = this.#native.alloc(size, zero)
    if (typeof buf === 'number') throw this.#failure(buf, caller)
    buf[kLoan] = scratch[0]
    return buf
  }

  /** Adds a reference to a pooled Buffer; returns the new count. */
  retain(buf) {
    const token = this.#ownerToken(buf, this.retain)
    if (token === EMPTY_LOAN) return 0
    const refs = this.#native.retain(buf, token)
    if (refs < 0) throw this.#failure(refs, this.retain)
    return refs
  }

  /**
   * Drops a reference to a pooled Buffer; returns the references left. At 0 the Buffer (and
   * every view of it) is detached and its memory returns to the pool at once.
   */
  release(buf) {
    const token = this.#ownerToken(buf, this.release)
    if (token === EMPTY_LOAN) return 0
    const refs = this.#native.release(buf, token)
    if (refs < 0) throw this.#failure(refs, this.release)
    return refs
  }

  /** References held on a pooled Buffer: 0 once it is released. */
  refCount(buf) {
    validateBuffer(buf, this.refCount)
    const token = buf[kLoan]
    if (token === undefined) throw this.#foreign(buf, this.refCount)
    if (token === EMPTY_LOAN || buf.length === 0) return 0
    const refs = this.#native.refCount(buf, token)
    if (refs < 0) throw errors.notPooled(this.refCount)
    return refs
  }

  /** Whether `buf` is a live (unreleased) Buffer that this pool handed out. */
  isPooled(buf) {
    validateBuffer(buf, this.isPooled)
    const token = buf[kLoan]
    if (token === undefined || token === EMPTY_LOAN || buf.length === 0) return false
    return this.#native.refCount(buf, token) > 0
  }

  /**
   * Gives cached memory back to the OS: released large mappings and slab chunks with no Buffer
   * in use. Returns the bytes given back.
   */
  trim() {
    if (this.#closed) throw errors.closed(this.trim)
    return this.#native.trim()
  }

  /** A consistent snapshot of the pool's figures. */
  stats() {
    return this.#native.stats()
  }

  /**
   * Closes the pool: its Buffers on this thread are detached and all its free memory goes back to
   * the OS; later calls throw ERR_EXTMEM_CLOSED. Returns the number of Buffers detached.
   */
  close() {
    if (this.#native === defaultNative) throw errors.invalidState('the default pool cannot be closed', this.close)
    if (this.#closed) return 0
    this.#closed = true
    return this.#native.close()
  }

  /** The token of the Buffer that alloc() returned, or the error for anything else. */
  #ownerToken(buf, caller) {
    validateBuffer(buf, caller)
    if (this.#closed) throw errors.closed(caller)
    const token = buf[kLoan]
    if (token === undefined) throw this.#foreign(buf, caller)
    if (buf.length === 0 && token !== EMPTY_LOAN) throw errors.released(caller)
    return token
  }

  /** The error for a Buffer without a token: a view of a live pooled Buffer, or foreign. */
  #foreign(buf, caller) {
    return this.#native.isViewOfLoan(buf) ? errors.viewOwnership(caller) : errors.notPooled(caller)
  }

  #failure(status, caller) {
    switch (status) {
      case native.STATUS_EXHAUSTED:
        return errors.exhausted(scratch[1], scratch[2], this.maxBytes, caller)
      case native.STATUS_CLOSED:
        return errors.closed(caller)
      case native.STATUS_TOO_MANY_REFS:
        return errors.outOfRange('refCount', '<= 4294967295', 4294967296, caller)
      case native.STATUS_EXTERNAL_REFUSED:
        return errors.externalRefused(caller)
      default:
        return errors.notPooled(caller)
    }
  }
}

let defaultNative = null

/** The Pool over the process-wide default pool, capped at `maxBytes` (0: the default cap). */
function createDefaultPool(maxBytes) {
  defaultNative = NativePool.shared(maxBytes)
  return new Pool({ [kDefault]: defaultNative })
}

module.exports = { Pool, createDefaultPool, defaultMaxBytes: NativePool.defaultMaxBytes }
