'use strict'
// Pools you can find: pools() lists this thread's live Pool objects and keeps none alive; a label
// names a Pool object in its events, live() and the channels; extmem:refused publishes every
// refusal, with the figures its error carries and the pool's label.

const test = require('ava')
const diagnostics = require('node:diagnostics_channel')
const { Worker } = require('node:worker_threads')
const { Readable } = require('node:stream')
const {
  constants: { MAX_LENGTH },
} = require('node:buffer')
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

/** Subscribes to extmem:refused for `pool`'s messages; returns them and a function that stops. */
function refusals(pool) {
  const messages = []
  const on = (m) => m.pool === pool && messages.push(m)
  diagnostics.subscribe('extmem:refused', on)
  return { messages, stop: () => diagnostics.unsubscribe('extmem:refused', on) }
}

test('extmem:refused publishes a refusal at the cap with its code, the figures its error carries and the label', (t) => {
  const pool = new Pool({ maxBytes: MiB, admission: 'cap', label: 'refused-cap' })
  const { messages, stop } = refusals(pool)
  const kept = pool.allocUnsafe(512 * 1024)
  const err = t.throws(() => pool.allocUnsafe(768 * 1024), { code: 'ERR_EXTMEM_EXHAUSTED' })
  stop()
  t.is(messages.length, 1)
  const [m] = messages
  t.is(m.pool, pool)
  t.is(m.error, err, 'the very error thrown')
  t.deepEqual(Object.keys(m), [
    'pool',
    'label',
    'code',
    'requestedBytes',
    'availableBytes',
    'level',
    'cachedElsewhereBytes',
    'error',
  ])
  t.like(m, {
    label: 'refused-cap',
    code: 'ERR_EXTMEM_EXHAUSTED',
    requestedBytes: 768 * 1024,
    availableBytes: err.availableBytes,
    level: err.level,
    cachedElsewhereBytes: err.cachedElsewhereBytes,
  })
  t.true(m.availableBytes < 768 * 1024)
  pool.release(kept)
  pool.close()
})

test('extmem:refused publishes every refusal of graded admission, the fast path, scopes and readAll(), as stats().refused counts them', async (t) => {
  // 100 slots of 8 KiB: each essential 8 KiB Buffer moves utilization by 1 %.
  const pool = new Pool({ maxBytes: 100 * 8192, label: 'refused-graded' })
  const { messages, stop } = refusals(pool)
  const held = []
  const to = (level) => {
    while (pool.level !== level) held.push(pool.allocUnsafe(8192, { priority: 'essential' }))
  }
  const thrown = []
  const refuse = (fn, code) => thrown.push(t.throws(fn, { code }))
  to('warning')
  refuse(() => pool.allocUnsafe(65536), 'ERR_EXTMEM_THROTTLED')
  refuse(() => pool.scope().allocUnsafe(20000), 'ERR_EXTMEM_THROTTLED')
  to('critical')
  refuse(() => pool.allocFast(100), 'ERR_EXTMEM_THROTTLED')
  refuse(() => pool.alloc(10), 'ERR_EXTMEM_THROTTLED')
  const rejected = await pool.readAll(Readable.from([Buffer.alloc(100)])).catch((err) => err)
  t.is(rejected.code, 'ERR_EXTMEM_THROTTLED')
  thrown.push(rejected)
  to('shedding')
  refuse(() => pool.allocUnsafe(10), 'ERR_EXTMEM_EXHAUSTED')
  // Essential allocations pass graded admission up to the hard cap, which then refuses one.
  for (;;) {
    try {
      held.push(pool.allocUnsafe(8192, { priority: 'essential' }))
    } catch (err) {
      t.is(err.code, 'ERR_EXTMEM_EXHAUSTED')
      thrown.push(err)
      break
    }
  }
  stop()
  t.deepEqual(
    messages.map((m) => m.error),
    thrown,
    'one message per refusal, in order, each with the error thrown',
  )
  t.true(messages.every((m) => m.label === 'refused-graded' && m.code === m.error.code && m.level === m.error.level))
  t.deepEqual(
    messages.map((m) => m.level),
    ['warning', 'warning', 'critical', 'critical', 'critical', 'shedding', 'shedding'],
  )
  const { refused } = pool.stats()
  t.is(messages.filter((m) => m.code === 'ERR_EXTMEM_THROTTLED').length, refused.throttled)
  t.is(messages.filter((m) => m.code === 'ERR_EXTMEM_EXHAUSTED').length, refused.shedding + refused.cap)
  t.is(refused.cap, 1)
  for (const b of held) pool.release(b)
  pool.close()
})

test('with no subscriber extmem:refused publishes nothing, and a refusal is thrown as before', (t) => {
  const channel = diagnostics.channel('extmem:refused')
  const pool = new Pool({ maxBytes: MiB, admission: 'cap' })
  if (channel.hasSubscribers) return t.pass('another test subscribes now')
  t.throws(() => pool.allocUnsafe(2 * MiB), { code: 'ERR_EXTMEM_EXHAUSTED' })
  t.is(pool.stats().refused.cap, 1)
  pool.close()
})

const TiB = 2 ** 40
// As in refusals.spec.js: Linux refuses a mapping far beyond RAM and swap; Node 20 cannot ask for one.
const bigEnough = MAX_LENGTH >= 2 * TiB ? test : test.skip

bigEnough('extmem:refused publishes what the OS refuses as ERR_EXTMEM_OS with syscall and errno', (t) => {
  const pool = new Pool({ maxBytes: 4 * TiB, label: 'refused-os' })
  const { messages, stop } = refusals(pool)
  const err = t.throws(() => pool.allocUnsafe(2 * TiB), { code: 'ERR_EXTMEM_OS' })
  stop()
  t.is(messages.length, 1)
  t.deepEqual(Object.keys(messages[0]), ['pool', 'label', 'code', 'syscall', 'errno', 'requestedBytes', 'error'])
  t.like(messages[0], {
    label: 'refused-os',
    code: 'ERR_EXTMEM_OS',
    syscall: 'mmap',
    errno: err.errno,
    requestedBytes: 2 * TiB,
    error: err,
  })
  pool.close()
})
