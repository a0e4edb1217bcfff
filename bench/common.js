'use strict'
// Shared pieces of the bench harness: timing, alternating rounds, medians, sizes, rows.
//
// Timing model. A timed segment runs `ops` operations in batches of `perTurn`, with one event-loop
// turn (setImmediate) between batches, and the clock runs across the turns. That is how a server
// allocates (a few Buffers per turn, not millions in one synchronous loop), and it charges each side
// for its deferred work: Node runs the finalizers of external Buffers (extmem's, and the backing
// stores of Node's own) only between turns, never inside a synchronous loop.

const { setImmediate: turn } = require('node:timers/promises')

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB

/** Where results of dropped peer Buffers go, so that no allocation can be optimised away. */
// oxlint-disable-next-line no-unused-vars -- written and never read, on purpose
let sink = null
function keep(value) {
  sink = value
}

/** Median of a list of numbers (the mean of the two middle ones for an even count). */
function median(values) {
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

/** A full GC, twice, with event-loop turns so that queued finalizers run: a clean start for a round. */
async function settle() {
  for (let i = 0; i < 2; i++) {
    globalThis.gc()
    await turn()
  }
  sink = null
}

/**
 * Runs `body(count)` until `ops` operations are done, `perTurn` per event-loop turn; returns the
 * nanoseconds per operation, turns included.
 */
async function timeOps(body, ops, perTurn) {
  const t0 = process.hrtime.bigint()
  for (let done = 0; done < ops; done += perTurn) {
    body(Math.min(perTurn, ops - done))
    await turn()
  }
  return Number(process.hrtime.bigint() - t0) / ops
}

/**
 * Measures each variant (`{ key, run: async () => number }`) once to warm up, then `rounds` times,
 * rotating the order every round (A B, B A, … for two) and settling the GC before each measurement.
 * Returns `{ key: [sample per round] }`.
 */
async function alternate(variants, rounds) {
  for (const v of variants) {
    await settle()
    await v.run()
  }
  const samples = Object.fromEntries(variants.map((v) => [v.key, []]))
  for (let r = 0; r < rounds; r++) {
    const k = r % variants.length
    for (const v of [...variants.slice(k), ...variants.slice(0, k)]) {
      await settle()
      samples[v.key].push(await v.run())
    }
  }
  return samples
}

/** "64 B", "4 KiB", "16 MiB", "256 MiB", "4 GiB". */
function formatSize(bytes) {
  for (const [unit, scale] of [
    ['GiB', GiB],
    ['MiB', MiB],
    ['KiB', KiB],
  ]) {
    if (bytes >= scale && bytes % scale === 0) return `${bytes / scale} ${unit}`
  }
  return `${bytes} B`
}

/**
 * A result row. `kind` says how to read `ratio` (always extmem / peer, or 2 threads / 1 thread):
 *   'time' and 'memory': lower is better for extmem; 'throughput': higher is better for extmem;
 *   'scaling': 2-thread throughput over 1-thread throughput (2.0 is perfect on 2 cores);
 *   'witness': the same extmem cycle in a worker thread over on the main thread (see witness.js).
 */
function row({ workload, name, size, unit, kind, extmem, peer, rounds, detail }) {
  return {
    workload,
    name,
    size,
    sizeLabel: size == null ? '' : formatSize(size),
    unit,
    kind,
    extmemLabel: extmem.label,
    extmemMedian: median(extmem.samples),
    extmemSamples: extmem.samples,
    peerLabel: peer.label,
    peerMedian: median(peer.samples),
    peerSamples: peer.samples,
    ratio: median(extmem.samples) / median(peer.samples),
    rounds,
    available: true,
    ...(detail ? { detail } : {}),
  }
}

/** A row for a workload the library under test does not offer (yet). */
function unavailable({ workload, name, size, unit, extmemLabel, peerLabel, why }) {
  return {
    workload,
    name,
    size,
    sizeLabel: size == null ? '' : formatSize(size),
    unit,
    kind: null,
    extmemLabel,
    extmemMedian: null,
    peerLabel,
    peerMedian: null,
    ratio: null,
    rounds: 0,
    available: false,
    note: why,
  }
}

/**
 * A workload's summary row: no figure of its own, `detail` for its summary tables and the JSON;
 * kept out of the main table.
 */
function summaryRow(workload, name, detail) {
  return {
    workload,
    name,
    size: null,
    sizeLabel: '',
    unit: '',
    kind: null,
    ratio: null,
    available: true,
    hideInTable: true,
    detail,
  }
}

/** A row for a workload that threw: the run goes on and fails at the end (see index.js). */
function failed({ workload, name, size = null, unit = '', error }) {
  return {
    workload,
    name,
    size,
    sizeLabel: size == null ? '' : formatSize(size),
    unit,
    kind: null,
    extmemMedian: null,
    peerLabel: '',
    peerMedian: null,
    ratio: null,
    rounds: 0,
    available: false,
    failed: true,
    note: error.message,
    error: error.stack ?? String(error),
  }
}

/**
 * Fails the run if a pool still lends Buffers or reclaimed any through the GC: a harness bug.
 * The fast path's arenas are loans of the pool that stay out while it is in use; what must be
 * zero there is the fast Buffers.
 */
function assertClean(pool, where) {
  const s = pool.stats()
  const fast = s.fast ?? { arenas: 0, liveBuffers: 0 }
  if (s.liveBuffers !== fast.arenas || fast.liveBuffers !== 0 || s.gcReclaims !== 0) {
    throw new Error(
      `${where}: the pool should be clean, has liveBuffers=${s.liveBuffers} (fast arenas ${fast.arenas}, fast Buffers ${fast.liveBuffers}) gcReclaims=${s.gcReclaims}`,
    )
  }
}

/** A number with about three significant digits ('-' for none). */
function num(v) {
  if (v == null || !Number.isFinite(v)) return '-'
  if (v === 0) return '0'
  const a = Math.abs(v)
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toFixed(3)
}

/** Columns padded: the first `left` columns to the left, the others to the right. */
function grid(head, body, left = 1) {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((cells) => cells[i].length)))
  const line = (cells) =>
    cells
      .map((c, i) => (i < left ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd()
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n')
}

module.exports = {
  num,
  grid,
  KiB,
  MiB,
  GiB,
  keep,
  median,
  settle,
  timeOps,
  alternate,
  formatSize,
  row,
  summaryRow,
  unavailable,
  failed,
  assertClean,
  turn,
}
