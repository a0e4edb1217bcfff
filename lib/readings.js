'use strict'
// What the metric exporters (./prometheus.js, ./opentelemetry.js) publish: the catalogue of the
// figures (METRICS, each described once, with its name in each exporter), and one reading of this
// thread's pools (pools()), each pool's stats() read once, grouped by label.
//
// Invariants of a reading:
// - One group per label, in the order of the oldest Pool object of each label.
// - Each pool is read once. A pool that several Pool objects of this thread stand for (defaultPool,
//   a named pool) counts once, in the group of the oldest of them.
// - Different pools that share a label add up: figures and size classes are summed, the level is
//   the highest of theirs, utilization is the group's inUseBytes over its maxBytes.
// - A group's counters never go down while the group has a pool. A private pool that leaves the
//   group (its Pool object was collected) leaves its last counts in the group's total; a shared
//   pool that leaves does too, and takes them back if it returns (its own counts then go on from
//   where they were). A label with no pool left is forgotten: its series end, and start from its
//   pools' counts if it comes back.
//
// A PoolReader keeps what it needs for the last invariant between readings (the counts of each
// group's pools at the last reading): per label, one entry per pool that was read then, one sum for
// the private pools that left, one entry per shared pool that left. No Pool object is held.

const { pools } = require('./registry')
const { LEVELS } = require('./native')

/**
 * The figures the exporters publish, each described once: the reading's field, whether it is a
 * count that only grows (`reading.counts[field]`) or a figure that goes up and down (`reading[field]`,
 * summed over a group's pools), its unit, what it means, and its name in each exporter (after the
 * prefix in ./prometheus.js). Adding a metric that stats() has is one entry here.
 */
const METRICS = [
  metric(
    'maxBytes',
    'bytes',
    'Hard cap on the memory the pool holds from the OS (stats().maxBytes)',
    'max_bytes',
    'extmem.memory.limit',
  ),
  metric(
    'reservedBytes',
    'bytes',
    'Memory held from the OS: slab chunks, live and cached mappings (stats().reservedBytes)',
    'reserved_bytes',
    'extmem.memory.reserved',
  ),
  metric(
    'inUseBytes',
    'bytes',
    'Memory lent out, by slot or mapping capacity (stats().inUseBytes)',
    'in_use_bytes',
    'extmem.memory.used',
  ),
  metric(
    'requestedBytes',
    'bytes',
    'Memory lent out, as asked (stats().requestedBytes)',
    'requested_bytes',
    'extmem.memory.requested',
  ),
  metric(
    'externalBytes',
    'bytes',
    "Memory V8 counts as external for the pool's ArrayBuffers (stats().externalBytes)",
    'external_bytes',
    'extmem.memory.external',
  ),
  metric(
    'cachedBytes',
    'bytes',
    "Memory threads' caches and the mapping cache hold for the next Buffers: reserved, not in use (stats().small.cachedBytes + stats().large.cachedBytes)",
    'cached_bytes',
    'extmem.memory.cached',
    (s) => s.small.cachedBytes + s.large.cachedBytes,
  ),
  metric('liveBuffers', 'buffers', 'Buffers out now (stats().liveBuffers)', 'live_buffers', 'extmem.buffer.count'),
  metric(
    'inTransitBuffers',
    'buffers',
    'Buffers handed off by share() and not adopted or reclaimed yet (stats().inTransitBuffers)',
    'in_transit_buffers',
    'extmem.buffer.in_transit.count',
  ),
  metric(
    'inTransitBytes',
    'bytes',
    'Bytes of the Buffers handed off by share() and not adopted or reclaimed yet, as asked (stats().inTransitBytes)',
    'in_transit_bytes',
    'extmem.memory.in_transit',
  ),
  metric(
    'parkedBuffers',
    'buffers',
    'Buffers whose memory left with an ended thread, kept for good (stats().parkedBuffers)',
    'parked_buffers',
    'extmem.buffer.parked.count',
  ),
  metric(
    'parkedBytes',
    'bytes',
    'Capacity of the Buffers whose memory left with an ended thread, kept for good (stats().parkedBytes)',
    'parked_bytes',
    'extmem.memory.parked',
  ),
  metric(
    'quarantinedBuffers',
    'buffers',
    'Released memory a quarantine holds back (stats().quarantinedBuffers)',
    'quarantined_buffers',
    'extmem.buffer.quarantined.count',
  ),
  metric(
    'quarantinedBytes',
    'bytes',
    'Bytes of released memory a quarantine holds back (stats().quarantinedBytes)',
    'quarantined_bytes',
    'extmem.memory.quarantined',
  ),
  count('allocations', 'Successful allocations (stats().allocations)', 'allocations_total', 'extmem.buffer.allocated'),
  count(
    'releases',
    'Loans ended by an explicit last release (stats().releases)',
    'releases_total',
    'extmem.buffer.released',
  ),
  count(
    'gcReclaims',
    'Loans ended by the GC: Buffers dropped without release (stats().gcReclaims)',
    'gc_reclaims_total',
    'extmem.buffer.reclaimed',
  ),
  count('leaks', 'Tracked Buffers collected without release (stats().leaks)', 'leaks_total', 'extmem.buffer.leaked'),
  count(
    'misuses',
    'Writes a quarantine found in released memory (stats().misuses)',
    'misuses_total',
    'extmem.buffer.misused',
  ),
]

