'use strict'
// The model-based test's shared part: a plain-JS model of one Pool, the fast-check commands that
// drive a real Pool and the model side by side, and the invariants checked after every command.
// Used by model.spec.js (ava, a few hundred sequences) and long/model-long.js (`npm run test:long`,
// a million operations). The invariants are listed at the top of model.spec.js.

const assert = require('node:assert/strict')
const fc = require('fast-check')
const { Pool, ExtmemError, RefusedError } = require('..')
const { collectUntil, mappingLen } = require('./helpers')

const KiB = 1024
const MiB = 1024 * KiB
/** Largest size served by a slab slot; larger ones get a mapping of their own (README). */
const SMALL_MAX = 8192
/** What a slab class takes from the OS when it has no free slot. */
const SLAB_CHUNK = 64 * KiB
/** Large mappings are page-aligned. */
const PAGE = 4096
/** Largest size the model asks for. */
const LARGE_MAX = 600 * KiB
/** Released Buffers the model remembers, to throw them back at the pool. */
const RELEASED_KEPT = 16

const ZEROS = Buffer.alloc(LARGE_MAX)

/**
 * On Node 20 each loan is one external Buffer of its length, so externalBytes = requestedBytes; on
 * Node 22+ small Buffers are views over slot-sized ArrayBuffers that the pool may keep after
 * release, so externalBytes >= requestedBytes (README, stats()).
 */
const EXTERNAL_IS_REQUESTED = Number(process.versions.node.split('.')[0]) < 22

/** Operations and sequences run so far in this process (the long run prints them). */
const counters = { ops: 0, sequences: 0 }

// ---------------------------------------------------------------------------------------------
// The model

/**
 * What the pool should look like. `live` holds one entry per Buffer that alloc returned and whose
 * last reference was not released: `{ buf, size, capacity, refs, id, copy }`, where `capacity` is
 * what the loan takes from the pool (its slot or mapping) and `copy` a Node Buffer with the bytes
 * `buf` must still hold (its pattern, written once at allocation).
 */
class Model {
  constructor({ maxBytes, admission, named }) {
    this.maxBytes = maxBytes
    this.admission = admission
    /** Whether the pool is a named one (shared: it hands off Buffers, and cannot be closed). */
    this.named = named
    this.live = []
    /** Buffers handed off by share() and not yet adopted: `{ handle, size, capacity, id, copy }`. */
    this.transit = []
    /** The entries of `live` that the current scope owns a reference of. */
    this.scoped = new Set()
    /** Buffers whose last reference was released, newest last. */
    this.released = []
    this.closed = false
    this.nextId = 1
    this.allocations = 0
    this.releases = 0
    this.gcReclaims = 0
    this.failedAllocations = 0
    this.peak = 0
  }

  pick(index) {
    return this.live.length === 0 ? undefined : this.live[index % this.live.length]
  }

  remember(buf) {
    this.released.push(buf)
    if (this.released.length > RELEASED_KEPT) this.released.shift()
  }
}

/**
 * A fresh pool with its model, plus a second pool whose Buffers are foreign to the first.
 * `config.admission` is 'cap' (only the hard cap refuses) or 'graded' (the default: watermark
 * levels refuse earlier); `config.watermarks`, if set, replaces the default levels.
 */
let poolNames = 0
function setup(config) {
  const options = { maxBytes: config.maxBytes, leakDetection: 'off' }
  if (config.named) options.name = `model-${process.pid}-${++poolNames}`
  if (config.admission === 'cap') options.admission = 'cap'
  if (config.watermarks !== undefined) options.watermarks = config.watermarks
  return {
    model: new Model(config),
    real: { pool: new Pool(options), other: new Pool({ maxBytes: 1 * MiB }) },
  }
}

/**
 * Releases what the model still holds and closes both pools. A closed pool leaves its Buffers
 * valid until they are released or collected, and finalizers never run inside the synchronous
 * property, so without the releases every sequence's memory would stay mapped until the end.
 */
function teardown({ model, real }) {
  for (const { buf } of model.live) {
    try {
      while (real.pool.refCount(buf) > 0) real.pool.release(buf)
    } catch {
      // A failing sequence may leave the model out of step; the failure is reported already.
    }
  }
  for (const { handle } of model.transit) {
    try {
      real.pool.reclaim(handle)
    } catch {
      // As above.
    }
  }
  if (!model.named) real.pool.close()
  real.other.close()
}

// ---------------------------------------------------------------------------------------------
// Checks

/** A byte pattern unique to `id` (its first four bytes are the id), 61 bytes so it straddles slots. */
function patternOf(id) {
  const p = Buffer.allocUnsafe(61)
  p.writeUInt32LE(id, 0)
  for (let i = 4; i < p.length; i++) p[i] = (id * 131 + i * 7) & 0xff
  return p
}

