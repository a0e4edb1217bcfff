'use strict'
// extmem/opentelemetry with the real SDK (a MeterProvider and a MetricReader that collects on
// demand): every instrument is there for every pool, with the value stats() gives at that moment;
// one batch callback reads each pool's stats() once per collection; stop() ends it.

const test = require('ava')
const fs = require('node:fs')
const path = require('node:path')
const { MeterProvider, MetricReader, DataPointType } = require('@opentelemetry/sdk-metrics')
const { Pool, defaultPool, pools, levels } = require('..')
const { observe } = require('../opentelemetry')
const { countStatsCalls } = require('./helpers')

const MiB = 1024 * 1024

/** A reader that collects when asked, as a pull exporter (Prometheus') does. */
class OnDemandReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}

/** A MeterProvider with its own reader, and the way to collect: a Map name -> { descriptor, points }. */
function provider() {
  const reader = new OnDemandReader()
  const meterProvider = new MeterProvider({ readers: [reader] })
  return {
    meter: meterProvider.getMeter('extmem-test'),
    async collect(t) {
      const { resourceMetrics, errors } = await reader.collect()
      t.deepEqual(errors, [], 'the collection reported no error')
      const out = new Map()
      for (const scope of resourceMetrics.scopeMetrics) {
        for (const m of scope.metrics) {
          out.set(m.descriptor.name, {
            descriptor: m.descriptor,
            dataPointType: m.dataPointType,
            isMonotonic: m.isMonotonic,
            points: m.dataPoints.map((p) => [p.attributes, p.value]),
          })
        }
      }
      return out
    },
    shutdown: () => meterProvider.shutdown(),
  }
}

/** Instrument -> [kind, unit, what it reads from stats()]. */
const UP_DOWN = {
  'extmem.memory.used': ['By', (s) => s.inUseBytes],
  'extmem.memory.limit': ['By', (s) => s.maxBytes],
  'extmem.memory.reserved': ['By', (s) => s.reservedBytes],
  'extmem.memory.requested': ['By', (s) => s.requestedBytes],
  'extmem.memory.external': ['By', (s) => s.externalBytes],
  'extmem.memory.cached': ['By', (s) => s.small.cachedBytes + s.large.cachedBytes],
  'extmem.memory.in_transit': ['By', (s) => s.inTransitBytes],
  'extmem.memory.parked': ['By', (s) => s.parkedBytes],
  'extmem.memory.quarantined': ['By', (s) => s.quarantinedBytes],
  'extmem.buffer.count': ['{buffer}', (s) => s.liveBuffers],
  'extmem.buffer.in_transit.count': ['{buffer}', (s) => s.inTransitBuffers],
  'extmem.buffer.parked.count': ['{buffer}', (s) => s.parkedBuffers],
  'extmem.buffer.quarantined.count': ['{buffer}', (s) => s.quarantinedBuffers],
}
const COUNTERS = {
  'extmem.buffer.allocated': ['{buffer}', (s) => s.allocations],
  'extmem.buffer.released': ['{buffer}', (s) => s.releases],
  'extmem.buffer.reclaimed': ['{buffer}', (s) => s.gcReclaims],
  'extmem.buffer.leaked': ['{buffer}', (s) => s.leaks],
  'extmem.buffer.misused': ['{buffer}', (s) => s.misuses],
}
const ALL = [
  ...Object.keys(UP_DOWN),
  ...Object.keys(COUNTERS),
  'extmem.allocation.refused',
  'extmem.memory.utilization',
  'extmem.pool.level',
]

/** The value of the one point of `metric` whose attributes include `attributes`; fails unless exactly one does. */
function valueOf(t, metrics, name, attributes) {
  const points = metrics.get(name)?.points ?? []
  const matching = points.filter(([a]) => Object.entries(attributes).every(([k, v]) => a[k] === v))
  t.is(matching.length, 1, `${name}${JSON.stringify(attributes)}: one point`)
  return matching[0]?.[1]
}

