'use strict'
// What the metric exporters (./prometheus.js, ./opentelemetry.js) publish: one reading of this
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

/** The counts that only grow, as the reading names them (refused by reason apart). */
const COUNTS = ['allocations', 'releases', 'gcReclaims', 'leaks', 'misuses']
/** The reasons of stats().refused, in its order. */
const REFUSAL_REASONS = ['cap', 'throttled', 'shedding', 'os']
/** The figures that go up and down, summed over a group's pools. */
const FIGURES = [
  'maxBytes',
  'reservedBytes',
  'inUseBytes',
  'requestedBytes',
  'externalBytes',
  'cachedBytes',
  'liveBuffers',
  'inTransitBuffers',
  'inTransitBytes',
  'parkedBuffers',
  'parkedBytes',
  'quarantinedBuffers',
  'quarantinedBytes',
]

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
   * gcReclaims, leaks, refused: { cap, throttled, shedding, os } }, classes, ...FIGURES }`, with
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
        for (const f of FIGURES) r[f] = 0
        readings.set(pool.label, r)
        members.set(pool.label, new Map())
      }
      r.maxBytes += s.maxBytes
      r.reservedBytes += s.reservedBytes
      r.inUseBytes += s.inUseBytes
      r.requestedBytes += s.requestedBytes
      r.externalBytes += s.externalBytes
      r.cachedBytes += s.small.cachedBytes + s.large.cachedBytes
      r.liveBuffers += s.liveBuffers
      r.inTransitBuffers += s.inTransitBuffers
      r.inTransitBytes += s.inTransitBytes
      r.parkedBuffers += s.parkedBuffers
      r.parkedBytes += s.parkedBytes
      r.quarantinedBuffers += s.quarantinedBuffers
      r.quarantinedBytes += s.quarantinedBytes
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

module.exports = { PoolReader, REFUSAL_REASONS }
