'use strict'
// The watermark contract on every path a Buffer takes, with the thread caches in play: after any
// call, pool.level is the table's level for inUseBytes (with hysteresis on the way down), every
// crossing is told by one 'watermark' event whose utilization lies between the threshold and the
// threshold plus the share of the Buffer that crossed it, and the next allocation is admitted or
// refused by that level. See fixtures/levels-driver.js for the paths and the checks.

const test = require('ava')
const path = require('node:path')
const { once } = require('node:events')
const { Worker } = require('node:worker_threads')
const extmem = require('..')
const { drive } = require('./fixtures/levels-driver')
const { collectUntil } = require('./helpers')

const { Pool } = extmem
const KiB = 1024
const MiB = 1024 * KiB

/** Asserts what a drive found: no failure, and every level visited both ways. */
function judge(t, result) {
  t.deepEqual(result.failures, [])
  for (const level of ['warning', 'critical', 'shedding', 'normal']) {
    t.true(result.levelsVisited.includes(level), `the drive reached ${level}: ${result.crossings}`)
  }
  t.true(
    result.crossings.some((c) => c.startsWith('shedding->')),
    'and came back down',
  )
  for (const op of ['alloc-small', 'retain', 'read', 'alloc-large', 'scope-alloc', 'release', 'trim', 'gc-reclaim'])
    t.true(result.ops[op] > 0, `the drive took the ${op} path`)
}

for (const leakDetection of ['off', 'sampled']) {
  test(`main thread, leakDetection '${leakDetection}': every call leaves the level the table gives, each crossing told once`, async (t) => {
    judge(t, await drive(extmem, { leakDetection, seed: 11 }))
  })

  test(`worker, leakDetection '${leakDetection}': every call leaves the level the table gives, each crossing told once`, async (t) => {
    const w = new Worker(
      `
      const { parentPort } = require('node:worker_threads')
      const extmem = require(${JSON.stringify(path.join(__dirname, '..'))})
      const { drive } = require(${JSON.stringify(path.join(__dirname, 'fixtures', 'levels-driver.js'))})
      drive(extmem, { leakDetection: ${JSON.stringify(leakDetection)}, seed: 12 }).then(
        (r) => parentPort.postMessage(r),
        (e) => parentPort.postMessage({ error: String(e && e.stack) }),
      )
    `,
      { eval: true },
    )
    const [result] = await once(w, 'message')
    await w.terminate()
    t.is(result.error, undefined)
    judge(t, result)
  })
}

test('a worker that ends holding Buffers lent from its cache moves the level of the pool it shares, told once', async (t) => {
  const name = `levels-teardown-${process.pid}`
  const pool = new Pool({ name, maxBytes: 16 * MiB, leakDetection: 'off' })
  const events = []
  pool.on('watermark', (e) => events.push(e))
  const w = new Worker(
    `
    const { parentPort } = require('node:worker_threads')
    const { Pool } = require(${JSON.stringify(path.join(__dirname, '..'))})
    const pool = new Pool({ name: ${JSON.stringify(name)} })
    const held = []
    while (pool.stats().inUseBytes < 0.8 * pool.maxBytes) held.push(pool.allocUnsafe(4096, { priority: 'essential' }))
    parentPort.postMessage(pool.level)
    parentPort.once('message', () => {})
  `,
    { eval: true },
  )
  const [workerLevel] = await once(w, 'message')
  t.is(workerLevel, 'warning')
  t.is(pool.level, 'warning', 'main sees the level the worker moved')
  await w.terminate()
  t.true(await collectUntil(() => pool.stats().inUseBytes === 0), 'the worker’s Buffers came back')
  t.is(pool.level, 'normal')
  await collectUntil(() => events.length >= 2, 20)
  t.deepEqual(
    events.map((e) => `${e.previous}->${e.level}`),
    ['normal->warning', 'warning->normal'],
  )
  t.true(events[0].utilization >= 0.7 && events[0].utilization < 0.7 + (4 * KiB) / pool.maxBytes + 1e-9)
  t.true(events[1].utilization < 0.68)
  t.like(pool.stats(), { liveBuffers: 0, level: 'normal' })
})
