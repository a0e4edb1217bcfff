'use strict'
// Reuse of released slots (Node 22+ keeps a released slot's ArrayBuffer for the slot's next loan,
// Node 20 makes a new Buffer per loan): whichever path, a Buffer never shares its bytes with
// another live Buffer, whatever other threads and trims did to the slot meanwhile.

const test = require('ava')
const path = require('node:path')
const { Worker } = require('node:worker_threads')
const { once } = require('node:events')
const { Pool, defaultPool } = require('..')
const { stamp, holds } = require('./helpers')

test('a slot taken by another thread is not reused through this thread’s kept ArrayBuffer', async (t) => {
  const pkg = JSON.stringify(path.join(__dirname, '..'))
  const mine = defaultPool.allocUnsafe(4000)
  const myAddress = defaultPool.addressOf(mine)
  // retain() makes a loan lent from this thread's cache an ordinary one, so the last release
  // gives the slot back to the pool (not to the cache), and on Node 22+ this thread keeps the
  // slot's ArrayBuffer.
  defaultPool.retain(mine)
  defaultPool.release(mine)
  defaultPool.release(mine)
  const w = new Worker(
    `
    const { parentPort } = require('node:worker_threads')
    const extmem = require(${pkg})
    const theirs = extmem.allocUnsafe(4000) // the most recently freed slot: the one just released
    theirs.fill(0xbb)
    parentPort.postMessage(String(extmem.defaultPool.addressOf(theirs)))
    parentPort.once('message', () => parentPort.postMessage(theirs.every((b) => b === 0xbb)))
  `,
    { eval: true },
  )
  const [theirAddress] = await once(w, 'message')
  t.is(BigInt(theirAddress), myAddress, 'the worker got the slot this thread released')
  const again = defaultPool.allocUnsafe(4000)
  again.fill(0xaa)
  t.not(defaultPool.addressOf(again), myAddress, 'this thread did not reuse the slot the worker holds')
  w.postMessage('check')
  const [intact] = await once(w, 'message')
  t.true(intact, "the worker's Buffer kept its bytes")
  defaultPool.release(again)
  await w.terminate()
})

test('a kept ArrayBuffer whose chunk went back to the OS is never used again', (t) => {
  const pool = new Pool({ maxBytes: 2 * 64 * 1024, admission: 'cap' })
  const first = pool.allocUnsafe(4000)
  const firstAddress = pool.addressOf(first)
  pool.release(first) // its 4 KiB-class chunk is now empty
  // Fill the cap with another class: the empty chunk is unmapped to make room.
  const others = []
  for (let i = 0; i < 16; i++) others.push(pool.allocUnsafe(8000))
  t.is(pool.stats().small.classes.find((c) => c.size === 4096).free, 0, 'the 4 KiB chunk is gone')
  t.throws(() => pool.allocUnsafe(4000), { code: 'ERR_EXTMEM_EXHAUSTED' }, 'no room for it now')
  while (others.length > 8) pool.release(others.pop()) // one 8 KiB-class chunk empties
  const next = pool.allocUnsafe(4000)
  stamp(next, 1)
  others.forEach((b, i) => stamp(b, i + 100))
  t.true(holds(next, 1))
  t.true(
    others.every((b, i) => holds(b, i + 100)),
    'no Buffer shares bytes with the new one',
  )
  t.is(typeof firstAddress, 'bigint')
  pool.close()
})

test('released slots are reused for every small class, in place, with zero-fill on alloc', (t) => {
  // Without the thread cache: the core's own reuse through kept ArrayBuffers.
  const pool = new Pool({ maxBytes: 64 << 20, threadCache: false })
  for (const size of [1, 8, 9, 64, 65, 100, 500, 1000, 4095, 4096, 5000, 8192]) {
    const a = pool.allocUnsafe(size)
    const address = pool.addressOf(a)
    a.fill(0xee)
    pool.release(a)
    const before = pool.stats().reservedBytes
    const b = pool.alloc(size)
    t.is(pool.addressOf(b), address, `size ${size}: the released slot is reused`)
    t.is(pool.stats().reservedBytes, before)
    t.true(
      b.every((x) => x === 0),
      `size ${size}: zero-filled`,
    )
    t.true(
      new Uint8Array(b.buffer).every((x) => x === 0),
      `size ${size}: the whole slot behind it too`,
    )
    t.is(a.length, 0, 'the old Buffer stays detached')
    pool.release(b)
  }
  pool.close()
})

test('retain and release of a reused slot count from one again', (t) => {
  const pool = new Pool({ maxBytes: 1 << 20 })
  const a = pool.alloc(256)
  pool.retain(a)
  pool.release(a)
  pool.release(a)
  const b = pool.alloc(256)
  t.is(pool.refCount(b), 1)
  t.throws(() => pool.release(a), { code: 'ERR_EXTMEM_RELEASED' })
  t.throws(() => pool.retain(a), { code: 'ERR_EXTMEM_RELEASED' })
  t.is(pool.refCount(b), 1, 'the stale Buffer did not touch the new loan')
  pool.release(b)
  pool.close()
})
