'use strict'
// extmem benchmarks against their Node peers: `npm run bench` (full) or `npm run bench -- --quick`
// (about a minute; CI runs it to keep the harness working and does not judge the numbers).
//
// Every workload runs extmem and its peer in the same run, alternating their order over several
// rounds with a GC in between, and reports medians over the rounds:
//   small    small cycle, safe path: pool.allocUnsafe + writes + release vs Buffer.allocUnsafeSlow, and
//            its floor (Node 22+): a view over one pool ArrayBuffer + writes + transfer()
//   fast     small cycle, fast path: pool.allocFast + releaseFast vs Buffer.allocUnsafe (if present)
//   large    64 KiB–16 MiB alloc + fill + release vs Buffer.allocUnsafe + fill, and vs refilling one Buffer
//   stream   4 GiB (256 MiB quick) through 64 KiB / 1 MiB chunks, one child process per side
//   threads  defaultPool from 2 worker threads vs 1 (same total work)
//   leak     leakDetection 'sampled' / 'paranoid' vs 'off' (if present)
//   server   length-prefixed frames over loopback TCP, 64 and 256 client connections in a child
//            process, today's mix (256 B-64 KiB) and a mid-size one (16-256 KiB), the server (a child
//            process per variant and round) on pool.allocUnsafe + release, a pool.scope() per request
//            (and an arena scope where the library has one) vs Buffer.allocUnsafe vs
//            Buffer.allocUnsafeSlow; rows compare extmem with the better Node one; GC counts by kind
//            and cause; memory back (the pool's reservedBytes 15 s after the last frame / peak)
//   lifetimes  scope.close() of 64 Buffers vs 64 release() calls; resize() 16 -> 32 MiB vs
//            allocUnsafe + copy + release; share/adopt to a worker and back vs postMessage copies
//   inflight per-Buffer cost with N = 1..1024 Buffers out at once, 512 B-1 MiB: pool.allocUnsafe +
//            release (three pool configurations) vs allocUnsafe vs allocUnsafeSlow vs the floor
//            (views over pool ArrayBuffers + transfer()); V8 heap kept per 1,000 released Buffers
//   witness  the same cycle (64 in flight, 4 KiB and 64 KiB) in a worker thread, whose put-backs
//            need a weak witness each, vs on the main thread, which needs none: ns and GC pause
// The table goes to stdout (progress to stderr); everything, with every sample, to bench/results.json.
// Workloads with tables of their own (inflight, server) print them after it.
//
// Options: --quick; --only=small,large,… to run some workloads (for development).

const os = require('node:os')
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { MiB, GiB, failed } = require('./common')

const FAMILIES = {
  small: () => require('./small').runSafe,
  fast: () => require('./small').runFast,
  large: () => require('./large').runLarge,
  stream: () => require('./stream').runStream,
  threads: () => require('./threads').runThreads,
  leak: () => require('./leak').runLeak,
  server: () => require('./server').runServer,
  lifetimes: () => require('./lifetimes').runLifetimes,
  inflight: () => require('./inflight').runInflight,
  witness: () => require('./witness').runWitness,
}

// ops: operations per round and side; perTurn: operations per event-loop turn (see common.js).
const CONFIG = {
  full: {
    small: { rounds: 11, ops: 200_000, perTurn: 4096 },
    fast: { rounds: 11, ops: 400_000, perTurn: 4096 },
    large: { rounds: 9, bytes: 1 * GiB, minOps: 32 },
    stream: { rounds: 5, bytes: 4 * GiB },
    threads: { rounds: 7, ops: 500_000, perTurn: 4096 },
    leak: { rounds: 9, ops: 100_000, perTurn: 4096 },
    server: { rounds: 5, warmFrames: 100, frames: 800, deadlineS: 30, memoryBackS: 15 },
    lifetimes: { rounds: 9, scopes: 2000, grows: 20, trips: 400 },
    inflight: { rounds: 7, ops: 131072, bytes: 2 * GiB, heapReps: 3 },
    witness: { rounds: 7, ops: 262144, bytes: 4 * GiB },
  },
  quick: {
    small: { rounds: 3, ops: 20_000, perTurn: 4096 },
    fast: { rounds: 3, ops: 40_000, perTurn: 4096 },
    large: { rounds: 3, bytes: 64 * MiB, minOps: 8 },
    stream: { rounds: 2, bytes: 256 * MiB },
    threads: { rounds: 3, ops: 50_000, perTurn: 4096 },
    leak: { rounds: 3, ops: 20_000, perTurn: 4096 },
    server: { rounds: 3, warmFrames: 20, frames: 100, deadlineS: 10, memoryBackS: 2 },
    lifetimes: { rounds: 3, scopes: 200, grows: 4, trips: 40 },
    inflight: { rounds: 3, ops: 2048, bytes: 16 * MiB, heapReps: 1 },
    witness: { rounds: 3, ops: 8192, bytes: 256 * MiB },
  },
}

