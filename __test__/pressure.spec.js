'use strict'
// Memory pressure reaches JavaScript before allocations fail: watermark levels, their events on
// the Pool and on diagnostics_channel, and graded admission.

const test = require('ava')
const diagnostics = require('node:diagnostics_channel')
const { execFileSync } = require('node:child_process')
const path = require('node:path')
const { Pool } = require('..')
const { collectUntil, turn } = require('./helpers')

/** A Buffer of 3 pages: its own mapping of exactly this size. */
const UNIT = 12288
/** A pool of 100 units: each essential unit Buffer moves utilization by 1 %. */
function hundredUnits(options) {
  return new Pool({ maxBytes: 100 * UNIT, ...options })
}
const essential = { priority: 'essential' }

async function settle() {
  for (let i = 0; i < 5; i++) await turn()
}

function record(pool) {
  const seen = []
  pool.on('watermark', (e) => seen.push(`${e.previous}->${e.level}`))
  return seen
}

test.serial(
  'every level change is signalled once, in both directions, on the Pool and on diagnostics_channel',
  async (t) => {
    const pool = hundredUnits()
    const seen = record(pool)
    const published = []
    const onPublish = (m) => m.pool === pool && published.push(m)
    diagnostics.subscribe('extmem:watermark', onPublish)
    const held = []
    const fill = (n) => {
      while (held.length < n) held.push(pool.allocUnsafe(UNIT, essential))
    }
    const drain = (n) => {
      while (held.length > n) pool.release(held.pop())
    }
    const levels = []
    for (const n of [69, 70, 84, 85, 94, 95, 100]) {
      fill(n)
      levels.push(pool.level)
    }
    t.deepEqual(levels, ['normal', 'warning', 'warning', 'critical', 'critical', 'shedding', 'shedding'])
    for (const n of [94, 92, 91, 84, 82, 69, 67, 0]) {
      drain(n)
      levels.push(pool.level)
    }
    t.deepEqual(levels.slice(7), [
      'shedding',
      'critical',
      'critical',
      'critical',
      'warning',
      'warning',
      'normal',
      'normal',
    ])
    t.is(pool.stats().level, pool.level)
    await settle()
    t.deepEqual(seen, [
      'normal->warning',
      'warning->critical',
      'critical->shedding',
      'shedding->critical',
      'critical->warning',
      'warning->normal',
    ])
    t.is(published.length, 6)
    t.like(published[0], {
      level: 'warning',
      previous: 'normal',
      utilization: 0.7,
      inUseBytes: 70 * UNIT,
      maxBytes: 100 * UNIT,
    })
    diagnostics.unsubscribe('extmem:watermark', onPublish)
    pool.close()
  },
)

test.serial('a pool flapping at a boundary signals one change, not one per call', async (t) => {
  const pool = hundredUnits()
  const seen = record(pool)
  const held = []
  while (held.length < 70) held.push(pool.allocUnsafe(UNIT, essential))
  for (let i = 0; i < 50; i++) {
    pool.release(held.pop())
    held.push(pool.allocUnsafe(UNIT, essential))
  }
  await settle()
  t.deepEqual(seen, ['normal->warning'])
  pool.close()
})

test.serial('the hysteresis is configurable, and 0 turns it off', async (t) => {
  const pool = hundredUnits({ watermarks: { hysteresis: 0 } })
  const seen = record(pool)
  const held = []
  while (held.length < 70) held.push(pool.allocUnsafe(UNIT, essential))
  for (let i = 0; i < 3; i++) {
    pool.release(held.pop())
    held.push(pool.allocUnsafe(UNIT, essential))
  }
  await settle()
  t.deepEqual(seen, [
    'normal->warning',
    'warning->normal',
    'normal->warning',
    'warning->normal',
    'normal->warning',
    'warning->normal',
    'normal->warning',
  ])
  pool.close()
})

test.serial('a GC reclaim that lowers utilization signals the change', async (t) => {
  const pool = hundredUnits()
  const seen = record(pool)
  ;(() => {
    for (let i = 0; i < 75; i++) pool.allocUnsafe(UNIT, essential)
  })()
  t.is(pool.level, 'warning')
  t.true(await collectUntil(() => pool.level === 'normal'))
  await settle()
  t.deepEqual(seen, ['normal->warning', 'warning->normal'])
  pool.close()
})

test.serial('a release in a worker thread is signalled, in order, on the main thread', (t) => {
  // The default pool is shared by threads; a child process gives it a small cap.
  const script = `
    const { Worker } = require('node:worker_threads')
    const { defaultPool } = require(${JSON.stringify(path.join(__dirname, '..'))})
    const seen = []
    defaultPool.on('watermark', (e) => {
      seen.push(e.previous + '->' + e.level)
      if (e.level === 'normal') { console.log(JSON.stringify(seen)); clearTimeout(timer) }
    })
    const w = new Worker(\`
      const { parentPort } = require('node:worker_threads')
      const extmem = require(${JSON.stringify(path.join(__dirname, '..'))})
      const held = []
      while (held.length < 90) held.push(extmem.allocUnsafe(${UNIT}, { priority: 'essential' }))
      parentPort.postMessage(extmem.defaultPool.level)
      parentPort.once('message', () => { for (const b of held) extmem.release(b) })
    \`, { eval: true })
    w.once('message', (level) => { seen.push('worker saw ' + level); w.postMessage('release') })
    const timer = setTimeout(() => { console.log(JSON.stringify(seen)); process.exitCode = 1; w.terminate() }, 5000)
  `
  const out = execFileSync(process.execPath, ['-e', script], {
    env: { ...process.env, EXTMEM_MAX_BYTES: String(100 * UNIT) },
    encoding: 'utf8',
  })
  const seen = JSON.parse(out)
  t.deepEqual(
    seen.filter((s) => !s.startsWith('worker')),
    ['normal->warning', 'warning->critical', 'critical->warning', 'warning->normal'],
  )
})

