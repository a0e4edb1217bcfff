'use strict'
// The ownership contract: every Buffer owns its bytes alone until its last release, after which it
// and every view of it read as empty.

const test = require('ava')
const { Pool } = require('..')
const { prng, stamp, holds, collectUntil } = require('./helpers')

const SIZES = [1, 7, 8, 9, 63, 64, 65, 100, 512, 1000, 4096, 8191, 8192, 8193, 20000, 65536, 300000]

test('no two live Buffers overlap across many interleaved allocations and releases', (t) => {
  const pool = new Pool({ maxBytes: 256 * 1024 * 1024 })
  const rand = prng(42)
  const live = new Map()
  let id = 0
  for (let step = 0; step < 6000; step++) {
    if (live.size > 0 && rand() < 0.45) {
      const keys = [...live.keys()]
      const k = keys[Math.floor(rand() * keys.length)]
      const buf = live.get(k)
      if (!holds(buf, k)) return t.fail(`Buffer ${k} was overwritten before release`)
      pool.release(buf)
      live.delete(k)
    } else {
      const size = SIZES[Math.floor(rand() * SIZES.length)]
      const buf = rand() < 0.5 ? pool.alloc(size) : pool.allocUnsafe(size)
      t.is(buf.length, size)
      stamp(buf, ++id)
      live.set(id, buf)
    }
  }
  for (const [k, buf] of live) t.true(holds(buf, k), `Buffer ${k} holds its own bytes`)
  for (const buf of live.values()) pool.release(buf)
  const s = pool.stats()
  t.is(s.liveBuffers, 0)
  t.is(s.inUseBytes, 0)
  pool.close()
})

test('alloc zero-fills memory that another Buffer used before', (t) => {
  const pool = new Pool({ maxBytes: 16 * 1024 * 1024 })
  for (const size of SIZES) {
    const dirty = pool.allocUnsafe(size)
    dirty.fill(0xa5)
    pool.release(dirty)
    const reservedBefore = pool.stats().reservedBytes
    const clean = pool.alloc(size)
    t.is(pool.stats().reservedBytes, reservedBefore, `size ${size} reuses the released memory`)
    t.true(
      clean.every((b) => b === 0),
      `alloc(${size}) is zero-filled`,
    )
    pool.release(clean)
  }
  pool.close()
})

test('a released Buffer and every view of it read as empty', (t) => {
  const pool = new Pool({ maxBytes: 16 * 1024 * 1024 })
  for (const size of [100, 8192, 100000]) {
    const buf = pool.alloc(size)
    const sub = buf.subarray(10, 50)
    const sliced = buf.slice(0, 20)
    const whole = new Uint8Array(buf.buffer, buf.byteOffset, buf.length)
    t.is(sub.length, 40)
    pool.release(buf)
    t.is(buf.length, 0)
    t.is(sub.length, 0)
    t.is(sliced.length, 0)
    t.is(whole.length, 0)
    t.is(buf.buffer.byteLength, 0)
    t.is(buf[0], undefined, 'reads see nothing')
    buf[0] = 1
    t.is(buf[0], undefined, 'writes go nowhere')
  }
  pool.close()
})

test('retain and release count references; memory returns only at zero', (t) => {
  const pool = new Pool({ maxBytes: 16 * 1024 * 1024 })
  const buf = pool.alloc(256)
  t.is(pool.refCount(buf), 1)
  t.is(pool.retain(buf), 2)
  t.is(pool.retain(buf), 3)
  t.is(pool.refCount(buf), 3)
  t.is(pool.release(buf), 2)
  t.is(pool.release(buf), 1)
  t.is(buf.length, 256, 'still attached while a reference remains')
  t.is(pool.stats().liveBuffers, 1)
  t.true(pool.isPooled(buf))
  t.is(pool.release(buf), 0)
  t.is(buf.length, 0)
  t.is(pool.refCount(buf), 0)
  t.false(pool.isPooled(buf))
  t.is(pool.stats().liveBuffers, 0)
  pool.close()
})

test('the most recently released slot is handed out next', (t) => {
  // A cap this small keeps the slot cache's gate shut (its margin is wider than the pool), so
  // every release goes to the core, which hands out the newest free slot first.
  const pool = new Pool({ maxBytes: 128 * 1024 })
  const a = pool.allocUnsafe(1000)
  const b = pool.allocUnsafe(1000)
  a.fill(1)
  b.fill(2)
  pool.release(a)
  pool.release(b)
  const c = pool.allocUnsafe(1000)
  t.is(c[0], 2, 'b was released last, so its bytes come back first')
  const d = pool.allocUnsafe(1000)
  t.is(d[0], 1)
  pool.close()
})

test('alloc(0) returns an empty Buffer that needs no release', (t) => {
  const pool = new Pool({ maxBytes: 1024 * 1024 })
  const before = pool.stats()
  const empty = pool.alloc(0)
  t.true(Buffer.isBuffer(empty))
  t.is(empty.length, 0)
  t.is(pool.release(empty), 0)
  t.is(pool.release(empty), 0, 'releasing it again is still a no-op')
  t.is(pool.refCount(empty), 0)
  t.false(pool.isPooled(empty))
  t.is(pool.allocUnsafe(0).length, 0)
  t.deepEqual(pool.stats(), before)
  pool.close()
})

