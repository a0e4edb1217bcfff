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
// - every Buffer handed out carries a serial (a private field), unique in this thread for the life
//   of the process (a JavaScript number counts to 2^53 exactly); its arena records the serial of
//   the slot's current Buffer. releaseFast() accepts a Buffer only if its real ArrayBuffer (read
//   with the intrinsic getter, never the `buffer` property an own property could shadow) is one
//   of these arenas', its real offset is a slot's, and that slot is handed out under its serial:
//   so a stale Buffer (released, its arena trimmed, its slot reused any number of times) and
//   another pool's Buffer are refused, never mistaken for a live one;
// - an arena is one loan of the pool (a 64 KiB Buffer); the pool counts all of it as in use;
//   releasing the arena detaches every view over it. An arena whose ArrayBuffer someone detached
//   (by transferring it) is dropped: its memory is the pool's to account for, as for any Buffer
//   whose ArrayBuffer moved out;
// - the figures change only after a Buffer is really made.
// Its records (arenas, free stacks, the map from ArrayBuffer to arena) are worked with plain loops
// and the built-ins captured at load (./intrinsics.js): a built-in replaced after load cannot
// steer which slot a Buffer gets or gives back.

const errors = require('./errors')
const { CLASS_SIZES, CLASS_OF } = require('./native')
const { FastPooledBuffer } = require('./pooled-buffer')
const {
  F64,
  SafeWeakMap,
  weakMapGet,
  weakMapSet,
  weakMapDelete,
  bufferOf,
  byteOffsetOf,
  arrayBufferLengthOf,
  privateArray,
} = require('./intrinsics')

/** Bytes of one arena: one loan of the pool (pool.stats() counts each as one Buffer of this size). */
const ARENA_BYTES = 64 * 1024
/**
 * Slot ids on the free stacks are `arena * (1 << SLOT_BITS) + slot`: enough bits for the slots of
 * the smallest class in one arena (8192 of 8 bytes: 13 bits).
 */
const SLOT_BITS = 32 - Math.clz32(ARENA_BYTES / CLASS_SIZES[0] - 1)
const SLOT_MASK = (1 << SLOT_BITS) - 1

const serialOf = FastPooledBuffer.serialOf
/** Serial of the last fast Buffer handed out on this thread, by any pool. */
let lastSerial = 0

class FastArenas {
  /** The origin record its Buffers name (see ./lender.js). */
  #origin
  /** Allocates an arena Buffer of ARENA_BYTES (a pool loan), or throws the pool's error. */
  #allocArena
  /** Releases an arena Buffer (detaching it and every view). */
  #giveArena
  /** Per class: free slot ids, most recently freed on top. */
  #free
  /** By index: `{ buf, ab, index, cls, size, serials, live }`, or null once given back or dropped. */
  #arenas = privateArray()
  /** Arena ArrayBuffer -> arena, for the arenas in use. */
  #byBuffer = new SafeWeakMap()
  #liveBuffers = 0
  #inUseBytes = 0

  constructor(origin, allocArena, giveArena) {
    this.#origin = origin
    this.#allocArena = allocArena
    this.#giveArena = giveArena
    this.#free = freeStacks(CLASS_SIZES.length)
  }

