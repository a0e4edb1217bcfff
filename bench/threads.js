'use strict'
// Threads: the small cycle (4 KiB: allocUnsafe + writes + release, and the fast path's
// allocFast + releaseFast) and the large one (64 KiB and 1 MiB: allocUnsafe + writes + release,
// a sixteenth and a 128th of the operations) on the shared defaultPool from
// two worker threads at once, against one worker thread doing the same total work. The ratio is
// 2-thread throughput / 1-thread throughput: 2.0 would be perfect scaling on 2 cores; contention on
// the shared pool (its lock, its cache lines) pulls it down. A reference row runs the same on Node's
// own Buffer.allocUnsafeSlow, which shows how well this machine scales at all (it has 2 cores, and
// other work may be running on them), at each size; and the floor (see small.js: a Buffer view over
// pool memory, the writes and transfer(), over one ArrayBuffer of each worker's own) shows how well
// the safe cycle's unavoidable part scales. The targets compare extmem's 2-vs-1 with the floor's at
// 4 KiB and with Node's at 64 KiB and 1 MiB, in the same run (see `summary`).
//
// Each kind gets a pair of workers. For each run they warm up, report ready, wait on a shared flag
// so that they start together, and report their own start and end times (one monotonic clock for
// the whole process). Throughput = total ops / (last end - first start).

const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads')
const { once } = require('node:events')
const { KiB, timeOps, alternate, row, failed, turn, grid } = require('./common')

const SIZE = 4 * KiB

/** Worker thread: runs the cycle that each message asks for. */
function workerMain() {
  const { defaultPool, Pool } = require('..')
  const { extmemCycle, nodeCycle, floorCycle, HAS_TRANSFER } = require('./small')
  // The floor's memory: one Buffer of a pool of its own, whose ArrayBuffer the cycle transfers on
  // and on (its loan ends through the GC when the worker ends).
  const floorPool = HAS_TRANSFER ? new Pool({ leakDetection: 'off' }) : null
  const bodies = {
    extmem: extmemCycle(
      (n) => defaultPool.allocUnsafe(n),
      (buf) => defaultPool.release(buf),
      SIZE,
    ),
    fast: extmemCycle(
      (n) => defaultPool.allocFast(n),
      (buf) => defaultPool.releaseFast(buf),
      SIZE,
    ),
    node: nodeCycle((n) => Buffer.allocUnsafeSlow(n), SIZE),
    ...(floorPool && { floor: floorCycle({ ab: floorPool.allocUnsafe(SIZE).buffer }, SIZE) }),
    node64: nodeCycle((n) => Buffer.allocUnsafeSlow(n), 64 * KiB),
    node1m: nodeCycle((n) => Buffer.allocUnsafeSlow(n), 1024 * KiB),
    large64: extmemCycle(
      (n) => defaultPool.allocUnsafe(n),
      (buf) => defaultPool.release(buf),
      64 * KiB,
    ),
    large1m: extmemCycle(
      (n) => defaultPool.allocUnsafe(n),
      (buf) => defaultPool.release(buf),
      1024 * KiB,
    ),
  }
  parentPort.on('message', async ({ kind, ops, perTurn, flag }) => {
    const body = bodies[kind]
    try {
      body(perTurn) // warm-up
      globalThis.gc()
      await turn()
      parentPort.postMessage({ ready: true })
      Atomics.wait(flag, 0, 0)
      const start = process.hrtime.bigint()
      await timeOps(body, ops, perTurn)
      parentPort.postMessage({ start, end: process.hrtime.bigint() })
    } catch (err) {
      parentPort.postMessage({ error: `${err.code ?? err.name}: ${err.message}` })
    }
  })
}

/** The workers' messages (`once` results), or the error that one of them reported. */
function checked(received) {
  const messages = received.map(([msg]) => msg)
  const failed = messages.find((msg) => msg.error)
  if (failed) throw new Error(`in a worker thread: ${failed.error}`)
  return messages
}

/** Main thread: `workers` run `opsEach` ops of `kind` together; returns the throughput in Mops/s. */
async function runTogether(workers, kind, opsEach, perTurn) {
  const flag = new Int32Array(new SharedArrayBuffer(4))
  const go = () => {
    Atomics.store(flag, 0, 1)
    Atomics.notify(flag, 0)
  }
  const ready = workers.map((w) => once(w, 'message'))
  for (const w of workers) w.postMessage({ kind, ops: opsEach, perTurn, flag })
  let done = null
  try {
    checked(await Promise.all(ready))
    done = workers.map((w) => once(w, 'message'))
  } finally {
    go() // also on failure, so that no worker is left waiting
  }
  const times = checked(await Promise.all(done))
  const start = times.reduce((min, t) => (t.start < min ? t.start : min), times[0].start)
  const end = times.reduce((max, t) => (t.end > max ? t.end : max), times[0].end)
  return (opsEach * workers.length) / (Number(end - start) / 1e3) // ops per µs = Mops/s
}

