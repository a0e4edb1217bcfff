'use strict'
// pool.resize(buf, size): realloc for pooled Buffers. The new Buffer starts with the old bytes,
// the old Buffer (and its views) is detached, the figures move as for an allocation of the
// difference, and every refusal leaves the Buffer and the pool as they were.

const test = require('ava')
const { Worker } = require('node:worker_threads')
const { Pool, codes } = require('..')
const { stamp, holds, collectUntil } = require('./helpers')

const MiB = 1 << 20

function newPool(maxBytes = 128 * MiB) {
  return new Pool({ maxBytes, leakDetection: 'off' })
}

/** Whether `buf` starts with the first `n` bytes of the pattern of `id`. */
function startsWith(buf, id, n) {
  return holds(buf.subarray(0, n), id)
}

const CASES = [
  ['inside its slot', 100, 110],
  ['shrinking inside its slot', 8000, 10],
  ['to a larger slot', 100, 5000],
  ['small to large', 5000, 300_000],
  ['large to small', 300_000, 64],
  ['large to larger', 300_000, 3 * MiB],
  ['large to smaller', 3 * MiB, 100_000],
]

for (const [what, from, to] of CASES) {
  test(`resize ${what} (${from} -> ${to} bytes) keeps the contents, detaches the old Buffer and balances`, (t) => {
    const pool = newPool()
    const old = pool.allocUnsafe(from)
    stamp(old, 1)
    const view = old.subarray(1)
    const resized = pool.resize(old, to, { zero: true })
    t.is(old.length, 0, 'the old Buffer is detached')
    t.is(view.length, 0, 'and its views')
    t.is(resized.length, to)
    t.true(startsWith(resized, 1, Math.min(from, to)), 'the first min(old, new) bytes are the old ones')
    if (to > from)
      t.true(
        resized.subarray(from).every((b) => b === 0),
        '{ zero: true } zeroes the new bytes',
      )
    t.true(pool.isPooled(resized))
    t.is(pool.refCount(resized), 1)
    const s = pool.stats()
    t.is(s.liveBuffers, 1)
    t.is(s.requestedBytes, to)
    t.is(s.allocations, 1, 'a resize is not a new allocation')
    t.true(s.inUseBytes >= to)
    t.is(pool.release(resized), 0)
    const after = pool.stats()
    t.is(after.liveBuffers, 0)
    t.is(after.inUseBytes, 0)
    t.is(after.requestedBytes, 0)
    pool.close()
  })
}

test('inside its slot the memory stays where it is; a large Buffer that grows keeps no second copy', (t) => {
  const pool = newPool()
  const small = pool.allocUnsafe(100)
  const address = pool.addressOf(small)
  const same = pool.resize(small, 112)
  t.is(pool.addressOf(same), address)
  const large = pool.allocUnsafe(16 * MiB)
  stamp(large, 5)
  const grown = pool.resize(large, 32 * MiB)
  const s = pool.stats()
  t.is(s.large.live, 1)
  t.true(s.reservedBytes < 33 * MiB, `no 48 MiB held during or after the move (reserved ${s.reservedBytes})`)
  t.true(startsWith(grown, 5, 16 * MiB))
  pool.release(same)
  pool.release(grown)
  pool.close()
})

test('resize to 0 releases; resizing an alloc(0) Buffer allocates', (t) => {
  const pool = newPool()
  const buf = pool.allocUnsafe(100)
  const empty = pool.resize(buf, 0)
  t.is(empty.length, 0)
  t.is(buf.length, 0)
  t.is(pool.stats().liveBuffers, 0)
  const grown = pool.resize(empty, 50, { zero: true })
  t.is(grown.length, 50)
  t.true(grown.every((b) => b === 0))
  t.is(pool.release(grown), 0)
  pool.close()
})

test('a resized Buffer that is dropped is reclaimed by the GC like any other', async (t) => {
  const pool = newPool()
  ;(() => {
    pool.resize(pool.allocUnsafe(100), 300_000)
    pool.resize(pool.allocUnsafe(200_000), 50)
    pool.resize(pool.allocUnsafe(100), 104)
  })()
  t.true(await collectUntil(() => pool.stats().liveBuffers === 0), 'all three came back')
  t.is(pool.stats().gcReclaims, 3)
  t.is(pool.stats().inUseBytes, 0)
  pool.close()
})

test('process.memoryUsage().external follows a resize', (t) => {
  const pool = newPool()
  const before = process.memoryUsage().external
  const buf = pool.allocUnsafe(4 * MiB)
  const grown = pool.resize(buf, 12 * MiB)
  const during = process.memoryUsage().external - before
  // (Other external memory of the process may come and go meanwhile: allow 1 MiB of it.)
  t.true(during >= 11 * MiB && during < 16 * MiB, `external grew by ${during}`)
  t.is(pool.stats().externalBytes, 12 * MiB)
  pool.release(grown)
  t.true(process.memoryUsage().external - before < 1 * MiB)
  pool.close()
})

