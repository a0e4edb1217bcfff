'use strict'
// Pools you can find: pools() lists this thread's live Pool objects and keeps none alive; a label
// names a Pool object in its events, live() and the channels.

const test = require('ava')
const diagnostics = require('node:diagnostics_channel')
const { Worker } = require('node:worker_threads')
const extmem = require('..')
const { collectUntil } = require('./helpers')

const { Pool, defaultPool, pools } = extmem
const MiB = 1024 * 1024

test('pools() lists the live Pool objects of this thread, oldest first, defaultPool among them', (t) => {
  const before = pools()
  t.is(before[0], defaultPool, 'defaultPool is made when extmem loads, before any other')
  const a = new Pool({ label: 'list-a' })
  const b = new Pool({ name: 'list-named' })
  const listed = pools()
  t.true(Array.isArray(listed))
  t.is(listed.at(-2), a, 'the newest last')
  t.is(listed.at(-1), b)
  t.true(
    listed.every((p) => p instanceof Pool),
    'only Pool objects',
  )
  t.not(pools(), listed, 'a new array each time')
  a.close()
  t.true(pools().includes(a), 'a closed Pool object is listed while it lives (its Buffers may still be out)')
})

test.serial(
  'pools() holds its Pool objects weakly: listing keeps none alive, and a collected one leaves the list',
  async (t) => {
    let collected = false
    const registry = new FinalizationRegistry(() => (collected = true))
    ;(() => {
      const pool = new Pool({ label: 'list-weak', leakDetection: 'paranoid' })
      pool.release(pool.allocUnsafe(100))
      registry.register(pool, 'list-weak')
      for (let i = 0; i < 3; i++) t.true(pools().includes(pool))
    })()
    t.true(await collectUntil(() => collected), 'the Pool object was collected though pools() listed it')
    t.false(
      pools().some((p) => p.label === 'list-weak'),
      'and it is no longer listed',
    )
  },
)

test('pools() is per thread: a worker lists its own Pool objects, and the main thread does not see them', async (t) => {
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads')
     const { Pool, pools, defaultPool } = require(${JSON.stringify(require.resolve('..'))})
     const mine = new Pool({ label: 'in-worker' })
     parentPort.postMessage({ labels: pools().map((p) => p.label), first: pools()[0] === defaultPool, mine: mine.label })`,
    { eval: true },
  )
  const [message] = await require('node:events').once(worker, 'message')
  await worker.terminate()
  t.deepEqual(message, { labels: ['default', 'in-worker'], first: true, mine: 'in-worker' })
  t.false(pools().some((p) => p.label === 'in-worker'))
})

test('a label names a Pool object: given, else "default", a named pool\'s name, or "anonymous"', (t) => {
  t.is(defaultPool.label, 'default')
  t.is(new Pool().label, 'anonymous')
  t.is(new Pool({ label: 'images' }).label, 'images')
  t.is(new Pool({ name: 'label-named' }).label, 'label-named', "a named pool's label defaults to its name")
  const joined = new Pool({ name: 'label-named', label: 'thumbnails' })
  t.is(joined.label, 'thumbnails', 'a label given to a named pool is that Pool object’s')
  t.is(joined.name, 'label-named')
  const labelled = new Pool({ label: 'private-one' })
  t.is(labelled.name, null, 'a label does not name (share) a pool')
  t.throws(() => labelled.share(labelled.allocUnsafe(10)), { code: 'ERR_INVALID_STATE' }, 'nor makes it shareable')
  t.deepEqual(JSON.parse(JSON.stringify(labelled)), {
    name: null,
    label: 'private-one',
    maxBytes: labelled.maxBytes,
    level: 'normal',
    closed: false,
  })
})

test('options.label must be a non-empty string, refused as the other options are', (t) => {
  for (const label of [1, null, true, {}, ['a'], Symbol('x')]) {
    const err = t.throws(() => new Pool({ label }), { code: 'ERR_INVALID_ARG_TYPE', instanceOf: TypeError })
    t.regex(err.message, /"options\.label" argument must be of type string/)
  }
  const err = t.throws(() => new Pool({ label: '' }), { code: 'ERR_INVALID_ARG_VALUE', instanceOf: TypeError })
  t.regex(err.message, /options\.label' must not be empty/)
  const typo = t.throws(() => new Pool({ lable: 'x' }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.regex(typo.message, /known: name, label, maxBytes/)
  t.is(pools().filter((p) => p.label === '').length, 0, 'a refused Pool is not listed')
})

test('live() records carry the label', (t) => {
  const pool = new Pool({ label: 'live-label', leakDetection: 'paranoid' })
  const bufs = [pool.allocUnsafe(100), pool.allocUnsafe(100000)]
  const live = pool.live()
  t.is(live.length, 2)
  for (const record of live) {
    t.is(record.label, 'live-label')
    t.is(typeof record.stack, 'string', 'the existing fields are all there')
    t.deepEqual(Object.keys(record), ['size', 'ageMs', 'refCount', 'address', 'parked', 'inTransit', 'label', 'stack'])
  }
  for (const b of bufs) pool.release(b)
})

test('watermark events and their channel messages carry the label, beside the fields they had', async (t) => {
  const pool = new Pool({ maxBytes: MiB, admission: 'cap', label: 'wm-label' })
  const events = []
  const messages = []
  const onMessage = (m) => m.pool === pool && messages.push(m)
  diagnostics.subscribe('extmem:watermark', onMessage)
  pool.on('watermark', (e) => events.push(e))
  const held = []
  while (pool.level !== 'warning') held.push(pool.allocUnsafe(64 * 1024))
  await collectUntil(() => events.length >= 1 && messages.length >= 1, 20)
  diagnostics.unsubscribe('extmem:watermark', onMessage)
  t.true(events.length >= 1)
  t.deepEqual(Object.keys(events[0]), ['level', 'previous', 'utilization', 'inUseBytes', 'maxBytes', 'label'])
  t.like(events[0], { level: 'warning', previous: 'normal', maxBytes: MiB, label: 'wm-label' })
  t.like(messages[0], { pool, level: 'warning', label: 'wm-label' })
  for (const b of held) pool.release(b)
  pool.close()
})

test.serial('leak events and their channel messages carry the label', async (t) => {
  const pool = new Pool({ maxBytes: MiB, leakDetection: 'paranoid', label: 'leak-label' })
  const leaks = []
  const messages = []
  const onMessage = (m) => m.pool === pool && messages.push(m)
  diagnostics.subscribe('extmem:leak', onMessage)
  pool.on('leak', (l) => leaks.push(l))
  ;(() => {
    pool.allocUnsafe(1234) // dropped without release
  })()
  const found = await collectUntil(() => leaks.length === 1 && messages.length === 1)
  diagnostics.unsubscribe('extmem:leak', onMessage)
  t.true(found, 'the leak was reported')
  t.deepEqual(Object.keys(leaks[0]), ['size', 'ageMs', 'address', 'stack', 'label'])
  t.like(leaks[0], { size: 1234, label: 'leak-label' })
  t.like(messages[0], { pool, size: 1234, label: 'leak-label' })
  pool.close()
})