function parseArgs(argv) {
  const opts = { quick: false, only: Object.keys(FAMILIES) }
  for (const arg of argv) {
    if (arg === '--quick') opts.quick = true
    else if (arg.startsWith('--only=')) opts.only = arg.slice(7).split(',').filter(Boolean)
    else throw new Error(`unknown argument ${arg} (known: --quick, --only=${Object.keys(FAMILIES).join(',')})`)
  }
  const unknown = opts.only.filter((name) => !(name in FAMILIES))
  if (unknown.length)
    throw new Error(`unknown workload ${unknown.join(', ')} (known: ${Object.keys(FAMILIES).join(', ')})`)
  return opts
}

function environment(quick) {
  return {
    extmem: require('../package.json').version,
    node: process.version,
    v8: process.versions.v8,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism ? os.availableParallelism() : os.cpus().length,
    platform: `${process.platform} ${process.arch}`,
    date: new Date().toISOString(),
    loadavg: os.loadavg().map((x) => Number(x.toFixed(2))),
    mode: quick ? 'quick' : 'full',
  }
}

/** A number with about three significant digits. */
function num(v) {
  if (v == null) return '-'
  const a = Math.abs(v)
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toFixed(3)
}

/** How to read a row's ratio, in words. */
function reading(r) {
  if (r.failed) return 'FAILED (see below)'
  if (!r.available) return `not available (${r.note})`
  const x = (f) => `${f.toFixed(2)}x`
  switch (r.kind) {
    case 'time':
      return r.ratio <= 1 ? `extmem ${x(1 / r.ratio)} faster` : `extmem ${x(r.ratio)} slower`
    case 'throughput':
      return r.ratio >= 1 ? `extmem ${x(r.ratio)} faster` : `extmem ${x(1 / r.ratio)} slower`
    case 'memory':
      return r.ratio <= 1 ? `extmem ${x(1 / r.ratio)} less` : `extmem ${x(r.ratio)} more`
    case 'scaling':
      return `2 threads = ${x(r.ratio)} of 1 (ideal 2.00x)`
    case 'witness':
      return `worker = ${x(r.ratio)} of main`
    default:
      return ''
  }
}

function table(rows) {
  // "vs floor": the safe path's time over the floor's (see small.js), when the run has it.
  const floor = rows.some((r) => 'vsFloor' in r)
  const head = [
    'workload',
    'size',
    'extmem',
    'peer',
    'unit',
    'ratio',
    ...(floor ? ['vs floor'] : []),
    'reading',
    'peer is',
  ]
  const body = rows.map((r) => [
    r.name,
    r.sizeLabel,
    num(r.extmemMedian),
    num(r.peerMedian),
    r.unit,
    r.ratio == null ? '-' : r.ratio.toFixed(3),
    ...(floor ? [r.vsFloor == null ? '-' : `${r.vsFloor.toFixed(2)}x`] : []),
    reading(r),
    r.peerLabel,
  ])
  const right = new Set([1, 2, 3, 5, ...(floor ? [6] : [])])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((cells) => cells[i].length)))
  const line = (cells) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd()
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n')
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  const config = CONFIG[opts.quick ? 'quick' : 'full']
  const env = environment(opts.quick)
  const log = (msg) => process.stderr.write(`  … ${msg}\n`)
  const t0 = Date.now()

  // One broken workload must not hide the others: it becomes a FAILED row, and the run goes on
  // and exits with 1 at the end.
  const rows = []
  const summaries = []
  for (const name of opts.only) {
    try {
      const run = FAMILIES[name]()
      const got = await run(config[name], log)
      rows.push(...got)
      if (typeof run.summary === 'function') summaries.push(run.summary(got))
    } catch (err) {
      rows.push(failed({ workload: name, name, error: err }))
    }
  }
  const failures = rows.filter((r) => r.failed)
  const elapsedSeconds = (Date.now() - t0) / 1000

  console.log(
    `\nextmem bench (${env.mode}): Node ${env.node} (V8 ${env.v8}), ${env.cpu} x${env.cores}, ${env.platform}, ${env.date}, load ${env.loadavg.join(' ')}\n`,
  )
  // Rows a workload shows in a table of its own stay out of this one (they are in the JSON).
  const shown = rows.filter((r) => !r.hideInTable)
  if (shown.length !== 0) console.log(table(shown))
  for (const text of summaries) if (text) console.log(`\n${text}`)
  console.log(
    '\nmedians over rounds; ratio = extmem / peer (threads: 2 threads / 1 thread; witness: worker / main thread). ns/op, us/op, MiB: lower is better;' +
      ' GiB/s, Mops/s: higher is better.',
  )
  const out = path.join(__dirname, 'results.json')
  fs.writeFileSync(out, JSON.stringify({ environment: env, elapsedSeconds, config, rows }, null, 2) + '\n')
  console.log(`total ${elapsedSeconds.toFixed(1)} s; results written to ${path.relative(process.cwd(), out)}`)
  for (const f of failures) console.error(`\n${f.name}${f.sizeLabel ? ' ' + f.sizeLabel : ''} FAILED:\n${f.error}`)
  if (failures.length) process.exitCode = 1
}

if (typeof globalThis.gc !== 'function') {
  // Run directly without --expose-gc: run again with it.
  const res = spawnSync(process.execPath, ['--expose-gc', __filename, ...process.argv.slice(2)], { stdio: 'inherit' })
  process.exitCode = res.status ?? 1
} else {
  main().catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
}