test('refusals have their code and change nothing: the Buffer stays intact and the figures stay', (t) => {
  const pool = newPool(4 * MiB)
  const other = newPool()
  const buf = pool.allocUnsafe(1000)
  stamp(buf, 9)
  const retained = pool.allocUnsafe(100)
  pool.retain(retained)
  const released = pool.allocUnsafe(100)
  pool.release(released)
  const foreign = other.allocUnsafe(100)
  const before = pool.stats()
  const cases = [
    [() => pool.resize(buf, 8 * MiB), codes.ERR_EXTMEM_EXHAUSTED],
    [() => pool.resize(buf.subarray(0, 10), 50), codes.ERR_EXTMEM_VIEW_OWNERSHIP],
    [() => pool.resize(retained, 5000), codes.ERR_EXTMEM_SHARED],
    [() => pool.resize(retained, 0), codes.ERR_EXTMEM_SHARED],
    [() => pool.resize(released, 10), codes.ERR_EXTMEM_RELEASED],
    [() => pool.resize(foreign, 10), codes.ERR_EXTMEM_NOT_POOLED],
    [() => pool.resize(Buffer.alloc(10), 10), codes.ERR_EXTMEM_NOT_POOLED],
    [() => pool.resize(buf, -1), codes.ERR_OUT_OF_RANGE],
    [() => pool.resize(buf, 1.5), codes.ERR_OUT_OF_RANGE],
    [() => pool.resize(buf, '10'), codes.ERR_INVALID_ARG_TYPE],
    [() => pool.resize(buf), codes.ERR_INVALID_ARG_TYPE],
    [() => pool.resize(buf, 10, { zero: 1 }), codes.ERR_INVALID_ARG_TYPE],
    [() => pool.resize(buf, 10, { align: 64 }), codes.ERR_INVALID_ARG_VALUE],
    [() => pool.resize(new Uint8Array(4), 10), codes.ERR_INVALID_ARG_TYPE],
  ]
  for (const [call, code] of cases) t.throws(call, { code }, String(call))
  t.is(buf.length, 1000)
  t.true(holds(buf, 9), 'the Buffer kept its bytes')
  t.is(pool.refCount(retained), 2)
  const after = pool.stats()
  for (const k of ['liveBuffers', 'inUseBytes', 'requestedBytes', 'externalBytes', 'allocations', 'releases'])
    t.is(after[k], before[k], k)
  t.true(after.failedAllocations > before.failedAllocations, 'the cap refusal counts as a refused allocation')
  pool.close()
  t.throws(() => pool.resize(buf, 10), { code: codes.ERR_EXTMEM_CLOSED })
  t.is(buf.length, 1000)
  other.release(foreign)
  other.close()
})

test('a Buffer marked untransferable is resized, or refused with ERR_EXTMEM_NOT_DETACHABLE and left intact', (t) => {
  const { markAsUntransferable } = require('node:worker_threads')
  const pool = newPool()
  for (const size of [100, 300_000]) {
    const buf = pool.allocUnsafe(size)
    stamp(buf, 4)
    markAsUntransferable(buf.buffer)
    const requested = pool.stats().requestedBytes
    let out
    try {
      out = pool.resize(buf, size * 2)
    } catch (err) {
      t.is(err.code, codes.ERR_EXTMEM_NOT_DETACHABLE)
      t.is(buf.length, size)
      t.true(holds(buf, 4))
      t.is(pool.stats().requestedBytes, requested, 'nothing changed')
      continue
    }
    t.is(buf.length, 0)
    t.true(startsWith(out, 4, size))
    pool.release(out)
  }
})

test('a worker resizes its Buffers and is terminated holding them: their memory comes back', async (t) => {
  const worker = new Worker(
    `
    const { parentPort } = require('node:worker_threads')
    const { defaultPool } = require(${JSON.stringify(require.resolve('..'))})
    globalThis.held = [
      defaultPool.resize(defaultPool.allocUnsafe(100), 200_000),
      defaultPool.resize(defaultPool.allocUnsafe(300_000), 1_000_000),
      defaultPool.resize(defaultPool.allocUnsafe(100), 110),
    ]
    parentPort.postMessage(defaultPool.stats().requestedBytes)
    setInterval(() => {}, 1000)
    `,
    { eval: true },
  )
  const { defaultPool } = require('..')
  const base = defaultPool.stats().requestedBytes
  const requested = await new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject))
  t.true(requested - base >= 1_200_110)
  await worker.terminate()
  t.true(await collectUntil(() => defaultPool.stats().requestedBytes === base), 'the resized Buffers came back')
  t.is(defaultPool.stats().parkedBuffers, 0, 'nothing left the worker, so nothing is parked')
})