/** Index of the smallest class that holds `size`, given the class sizes in ascending order. */
function classIndex(classSizes, size) {
  for (let i = 0; i < classSizes.length; i++) if (classSizes[i] >= size) return i
  return -1
}

/** `fn()` must throw exactly `Type` with `code`, and leave the pool's figures exactly as they were. */
function refused(pool, fn, Type, code, what) {
  const before = pool.stats()
  let err
  try {
    fn()
  } catch (e) {
    err = e
  }
  assert.ok(err !== undefined, `${what}: expected ${code}, nothing was thrown`)
  assert.equal(err.code, code, `${what}: expected ${code}, got ${err.code} (${err.message})`)
  assert.equal(
    Object.getPrototypeOf(err),
    Type.prototype,
    `${what}: expected a ${Type.name}, got a ${err.constructor.name}`,
  )
  assert.deepEqual(pool.stats(), before, `${what}: a refusal changed the pool's figures`)
  return err
}

/** Everything the model says about the pool, checked against the real one. */
function checkInvariants(m, r) {
  const { pool } = r
  const s = pool.stats()
  const classSizes = s.small.classes.map((c) => c.size)
  const perClass = classSizes.map(() => 0)
  let requested = 0
  let capacity = 0
  let largeCapacity = 0
  let largeLive = 0
  for (const e of m.live) {
    assert.equal(e.buf.length, e.size, `Buffer #${e.id} changed length`)
    assert.ok(e.buf.equals(e.copy), `Buffer #${e.id} (${e.size} bytes) no longer holds its own bytes`)
    assert.equal(pool.refCount(e.buf), e.refs, `refCount of Buffer #${e.id}`)
    assert.equal(pool.isPooled(e.buf), true, `isPooled of Buffer #${e.id}`)
  }
  let inTransitBytes = 0
  for (const e of m.transit) inTransitBytes += e.size
  // A loan holds a slot of its capacity's class (a resized one may be shorter than its slot), or
  // a mapping; one in transit holds its memory too.
  for (const e of [...m.live, ...m.transit]) {
    requested += e.size
    capacity += e.capacity
    if (e.capacity <= SMALL_MAX) {
      perClass[classIndex(classSizes, e.capacity)]++
    } else {
      largeCapacity += e.capacity
      largeLive++
    }
  }
  assert.equal(s.inTransitBuffers, m.transit.length, 'inTransitBuffers')
  assert.equal(s.inTransitBytes, inTransitBytes, 'inTransitBytes')
  for (const b of m.released) {
    assert.equal(b.length, 0, 'a released Buffer stays detached')
    assert.equal(pool.refCount(b), 0, 'refCount of a released Buffer')
    assert.equal(pool.isPooled(b), false, 'isPooled of a released Buffer')
  }
  assert.equal(s.maxBytes, m.maxBytes, 'maxBytes')
  assert.equal(s.closed, m.closed, 'closed')
  assert.equal(s.liveBuffers, m.live.length + m.transit.length, 'liveBuffers')
  assert.equal(s.requestedBytes, requested, 'requestedBytes')
  // Memory in transit has no ArrayBuffer: V8 does not count it as external.
  const attached = requested - inTransitBytes
  if (EXTERNAL_IS_REQUESTED)
    assert.equal(s.externalBytes, attached, 'externalBytes: one external Buffer of its length per loan')
  else assert.ok(s.externalBytes >= attached, `externalBytes ${s.externalBytes} < attached bytes ${attached}`)
  assert.ok(s.inUseBytes >= requested, `inUseBytes ${s.inUseBytes} < requestedBytes ${requested}`)
  assert.equal(s.inUseBytes, capacity, 'inUseBytes: the slots and mappings lent')
  assert.ok(s.reservedBytes >= s.inUseBytes, `reservedBytes ${s.reservedBytes} < inUseBytes ${s.inUseBytes}`)
  // Held from the OS: whole slab chunks, live mappings and cached mappings, nothing else.
  let chunkBytes = 0
  for (const c of s.small.classes) {
    const perChunk = Math.floor(SLAB_CHUNK / c.size)
    // Slots held by this thread's cache (Node 22+) are neither in use nor free.
    const held = c.inUse + c.free + c.cached
    assert.equal(held % perChunk, 0, `class ${c.size} holds whole chunks`)
    chunkBytes += (held / perChunk) * SLAB_CHUNK
  }
  // A thread's slot cache holds whole slots, counted apart from those in use.
  assert.equal(
    s.small.cachedSlots,
    s.small.classes.reduce((n, c) => n + c.cached, 0),
    'cachedSlots: the classes',
  )
  assert.equal(
    s.small.cachedBytes,
    s.small.classes.reduce((n, c) => n + c.cached * c.size, 0),
    'cachedBytes: the classes',
  )
  assert.equal(
    s.reservedBytes,
    chunkBytes + largeCapacity + s.large.cachedBytes,
    'reservedBytes: chunks + live and cached mappings',
  )
  assert.ok(s.reservedBytes <= s.maxBytes, `reservedBytes ${s.reservedBytes} > maxBytes ${s.maxBytes}`)
  assert.equal(s.utilization, s.inUseBytes / s.maxBytes, 'utilization')
  assert.ok(s.peakInUseBytes >= s.inUseBytes && s.peakInUseBytes >= m.peak, 'peakInUseBytes never falls')
  m.peak = s.peakInUseBytes
  assert.deepEqual(
    s.small.classes.map((c) => c.inUse),
    perClass,
    'slots in use per class',
  )
  assert.equal(s.large.live, largeLive, 'live large mappings')
  assert.equal(s.allocations, m.allocations, 'allocations')
  assert.equal(s.releases, m.releases, 'releases')
  assert.equal(s.gcReclaims, m.gcReclaims, 'gcReclaims')
  assert.equal(s.failedAllocations, m.failedAllocations, 'failedAllocations')
  assert.equal(
    s.allocations - s.releases - s.gcReclaims,
    s.liveBuffers,
    'every allocation ended exactly once or is live',
  )
  assert.equal(s.refused.cap + s.refused.throttled + s.refused.shedding, s.failedAllocations, 'refusals by reason')
  if (m.admission === 'cap')
    assert.equal(s.refused.throttled + s.refused.shedding, 0, "admission 'cap' refuses only at the cap")
  if (m.closed) {
    // A closed pool holds only the memory of the Buffers still out.
    assert.equal(s.large.cachedBytes, 0, 'a closed pool caches no mapping')
    for (const c of s.small.classes)
      assert.ok(c.inUse > 0 || c.free === 0, `a closed pool keeps a ${c.size}-byte chunk with no slot out`)
    if (m.live.length === 0) assert.equal(s.reservedBytes, 0, 'a closed pool with no Buffer out holds nothing')
  }
}