/** Each kind's row; `share` of the workload's ops it runs (large cycles are slower). */
const KINDS = {
  extmem: { name: '2 threads vs 1', label: 'defaultPool allocUnsafe+release', size: SIZE, share: 1 },
  fast: { name: '2 threads vs 1 (fast path)', label: 'defaultPool allocFast+releaseFast', size: SIZE, share: 1 },
  node: { name: '2 threads vs 1 (node ref)', label: 'Buffer.allocUnsafeSlow', size: SIZE, share: 1 },
  floor: { name: '2 threads vs 1 (floor)', label: 'view + transfer()', size: SIZE, share: 1, needsTransfer: true },
  large64: {
    name: '2 threads vs 1 (large path)',
    label: 'defaultPool allocUnsafe+release',
    size: 64 * KiB,
    share: 1 / 16,
  },
  large1m: {
    name: '2 threads vs 1 (large path)',
    label: 'defaultPool allocUnsafe+release',
    size: 1024 * KiB,
    share: 1 / 128,
  },
  node64: { name: '2 threads vs 1 (node ref)', label: 'Buffer.allocUnsafeSlow', size: 64 * KiB, share: 1 / 16 },
  node1m: { name: '2 threads vs 1 (node ref)', label: 'Buffer.allocUnsafeSlow', size: 1024 * KiB, share: 1 / 128 },
}

/** The targets: extmem's 2-vs-1 over its reference's, in the same run. */
const TARGETS = [
  { extmem: 'extmem', ref: 'floor', text: '2 threads vs 1, safe path 4 KiB: extmem / floor', bound: 0.9 },
  { extmem: 'large64', ref: 'node64', text: "2 threads vs 1, 64 KiB: extmem / Node's allocUnsafeSlow", bound: 0.9 },
  { extmem: 'large1m', ref: 'node1m', text: "2 threads vs 1, 1 MiB: extmem / Node's allocUnsafeSlow", bound: 0.9 },
]

/** One row: `kind` on 2 threads against 1, on a fresh pair of workers (a failure leaves none behind). */
async function measureKind(kind, cfg) {
  const { name, label, size, share } = KINDS[kind]
  const ops = Math.max(1, Math.round(cfg.ops * share))
  const perTurn = Math.max(1, Math.round(cfg.perTurn * share))
  const workers = [0, 1].map(() => new Worker(__filename, { workerData: { benchWorker: true } }))
  try {
    const samples = await alternate(
      [
        { key: 'two', run: () => runTogether(workers, kind, ops, perTurn) },
        { key: 'one', run: () => runTogether(workers.slice(0, 1), kind, ops * 2, perTurn) },
      ],
      cfg.rounds,
    )
    return row({
      workload: 'threads',
      name,
      size,
      unit: 'Mops/s',
      kind: 'scaling',
      extmem: { label: `${label}, 2 threads`, samples: samples.two },
      peer: { label: `${label}, 1 thread`, samples: samples.one },
      rounds: cfg.rounds,
      detail: { opsTotal: ops * 2 },
    })
  } finally {
    await Promise.all(workers.map((w) => w.terminate()))
  }
}

async function runThreads(cfg, log) {
  const rows = []
  const { HAS_TRANSFER } = require('./small')
  for (const kind of Object.keys(KINDS)) {
    if (KINDS[kind].needsTransfer && !HAS_TRANSFER) continue
    log(`threads: ${kind}`)
    try {
      rows.push({ ...(await measureKind(kind, cfg)), threadKind: kind })
    } catch (error) {
      rows.push(failed({ workload: 'threads', name: KINDS[kind].name, size: KINDS[kind].size, unit: 'Mops/s', error }))
    }
  }
  return rows
}

/** The targets over the rows of one run: each row's 2-vs-1 over its reference's. */
function summary(rows) {
  const byKind = new Map(rows.filter((r) => r.threadKind && !r.failed).map((r) => [r.threadKind, r.ratio]))
  const lines = TARGETS.map(({ extmem, ref, text, bound }) => {
    const a = byKind.get(extmem)
    const b = byKind.get(ref)
    if (a == null || b == null) return [text, `>= ${bound}`, 'n/a', '-']
    const v = a / b
    return [text, `>= ${bound}`, `${a.toFixed(2)} / ${b.toFixed(2)} = ${v.toFixed(2)}`, v >= bound ? 'met' : 'MISSED']
  })
  return [`threads, targets (2-vs-1 ratios of the same run):`, grid(['row', 'target', 'value', ''], lines)].join('\n')
}

runThreads.summary = summary

if (!isMainThread && workerData && workerData.benchWorker) workerMain()

module.exports = { runThreads, SIZE }
