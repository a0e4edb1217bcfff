'use strict'
// extmem/prometheus against a real prom-client Registry: every metric is there for every pool,
// with the value stats() gives at that moment, the counters as Counters; one stats() per pool per
// scrape; pools that share a label add up and their counters never go down.

const test = require('ava')
const fs = require('node:fs')
const path = require('node:path')
const client = require('prom-client')
const { Pool, defaultPool, pools, levels } = require('..')
const { collectMetrics } = require('../prometheus')
const { collectUntil, countStatsCalls } = require('./helpers')

const MiB = 1024 * 1024

/** Every metric, its type and what it reads from stats() (`labels` beyond `pool`, by series). */
const GAUGES = {
  extmem_max_bytes: (s) => s.maxBytes,
  extmem_reserved_bytes: (s) => s.reservedBytes,
  extmem_in_use_bytes: (s) => s.inUseBytes,
  extmem_requested_bytes: (s) => s.requestedBytes,
  extmem_external_bytes: (s) => s.externalBytes,
  extmem_cached_bytes: (s) => s.small.cachedBytes + s.large.cachedBytes,
  extmem_live_buffers: (s) => s.liveBuffers,
  extmem_in_transit_buffers: (s) => s.inTransitBuffers,
  extmem_in_transit_bytes: (s) => s.inTransitBytes,
  extmem_parked_buffers: (s) => s.parkedBuffers,
  extmem_parked_bytes: (s) => s.parkedBytes,
  extmem_quarantined_buffers: (s) => s.quarantinedBuffers,
  extmem_quarantined_bytes: (s) => s.quarantinedBytes,
  extmem_utilization_ratio: (s) => s.utilization,
}
const COUNTERS = {
  extmem_allocations_total: (s) => s.allocations,
  extmem_releases_total: (s) => s.releases,
  extmem_gc_reclaims_total: (s) => s.gcReclaims,
  extmem_leaks_total: (s) => s.leaks,
  extmem_misuses_total: (s) => s.misuses,
}
const ALL = [...Object.keys(GAUGES), 'extmem_level', ...Object.keys(COUNTERS), 'extmem_refused_total']

/** The values of one metric of a getMetricsAsJSON() result: `[labels, value]` pairs. */
function series(json, name) {
  const metric = json.find((m) => m.name === name)
  return metric === undefined ? undefined : metric.values.map((v) => [v.labels, v.value])
}

/** The value of `name` for `labels` (a subset of the series' labels); fails unless exactly one series matches. */
function valueOf(t, json, name, labels) {
  const matching = (series(json, name) ?? []).filter(([l]) => Object.entries(labels).every(([k, v]) => l[k] === v))
  t.is(matching.length, 1, `${name}${JSON.stringify(labels)}: one series`)
  return matching[0]?.[1]
}

/**
 * Two labelled pools and the default one, with figures that are not zero: Buffers out, a release,
 * refusals at the cap and by graded admission, a level above normal.
 */
function figures(t, tag = '') {
  const a = new Pool({ maxBytes: MiB, admission: 'cap', label: `prom-a${tag}` })
  const b = new Pool({ name: `prom-b${tag}`, maxBytes: MiB })
  const held = [a.allocUnsafe(100), a.allocUnsafe(100), a.allocUnsafe(100_000), defaultPool.allocUnsafe(3000)]
  a.release(held.shift())
  t.throws(() => a.allocUnsafe(2 * MiB), { code: 'ERR_EXTMEM_EXHAUSTED' })
  while (b.level === 'normal') held.push(b.allocUnsafe(8192, { priority: 'essential' }))
  t.throws(() => b.allocUnsafe(16384), { code: 'ERR_EXTMEM_THROTTLED' })
  const bufs = { a: held.filter((x) => a.isPooled(x)), b: held.filter((x) => b.isPooled(x)), d: held[2] }
  return {
    a,
    b,
    release() {
      for (const x of bufs.a) a.release(x)
      for (const x of bufs.b) b.release(x)
      defaultPool.release(bufs.d)
    },
  }
}