/**
 * A refused allocation: ERR_EXTMEM_EXHAUSTED at the hard cap, or, under graded admission,
 * ERR_EXTMEM_THROTTLED at 'warning' (above 8 KiB) or 'critical' and ERR_EXTMEM_EXHAUSTED at
 * 'shedding'. Whatever the reason, it must be justified, and it changes nothing but the refusal
 * counters (and what trimming gave back before a refusal at the cap).
 */
function checkRefusal(m, r, cmd, err, before) {
  const { size } = cmd
  const what = `${cmd} refused`
  assert.ok(
    ['ERR_EXTMEM_EXHAUSTED', 'ERR_EXTMEM_THROTTLED'].includes(err.code),
    `${what} with ${err.code} (${err.message})`,
  )
  assert.equal(Object.getPrototypeOf(err), RefusedError.prototype, `${what} with a RefusedError`)
  assert.ok(size > 0, 'alloc(0) holds no memory and is never refused')
  assert.equal(err.requestedBytes, size, `${what}: requestedBytes`)
  assert.equal(err.level, before.level, `${what}: the level it was refused at`)
  const s = r.pool.stats()
  assert.equal(err.availableBytes, m.maxBytes - s.reservedBytes, `${what}: availableBytes = maxBytes - reservedBytes`)
  const needs = size <= SMALL_MAX ? SLAB_CHUNK : mappingLen(size)
  if (err.code === 'ERR_EXTMEM_THROTTLED') {
    assert.notEqual(m.admission, 'cap', `${what}: admission 'cap' never throttles`)
    assert.ok(
      err.level === 'critical' || (err.level === 'warning' && size > SMALL_MAX),
      `${what} at level ${err.level}`,
    )
    assert.equal(s.refused.throttled, before.refused.throttled + 1)
  } else if (m.admission !== 'cap' && err.level === 'shedding') {
    assert.equal(s.refused.shedding, before.refused.shedding + 1, `${what}: shed at 'shedding'`)
  } else {
    // At the cap: what the request needs from the OS (a 64 KiB chunk, or its mapping) did not fit
    // even after cached memory was given back.
    assert.ok(err.availableBytes < needs, `${what} at the cap with ${err.availableBytes} bytes available`)
    assert.equal(s.large.cached, 0, `${what}: cached mappings were given back before refusing`)
    assert.equal(s.refused.cap, before.refused.cap + 1)
  }
  if (err.code === 'ERR_EXTMEM_THROTTLED' || (m.admission !== 'cap' && err.level === 'shedding')) {
    // Admission refuses before touching memory: nothing but the counters moves.
    // (A refusal may find the thread's cache asked to flush at 'critical': its slots turn free,
    // which moves nothing else, and its mappings go to the pool's mapping cache, or back to the OS
    // where that has no room: then the cached and the reserved bytes fall together.)
    const unmapped = before.large.cachedBytes - s.large.cachedBytes
    assert.ok(unmapped >= 0, `${what}: cached mappings grew`)
    const kept = (x, back = 0) => ({
      ...x,
      failedAllocations: 0,
      refused: 0,
      reservedBytes: x.reservedBytes + back,
      small: x.small.classes.map((c) => [c.size, c.inUse, c.free + c.cached]),
      large: { live: x.large.live },
    })
    assert.deepEqual(kept(s, unmapped), kept(before), `${what}: admission changed the pool`)
  }
}