test('graded admission, cell by cell', (t) => {
  // [level, fill (units of 200), normal small, normal large, essential small, essential large]
  const table = [
    ['normal', 0, 'ok', 'ok', 'ok', 'ok'],
    ['warning', 144, 'ok', 'ERR_EXTMEM_THROTTLED', 'ok', 'ok'],
    ['critical', 172, 'ERR_EXTMEM_THROTTLED', 'ERR_EXTMEM_THROTTLED', 'ok', 'ok'],
    ['shedding', 190, 'ERR_EXTMEM_EXHAUSTED', 'ERR_EXTMEM_EXHAUSTED', 'ok', 'ok'],
  ]
  for (const [level, fill, ...cells] of table) {
    const calls = [
      [100, undefined],
      [20000, undefined],
      [100, essential],
      [20000, essential],
    ]
    calls.forEach(([size, options], i) => {
      const pool = new Pool({ maxBytes: 200 * UNIT })
      const held = []
      while (held.length < fill) held.push(pool.allocUnsafe(UNIT, essential))
      t.is(pool.level, level)
      const before = pool.stats()
      const expected = cells[i]
      const what = `${level}, ${options ? 'essential' : 'normal'} ${size} B`
      if (expected === 'ok') {
        t.notThrows(() => pool.release(pool.allocUnsafe(size, options)), what)
      } else {
        const err = t.throws(() => pool.allocUnsafe(size, options), { code: expected }, what)
        t.like(err, { requestedBytes: size, level })
        t.is(typeof err.availableBytes, 'number')
        const after = pool.stats()
        const reason = expected === 'ERR_EXTMEM_THROTTLED' ? 'throttled' : 'shedding'
        t.is(after.refused[reason], before.refused[reason] + 1, `${what} is counted as ${reason}`)
        t.is(after.failedAllocations, before.failedAllocations + 1)
        t.deepEqual(
          { ...after, refused: before.refused, failedAllocations: before.failedAllocations },
          before,
          `${what} changes nothing else`,
        )
      }
      pool.close()
    })
  }
})

test('essential allocations still stop at the hard cap', (t) => {
  const pool = hundredUnits()
  const held = []
  const err = t.throws(
    () => {
      for (;;) held.push(pool.allocUnsafe(UNIT, essential))
    },
    { code: 'ERR_EXTMEM_EXHAUSTED' },
  )
  t.is(held.length, 100)
  t.is(err.level, 'shedding')
  t.is(pool.stats().refused.cap, 1)
  pool.close()
})

test("admission 'cap' refuses only at the hard cap", (t) => {
  const pool = hundredUnits({ admission: 'cap' })
  const held = []
  t.throws(
    () => {
      for (;;) held.push(pool.allocUnsafe(UNIT))
    },
    { code: 'ERR_EXTMEM_EXHAUSTED' },
  )
  t.is(held.length, 100)
  t.is(pool.level, 'shedding')
  t.like(pool.stats().refused, { cap: 1, throttled: 0, shedding: 0 })
  pool.close()
})

test('bad pressure options are refused', (t) => {
  const bad = [
    [{ watermarks: { warning: 0.9, critical: 0.8 } }, 'ERR_INVALID_ARG_VALUE'],
    [{ watermarks: { shedding: 1.5 } }, 'ERR_INVALID_ARG_VALUE'],
    [{ watermarks: { warning: 0 } }, 'ERR_INVALID_ARG_VALUE'],
    [{ watermarks: { hysteresis: 0.8 } }, 'ERR_INVALID_ARG_VALUE'],
    [{ watermarks: { warning: '0.5' } }, 'ERR_INVALID_ARG_TYPE'],
    [{ watermarks: { low: 0.5 } }, 'ERR_INVALID_ARG_VALUE'],
    [{ watermarks: 5 }, 'ERR_INVALID_ARG_TYPE'],
    [{ admission: 'strict' }, 'ERR_INVALID_ARG_VALUE'],
    [{ leakDetection: true }, 'ERR_INVALID_ARG_VALUE'],
  ]
  for (const [options, code] of bad) t.throws(() => new Pool(options), { code }, JSON.stringify(options))
  const pool = hundredUnits()
  t.throws(() => pool.alloc(10, { priority: 'high' }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => pool.alloc(10, { align: 16 }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => pool.alloc(10, { alignment: 64 }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => pool.alloc(10, 'essential'), { code: 'ERR_INVALID_ARG_TYPE' })
  t.is(pool.stats().liveBuffers, 0)
  const custom = new Pool({ maxBytes: 1000 * UNIT, watermarks: { warning: 0.5, critical: 0.6, shedding: 0.7 } })
  const held = []
  while (held.length < 500) held.push(custom.allocUnsafe(UNIT, essential))
  t.is(custom.level, 'warning')
  custom.close()
  pool.close()
})
