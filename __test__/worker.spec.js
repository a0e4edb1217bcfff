'use strict'
// The default pool is one per process: worker threads draw on the same budget as the main thread.

const test = require('ava')
const path = require('node:path')
const { Worker } = require('node:worker_threads')
const { once } = require('node:events')
const { defaultPool, Pool } = require('..')
const { collectUntil } = require('./helpers')

const PKG = path.join(__dirname, '..')

function worker(source) {
  const w = new Worker(
    `const { parentPort } = require('node:worker_threads'); const extmem = require(${JSON.stringify(PKG)});\n${source}`,
    { eval: true },
  )
  w.on('error', (err) => {
    throw err
  })
  return w
}

async function nextMessage(w) {
  const [msg] = await once(w, 'message')
  return msg
}

test.serial('the default pool used from a worker thread shares the same budget', async (t) => {
  const before = defaultPool.stats()
  const w = worker(`
    const bufs = [extmem.allocUnsafe(1000), extmem.alloc(100000)]
    parentPort.postMessage({ maxBytes: extmem.defaultPool.maxBytes, requested: extmem.stats().requestedBytes })
    parentPort.once('message', () => {
      for (const b of bufs) extmem.release(b)
      parentPort.postMessage(extmem.stats().requestedBytes)
    })
  `)
  const seen = await nextMessage(w)
  t.is(seen.maxBytes, defaultPool.maxBytes)
  const during = defaultPool.stats()
  t.is(during.requestedBytes, before.requestedBytes + 101000, 'the main thread sees the worker Buffers')
  t.is(during.liveBuffers, before.liveBuffers + 2)
  t.is(seen.requested, during.requestedBytes)
  w.postMessage('release')
  t.is(await nextMessage(w), before.requestedBytes)
  t.is(defaultPool.stats().requestedBytes, before.requestedBytes)
  await w.terminate()
})

test.serial('a worker terminated while holding Buffers gives their memory back', async (t) => {
  const before = defaultPool.stats()
  const w = worker(`
    globalThis.held = []
    for (let i = 0; i < 10; i++) held.push(extmem.allocUnsafe(20000), extmem.allocUnsafe(500))
    parentPort.postMessage('holding')
    parentPort.on('message', () => {}) // stays alive until terminated
  `)
  t.is(await nextMessage(w), 'holding')
  t.is(defaultPool.stats().liveBuffers, before.liveBuffers + 20)
  await w.terminate()
  t.true(await collectUntil(() => defaultPool.stats().liveBuffers === before.liveBuffers), 'the Buffers were reclaimed')
  const after = defaultPool.stats()
  t.is(after.requestedBytes, before.requestedBytes)
  t.is(after.gcReclaims, before.gcReclaims + 20)
})

test.serial('a Pool closed in a worker leaves the worker Buffers valid and the main thread untouched', async (t) => {
  const w = worker(`
    const pool = new extmem.Pool({ maxBytes: 1 << 20 })
    const b = pool.alloc(10)
    b.fill(3)
    const out = pool.close()
    parentPort.postMessage([out, b.length, b[9], pool.release(b), pool.stats().reservedBytes])
  `)
  t.deepEqual(await nextMessage(w), [1, 10, 3, 0, 0])
  await w.terminate()
  const pool = new Pool({ maxBytes: 1 << 20 })
  t.is(pool.alloc(1).length, 1)
  pool.close()
})