// ---------------------------------------------------------------------------------------------
// Commands. Each picks its target by an index into the model's lists, so a sequence shrinks well.
// Every command runs in every state (a closed pool, an empty model) and checks the invariants
// afterwards.

class Command {
  check() {
    return true
  }
  run(m, r) {
    counters.ops++
    this.step(m, r)
    checkInvariants(m, r)
  }
}

class Alloc extends Command {
  constructor(size, zero) {
    super()
    this.size = size
    this.zero = zero
  }

  step(m, r) {
    const { size, zero } = this
    const call = () => (zero ? r.pool.alloc(size) : r.pool.allocUnsafe(size))
    if (m.closed) {
      refused(r.pool, call, ExtmemError, 'ERR_EXTMEM_CLOSED', `${this} after close`)
      return
    }
    const before = r.pool.stats()
    let buf
    try {
      buf = call()
    } catch (err) {
      checkRefusal(m, r, this, err, before)
      m.failedAllocations++
      return
    }
    assert.ok(Buffer.isBuffer(buf), `${this} returns a Buffer`)
    assert.equal(buf.length, size, `${this} length`)
    if (size === 0) {
      assert.equal(r.pool.release(buf), 0, 'alloc(0) needs no release')
      assert.equal(r.pool.isPooled(buf), false)
      return
    }
    if (zero) assert.equal(buf.compare(ZEROS, 0, size), 0, `${this} is zero-filled`)
    // What the loan takes: its class's slot, or a mapping of whole pages (a reused one may be up
    // to a quarter longer than the request needs).
    const capacity = r.pool.stats().inUseBytes - before.inUseBytes
    if (size <= SMALL_MAX) {
      assert.equal(
        capacity,
        before.small.classes[
          classIndex(
            before.small.classes.map((c) => c.size),
            size,
          )
        ].size,
        `${this} takes a slot of its class`,
      )
    } else {
      const len = mappingLen(size)
      assert.ok(
        capacity % PAGE === 0 && capacity >= len && capacity <= len + len / 4,
        `${this} lent a mapping of ${capacity} bytes`,
      )
    }
    const id = m.nextId++
    buf.fill(patternOf(id))
    m.live.push({ buf, size, capacity, refs: 1, id, copy: Buffer.from(buf) })
    m.allocations++
  }

  toString() {
    return `${this.zero ? 'alloc' : 'allocUnsafe'}(${this.size})`
  }
}

class Retain extends Command {
  constructor(index) {
    super()
    this.index = index
  }

  step(m, r) {
    const e = m.pick(this.index)
    if (!e) return
    if (m.closed) {
      refused(r.pool, () => r.pool.retain(e.buf), ExtmemError, 'ERR_EXTMEM_CLOSED', 'retain after close')
      return
    }
    assert.equal(r.pool.retain(e.buf), e.refs + 1, `retain of Buffer #${e.id}`)
    e.refs++
  }

  toString() {
    return `retain(live[${this.index}])`
  }
}

/** Drops one reference; at the last one the Buffer and its views must read as empty. */
function releaseOnce(m, r, e) {
  const view = e.buf.subarray(0, 1)
  const left = r.pool.release(e.buf)
  assert.equal(left, e.refs - 1, `release of Buffer #${e.id}`)
  e.refs--
  if (left > 0) {
    assert.equal(e.buf.length, e.size, 'still attached while a reference remains')
    return
  }
  assert.equal(e.buf.length, 0, 'the last release detaches the Buffer')
  assert.equal(view.length, 0, 'and every view of it')
  assert.equal(e.buf.buffer.byteLength, 0)
  m.live.splice(m.live.indexOf(e), 1)
  m.scoped.delete(e)
  m.remember(e.buf)
  m.releases++
}

class Release extends Command {
  constructor(index) {
    super()
    this.index = index
  }

  step(m, r) {
    // Release works after close() too: Buffers still out are released as ever.
    const e = m.pick(this.index)
    if (e) releaseOnce(m, r, e)
  }

  toString() {
    return `release(live[${this.index}])`
  }
}

/** Releases every reference of a Buffer, then once more: a double release. */
class DoubleRelease extends Command {
  constructor(index) {
    super()
    this.index = index
  }

