'use strict'
// Witness: what the proof that a terminated worker's memory can come back costs. On Node 22+ every
// Buffer a worker thread puts back into its thread cache gets a weak reference to its new
// ArrayBuffer (the witness, see src/escape.rs), made 32 to a native call; the main thread needs
// none (Node stops every worker before the main env's cleanup). So the same in-flight cycle as
// `inflight` (allocate N = 64, one write per 4 KiB page, release them all; configuration (a):
// leakDetection 'off', admission 'cap'), run once in a worker thread and once on the main thread,
// alternating rounds, is that cost: per Buffer, and the GC pause (perf_hooks 'gc' entries of the
// thread that ran it, per Buffer). Each side runs in its own thread alone; the other one waits.

const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads')
const { once } = require('node:events')
const { PerformanceObserver } = require('node:perf_hooks')
const { KiB, alternate, row, failed, turn, formatSize } = require('./common')
const { timeInFlight, PER_TURN } = require('./inflight')

const N = 64
const SIZES = [4 * KiB, 64 * KiB]
const PAGE = 4 * KiB

/**
 * Runs `buffers` Buffers of `size` bytes through the in-flight cycle on a pool of this thread;
 * returns { ns, gcNs }: nanoseconds per Buffer, and the GC pause of this thread per Buffer.
 */
async function cycleHere(size, buffers) {
  const { Pool } = require('..')
  const pool = new Pool({ leakDetection: 'off', admission: 'cap' })
  const bufs = Array.from({ length: N }, () => undefined)
  const cycle = (count) => {
    for (let c = 0; c < count; c++) {
      for (let i = 0; i < N; i++) {
        const buf = pool.allocUnsafe(size)
        for (let o = 0; o < size; o += PAGE) buf[o] = i
        bufs[i] = buf
      }
      for (let i = 0; i < N; i++) {
        pool.release(bufs[i])
        bufs[i] = undefined
      }
    }
  }
  cycle(PER_TURN / N) // warm-up: the cache fills and the code is optimised
  globalThis.gc()
  await turn()
  let gcMs = 0
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcMs += e.duration
  })
  observer.observe({ entryTypes: ['gc'] })
  const ns = await timeInFlight(cycle, N, buffers)
  for (const e of observer.takeRecords()) gcMs += e.duration
  observer.disconnect()
  pool.close()
  const timed = Math.max(1, Math.round(buffers / N)) * N // the Buffers timeInFlight ran
  return { ns, gcNs: (gcMs * 1e6) / timed }
}

/** Worker thread: runs the cycle each message asks for and answers with its figures. */
function workerMain() {
  parentPort.on('message', async ({ size, buffers }) => {
    try {
      parentPort.postMessage(await cycleHere(size, buffers))
    } catch (err) {
      parentPort.postMessage({ error: `${err.code ?? err.name}: ${err.message}` })
    }
  })
}

/** The cycle in `worker`: its figures, or the error it reported. */
async function cycleIn(worker, size, buffers) {
  const answer = once(worker, 'message')
  worker.postMessage({ size, buffers })
  const [msg] = await answer
  if (msg.error) throw new Error(`in the worker thread: ${msg.error}`)
  return msg
}

/** Two rows per size: ns per Buffer and GC pause per Buffer, worker (witnessed) / main thread. */
async function measureSize(size, cfg) {
  const buffers = Math.max(N, Math.min(cfg.ops, Math.floor(cfg.bytes / size)))
  const worker = new Worker(__filename, { workerData: { witnessWorker: true } })
  try {
    const figures = { worker: [], main: [] }
    await alternate(
      [
        { key: 'worker', run: async () => figures.worker.push(await cycleIn(worker, size, buffers)) },
        { key: 'main', run: async () => figures.main.push(await cycleHere(size, buffers)) },
      ],
      cfg.rounds,
    )
    // alternate() runs each side once to warm up before its rounds: drop that first figure.
    const samples = (side, key) => figures[side].slice(1).map((f) => f[key])
    const common = { workload: 'witness', size, unit: 'ns/op', kind: 'witness', rounds: cfg.rounds }
    // A run too short for any GC on the main thread (--quick) has no GC ratio to give.
    const gcSeen = samples('main', 'gcNs').some((x) => x > 0)
    return [
      row({
        ...common,
        name: `${N} in flight, per Buffer`,
        extmem: { label: 'worker thread (witnessed)', samples: samples('worker', 'ns') },
        peer: { label: 'main thread (no witness)', samples: samples('main', 'ns') },
        detail: { buffers },
      }),
      gcSeen &&
        row({
          ...common,
          name: `${N} in flight, GC pause per Buffer`,
          extmem: { label: 'worker thread (witnessed)', samples: samples('worker', 'gcNs') },
          peer: { label: 'main thread (no witness)', samples: samples('main', 'gcNs') },
          detail: { buffers },
        }),
    ].filter(Boolean)
  } finally {
    await worker.terminate()
  }
}

async function runWitness(cfg, log) {
  const rows = []
  if (typeof ArrayBuffer.prototype.transfer !== 'function') return rows // Node 20: no witnesses
  for (const size of SIZES) {
    log(`witness: ${formatSize(size)}, ${N} in flight`)
    try {
      rows.push(...(await measureSize(size, cfg)))
    } catch (error) {
      rows.push(failed({ workload: 'witness', name: `${N} in flight`, size, unit: 'ns/op', error }))
    }
  }
  return rows
}

if (!isMainThread && workerData && workerData.witnessWorker) workerMain()

module.exports = { runWitness }