/** Two labelled pools and the default one, with figures that are not zero. */
function figures(t, tag) {
  const a = new Pool({ maxBytes: MiB, admission: 'cap', label: `otel-a${tag}` })
  const b = new Pool({ name: `otel-b${tag}`, maxBytes: MiB })
  const held = [a.allocUnsafe(100), a.allocUnsafe(100), a.allocUnsafe(100_000), defaultPool.allocUnsafe(3000)]
  a.release(held.shift())
  t.throws(() => a.allocUnsafe(2 * MiB), { code: 'ERR_EXTMEM_EXHAUSTED' })
  while (b.level === 'normal') held.push(b.allocUnsafe(8192, { priority: 'essential' }))
  t.throws(() => b.allocUnsafe(16384), { code: 'ERR_EXTMEM_THROTTLED' })
  return {
    a,
    b,
    release() {
      for (const x of held) (a.isPooled(x) ? a : b.isPooled(x) ? b : defaultPool).release(x)
    },
  }
}

test.serial('every instrument has one point per pool, each equal to what stats() says at that moment', async (t) => {
  const { meter, collect, shutdown } = provider()
  const { a, b, release } = figures(t, '')
  const observation = observe(meter, { attributes: { 'service.name': 'api' } })
  const expected = { [a.label]: a.stats(), [b.label]: b.stats(), default: defaultPool.stats() }
  const metrics = await collect(t)
  t.deepEqual([...metrics.keys()].sort(), [...ALL].sort(), 'exactly these instruments')
  t.is(observation.instruments.length, ALL.length)
  const labels = [...new Set(pools().map((p) => p.label))].sort()
  for (const [name, m] of metrics) {
    t.true(m.points.length > 0, `${name} has points`)
    t.deepEqual([...new Set(m.points.map(([attrs]) => attrs['extmem.pool.name']))].sort(), labels, name)
    t.true(
      m.points.every(([attrs]) => attrs['service.name'] === 'api'),
      `${name}: the constant attributes`,
    )
  }
  for (const [name, [unit]] of Object.entries(UP_DOWN)) {
    t.like(metrics.get(name), { descriptor: { unit, type: 'OBSERVABLE_UP_DOWN_COUNTER' }, isMonotonic: false })
  }
  for (const [name, [unit]] of Object.entries(COUNTERS)) {
    t.like(metrics.get(name), { descriptor: { unit, type: 'OBSERVABLE_COUNTER' }, isMonotonic: true })
  }
  t.like(metrics.get('extmem.allocation.refused'), {
    descriptor: { unit: '{allocation}', type: 'OBSERVABLE_COUNTER' },
    isMonotonic: true,
  })
  t.like(metrics.get('extmem.pool.level'), {
    descriptor: { type: 'OBSERVABLE_GAUGE' },
    dataPointType: DataPointType.GAUGE,
  })
  for (const [pool, s] of Object.entries(expected)) {
    const at = { 'extmem.pool.name': pool }
    for (const [name, [, read]] of Object.entries({ ...UP_DOWN, ...COUNTERS })) {
      t.is(valueOf(t, metrics, name, at), read(s), `${name} of ${pool}`)
    }
    t.is(valueOf(t, metrics, 'extmem.memory.utilization', at), s.utilization)
    for (const reason of ['cap', 'throttled', 'shedding', 'os']) {
      t.is(
        valueOf(t, metrics, 'extmem.allocation.refused', { ...at, 'extmem.refusal.reason': reason }),
        s.refused[reason],
      )
    }
    for (const level of levels) {
      t.is(valueOf(t, metrics, 'extmem.pool.level', { ...at, 'extmem.level': level }), level === s.level ? 1 : 0)
    }
  }
  t.like(expected[a.label], { liveBuffers: 2, releases: 1, refused: { cap: 1 } })
  t.like(expected[b.label], { level: 'warning', refused: { throttled: 1 } })
  t.true(Object.values(expected).every((s) => s.inUseBytes > 0 && s.allocations > 0))

  // Figures move, and the next collection follows them.
  const more = a.allocUnsafe(500)
  const s = a.stats()
  const again = await collect(t)
  t.is(valueOf(t, again, 'extmem.buffer.count', { 'extmem.pool.name': a.label }), s.liveBuffers)
  t.is(valueOf(t, again, 'extmem.buffer.allocated', { 'extmem.pool.name': a.label }), s.allocations)
  a.release(more)
  observation.stop()
  release()
  await shutdown()
})