  step(m, r) {
    const e = m.pick(this.index)
    if (!e) return
    while (e.refs > 0) releaseOnce(m, r, e)
    refused(r.pool, () => r.pool.release(e.buf), ExtmemError, 'ERR_EXTMEM_RELEASED', 'a second last release')
  }

  toString() {
    return `releaseAllThenAgain(live[${this.index}])`
  }
}

/** retain/release/refCount/isPooled of a Buffer whose last reference is gone. */
class UseReleased extends Command {
  constructor(index, op) {
    super()
    this.index = index
    this.op = op
  }

  step(m, r) {
    const b = m.released[this.index % m.released.length]
    if (!b) return
    const { pool } = r
    if (this.op === 'refCount') assert.equal(pool.refCount(b), 0)
    else if (this.op === 'isPooled') assert.equal(pool.isPooled(b), false)
    else if (this.op === 'retain' && m.closed)
      refused(pool, () => pool.retain(b), ExtmemError, 'ERR_EXTMEM_CLOSED', `${this} after close`)
    else refused(pool, () => pool[this.op](b), ExtmemError, 'ERR_EXTMEM_RELEASED', `${this}`)
  }

  toString() {
    return `${this.op}(released[${this.index}])`
  }
}

const VIEW_KINDS = {
  subarray: (buf, start, end) => buf.subarray(start, end),
  slice: (buf, start, end) => buf.slice(start, end),
  // A second Buffer over the same bytes, as Buffer.from(arrayBuffer, offset, length) makes.
  alias: (buf, start, end) => Buffer.from(buf.buffer, buf.byteOffset + start, end - start),
}

/** retain/release/refCount/isPooled of a non-empty view of a live Buffer. */
class UseView extends Command {
  constructor(index, kind, start, length, op) {
    super()
    Object.assign(this, { index, kind, start, length, op })
  }

  step(m, r) {
    const e = m.pick(this.index)
    if (!e) return
    const start = this.start % e.size
    const end = start + 1 + (this.length % (e.size - start))
    const view = VIEW_KINDS[this.kind](e.buf, start, end)
    const { pool } = r
    if (this.op === 'isPooled') assert.equal(pool.isPooled(view), false, `${this} is not pooled`)
    else if (this.op === 'retain' && m.closed)
      refused(pool, () => pool.retain(view), ExtmemError, 'ERR_EXTMEM_CLOSED', `${this} after close`)
    else refused(pool, () => pool[this.op](view), ExtmemError, 'ERR_EXTMEM_VIEW_OWNERSHIP', `${this}`)
  }

  toString() {
    return `${this.op}(${this.kind}(live[${this.index}], ${this.start}, +${this.length}))`
  }
}

const FOREIGN_KINDS = {
  'Buffer.alloc': (size) => Buffer.alloc(size),
  'Buffer.allocUnsafe': (size) => Buffer.allocUnsafe(size), // small ones are views of Node's own pool
  'Buffer.from': (size) => Buffer.from('x'.repeat(size)),
  'another Pool': (size, r) => r.other.allocUnsafe(size),
}

/** retain/release/refCount/isPooled of a Buffer this pool did not hand out. */
class UseForeign extends Command {
  constructor(kind, size, op) {
    super()
    Object.assign(this, { kind, size, op })
  }

  step(m, r) {
    const buf = FOREIGN_KINDS[this.kind](this.size, r)
    const { pool } = r
    if (this.op === 'isPooled') assert.equal(pool.isPooled(buf), false)
    else if (this.op === 'retain' && m.closed)
      refused(pool, () => pool.retain(buf), ExtmemError, 'ERR_EXTMEM_CLOSED', `${this} after close`)
    else refused(pool, () => pool[this.op](buf), ExtmemError, 'ERR_EXTMEM_NOT_POOLED', `${this}`)
    if (this.kind === 'another Pool') r.other.release(buf)
  }

  toString() {
    return `${this.op}(${this.kind}(${this.size}))`
  }
}

class Trim extends Command {
  step(m, r) {
    const { pool } = r
    if (m.closed) {
      refused(pool, () => pool.trim(), ExtmemError, 'ERR_EXTMEM_CLOSED', 'trim after close')
      return
    }
    const before = pool.stats()
    const freed = pool.trim()
    const after = pool.stats()
    assert.equal(freed, before.reservedBytes - after.reservedBytes, 'trim returns the bytes given back')
    assert.equal(after.large.cached, 0, 'no cached mapping is left')
    assert.equal(after.large.cachedBytes, 0)
    for (const c of after.small.classes) {
      assert.ok(c.inUse > 0 || c.free === 0, `class ${c.size} keeps a chunk with no slot in use`)
    }
  }

  toString() {
    return 'trim()'
  }
}

