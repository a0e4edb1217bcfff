'use strict'
// Arena scopes (`pool.scope({ arena: true })`): small Buffers are views of chunks (two 8 KiB
// ones first, then 64 KiB ones) the scope takes from the pool, and close() detaches them all at once. They share their chunk's
// ArrayBuffer, as Node's own pooled Buffers share Node's pool, so no one of them is released alone.

const test = require('ava')
const { Pool } = require('..')
const { stamp, holds } = require('./helpers')

const KiB = 1024

test('64 × 1 KiB share three chunks (two small ones, then 64 KiB), each its own bytes; close() detaches them all and the pool balances', (t) => {
  const pool = new Pool({ maxBytes: 16 * 1024 * KiB, leakDetection: 'off' })
  const scope = pool.scope({ arena: true })
  const bufs = []
  for (let i = 0; i < 64; i++) bufs.push(scope.allocUnsafe(1024))
  bufs.forEach((b, i) => stamp(b, i))
  t.true(
    bufs.every((b, i) => holds(b, i)),
    'no two overlap',
  )
  t.is(new Set(bufs.map((b) => b.buffer)).size, 3, 'three chunks')
  for (let c = 0; c < 2; c++)
    t.is(new Set(bufs.slice(8 * c, 8 * c + 8).map((b) => b.buffer)).size, 1, `eight in 8 KiB chunk ${c}`)
  t.is(bufs[16].buffer.byteLength, 64 * KiB, 'the rest in a 64 KiB one')
  t.true(bufs.every((b) => Buffer.isBuffer(b) && b.length === 1024))
  t.like(pool.stats(), { liveBuffers: 3, inUseBytes: 80 * KiB })
  t.like(scope.stats(), { liveBuffers: 3, inUseBytes: 80 * KiB })
  const view = bufs[3].subarray(10)
  t.is(scope.close(), 3, 'three chunks released')
  t.true(
    bufs.every((b) => b.length === 0),
    'every Buffer of the scope reads empty',
  )
  t.is(view.length, 0, 'and so do views of them')
  t.like(pool.stats(), { liveBuffers: 0, inUseBytes: 0 })
  pool.close()
})

test('sizes up to 8 KiB are carved (8-byte aligned, a new chunk when one is full); larger ones and ones with options take loans of their own', (t) => {
  const pool = new Pool({ maxBytes: 16 * 1024 * KiB, leakDetection: 'off' })
  const scope = pool.scope({ arena: true })
  const carved = []
  for (const size of [1, 7, 100, 8192, 5000, 8192, 8192, 8192, 8192, 8192, 8192, 8192])
    carved.push(scope.allocUnsafe(size))
  t.true(carved.every((b) => b.byteOffset % 8 === 0))
  carved.forEach((b, i) => stamp(b, i))
  t.true(carved.every((b, i) => holds(b, i)))
  t.is(new Set(carved.map((b) => b.buffer)).size, 3, 'a new chunk whenever one is full')
  const big = scope.allocUnsafe(20_000)
  const aligned = scope.allocUnsafe(100, { align: 4096 })
  t.true(pool.isPooled(big) && pool.isPooled(aligned), 'loans of their own')
  t.false(pool.isPooled(carved[0]), 'a carved Buffer is no loan')
  t.like(scope.stats(), { liveBuffers: 5 })
  t.is(scope.close(), 5)
  t.true([...carved, big, aligned].every((b) => b.length === 0))
  t.like(pool.stats(), { liveBuffers: 0, inUseBytes: 0 })
  pool.close()
})

test('alloc() in an arena scope zero-fills, also over a chunk an earlier scope wrote', (t) => {
  const pool = new Pool({ maxBytes: 16 * 1024 * KiB, leakDetection: 'off' })
  const first = pool.scope({ arena: true })
  for (let i = 0; i < 64; i++) first.allocUnsafe(1024).fill(0xaa)
  first.close()
  const second = pool.scope({ arena: true })
  const bufs = []
  for (let i = 0; i < 64; i++) bufs.push(second.alloc(1024))
  t.true(bufs.every((b) => b.every((x) => x === 0)))
  second.close()
  pool.close()
})

test('a carved Buffer cannot be released alone: the refusals have their codes and change nothing', (t) => {
  const pool = new Pool({ maxBytes: 16 * 1024 * KiB, leakDetection: 'off' })
  const scope = pool.scope({ arena: true })
  const a = scope.allocUnsafe(100)
  const b = scope.allocUnsafe(100)
  stamp(b, 9)
  const before = pool.stats()
  t.throws(() => scope.release(a), { code: 'ERR_EXTMEM_NOT_POOLED', message: /arena scope/ })
  t.throws(() => pool.release(a), { code: 'ERR_EXTMEM_VIEW_OWNERSHIP' })
  t.throws(() => pool.retain(a), { code: 'ERR_EXTMEM_VIEW_OWNERSHIP' })
  t.deepEqual(pool.stats(), before)
  t.is(a.length, 100)
  t.true(holds(b, 9))
  t.is(scope.close(), 1)
  t.is(a.length + b.length, 0)
  pool.close()
})

test('a chunk whose ArrayBuffer user code transferred away is an escape: close() still succeeds, and the GC takes that loan back', async (t) => {
  if (typeof ArrayBuffer.prototype.transfer !== 'function') return t.pass('Node 20 has no transfer()')
  const pool = new Pool({ maxBytes: 16 * 1024 * KiB, leakDetection: 'off' })
  const scope = pool.scope({ arena: true })
  const a = scope.allocUnsafe(100)
  stamp(a, 1)
  let moved = a.buffer.transfer()
  t.is(a.length, 0, 'the transfer detached every carved Buffer of that chunk')
  const b = scope.allocUnsafe(100) // a fresh chunk: the old one reads empty
  stamp(b, 2)
  t.not(b.buffer, a.buffer)
  t.notThrows(() => scope.close())
  t.is(b.length, 0)
  t.like(pool.stats(), { liveBuffers: 1 }, "the escaped chunk's loan is still out")
  moved = null
  const { collectUntil } = require('./helpers')
  t.true(await collectUntil(() => pool.stats().liveBuffers === 0), 'the GC took it back')
  void moved
  pool.close()
})

test('scope options are checked: arena must be a boolean, no other option', (t) => {
  const pool = new Pool({ maxBytes: 1024 * KiB })
  t.throws(() => pool.scope({ arena: 'yes' }), { code: 'ERR_INVALID_ARG_TYPE', instanceOf: TypeError })
  t.throws(() => pool.scope({ arenas: true }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => pool.scope().scope({ arena: 1 }), { code: 'ERR_INVALID_ARG_TYPE' })
  const child = pool.scope().scope({ arena: true })
  child.allocUnsafe(10)
  t.like(child.stats(), { liveBuffers: 1, inUseBytes: 8 * KiB })
  child.close()
  t.like(pool.stats(), { liveBuffers: 0 })
  pool.close()
})