test.serial(
  'a collection reads each pool’s stats() once, whatever the number of instruments and readers',
  async (t) => {
    const first = new OnDemandReader()
    const second = new OnDemandReader()
    const meterProvider = new MeterProvider({ readers: [first, second] })
    const { a, b, release } = figures(t, '-once')
    const { stop } = observe(meterProvider.getMeter('extmem-test'), { sizeClasses: true })
    const calls = countStatsCalls([a, b, defaultPool])
    try {
      await first.collect()
      t.deepEqual(calls.counts(), [1, 1, 1])
      await second.collect()
      t.deepEqual(calls.counts(), [2, 2, 2], 'one more per collection of another reader')
    } finally {
      calls.restore()
      stop()
      release()
      await meterProvider.shutdown()
    }
  },
)

test.serial('sizeClasses: one point per size class and state, as stats().small.classes has them', async (t) => {
  const { meter, collect, shutdown } = provider()
  const pool = new Pool({ maxBytes: MiB, label: 'otel-classes' })
  const held = [pool.allocUnsafe(10), pool.allocUnsafe(100), pool.allocUnsafe(100), pool.allocUnsafe(5000)]
  const { stop } = observe(meter, { sizeClasses: true })
  const s = pool.stats()
  const metrics = await collect(t)
  const slots = metrics.get('extmem.size_class.slots')
  t.like(slots, { descriptor: { unit: '{slot}', type: 'OBSERVABLE_UP_DOWN_COUNTER' } })
  t.is(slots.points.filter(([a]) => a['extmem.pool.name'] === 'otel-classes').length, s.small.classes.length * 3)
  for (const c of s.small.classes) {
    for (const [state, field] of [
      ['in_use', 'inUse'],
      ['free', 'free'],
      ['cached', 'cached'],
    ]) {
      const at = { 'extmem.pool.name': 'otel-classes', 'extmem.size_class.size': c.size, 'extmem.slot.state': state }
      t.is(valueOf(t, metrics, 'extmem.size_class.slots', at), c[field])
    }
  }
  stop()
  for (const b of held) pool.release(b)
  pool.close()
  await shutdown()
})

test.serial('stop() removes the callback: no values are observed from then on', async (t) => {
  const { meter, collect, shutdown } = provider()
  const pool = new Pool({ label: 'otel-stop' })
  const observation = observe(meter)
  const before = await collect(t)
  t.is(valueOf(t, before, 'extmem.buffer.allocated', { 'extmem.pool.name': 'otel-stop' }), 0)
  observation.stop()
  observation.stop()
  pool.release(pool.allocUnsafe(10))
  const after = await collect(t)
  // The SDK keeps a cumulative series at its last value; nothing new reaches it.
  const allocated = after.get('extmem.buffer.allocated')?.points ?? []
  t.false(
    allocated.some(([a, v]) => a['extmem.pool.name'] === 'otel-stop' && v !== 0),
    'the allocation made after stop() is not observed',
  )
  await shutdown()
})

test('the meter and the options are checked', (t) => {
  const { meter } = provider()
  t.throws(() => observe(), {
    code: 'ERR_INVALID_ARG_TYPE',
    message: /"meter" argument must be an OpenTelemetry Meter/,
  })
  t.throws(() => observe({}), { code: 'ERR_INVALID_ARG_TYPE' })
  const bad = [
    [{ attributes: [] }, 'ERR_INVALID_ARG_TYPE', /options\.attributes/],
    [{ attributes: { 'extmem.pool.name': 'x' } }, 'ERR_INVALID_ARG_VALUE', /an attribute of extmem's own points/],
    [{ attributes: { a: {} } }, 'ERR_INVALID_ARG_TYPE', /options\.attributes\.a/],
    [{ sizeClasses: 1 }, 'ERR_INVALID_ARG_TYPE', /options\.sizeClasses/],
    [{ prefix: 'x' }, 'ERR_INVALID_ARG_VALUE', /known: attributes, sizeClasses/],
  ]
  for (const [options, code, message] of bad) t.throws(() => observe(meter, options), { code, message })
})

test('docs/observability.md lists every instrument', (t) => {
  const doc = fs.readFileSync(path.join(__dirname, '..', 'docs', 'observability.md'), 'utf8')
  for (const name of [...ALL, 'extmem.size_class.slots']) t.true(doc.includes(`\`${name}\``), name)
})