/**
 * close(): refuses every later allocation, retain and trim, gives back all memory not lent, and
 * returns the number of Buffers still out, which stay valid (and releasable) until released.
 */
class Close extends Command {
  step(m, r) {
    const { pool } = r
    if (m.named) {
      refused(pool, () => pool.close(), Error, 'ERR_INVALID_STATE', 'close() of a named pool')
      return
    }
    const out = pool.close()
    assert.equal(out, m.live.length, 'close() returns the number of Buffers still out')
    assert.equal(pool.closed, true)
    m.closed = true
  }

  toString() {
    return 'close()'
  }
}

/**
 * Drops a live Buffer without releasing it, then runs gc() and event-loop turns until its loan is
 * reclaimed. Asynchronous: only in the GC property.
 */
class Drop extends Command {
  constructor(index) {
    super()
    this.index = index
  }

  async run(m, r) {
    counters.ops++
    // The entry is forgotten in a separate, synchronous function, so that no local of this async
    // function keeps the Buffer reachable across the awaits.
    if (forget(m, this.index)) {
      const want = m.gcReclaims + 1
      const reclaimed = await collectUntil(() => r.pool.stats().gcReclaims >= want, 200)
      assert.ok(reclaimed, 'a dropped Buffer is reclaimed after gc() and a few event-loop turns')
      m.gcReclaims++
    }
    checkInvariants(m, r)
  }

  toString() {
    return `drop(live[${this.index}]) + gc()`
  }
}

function forget(m, index) {
  if (m.live.length === 0) return false
  const [e] = m.live.splice(index % m.live.length, 1)
  // (A scope holds its Buffers: one it owns is not dropped, so it is not picked here.)
  if (m.scoped.has(e)) {
    m.live.push(e)
    return false
  }
  return true
}

/** Resizes a live Buffer: its first bytes stay, the old one detaches, the figures follow. */
class Resize extends Command {
  constructor(index, size, zero) {
    super()
    this.index = index
    this.size = size
    this.zero = zero
  }

  step(m, r) {
    const e = m.pick(this.index)
    if (!e) return
    const { pool } = r
    const call = () => pool.resize(e.buf, this.size, { zero: this.zero })
    if (m.closed) {
      refused(pool, call, ExtmemError, 'ERR_EXTMEM_CLOSED', `${this} after close`)
      return
    }
    if (e.refs > 1) {
      refused(pool, call, ExtmemError, 'ERR_EXTMEM_SHARED', `${this} of a retained Buffer`)
      return
    }
    const before = pool.stats()
    const old = e.buf
    let buf
    try {
      buf = call()
    } catch (err) {
      assert.ok(['ERR_EXTMEM_EXHAUSTED', 'ERR_EXTMEM_THROTTLED'].includes(err.code), `${this}: ${err.code}`)
      assert.equal(old.length, e.size, `${this} refused: the Buffer is intact`)
      const s = pool.stats()
      assert.equal(s.failedAllocations, before.failedAllocations + 1, `${this} refused: counted`)
      assert.equal(s.inUseBytes, before.inUseBytes, `${this} refused: nothing lent`)
      m.failedAllocations++
      return
    }
    assert.equal(old.length, 0, `${this}: the old Buffer is detached`)
    m.remember(old)
    m.scoped.delete(e)
    if (this.size === 0) {
      assert.equal(buf.length, 0)
      m.live.splice(m.live.indexOf(e), 1)
      m.releases++
      return
    }
    assert.equal(buf.length, this.size, `${this} length`)
    const kept = Math.min(e.size, this.size)
    assert.equal(buf.compare(e.copy, 0, kept, 0, kept), 0, `${this} keeps the first ${kept} bytes`)
    if (this.zero && this.size > e.size)
      assert.equal(buf.compare(ZEROS, 0, this.size - e.size, e.size), 0, `${this} zeroes the new bytes`)
    e.capacity += pool.stats().inUseBytes - before.inUseBytes
    e.buf = buf
    e.size = this.size
    buf.fill(patternOf(e.id))
    e.copy = Buffer.from(buf)
  }

  toString() {
    return `resize(live[${this.index}], ${this.size}${this.zero ? ', { zero: true }' : ''})`
  }
}

/** Allocates through the current scope (made on first use, and again after a close). */
class ScopeAlloc extends Alloc {
  step(m, r) {
    if (m.closed) {
      refused(r.pool, () => r.pool.scope(), ExtmemError, 'ERR_EXTMEM_CLOSED', 'scope() after close')
      return
    }
    r.scope ??= r.pool.scope()
    const scope = r.scope
    const count = m.live.length
    // Alloc's checks, with the scope as the allocator.
    super.step(m, {
      ...r,
      pool: { ...proxyOf(r.pool), alloc: (n) => scope.alloc(n), allocUnsafe: (n) => scope.allocUnsafe(n) },
    })
    if (m.live.length > count) m.scoped.add(m.live.at(-1))
  }

