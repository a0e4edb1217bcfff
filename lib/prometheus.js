'use strict'
// Prometheus metrics of this thread's pools, with prom-client (an optional peer dependency):
// `require('extmem/prometheus').collectMetrics({ register, prefix, labels, sizeClasses })`.
//
// Invariants:
// - A scrape reads each pool's stats() once. prom-client asks each metric for its values in turn
//   (its collect()), with no hook around a whole scrape; but it asks all of them in one synchronous
//   run (Registry#metrics() and #getMetricsAsJSON() call every metric's get() before awaiting
//   any). So the first collect() of a scrape takes a reading of all pools (./readings.js) and the
//   others of the same run use it; a microtask drops it, so the next scrape reads again.
// - Every series has a `pool` label (the pool's label) and the constant `labels`; one series per
//   label and per level, reason, size class and state. A pool that is gone (its Pool object
//   collected) has no series from the next scrape on.
// - What only grows is a Counter, set to the pool's own count at each scrape (never incremented
//   here): its value is stats()' at that moment.

const client = require('prom-client')
const errors = require('./errors')
const { validateOptions } = require('./validate')
const { PoolReader, METRICS, REFUSAL_REASONS } = require('./readings')
const { LEVELS } = require('./native')
const { defaultPool } = require('./index')

const OPTIONS = ['register', 'prefix', 'labels', 'sizeClasses']
/** Prometheus' metric names and label names. */
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
/** Label names the series use themselves. */
const OWN_LABELS = ['pool', 'level', 'reason', 'size', 'state']

/** The state of a size class's slots: the metric's `state` label -> the field of stats().small.classes. */
const SLOT_STATES = { in_use: 'inUse', free: 'free', cached: 'cached' }

/**
 * Registers metrics of every live pool of this thread (see pools()) with a prom-client Registry;
 * returns `{ metrics, unregister() }`.
 */
function collectMetrics(options) {
  const opts = validateOptions(options, 'options', OPTIONS, collectMetrics)
  const register = opts.register ?? client.register
  if (
    register === null ||
    typeof register !== 'object' ||
    typeof register.registerMetric !== 'function' ||
    typeof register.getSingleMetric !== 'function' ||
    typeof register.removeSingleMetric !== 'function'
  )
    throw errors.invalidArgType('options.register', 'a prom-client Registry', register, collectMetrics)
  const prefix = opts.prefix ?? 'extmem_'
  if (typeof prefix !== 'string')
    throw errors.invalidArgType('options.prefix', 'of type string', prefix, collectMetrics)
  if (prefix !== '' && !METRIC_NAME.test(prefix))
    throw errors.invalidArgValue('options.prefix', prefix, 'must start a Prometheus metric name', collectMetrics)
  const constants = constantLabels(opts.labels)
  const extra = Object.keys(constants)
  const sizeClasses = opts.sizeClasses ?? false
  if (typeof sizeClasses !== 'boolean')
    throw errors.invalidArgType('options.sizeClasses', 'of type boolean', sizeClasses, collectMetrics)

  // One reading per scrape (see the top of this file).
  const reader = new PoolReader(defaultPool)
  let reading = null
  function current() {
    if (reading === null) {
      reading = reader.read(sizeClasses)
      queueMicrotask(() => {
        reading = null
      })
    }
    return reading
  }
  const labelsOf = (r, more) => ({ pool: r.label, ...constants, ...more })

  const metrics = []
  function add(Type, name, help, labelNames, fill) {
    metrics.push({
      name: prefix + name,
      metric: new Type({
        name: prefix + name,
        help,
        labelNames: ['pool', ...extra, ...labelNames],
        registers: [],
        collect() {
          this.reset()
          for (const r of current()) fill(this, r)
        },
      }),
    })
  }
  for (const { field, count, help, prometheus } of METRICS) {
    if (count) add(client.Counter, prometheus, help, [], (c, r) => c.inc(labelsOf(r), r.counts[field]))
    else add(client.Gauge, prometheus, help, [], (g, r) => g.set(labelsOf(r), r[field]))
  }
  add(client.Gauge, 'utilization_ratio', 'in_use_bytes / max_bytes (stats().utilization)', [], (g, r) =>
    g.set(labelsOf(r), r.utilization),
  )
  add(
    client.Gauge,
    'level',
    `Watermark level, one series per level: 1 for the pool's level now, 0 for the others (${LEVELS.join(', ')})`,
    ['level'],
    (g, r) => {
      for (const level of LEVELS) g.set(labelsOf(r, { level }), level === r.level ? 1 : 0)
    },
  )
  add(
    client.Counter,
    'refused_total',
    `Refused allocations by reason: the hard cap, graded admission at warning/critical (throttled), at shedding, the OS (stats().refused)`,
    ['reason'],
    (c, r) => {
      for (const reason of REFUSAL_REASONS) c.inc(labelsOf(r, { reason }), r.counts.refused[reason])
    },
  )
  if (sizeClasses) {
    add(
      client.Gauge,
      'size_class_slots',
      'Slots of each slab size class (size: slot bytes), by state: lent (in_use), free in chunks held from the OS, held by thread caches (stats().small.classes)',
      ['size', 'state'],
      (g, r) => {
        for (const c of r.classes) {
          for (const [state, field] of Object.entries(SLOT_STATES))
            g.set(labelsOf(r, { size: String(c.size), state }), c[field])
        }
      },
    )
  }

  for (const { name } of metrics) {
    if (register.getSingleMetric(name) !== undefined)
      throw errors.invalidState(
        `the registry already has a metric named ${name} (unregister() what an earlier collectMetrics() returned, or give another prefix)`,
        collectMetrics,
      )
  }
  for (const { metric } of metrics) register.registerMetric(metric)

  /** Removes the metrics from the registry (those still registered there); calling it again does nothing. */
  function unregister() {
    for (const { name, metric } of metrics) {
      // By the name they were registered under (an OpenMetrics scrape renames a counter object).
      if (register.getSingleMetric(name) === metric) register.removeSingleMetric(name)
    }
  }
  return {
    metrics: Object.freeze(metrics.map(({ metric }) => metric)),
    unregister,
    [Symbol.dispose]: unregister,
  }
}

/** The `labels` option, checked: label names to string values. */
function constantLabels(labels) {
  if (labels === undefined) return {}
  if (labels === null || typeof labels !== 'object' || Array.isArray(labels))
    throw errors.invalidArgType('options.labels', 'of type object', labels, collectMetrics)
  const out = {}
  for (const [name, value] of Object.entries(labels)) {
    if (!LABEL_NAME.test(name) || name.startsWith('__'))
      throw errors.invalidArgValue(`options.labels.${name}`, value, 'is not a Prometheus label name', collectMetrics)
    if (OWN_LABELS.includes(name))
      throw errors.invalidArgValue(
        `options.labels.${name}`,
        value,
        `is a label of extmem's own series (${OWN_LABELS.join(', ')})`,
        collectMetrics,
      )
    if (typeof value !== 'string')
      throw errors.invalidArgType(`options.labels.${name}`, 'of type string', value, collectMetrics)
    out[name] = value
  }
  return out
}

module.exports = { collectMetrics }
