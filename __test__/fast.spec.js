'use strict'
// The opt-in fast path: allocFast()/releaseFast() carve small Buffers from per-thread arenas with
// no native call. Its trade-off is that a released Buffer is not detached.

const test = require('ava')
const { Pool } = require('..')
const { prng, stamp, holds } = require('./helpers')

test('fast Buffers are real Buffers that never overlap while live', (t) => {
  const pool = new Pool({ maxBytes: 64 << 20 })
  const rand = prng(7)
  const live = new Map()
  let id = 0
  for (let step = 0; step < 5000; step++) {
    if (live.size > 0 && rand() < 0.45) {
      const keys = [...live.keys()]
      const k = keys[Math.floor(rand() * keys.length)]
      if (!holds(live.get(k), k)) return t.fail(`fast Buffer ${k} was overwritten while live`)
      pool.releaseFast(live.get(k))
      live.delete(k)
    } else {
      const size = 1 + Math.floor(rand() * 8192)
      const buf = pool.allocFast(size)
      t.true(Buffer.isBuffer(buf) && buf.constructor === Buffer)
      t.is(buf.length, size)
      stamp(buf, ++id)
      live.set(id, buf)
    }
  }
  for (const [k, buf] of live) t.true(holds(buf, k))
  const f = pool.stats().fast
  t.is(f.liveBuffers, live.size)
  t.true(f.arenaBytes >= f.inUseBytes)
  for (const buf of live.values()) pool.releaseFast(buf)
  t.like(pool.stats().fast, { liveBuffers: 0, inUseBytes: 0 })
  pool.close()
})

test('releaseFast returns the slot at once, and a kept reference is NOT detached', (t) => {
  const pool = new Pool({ maxBytes: 1 << 20 })
  const a = pool.allocFast(100)
  a.fill(1)
  pool.releaseFast(a)
  t.is(a.length, 100, 'the trade-off: still attached')
  const b = pool.allocFast(100)
  b.fill(2)
  t.is(a[0], 2, "a stale reference sees the next owner's bytes, as with Buffer.allocUnsafe")
  t.throws(
    () => pool.releaseFast(a),
    { code: 'ERR_EXTMEM_RELEASED' },
    "a stale Buffer cannot free its slot's next owner",
  )
  t.is(pool.stats().fast.liveBuffers, 1)
  pool.releaseFast(b)
  pool.close()
})

test('fast arenas are pool memory: counted, capped, trimmed and detached by close()', (t) => {
  const pool = new Pool({ maxBytes: 4 * 64 * 1024, admission: 'cap' })
  const held = []
  t.throws(
    () => {
      for (;;) held.push(pool.allocFast(8192))
    },
    { code: 'ERR_EXTMEM_EXHAUSTED' },
  )
  t.is(held.length, 4 * 8, 'four 64 KiB arenas of eight 8 KiB slots')
  t.like(pool.stats(), { liveBuffers: 4, fast: { arenas: 4, liveBuffers: 32 } })
  for (const b of held.splice(8)) pool.releaseFast(b)
  pool.trim()
  t.like(pool.stats(), { liveBuffers: 1, fast: { arenas: 1, liveBuffers: 8 } })
  pool.close()
  t.true(
    held.every((b) => b.length === 0),
    'close() gives the arenas back and detaches their Buffers',
  )
  t.throws(() => pool.allocFast(10), { code: 'ERR_EXTMEM_CLOSED' })
})

test('fast-path errors', (t) => {
  const pool = new Pool({ maxBytes: 1 << 20 })
  t.throws(() => pool.allocFast(0), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => pool.allocFast(8193), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => pool.allocFast('8'), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => pool.releaseFast(Buffer.alloc(8)), { code: 'ERR_EXTMEM_NOT_POOLED' })
  const safe = pool.alloc(8)
  t.throws(() => pool.releaseFast(safe), { code: 'ERR_EXTMEM_NOT_POOLED' }, 'safe-path Buffers go back with release()')
  const fast = pool.allocFast(64)
  t.throws(() => pool.releaseFast(fast.subarray(1)), { code: 'ERR_EXTMEM_VIEW_OWNERSHIP' })
  t.throws(() => pool.release(fast), { code: 'ERR_EXTMEM_NOT_POOLED' }, 'fast Buffers go back with releaseFast()')
  t.throws(() => pool.releaseFast(new Uint8Array(4)), { code: 'ERR_INVALID_ARG_TYPE' })
  const other = new Pool({ maxBytes: 1 << 20 })
  t.throws(() => other.releaseFast(fast), { code: 'ERR_EXTMEM_NOT_POOLED' })
  pool.releaseFast(fast)
  pool.release(safe)
  other.close()
  pool.close()
})