  toString() {
    return `scope.${super.toString()}`
  }
}

/** The pool's methods, bound, as an object that ScopeAlloc can override two of. */
function proxyOf(pool) {
  return { stats: () => pool.stats(), release: (b) => pool.release(b), isPooled: (b) => pool.isPooled(b) }
}

/** Closes the current scope: one reference of each Buffer it still owns is dropped. */
class ScopeClose extends Command {
  step(m, r) {
    if (r.scope === undefined) return
    const owned = [...m.scoped]
    const views = owned.map((e) => e.buf.subarray(0, 1))
    assert.equal(r.scope.close(), owned.length, 'scope.close() returns how many Buffers it still owned')
    r.scope = undefined
    m.scoped.clear()
    owned.forEach((e, i) => {
      e.refs--
      if (e.refs > 0) {
        assert.equal(e.buf.length, e.size, 'a retained Buffer outlives its scope')
        return
      }
      assert.equal(e.buf.length, 0, 'scope.close() detaches a Buffer with no other reference')
      assert.equal(views[i].length, 0, 'and its views')
      m.live.splice(m.live.indexOf(e), 1)
      m.remember(e.buf)
      m.releases++
    })
  }

  toString() {
    return 'scope.close()'
  }
}

/** Hands a live Buffer off (a named pool) or is refused (a private one, or a retained Buffer). */
class Share extends Command {
  constructor(index) {
    super()
    this.index = index
  }

  step(m, r) {
    const e = m.pick(this.index)
    if (!e) return
    const { pool } = r
    if (m.closed) {
      refused(pool, () => pool.share(e.buf), ExtmemError, 'ERR_EXTMEM_CLOSED', 'share() after close')
      return
    }
    if (!m.named) {
      refused(pool, () => pool.share(e.buf), Error, 'ERR_INVALID_STATE', 'share() on a private pool')
      return
    }
    if (e.refs > 1) {
      refused(pool, () => pool.share(e.buf), ExtmemError, 'ERR_EXTMEM_SHARED', 'share() of a retained Buffer')
      return
    }
    const handle = pool.share(e.buf)
    assert.equal(e.buf.length, 0, 'share() detaches the Buffer')
    assert.equal(handle.size, e.size)
    m.remember(e.buf)
    m.live.splice(m.live.indexOf(e), 1)
    m.scoped.delete(e)
    m.transit.push({ handle: structuredClone(handle), size: e.size, capacity: e.capacity, id: e.id, copy: e.copy })
  }

  toString() {
    return `share(live[${this.index}])`
  }
}

/** Adopts (or, `reclaim`, gives back) a Buffer in transit; its handle then serves no more. */
class Adopt extends Command {
  constructor(index, reclaim) {
    super()
    this.index = index
    this.reclaim = reclaim
  }

  step(m, r) {
    if (m.transit.length === 0) return
    const t = m.transit.splice(this.index % m.transit.length, 1)[0]
    const { pool } = r
    if (this.reclaim) {
      pool.reclaim(t.handle)
      m.releases++
    } else {
      const buf = pool.adopt(t.handle)
      assert.ok(buf.equals(t.copy), `adopt() of Buffer #${t.id}: the same bytes`)
      m.live.push({ buf, size: t.size, capacity: t.capacity, refs: 1, id: t.id, copy: t.copy })
    }
    checkInvariants(m, r)
    refused(pool, () => pool.adopt(t.handle), ExtmemError, 'ERR_EXTMEM_HANDLE_USED', 'a handle used twice')
    refused(pool, () => pool.reclaim(t.handle), ExtmemError, 'ERR_EXTMEM_HANDLE_USED', 'a handle used twice')
  }

  toString() {
    return `${this.reclaim ? 'reclaim' : 'adopt'}(transit[${this.index}])`
  }
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

const sizeArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(0, 1, 8, 9, 64, 65, 8191, 8192, 8193, 12288, 12289, LARGE_MAX) },
  { weight: 4, arbitrary: fc.integer({ min: 1, max: SMALL_MAX }) },
  { weight: 3, arbitrary: fc.integer({ min: SMALL_MAX + 1, max: LARGE_MAX }) },
)
const indexArb = fc.nat({ max: 1000 })
const bufferOps = fc.constantFrom('release', 'retain', 'refCount', 'isPooled')