test('stats balance to zero after everything is released', async (t) => {
  const pool = new Pool({ maxBytes: 64 * 1024 * 1024 })
  const bufs = SIZES.map((s) => pool.allocUnsafe(s))
  const s = pool.stats()
  t.is(s.liveBuffers, SIZES.length)
  t.is(
    s.requestedBytes,
    SIZES.reduce((a, b) => a + b, 0),
  )
  t.true(s.externalBytes >= s.requestedBytes, 'external: each Buffer, or the whole slot it views')
  t.true(
    s.externalBytes <= s.inUseBytes + s.small.cachedBytes + s.large.cachedBytes,
    'external: lent slots and mappings, and cached ones',
  )
  t.true(s.inUseBytes >= s.requestedBytes)
  t.true(s.reservedBytes >= s.inUseBytes)
  t.is(s.utilization, s.inUseBytes / s.maxBytes)
  t.is(
    s.small.classes.reduce((n, c) => n + c.inUse, 0),
    SIZES.filter((x) => x <= 8192).length,
  )
  t.is(s.large.live, SIZES.filter((x) => x > 8192).length)
  t.is(s.peakInUseBytes, s.inUseBytes)
  for (const b of bufs) pool.release(b)
  const e = pool.stats()
  t.like(e, { liveBuffers: 0, inUseBytes: 0, requestedBytes: 0, allocations: SIZES.length, releases: SIZES.length })
  t.true(e.small.classes.every((c) => c.inUse === 0))
  t.is(e.large.live, 0)
  t.is(e.peakInUseBytes, s.inUseBytes)
  const given = pool.trim()
  t.is(given, e.reservedBytes)
  t.is(pool.stats().reservedBytes, 0)
  t.true(await collectUntil(() => pool.stats().externalBytes === 0), 'kept slot ArrayBuffers leave with the GC')
  pool.close()
})

test('every size class appears in stats with its slot counts', (t) => {
  const pool = new Pool({ maxBytes: 64 * 1024 * 1024 })
  const { classes } = pool.stats().small
  t.is(classes[0].size, 8)
  t.is(classes.at(-1).size, 8192)
  const buf = pool.alloc(100)
  const cls = pool.stats().small.classes.find((c) => c.size === 112)
  t.is(cls.inUse, 1)
  // The rest of the chunk is free, or held by this thread's slot cache (Node 22+).
  t.is(cls.free + cls.cached, Math.floor((64 * 1024) / 112) - 1, 'one 64 KiB chunk, one slot lent')
  t.is(pool.stats().small.cachedSlots, cls.cached)
  pool.release(buf)
  pool.close()
})

test.serial('prefault: true faults a new mapping in at allocation, so the first writes fault nothing', (t) => {
  const pool = new Pool({ maxBytes: 256 * 1024 * 1024 })
  const size = 1536 * 1024 // below 2 MiB: no huge pages, one fault per 4 KiB page
  const touchFaults = (buf) => {
    const before = process.resourceUsage().minorPageFault
    for (let i = 0; i < buf.length; i += 4096) buf[i] = 1
    return process.resourceUsage().minorPageFault - before
  }
  const lazy = pool.allocUnsafe(size)
  const lazyFaults = touchFaults(lazy)
  const eager = pool.allocUnsafe(size + 4096, { prefault: true }) // not the cached mapping
  const eagerFaults = touchFaults(eager)
  t.true(lazyFaults > 200, `touching a lazy mapping faulted ${lazyFaults} times`)
  t.true(eagerFaults < lazyFaults / 10, `touching a prefaulted one faulted ${eagerFaults} times`)
  pool.release(lazy)
  pool.release(eager)
  t.throws(() => pool.alloc(10, { prefault: 'yes' }), { code: 'ERR_INVALID_ARG_TYPE' })
  pool.close()
})

test("release() of another Pool's Buffer is refused and leaves it attached and releasable, also between two Pool objects of one named pool", (t) => {
  const a = new Pool({ maxBytes: 1 << 20 })
  const b = new Pool({ maxBytes: 1 << 20 })
  const n1 = new Pool({ name: 'release-across-objects', maxBytes: 1 << 20 })
  const n2 = new Pool({ name: 'release-across-objects', maxBytes: 1 << 20 })
  for (const size of [100, 100_000]) {
    const buf = a.allocUnsafe(size)
    t.throws(() => b.release(buf), { code: 'ERR_EXTMEM_NOT_POOLED' })
    t.is(buf.length, size, 'still attached')
    t.is(a.release(buf), 0)
    // Two Pool objects over one named pool share its loans: either may release a Buffer.
    const shared = n1.allocUnsafe(size)
    t.is(n2.release(shared), 0)
    t.is(shared.length, 0)
  }
  t.is(a.stats().liveBuffers, 0)
  t.is(n1.stats().liveBuffers, 0)
  a.close()
  b.close()
})