test.serial('every metric has one series per pool, each equal to what stats() says at that moment', async (t) => {
  const register = new client.Registry()
  const { a, b, release } = figures(t)
  const collected = collectMetrics({ register })
  // Nothing runs between these stats() and the scrape's, which happens synchronously in getMetricsAsJSON().
  const expected = { 'prom-a': a.stats(), 'prom-b': b.stats(), default: defaultPool.stats() }
  const json = await register.getMetricsAsJSON()
  t.deepEqual(json.map((m) => m.name).sort(), [...ALL].sort(), 'exactly these metrics')
  t.is(collected.metrics.length, ALL.length)
  const labels = pools().map((p) => p.label)
  for (const m of json) {
    t.true(m.values.length > 0, `${m.name} has series`)
    t.deepEqual(
      [...new Set(m.values.map((v) => v.labels.pool))].sort(),
      [...new Set(labels)].sort(),
      `${m.name}: one pool label per live pool of this thread`,
    )
    const type = m.name in COUNTERS || m.name === 'extmem_refused_total' ? 'counter' : 'gauge'
    t.is(m.type, type, `${m.name} is a ${type}`)
  }
  for (const [pool, s] of Object.entries(expected)) {
    for (const [name, read] of Object.entries({ ...GAUGES, ...COUNTERS })) {
      t.is(valueOf(t, json, name, { pool }), read(s), `${name}{pool="${pool}"}`)
    }
    for (const reason of ['cap', 'throttled', 'shedding', 'os']) {
      t.is(valueOf(t, json, 'extmem_refused_total', { pool, reason }), s.refused[reason], `refused ${reason}`)
    }
    for (const level of levels) {
      t.is(valueOf(t, json, 'extmem_level', { pool, level }), level === s.level ? 1 : 0, `${pool} at ${level}`)
    }
  }
  // The figures are not all zero: a test of values that are all 0 would prove little.
  t.like(expected['prom-a'], { liveBuffers: 2, releases: 1, refused: { cap: 1, throttled: 0, shedding: 0, os: 0 } })
  t.like(expected['prom-b'], { level: 'warning', refused: { cap: 0, throttled: 1, shedding: 0, os: 0 } })
  t.true(expected.default.liveBuffers >= 1)
  t.true(Object.values(expected).every((s) => s.inUseBytes > 0 && s.allocations > 0))

  // And the text a scrape reads.
  const text = await register.metrics()
  t.regex(text, /^# TYPE extmem_allocations_total counter$/m)
  t.regex(text, /^# TYPE extmem_in_use_bytes gauge$/m)
  t.true(text.includes(`extmem_in_use_bytes{pool="prom-a"} ${a.stats().inUseBytes}\n`))
  t.true(text.includes('extmem_level{pool="prom-b",level="warning"} 1\n'))
  t.true(text.includes('extmem_refused_total{pool="prom-a",reason="cap"} 1\n'))
  collected.unregister()
  release()
})

test.serial('a scrape reads each pool’s stats() once, whatever the number of metrics', async (t) => {
  const register = new client.Registry()
  // Pools of their own: the named pool of the test before is read through that test's (older) Pool object.
  const { a, b, release } = figures(t, '-once')
  const { unregister } = collectMetrics({ register, sizeClasses: true })
  const calls = countStatsCalls([a, b, defaultPool])
  try {
    await register.metrics()
    t.deepEqual(calls.counts(), [1, 1, 1], 'one stats() each for the first scrape')
    await register.getMetricsAsJSON()
    await register.metrics()
    t.deepEqual(calls.counts(), [3, 3, 3], 'and one for each scrape after')
  } finally {
    calls.restore()
    unregister()
    release()
  }
})

test.serial('sizeClasses: one series per size class and state, as stats().small.classes has them', async (t) => {
  const register = new client.Registry()
  const pool = new Pool({ maxBytes: MiB, label: 'prom-classes' })
  const held = [pool.allocUnsafe(10), pool.allocUnsafe(100), pool.allocUnsafe(100), pool.allocUnsafe(5000)]
  const { unregister } = collectMetrics({ register, sizeClasses: true, prefix: 'app_pool_' })
  const s = pool.stats()
  const json = await register.getMetricsAsJSON()
  t.true(
    json.every((m) => m.name.startsWith('app_pool_')),
    'the prefix',
  )
  const slots = series(json, 'app_pool_size_class_slots').filter(([l]) => l.pool === 'prom-classes')
  t.is(slots.length, s.small.classes.length * 3)
  for (const c of s.small.classes) {
    for (const [state, field] of [
      ['in_use', 'inUse'],
      ['free', 'free'],
      ['cached', 'cached'],
    ]) {
      t.is(
        valueOf(t, json, 'app_pool_size_class_slots', { pool: 'prom-classes', size: String(c.size), state }),
        c[field],
      )
    }
  }
  t.is(
    slots.filter(([l]) => l.state === 'in_use').reduce((n, [, v]) => n + v, 0),
    4,
    'four slots lent',
  )
  unregister()
  for (const b of held) pool.release(b)
  pool.close()
})

test.serial('labels are added to every series, and the options are checked', async (t) => {
  const register = new client.Registry()
  const { unregister } = collectMetrics({ register, labels: { service: 'api', zone: 'b' } })
  const json = await register.getMetricsAsJSON()
  t.true(json.every((m) => m.values.every((v) => v.labels.service === 'api' && v.labels.zone === 'b')))
  t.throws(() => collectMetrics({ register }), {
    code: 'ERR_INVALID_STATE',
    message: /already has a metric named extmem_/,
  })
  unregister()
  unregister()
  t.deepEqual(await register.getMetricsAsJSON(), [], 'unregister() took them all back, and again did nothing')
  const { unregister: again } = collectMetrics({ register })
  t.is((await register.getMetricsAsJSON()).length, ALL.length, 'the registry takes them again')
  again()

  const bad = [
    [{ register: {} }, 'ERR_INVALID_ARG_TYPE', /"options\.register" argument must be a prom-client Registry/],
    [{ prefix: 1 }, 'ERR_INVALID_ARG_TYPE', /options\.prefix/],
    [{ prefix: '9x' }, 'ERR_INVALID_ARG_VALUE', /must start a Prometheus metric name/],
    [{ labels: { pool: 'x' } }, 'ERR_INVALID_ARG_VALUE', /is a label of extmem's own series/],
    [{ labels: { 'a-b': 'x' } }, 'ERR_INVALID_ARG_VALUE', /is not a Prometheus label name/],
    [{ labels: { __x: 'x' } }, 'ERR_INVALID_ARG_VALUE', /is not a Prometheus label name/],
    [{ labels: { a: 1 } }, 'ERR_INVALID_ARG_TYPE', /options\.labels\.a/],
    [{ labels: [] }, 'ERR_INVALID_ARG_TYPE', /options\.labels/],
    [{ sizeClasses: 'yes' }, 'ERR_INVALID_ARG_TYPE', /options\.sizeClasses/],
    [{ registry: register }, 'ERR_INVALID_ARG_VALUE', /known: register, prefix, labels, sizeClasses/],
    ['x', 'ERR_INVALID_ARG_TYPE', /"options" argument must be of type object/],
  ]
  for (const [options, code, message] of bad) t.throws(() => collectMetrics(options), { code, message })
  t.deepEqual(await register.getMetricsAsJSON(), [], 'a refused call registers nothing')
})

test.serial('without a register, the metrics go to prom-client’s global registry', async (t) => {
  const { unregister } = collectMetrics()
  t.true((await client.register.getMetricsAsJSON()).some((m) => m.name === 'extmem_in_use_bytes'))
  unregister()
  t.false((await client.register.getMetricsAsJSON()).some((m) => m.name === 'extmem_in_use_bytes'))
})

test.serial(
  'pools that share a label add up; a collected pool leaves its counts, and its series end with the last pool of its label',
  async (t) => {
    const register = new client.Registry()
    const { unregister } = collectMetrics({ register })
    const read = async (name) =>
      (await register.getMetricsAsJSON()).find((m) => m.name === name).values.filter((v) => v.labels.pool === 'churn')
    // Whether a Pool object was collected is told by a FinalizationRegistry: asking pools() in the
    // loop would keep it alive (a WeakRef's target stays alive to the end of the job that read it).
    const collected = new Set()
    const registry = new FinalizationRegistry((label) => collected.add(label))
    const keep = new Pool({ label: 'churn', maxBytes: MiB })
    keep.release(keep.allocUnsafe(100))
    ;(() => {
      const gone = new Pool({ label: 'churn', maxBytes: 2 * MiB })
      registry.register(gone, 'churn')
      for (let i = 0; i < 3; i++) gone.release(gone.allocUnsafe(100))
      gone.allocUnsafe(200) // out when the Pool object goes
    })()
    t.deepEqual(
      (await read('extmem_allocations_total')).map((v) => v.value),
      [5],
      'one series: the sum of both pools',
    )
    t.is((await read('extmem_max_bytes'))[0].value, 3 * MiB)
    t.is((await read('extmem_live_buffers'))[0].value, 1)
    t.true(await collectUntil(() => collected.has('churn')), 'one Pool object was collected')
    t.is((await read('extmem_allocations_total'))[0].value, 5, 'the counter did not go down')
    t.is((await read('extmem_releases_total'))[0].value, 4)
    t.is((await read('extmem_max_bytes'))[0].value, MiB, 'the gauges are the pools that are left')
    keep.release(keep.allocUnsafe(100))
    t.is((await read('extmem_allocations_total'))[0].value, 6, 'and it goes on from there')
    const { refused } = keep.stats()
    t.is(refused.cap, 0)
    keep.close()
    unregister()

    // A label whose last pool is gone has no series from the next scrape on.
    const register2 = new client.Registry()
    const second = collectMetrics({ register: register2 })
    ;(() => {
      const lone = new Pool({ label: 'lone' })
      registry.register(lone, 'lone')
      lone.release(lone.allocUnsafe(10))
    })()
    const has = async () =>
      (await register2.getMetricsAsJSON()).every((m) => m.values.some((v) => v.labels.pool === 'lone'))
    t.true(await has())
    t.true(await collectUntil(() => collected.has('lone')))
    const json = await register2.getMetricsAsJSON()
    t.false(
      json.some((m) => m.values.some((v) => v.labels.pool === 'lone')),
      'no series of a label with no pool',
    )
    second.unregister()
  },
)

test('docs/observability.md lists every metric', (t) => {
  const doc = fs.readFileSync(path.join(__dirname, '..', 'docs', 'observability.md'), 'utf8')
  for (const name of [...ALL, 'extmem_size_class_slots']) t.true(doc.includes(`\`${name}\``), name)
})

test.serial('a quarantine pool exports the memory it holds back, as stats() says', async (t) => {
  const register = new client.Registry()
  const q = new Pool({ label: 'prom-quarantine', quarantine: { releases: 1000, ms: 60_000 } })
  q.release(q.allocUnsafe(100))
  q.release(q.allocUnsafe(20_000))
  const { unregister } = collectMetrics({ register })
  const s = q.stats()
  const json = await register.getMetricsAsJSON()
  t.is(s.quarantinedBuffers, 2)
  t.is(valueOf(t, json, 'extmem_quarantined_buffers', { pool: 'prom-quarantine' }), 2)
  t.is(valueOf(t, json, 'extmem_quarantined_bytes', { pool: 'prom-quarantine' }), s.quarantinedBytes)
  t.true(s.quarantinedBytes >= 20_100)
  t.is(valueOf(t, json, 'extmem_misuses_total', { pool: 'prom-quarantine' }), 0)
  unregister()
  q.close()
})