const commandArbs = {
  alloc: fc.tuple(sizeArb, fc.boolean()).map(([size, zero]) => new Alloc(size, zero)),
  retain: indexArb.map((i) => new Retain(i)),
  release: indexArb.map((i) => new Release(i)),
  doubleRelease: indexArb.map((i) => new DoubleRelease(i)),
  useReleased: fc.tuple(indexArb, bufferOps).map(([i, op]) => new UseReleased(i, op)),
  useView: fc
    .tuple(
      indexArb,
      fc.constantFrom(...Object.keys(VIEW_KINDS)),
      fc.nat({ max: LARGE_MAX }),
      fc.nat({ max: LARGE_MAX }),
      bufferOps,
    )
    .map(([i, kind, start, length, op]) => new UseView(i, kind, start, length, op)),
  useForeign: fc
    .tuple(fc.constantFrom(...Object.keys(FOREIGN_KINDS)), fc.integer({ min: 1, max: 20000 }), bufferOps)
    .map(([kind, size, op]) => new UseForeign(kind, size, op)),
  trim: fc.constant(new Trim()),
  close: fc.constant(new Close()),
  drop: indexArb.map((i) => new Drop(i)),
  resize: fc.tuple(indexArb, sizeArb, fc.boolean()).map(([i, size, zero]) => new Resize(i, size, zero)),
  scopeAlloc: fc.tuple(sizeArb, fc.boolean()).map(([size, zero]) => new ScopeAlloc(size, zero)),
  scopeClose: fc.constant(new ScopeClose()),
  share: indexArb.map((i) => new Share(i)),
  adopt: fc.tuple(indexArb, fc.boolean()).map(([i, reclaim]) => new Adopt(i, reclaim)),
}

/** The command arbitrary, weighted so that sequences mostly allocate and release, and rarely close. */
function commandArb({ gc }) {
  const w = (weight, arbitrary) => ({ weight, arbitrary })
  const arbs = [
    w(48, commandArbs.alloc),
    w(12, commandArbs.retain),
    w(32, commandArbs.release),
    w(4, commandArbs.doubleRelease),
    w(4, commandArbs.useReleased),
    w(8, commandArbs.useView),
    w(4, commandArbs.useForeign),
    w(4, commandArbs.trim),
    w(gc ? 3 : 1, commandArbs.close),
    w(8, commandArbs.resize),
    w(8, commandArbs.scopeAlloc),
    w(3, commandArbs.scopeClose),
    w(4, commandArbs.share),
    w(4, commandArbs.adopt),
  ]
  if (gc) arbs.push(w(12, commandArbs.drop))
  return fc.oneof(...arbs)
}

/** Caps of 1 to 4 MiB, not always round, so that sequences reach the cap; both admission policies. */
const configArb = fc.record({
  maxBytes: fc.integer({ min: 1 * MiB, max: 4 * MiB }),
  admission: fc.constantFrom('cap', 'graded'),
  // The default levels (0.70 / 0.85 / 0.95), or low ones that sequences reach often.
  watermarks: fc.constantFrom(undefined, { warning: 0.25, critical: 0.4, shedding: 0.55, hysteresis: 0.05 }),
  // A named pool hands Buffers off (and cannot be closed); a private one refuses to.
  named: fc.boolean(),
})

/** The synchronous property: random sequences of every command but drop. */
function syncProperty({ maxCommands = 100 } = {}) {
  return fc.property(
    configArb,
    fc.commands([commandArb({ gc: false })], { maxCommands, size: 'max' }),
    (config, cmds) => {
      counters.sequences++
      const env = setup(config)
      try {
        fc.modelRun(() => env, cmds)
      } finally {
        teardown(env)
      }
    },
  )
}

/** The GC property: as the synchronous one, plus Buffers dropped without release. */
function gcProperty({ maxCommands = 25 } = {}) {
  return fc.asyncProperty(
    configArb,
    fc.commands([commandArb({ gc: true })], { maxCommands, size: 'max' }),
    async (config, cmds) => {
      counters.sequences++
      const env = setup(config)
      try {
        await fc.asyncModelRun(() => env, cmds)
      } finally {
        teardown(env)
      }
    },
  )
}

/** A positive integer from the environment, or `fallback`. */
function envInt(name, fallback) {
  const v = process.env[name]
  if (v === undefined || v === '') return fallback
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < 0)
    throw new Error(`${name} must be a non-negative integer, not ${JSON.stringify(v)}`)
  return n
}

/** fast-check parameters: EXTMEM_MODEL_SEED (and EXTMEM_MODEL_PATH) replay a reported failure. */
function fcParams(numRuns) {
  // includeErrorInReport: the report shows which invariant broke, not only the shrunk sequence.
  const params = { numRuns, includeErrorInReport: true }
  if (process.env.EXTMEM_MODEL_SEED) params.seed = Number(process.env.EXTMEM_MODEL_SEED)
  if (process.env.EXTMEM_MODEL_PATH) params.path = process.env.EXTMEM_MODEL_PATH
  return params
}

module.exports = {
  Model,
  setup,
  teardown,
  checkInvariants,
  commandArbs,
  commandArb,
  configArb,
  syncProperty,
  gcProperty,
  counters,
  envInt,
  fcParams,
}
