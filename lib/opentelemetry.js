'use strict'
// OpenTelemetry metrics of this thread's pools: `require('extmem/opentelemetry').observe(meter[,
// { attributes, sizeClasses }])` makes observable instruments on a Meter of @opentelemetry/api
// (an optional peer dependency), named after the semantic conventions of the JVM's buffer pools
// (jvm.buffer.memory.used, jvm.buffer.memory.limit, jvm.buffer.count, attribute
// jvm.buffer.pool.name): extmem.memory.used, extmem.memory.limit, extmem.buffer.count, … with the
// attribute extmem.pool.name.
//
// Invariants:
// - One batch observable callback observes every instrument: a collection reads each pool's
//   stats() once (./readings.js), whatever number of instruments and readers.
// - Each data point carries `extmem.pool.name` (the pool's label) and the constant `attributes`;
//   one point per label and per level, reason, size class and state.
// - What only grows is an ObservableCounter whose value is the pool's own count at that moment
//   (cumulative, as the SDK expects); what goes up and down an ObservableUpDownCounter (sums of
//   the pools of a label, as JVM's buffer pools are); ratios and levels ObservableGauges.

const { ValueType } = require('@opentelemetry/api')
const errors = require('./errors')
const { validateOptions } = require('./validate')
const { PoolReader, METRICS, REFUSAL_REASONS } = require('./readings')
const { LEVELS } = require('./native')
const { defaultPool } = require('./index')

const OPTIONS = ['attributes', 'sizeClasses']
/** Attribute names the points use themselves. */
const POOL_NAME = 'extmem.pool.name'
const LEVEL = 'extmem.level'
const REASON = 'extmem.refusal.reason'
const SLOT_SIZE = 'extmem.size_class.size'
const SLOT_STATE = 'extmem.slot.state'
const OWN_ATTRIBUTES = [POOL_NAME, LEVEL, REASON, SLOT_SIZE, SLOT_STATE]

/** The unit of each kind of figure of ./readings.js's METRICS, as OpenTelemetry writes it. */
const UNITS = { bytes: 'By', buffers: '{buffer}' }

/** The state of a size class's slots: the `extmem.slot.state` attribute -> the field of stats().small.classes. */
const SLOT_STATES = { in_use: 'inUse', free: 'free', cached: 'cached' }

/**
 * Observes every live pool of this thread (see pools()) through observable instruments of
 * `meter`; returns `{ instruments, stop() }`.
 */
function observe(meter, options) {
  if (
    meter === null ||
    typeof meter !== 'object' ||
    typeof meter.createObservableUpDownCounter !== 'function' ||
    typeof meter.addBatchObservableCallback !== 'function' ||
    typeof meter.removeBatchObservableCallback !== 'function'
  )
    throw errors.invalidArgType('meter', 'an OpenTelemetry Meter (@opentelemetry/api >= 1.3)', meter, observe)
  const opts = validateOptions(options, 'options', OPTIONS, observe)
  const constants = constantAttributes(opts.attributes)
  const sizeClasses = opts.sizeClasses ?? false
  if (typeof sizeClasses !== 'boolean')
    throw errors.invalidArgType('options.sizeClasses', 'of type boolean', sizeClasses, observe)

  const int = (unit, description) => ({ unit, description, valueType: ValueType.INT })
  const upDown = METRICS.filter((m) => !m.count).map((m) => [
    meter.createObservableUpDownCounter(m.opentelemetry, int(UNITS[m.unit], m.help)),
    m.field,
  ])
  const counters = METRICS.filter((m) => m.count).map((m) => [
    meter.createObservableCounter(m.opentelemetry, int(UNITS[m.unit], m.help)),
    m.field,
  ])
  const refused = meter.createObservableCounter(
    'extmem.allocation.refused',
    int(
      '{allocation}',
      'Refused allocations by reason (extmem.refusal.reason): the hard cap, graded admission at warning/critical (throttled), at shedding, the OS (stats().refused)',
    ),
  )
  const utilization = meter.createObservableGauge('extmem.memory.utilization', {
    unit: '1',
    description: 'extmem.memory.used / extmem.memory.limit (stats().utilization)',
    valueType: ValueType.DOUBLE,
  })
  const level = meter.createObservableGauge(
    'extmem.pool.level',
    int(
      '1',
      `Watermark level, one point per level (extmem.level): 1 for the pool's level now, 0 for the others (${LEVELS.join(', ')})`,
    ),
  )
  const slots = sizeClasses
    ? meter.createObservableUpDownCounter(
        'extmem.size_class.slots',
        int(
          '{slot}',
          'Slots of each slab size class (extmem.size_class.size: slot bytes), by state (extmem.slot.state): lent (in_use), free in chunks held from the OS, held by thread caches (stats().small.classes)',
        ),
      )
    : null

  const reader = new PoolReader(defaultPool)
  function observePools(result) {
    for (const r of reader.read(sizeClasses)) {
      const attributes = { ...constants, [POOL_NAME]: r.label }
      for (const [instrument, figure] of upDown) result.observe(instrument, r[figure], attributes)
      for (const [instrument, count] of counters) result.observe(instrument, r.counts[count], attributes)
      for (const reason of REFUSAL_REASONS)
        result.observe(refused, r.counts.refused[reason], { ...attributes, [REASON]: reason })
      result.observe(utilization, r.utilization, attributes)
      for (const l of LEVELS) result.observe(level, l === r.level ? 1 : 0, { ...attributes, [LEVEL]: l })
      if (slots !== null) {
        for (const c of r.classes) {
          for (const [state, field] of Object.entries(SLOT_STATES))
            result.observe(slots, c[field], { ...attributes, [SLOT_SIZE]: c.size, [SLOT_STATE]: state })
        }
      }
    }
  }
  const instruments = [
    ...upDown.map(([i]) => i),
    ...counters.map(([i]) => i),
    refused,
    utilization,
    level,
    ...(slots === null ? [] : [slots]),
  ]
  meter.addBatchObservableCallback(observePools, instruments)

  let observing = true
  /** Stops observing: the instruments report nothing from the next collection on. Calling it again does nothing. */
  function stop() {
    if (!observing) return
    observing = false
    meter.removeBatchObservableCallback(observePools, instruments)
  }
  return { instruments: Object.freeze(instruments), stop, [Symbol.dispose]: stop }
}

/** The `attributes` option, checked: attribute names to values (strings, numbers, booleans). */
function constantAttributes(attributes) {
  if (attributes === undefined) return {}
  if (attributes === null || typeof attributes !== 'object' || Array.isArray(attributes))
    throw errors.invalidArgType('options.attributes', 'of type object', attributes, observe)
  const out = {}
  for (const [name, value] of Object.entries(attributes)) {
    if (OWN_ATTRIBUTES.includes(name))
      throw errors.invalidArgValue(
        `options.attributes.${name}`,
        value,
        `is an attribute of extmem's own points (${OWN_ATTRIBUTES.join(', ')})`,
        observe,
      )
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')
      throw errors.invalidArgType(`options.attributes.${name}`, 'a string, number or boolean', value, observe)
    out[name] = value
  }
  return out
}

module.exports = { observe }