/** A figure that goes up and down; `of(stats)` reads it from one pool's stats() (by default its field). */
function metric(field, unit, help, prometheus, opentelemetry, of = (s) => s[field]) {
  return Object.freeze({ field, count: false, unit, help, prometheus, opentelemetry, of })
}

/** A count of Buffers that only grows. */
function count(field, help, prometheus, opentelemetry) {
  return Object.freeze({ field, count: true, unit: 'buffers', help, prometheus, opentelemetry, of: (s) => s[field] })
}

/** The counts that only grow, as the reading names them (refused by reason apart). */
const COUNTS = METRICS.filter((m) => m.count).map((m) => m.field)
/** The reasons of stats().refused, in its order. */
const REFUSAL_REASONS = ['cap', 'throttled', 'shedding', 'os']
/** The figures that go up and down, summed over a group's pools. */
const FIGURES = METRICS.filter((m) => !m.count)

/** A pool's stats() with every count at 0. */
const ZERO = { ...Object.fromEntries(COUNTS.map((c) => [c, 0])), refused: { cap: 0, throttled: 0, shedding: 0, os: 0 } }

/** Counts of one pool (or a sum of them): COUNTS, then refused by reason. */
function countsOf(stats) {
  const out = new Float64Array(COUNTS.length + REFUSAL_REASONS.length)
  for (let i = 0; i < COUNTS.length; i++) out[i] = stats[COUNTS[i]]
  for (let i = 0; i < REFUSAL_REASONS.length; i++) out[COUNTS.length + i] = stats.refused[REFUSAL_REASONS[i]]
  return out
}

function addCounts(into, counts) {
  for (let i = 0; i < into.length; i++) into[i] += counts[i]
}

class PoolReader {
  /** The default pool's Pool objects are recognised by it. */
  #defaultPool
  /** Private Pool object -> its number, the key of its counts (a WeakMap: nothing is held). */
  #ids = new WeakMap()
  #nextId = 1
  /** label -> { members: Map<key, counts>, leftPrivate: counts, leftShared: Map<key, counts> } */
  #groups = new Map()

  constructor(defaultPool) {
    this.#defaultPool = defaultPool
  }

  /** The key of a pool's counts: 'default' and 'named:<name>' for shared pools, 'private:<n>' for the others. */
  #keyOf(pool) {
    if (pool === this.#defaultPool) return 'default'
    if (pool.name !== null) return `named:${pool.name}`
    let id = this.#ids.get(pool)
    if (id === undefined) this.#ids.set(pool, (id = this.#nextId++))
    return `private:${id}`
  }

  /**
   * One reading: per label, `{ label, level, utilization, counts: { allocations, releases,
   * gcReclaims, leaks, misuses, refused: { cap, throttled, shedding, os } }, classes, ...FIGURES }`, with
   * `classes` (`[{ size, inUse, free, cached }]`, summed per size class) only if `sizeClasses`.
   */
  read(sizeClasses = false) {
    const readings = new Map()
    const members = new Map()
    const seen = new Set()
    for (const pool of pools()) {
      const key = this.#keyOf(pool)
      if (seen.has(key)) continue
      seen.add(key)
      const s = pool.stats()
      let r = readings.get(pool.label)
      if (r === undefined) {
        r = { label: pool.label, level: 0, classes: sizeClasses ? [] : null }
        for (const f of FIGURES) r[f.field] = 0
        readings.set(pool.label, r)
        members.set(pool.label, new Map())
      }
      for (const f of FIGURES) r[f.field] += f.of(s)
      const level = LEVELS.indexOf(s.level)
      if (level > r.level) r.level = level
      if (sizeClasses) {
        s.small.classes.forEach((c, i) => {
          const sum = (r.classes[i] ??= { size: c.size, inUse: 0, free: 0, cached: 0 })
          sum.inUse += c.inUse
          sum.free += c.free
          sum.cached += c.cached
        })
      }
      members.get(pool.label).set(key, countsOf(s))
    }
    const groups = new Map()
    const out = []
    for (const [label, r] of readings) {
      const now = members.get(label)
      const before = this.#groups.get(label)
      const group = { members: now, leftPrivate: before?.leftPrivate ?? countsOf(ZERO), leftShared: new Map() }
      if (before !== undefined) {
        // A shared pool read now (in this group or, under another Pool object's label, in another)
        // is no longer one that left.
        for (const [key, counts] of before.leftShared) if (!seen.has(key)) group.leftShared.set(key, counts)
        for (const [key, counts] of before.members) {
          if (now.has(key)) continue
          if (key.startsWith('private:')) addCounts(group.leftPrivate, counts)
          else if (!seen.has(key)) group.leftShared.set(key, counts)
        }
      }
      groups.set(label, group)
      const total = Float64Array.from(group.leftPrivate)
      for (const counts of group.leftShared.values()) addCounts(total, counts)
      for (const counts of now.values()) addCounts(total, counts)
      const counts = { refused: {} }
      COUNTS.forEach((name, i) => (counts[name] = total[i]))
      REFUSAL_REASONS.forEach((reason, i) => (counts.refused[reason] = total[COUNTS.length + i]))
      out.push({
        ...r,
        level: LEVELS[r.level],
        utilization: r.maxBytes === 0 ? 0 : r.inUseBytes / r.maxBytes,
        counts,
      })
    }
    this.#groups = groups
    return out
  }
}

module.exports = { PoolReader, METRICS, REFUSAL_REASONS }
