'use strict'
// The fast path: small Buffers as views over 64 KiB arenas that this thread's Pool object carves
// itself, with no native call per allocation or release.
//
// The trade-off, as Node's Buffer.allocUnsafe makes it: a view cannot be detached, so a reference
// kept after releaseFast() still reads and writes the slot, which the next allocFast() hands to
// someone else. Use it where Buffers have one clear owner that drops them at release.
//
// Invariants kept here:
// - every slot of every arena is either on its class's free stack or handed out, never both;
// - a handed-out slot's Buffer carries `gen * 2^37 + id` under kFast, and releaseFast() accepts it
//   only while the slot is handed out under that same generation (so a second release of a stale
//   Buffer is refused instead of freeing the slot's next owner);
// - an arena is one loan of the pool (an external Buffer over a 64 KiB mapping); the pool counts
//   all of it as in use; releasing the arena detaches every view over it.

const errors = require('./errors')
const { PooledBuffer } = require('./pooled-buffer')

/** Bytes of one arena: one loan of the pool. */
const ARENA_BYTES = 64 * 1024
/** Slot ids are `arena * SLOTS_PER_ID + slot`; an 8-byte class has 8192 slots per arena. */
const SLOT_BITS = 13
const SLOT_MASK = (1 << SLOT_BITS) - 1
/** Tokens are `gen * 2^37 + id`: 24 bits of arena, 13 of slot, 16 of generation (< 2^53). */
const ID_SPAN = 2 ** 37
const GEN_LIMIT = 1 << 16

const kFast = Symbol('extmem.fast')

class FastArenas {
  #classSizes
  #classOf
  /** Allocates an arena Buffer of ARENA_BYTES (a pool loan), or throws the pool's error. */
  #takeArena
  /** Releases an arena Buffer (detaching it and every view). */
  #giveArena
  /** Per class: free slot ids, most recently freed on top. */
  #free
  /** By index: `{ buf, ab, cls, size, gens, used, live }`, or null once given back. */
  #arenas = []
  /** Arena ArrayBuffer -> arena, to tell views of fast Buffers from foreign Buffers. */
  #byBuffer = new WeakMap()
  #liveBuffers = 0
  #inUseBytes = 0

  constructor(classSizes, classOf, takeArena, giveArena) {
    this.#classSizes = classSizes
    this.#classOf = classOf
    this.#takeArena = takeArena
    this.#giveArena = giveArena
    this.#free = classSizes.map(() => [])
  }

  /** A Buffer of `size` bytes (1..8192), contents unspecified. */
  alloc(size, caller) {
    const cls = this.#classOf[size]
    let id = this.#free[cls].pop()
    if (id === undefined) id = this.#grow(cls, caller)
    const arena = this.#arenas[Math.floor(id / (1 << SLOT_BITS))]
    const slot = id & SLOT_MASK
    const gen = (arena.gens[slot] + 1) % GEN_LIMIT
    arena.gens[slot] = gen
    arena.used[slot] = 1
    arena.live++
    this.#liveBuffers++
    this.#inUseBytes += arena.size
    const buf = new PooledBuffer(arena.ab, slot * arena.size, size)
    buf[kFast] = gen * ID_SPAN + id
    return buf
  }

  /** Returns a Buffer (checked by the caller to be one) from alloc() to its class. */
  release(buf, caller) {
    const token = buf[kFast]
    if (token === undefined) {
      throw this.#byBuffer.has(buf.buffer) ? errors.viewOwnership(caller) : errors.notPooled(caller)
    }
    const id = token % ID_SPAN
    const gen = (token - id) / ID_SPAN
    const arena = this.#arenas[Math.floor(id / (1 << SLOT_BITS))]
    const slot = id & SLOT_MASK
    if (arena === null || arena === undefined || arena.used[slot] === 0 || arena.gens[slot] !== gen) {
      throw errors.released(caller)
    }
    arena.used[slot] = 0
    arena.live--
    this.#liveBuffers--
    this.#inUseBytes -= arena.size
    this.#free[arena.cls].push(id)
  }

  /** Takes one more arena for class `cls`; returns the first of its slot ids. */
  #grow(cls, caller) {
    const buf = this.#takeArena(ARENA_BYTES, caller)
    let index = this.#arenas.indexOf(null)
    if (index < 0) index = this.#arenas.push(null) - 1
    const size = this.#classSizes[cls]
    const slots = Math.floor(ARENA_BYTES / size)
    const arena = { buf, ab: buf.buffer, cls, size, gens: new Uint16Array(slots), used: new Uint8Array(slots), live: 0 }
    this.#arenas[index] = arena
    this.#byBuffer.set(arena.ab, arena)
    const base = index * (1 << SLOT_BITS)
    const free = this.#free[cls]
    for (let s = slots - 1; s >= 1; s--) free.push(base + s)
    return base
  }

  /** Gives back every arena none of whose slots is handed out; returns their bytes. */
  trim() {
    let given = 0
    this.#arenas.forEach((arena, index) => {
      if (arena === null || arena.live !== 0) return
      const base = index * (1 << SLOT_BITS)
      this.#free[arena.cls] = this.#free[arena.cls].filter((id) => id < base || id >= base + (1 << SLOT_BITS))
      this.#arenas[index] = null
      this.#giveArena(arena.buf)
      given += ARENA_BYTES
    })
    return given
  }

  /** Gives back every arena, detaching all fast Buffers. */
  close() {
    for (const arena of this.#arenas) if (arena !== null) this.#giveArena(arena.buf)
    this.#arenas = []
    this.#free = this.#classSizes.map(() => [])
    this.#liveBuffers = 0
    this.#inUseBytes = 0
  }

  /** This thread's fast-path figures. */
  stats() {
    const arenas = this.#arenas.filter((a) => a !== null).length
    return { arenas, arenaBytes: arenas * ARENA_BYTES, inUseBytes: this.#inUseBytes, liveBuffers: this.#liveBuffers }
  }
}

module.exports = { FastArenas, ARENA_BYTES, kFast }