  /** A Buffer of `size` bytes (1..8192), contents unspecified. */
  alloc(size, caller) {
    const cls = CLASS_OF[size]
    for (;;) {
      const free = this.#free[cls]
      const top = free.length
      if (top === 0) {
        this.#grow(cls, caller)
        continue
      }
      const id = free[top - 1]
      const arena = this.#arenas[id >>> SLOT_BITS]
      if (arenaByteLength(arena) === 0) {
        // Its ArrayBuffer was transferred away: drop the arena and take a slot elsewhere.
        this.#forget(arena)
        continue
      }
      const slot = id & SLOT_MASK
      const serial = lastSerial + 1
      const buf = new FastPooledBuffer(arena.ab, slot * arena.size, size, serial, this.#origin)
      lastSerial = serial
      free.length = top - 1
      arena.serials[slot] = serial
      arena.live++
      this.#liveBuffers++
      this.#inUseBytes += arena.size
      return buf
    }
  }

  /** Returns a Buffer (checked by the caller to be one) from alloc() to its class. */
  release(buf, caller) {
    const serial = serialOf(buf)
    const arena = weakMapGet(this.#byBuffer, bufferOf(buf))
    if (serial === undefined) {
      throw arena !== undefined ? errors.viewOwnership(caller) : errors.notPooled(caller)
    }
    if (arena === undefined) {
      // Not one of this pool's arenas in use: a stale Buffer (its arena was given back or
      // dropped, which detached it) or another pool's.
      throw arrayBufferLengthOf(bufferOf(buf)) === 0 ? errors.released(caller) : errors.notPooled(caller)
    }
    const slot = byteOffsetOf(buf) / arena.size
    if (slot !== (slot | 0) || arena.serials[slot] !== serial) throw errors.released(caller)
    this.#putBack(arena, slot)
  }

  /** Returns `buf`, a Buffer of this pool's alloc(), if it is still out; does nothing otherwise. */
  dispose(buf) {
    const arena = weakMapGet(this.#byBuffer, bufferOf(buf))
    if (arena === undefined) return
    const slot = byteOffsetOf(buf) / arena.size
    if (slot === (slot | 0) && arena.serials[slot] === serialOf(buf)) this.#putBack(arena, slot)
  }

  /** Puts a handed-out slot back on its class's free stack. */
  #putBack(arena, slot) {
    arena.serials[slot] = 0
    arena.live--
    this.#liveBuffers--
    this.#inUseBytes -= arena.size
    const free = this.#free[arena.cls]
    free[free.length] = arena.index * (1 << SLOT_BITS) + slot
  }

  /** Takes one more arena for class `cls` and puts all its slots on the free stack. */
  #grow(cls, caller) {
    const buf = this.#allocArena(ARENA_BYTES, caller)
    const arenas = this.#arenas
    let index = 0
    while (index < arenas.length && arenas[index] !== null) index++
    const size = CLASS_SIZES[cls]
    const slots = (ARENA_BYTES / size) | 0
    const arena = { buf, ab: bufferOf(buf), index, cls, size, serials: new F64(slots), live: 0 }
    arenas[index] = arena
    weakMapSet(this.#byBuffer, arena.ab, arena)
    const base = index * (1 << SLOT_BITS)
    const free = this.#free[cls]
    for (let s = slots - 1; s >= 0; s--) free[free.length] = base + s
  }

  /**
   * Forgets an arena and its free slots; its Buffers, if any, are stale from now on. (An arena
   * whose ArrayBuffer someone detached is only forgotten: there is nothing left to give back.)
   */
  #forget(arena) {
    const base = arena.index * (1 << SLOT_BITS)
    const free = this.#free[arena.cls]
    let kept = 0
    for (let i = 0; i < free.length; i++)
      if (free[i] < base || free[i] >= base + (1 << SLOT_BITS)) free[kept++] = free[i]
    free.length = kept
    this.#arenas[arena.index] = null
    weakMapDelete(this.#byBuffer, arena.ab)
    this.#liveBuffers -= arena.live
    this.#inUseBytes -= arena.live * arena.size
  }

  /** Gives back every arena none of whose slots is handed out; returns their bytes. */
  trim() {
    let given = 0
    const arenas = this.#arenas
    for (let i = 0; i < arenas.length; i++) {
      const arena = arenas[i]
      if (arena === null || arena.live !== 0) continue
      this.#forget(arena)
      if (arenaByteLength(arena) !== 0) {
        this.#giveArena(arena.buf)
        given += ARENA_BYTES
      }
    }
    return given
  }

  /** Gives back every arena, detaching all fast Buffers; arenas detached by someone else are dropped. */
  close() {
    const arenas = this.#arenas
    this.#arenas = privateArray()
    this.#free = freeStacks(CLASS_SIZES.length)
    this.#byBuffer = new SafeWeakMap()
    this.#liveBuffers = 0
    this.#inUseBytes = 0
    for (let i = 0; i < arenas.length; i++) {
      const arena = arenas[i]
      if (arena === null || arenaByteLength(arena) === 0) continue
      try {
        this.#giveArena(arena.buf)
      } catch {
        // Its ArrayBuffer cannot be detached (marked untransferable): the arena stays one loan
        // of the pool until the GC collects it, as any Buffer that cannot be released.
      }
    }
  }

  /** This thread's fast-path figures. */
  stats() {
    let arenas = 0
    for (let i = 0; i < this.#arenas.length; i++) {
      const arena = this.#arenas[i]
      if (arena !== null && arenaByteLength(arena) !== 0) arenas++
    }
    return { arenas, arenaBytes: arenas * ARENA_BYTES, inUseBytes: this.#inUseBytes, liveBuffers: this.#liveBuffers }
  }
}

/** `n` empty free stacks (Arrays without prototype: no accessor on Array.prototype sees a slot id). */
function freeStacks(n) {
  const stacks = privateArray()
  for (let c = 0; c < n; c++) stacks[c] = privateArray()
  return stacks
}

/** Bytes of an arena's ArrayBuffer: 0 once someone detached it. */
function arenaByteLength(arena) {
  return arrayBufferLengthOf(arena.ab)
}

module.exports = { FastArenas }
