'use strict'
// In flight: what one Buffer costs when N Buffers are out at once. A cycle allocates N Buffers of
// one size, writes one byte per 4 KiB page of each (as a fill would fault them; one byte for the
// small ones), then gives them all back, the first allocated first; an event-loop turn every 2,048
// Buffers. The figure is nanoseconds per Buffer, turns included. Per size and N, all of these run in
// one alternation (see common.js), in a fresh set of pools:
//   (a) pool.allocUnsafe + pool.release on new Pool({ leakDetection: 'off', admission: 'cap' })
//   (b) the same on new Pool() (the defaults: graded admission, leakDetection 'sampled')
//   (c) as (a), with the pool held across the 'warning' threshold (0.70): one ballast Buffer and a
//       maxBytes chosen so that the N Buffers move utilization from 0.60 to 0.80 (maxBytes = 5 x
//       the N Buffers' bytes), or, where that would not leave room for the slab's chunks (maxBytes
//       at least 2 MiB), so that they straddle 0.70. 'cap' admission: graded admission refuses
//       Buffers above 8 KiB at 'warning'.
//   allocUnsafe, allocUnsafeSlow   Buffer.allocUnsafe / Buffer.allocUnsafeSlow, dropped to the GC
//   floor   N Buffer views (the pool's own kind of Buffer object, see small.js) over N external
//           ArrayBuffers of a pool, made once per size and N, the same writes, then transfer() of
//           each: what a detaching Buffer over pooled memory costs at the least. Node 22+ only
//           (Node 20 has no ArrayBuffer.prototype.transfer()).
// Ratios: extmem / floor; extmem / best Node (the lower of the two Node medians in that cell);
// flatness = (extmem / floor at the largest N) / (extmem / floor at N = 16); and the geometric mean
// over N of extmem / best Node at 4 KiB. Targets are the (see TARGETS).
//
// Also: V8 heap kept per 1,000 released Buffers (heapUsed after a GC once 1,000 Buffers went back
// to a fresh pool, against before they were allocated; what the pool keeps per slot or mapping).

const { Pool } = require('..')
const {
  KiB,
  MiB,
  settle,
  alternate,
  median,
  row,
  summaryRow,
  formatSize,
  assertClean,
  turn,
  num,
  grid,
} = require('./common')
const { FloorBuffer, HAS_TRANSFER } = require('./small')

const PAGE = 4 * KiB
/** Buffers per event-loop turn. */
const PER_TURN = 2048
/** Sizes and their N (Buffers in flight). */
const CELLS = [
  [512, [1, 16, 64, 256, 1024]],
  [4 * KiB, [1, 16, 64, 256, 1024]],
  [16 * KiB, [1, 16, 64, 256, 1024]],
  [64 * KiB, [1, 16, 64, 256, 1024]],
  [256 * KiB, [1, 16, 64, 256]],
  [MiB, [1, 16, 64, 256]],
]
/** Sizes of the heap-per-kept-slot figure, and how many Buffers go back to the pool. */
const HEAP_SIZES = [512, 4 * KiB, 16 * KiB, 64 * KiB]
const HEAP_BUFFERS = 1000

const CONFIGS = {
  a: { label: "(a) leakDetection 'off', admission 'cap'", short: '(a)' },
  b: { label: '(b) defaults', short: '(b)' },
  c: { label: "(c) as (a), held at 60-80 % (across 'warning')", short: '(c)' },
}
const NODE = { allocUnsafe: 'Buffer.allocUnsafe', allocUnsafeSlow: 'Buffer.allocUnsafeSlow' }

/** The targets over these cells (each met in one run when the worst cell meets it). */
const TARGETS = [
  {
    key: 'smallVsFloor',
    text: 'in flight, 512 B-8 KiB, every N: extmem / floor',
    bound: 1.5,
    sizes: (n) => n <= 8 * KiB,
    of: 'vsFloor',
  },
  {
    key: 'geomean4k',
    text: 'in flight, 4 KiB: geometric mean over N of extmem / best Node',
    bound: 1.0,
    sizes: (n) => n === 4 * KiB,
    of: 'geomean',
  },
  {
    key: 'mid16k',
    text: 'in flight, 16 KiB, every N: extmem / best Node',
    bound: 0.7,
    sizes: (n) => n === 16 * KiB,
    of: 'vsNode',
  },
  {
    key: 'large',
    text: 'in flight, 64 KiB, 256 KiB and 1 MiB, every N: extmem / best Node',
    bound: 0.5,
    sizes: (n) => n >= 64 * KiB,
    of: 'vsNode',
  },
  {
    key: 'flatness',
    text: 'flatness, every size: (extmem / floor at the largest N) / (at N = 16)',
    bound: 1.5,
    sizes: () => true,
    of: 'flatness',
  },
]

// Each cycle is compiled afresh (`new Function`) so that every variant has its own type feedback,
// as in small.js.

/** `cycles` times: N x (`alloc(n)` + the writes), then N x `release(buf)`. */
function extmemCycle(alloc, release, n, N) {
  // eslint-disable-next-line no-new-func
  return new Function(
    'alloc',
    'release',
    'n',
    'N',
    `const bufs = new Array(N).fill(undefined)
  return function extmemInFlight(cycles) {
    for (let c = 0; c < cycles; c++) {
      for (let i = 0; i < N; i++) {
        const buf = alloc(n)
        for (let o = 0; o < n; o += ${PAGE}) buf[o] = i
        bufs[i] = buf
      }
      for (let i = 0; i < N; i++) {
        release(bufs[i])
        bufs[i] = undefined
      }
    }
  }`,
  )(alloc, release, n, N)
}

/** The same on Node's allocator: the N Buffers are dropped to the GC. */
function nodeCycle(alloc, n, N) {
  // eslint-disable-next-line no-new-func
  return new Function(
    'alloc',
    'n',
    'N',
    `const bufs = new Array(N).fill(undefined)
  return function nodeInFlight(cycles) {
    for (let c = 0; c < cycles; c++) {
      for (let i = 0; i < N; i++) {
        const buf = alloc(n)
        for (let o = 0; o < n; o += ${PAGE}) buf[o] = i
        bufs[i] = buf
      }
      for (let i = 0; i < N; i++) bufs[i] = undefined
    }
  }`,
  )(alloc, n, N)
}

/** The floor: N views over the N ArrayBuffers of `abs` + the writes, then `abs[i] = abs[i].transfer()`. */
function floorCycle(abs, n, N) {
  // eslint-disable-next-line no-new-func
  return new Function(
    'abs',
    'FloorBuffer',
    'n',
    'N',
    `const bufs = new Array(N).fill(undefined)
  return function floorInFlight(cycles) {
    for (let c = 0; c < cycles; c++) {
      for (let i = 0; i < N; i++) {
        const buf = new FloorBuffer(abs[i], 0, n)
        for (let o = 0; o < n; o += ${PAGE}) buf[o] = i
        bufs[i] = buf
      }
      for (let i = 0; i < N; i++) {
        abs[i] = abs[i].transfer()
        bufs[i] = undefined
      }
    }
  }`,
  )(abs, FloorBuffer, n, N)
}

/** Nanoseconds per Buffer over `buffers` Buffers (whole cycles of N), a turn every PER_TURN. */
async function timeInFlight(cycle, N, buffers) {
  const perTurn = Math.max(1, Math.floor(PER_TURN / N))
  const cycles = Math.max(1, Math.round(buffers / N))
  const t0 = process.hrtime.bigint()
  for (let done = 0; done < cycles; done += perTurn) {
    cycle(Math.min(perTurn, cycles - done))
    await turn()
  }
  return Number(process.hrtime.bigint() - t0) / (cycles * N)
}

/** Capacity the pool gives a Buffer of `n` bytes (our sizes: slab classes of their own size, or whole pages). */
function capacity(n) {
  return n <= 8 * KiB ? n : Math.ceil(n / PAGE) * PAGE
}

/**
 * Configuration (c): `{ maxBytes, ballast }` for N Buffers of `n` bytes. The N Buffers' bytes S
 * move utilization from 0.60 to 0.80 (maxBytes = 5 S, ballast 3 S); where 5 S is under 2 MiB (too
 * little room for slab chunks and caches beside the ballast), maxBytes is 2 MiB and the ballast
 * puts the N Buffers astride 0.70.
 */
function heldConfig(n, N) {
  const set = N * capacity(n)
  const pageUp = (x) => Math.ceil(x / PAGE) * PAGE
  if (5 * set >= 2 * MiB) return { maxBytes: pageUp(5 * set), ballast: pageUp(3 * set) }
  const maxBytes = 2 * MiB
  return { maxBytes, ballast: pageUp(0.7 * maxBytes - set / 2) }
}

/** One cell: every variant, alternating; returns its medians, samples and what (c) looked like. */
async function measureCell(n, N, cfg, log) {
  log(`inflight: ${formatSize(n)}, ${N} in flight`)
  const buffers = Math.max(N, Math.min(cfg.ops, Math.floor(cfg.bytes / n)))
  const pools = {
    a: new Pool({ leakDetection: 'off', admission: 'cap' }),
    b: new Pool(),
  }
  const held = heldConfig(n, N)
  pools.c = new Pool({ leakDetection: 'off', admission: 'cap', maxBytes: held.maxBytes })
  let levelChanges = 0
  pools.c.on('watermark', () => levelChanges++)
  const ballast = pools.c.allocUnsafe(held.ballast)
  const floorPool = HAS_TRANSFER ? new Pool({ leakDetection: 'off', admission: 'cap' }) : null
  // The floor's ArrayBuffers: N Buffers of floorPool, made once; their loans end through the GC
  // once the last ArrayBuffer of each chain is dropped (release() needs the Buffer attached).
  const abs = floorPool === null ? null : Array.from({ length: N }, () => floorPool.allocUnsafe(n).buffer)
  try {
    const variants = []
    for (const key of Object.keys(CONFIGS)) {
      const pool = pools[key]
      const cycle = extmemCycle(
        (size) => pool.allocUnsafe(size),
        (buf) => pool.release(buf),
        n,
        N,
      )
      variants.push({ key, run: () => timeInFlight(cycle, N, buffers) })
    }
    const unsafe = nodeCycle((size) => Buffer.allocUnsafe(size), n, N)
    const slow = nodeCycle((size) => Buffer.allocUnsafeSlow(size), n, N)
    variants.push(
      { key: 'allocUnsafe', run: () => timeInFlight(unsafe, N, buffers) },
      { key: 'allocUnsafeSlow', run: () => timeInFlight(slow, N, buffers) },
    )
    if (abs !== null) {
      const floor = floorCycle(abs, n, N)
      variants.push({ key: 'floor', run: () => timeInFlight(floor, N, buffers) })
    }
    const samples = await alternate(variants, cfg.rounds)
    // Where (c) stood: utilization and level with the N Buffers out, and with them back.
    const probe = []
    for (let i = 0; i < N; i++) probe.push(pools.c.allocUnsafe(n))
    const high = pools.c.stats()
    for (const buf of probe) pools.c.release(buf)
    const low = pools.c.stats()
    await turn() // watermark events arrive on a later tick
    const where = {
      maxBytes: held.maxBytes,
      ballastBytes: held.ballast,
      utilizationLow: low.utilization,
      utilizationHigh: high.utilization,
      levelLow: low.level,
      levelHigh: high.level,
      levelChanges,
    }
    for (const key of ['a', 'b']) assertClean(pools[key], `inflight ${formatSize(n)} x ${N} (${key})`)
    pools.c.release(ballast)
    assertClean(pools.c, `inflight ${formatSize(n)} x ${N} (c)`)
    return { buffers, samples, held: where }
  } finally {
    for (const pool of Object.values(pools)) pool.close()
    if (abs !== null) abs.length = 0
    floorPool?.close()
  }
}

/** Ratios of one cell from its medians: per configuration, extmem / floor and extmem / best Node. */
function cellRatios(medians) {
  const bestNode = medians.allocUnsafe <= medians.allocUnsafeSlow ? 'allocUnsafe' : 'allocUnsafeSlow'
  const out = { bestNode, best: medians[bestNode] }
  for (const key of Object.keys(CONFIGS)) {
    out[key] = {
      vsFloor: medians.floor == null ? null : medians[key] / medians.floor,
      vsNode: medians[key] / medians[bestNode],
    }
  }
  return out
}

/** V8 heap kept per HEAP_BUFFERS Buffers released into a fresh pool, per size (median of `reps`). */
async function measureHeap(reps, log) {
  const once = async (n) => {
    const pool = new Pool({ leakDetection: 'off', admission: 'cap' })
    try {
      await settle()
      await settle()
      const before = process.memoryUsage().heapUsed
      let bufs = []
      for (let i = 0; i < HEAP_BUFFERS; i++) bufs.push(pool.allocUnsafe(n))
      for (const buf of bufs) pool.release(buf)
      bufs = null
      await settle()
      await settle()
      const after = process.memoryUsage().heapUsed
      const s = pool.stats()
      return {
        bytes: after - before,
        cachedSlots: s.small.cachedSlots,
        largeCached: s.large.cached,
        reservedBytes: s.reservedBytes,
      }
    } finally {
      pool.close()
    }
  }
  const out = []
  for (const n of HEAP_SIZES) {
    log(`inflight: heap kept per ${HEAP_BUFFERS} Buffers of ${formatSize(n)}`)
    await once(n) // compiles what the allocation and release paths need, outside the figure
    const runs = []
    for (let r = 0; r < reps; r++) runs.push(await once(n))
    out.push({ size: n, bytesPer1000: median(runs.map((x) => x.bytes)) * (1000 / HEAP_BUFFERS), runs })
  }
  return out
}

async function runInflight(cfg, log) {
  const rows = []
  const cells = []
  for (const [n, ns] of CELLS) {
    for (const N of ns) {
      const { buffers, samples, held } = await measureCell(n, N, cfg, log)
      const medians = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]))
      if (!('floor' in medians)) medians.floor = null
      const ratios = cellRatios(medians)
      cells.push({ size: n, N, buffers, medians, ratios, held, samples })
      for (const [key, c] of Object.entries(CONFIGS)) {
        rows.push({
          ...row({
            workload: 'inflight',
            name: `in flight, N=${N}, ${c.label}`,
            size: n,
            unit: 'ns/Buffer',
            kind: 'time',
            extmem: { label: `pool.allocUnsafe+release ${c.short}`, samples: samples[key] },
            peer: { label: `best of Node: ${NODE[ratios.bestNode]}`, samples: samples[ratios.bestNode] },
            rounds: cfg.rounds,
            detail: {
              inFlight: N,
              config: key,
              buffersPerSample: buffers,
              medians,
              ...(key === 'c' ? { held } : {}),
            },
          }),
          vsFloor: ratios[key].vsFloor,
          hideInTable: true,
        })
      }
    }
  }
  const heap = await measureHeap(cfg.heapReps, log)
  const targets = evaluate(cells)
  rows.push(
    summaryRow('inflight', 'in flight, summary', {
      floor: HAS_TRANSFER,
      flatness: flatnessOf(cells),
      targets,
      heap,
      cells,
    }),
  )
  return rows
}

/** Per size and configuration: (extmem / floor at the largest N) / (extmem / floor at N = 16). */
function flatnessOf(cells) {
  const out = {}
  for (const [n, ns] of CELLS) {
    const at = (N) => cells.find((c) => c.size === n && c.N === N)
    const largest = at(ns[ns.length - 1])
    const at16 = at(16)
    out[n] = {}
    for (const key of Object.keys(CONFIGS)) {
      const hi = largest?.ratios[key].vsFloor
      const lo = at16?.ratios[key].vsFloor
      out[n][key] = hi == null || lo == null ? null : hi / lo
    }
  }
  return out
}

/** Geometric mean over N of extmem / best Node at size `n`, per configuration. */
function geomeanOf(cells, n) {
  const these = cells.filter((c) => c.size === n)
  const out = {}
  for (const key of Object.keys(CONFIGS)) {
    out[key] = Math.exp(these.reduce((s, c) => s + Math.log(c.ratios[key].vsNode), 0) / these.length)
  }
  return out
}

/** Each target, per configuration: the worst value over its cells, where, and whether it is met. */
function evaluate(cells) {
  const flat = flatnessOf(cells)
  return TARGETS.map((t) => {
    const per = {}
    for (const key of Object.keys(CONFIGS)) {
      let worst = null
      let where = ''
      if (t.of === 'geomean') {
        for (const [n] of CELLS.filter(([n]) => t.sizes(n))) {
          worst = geomeanOf(cells, n)[key]
          where = formatSize(n)
        }
      } else if (t.of === 'flatness') {
        for (const [n] of CELLS.filter(([n]) => t.sizes(n))) {
          const v = flat[n][key]
          if (v != null && (worst === null || v > worst)) [worst, where] = [v, formatSize(n)]
        }
      } else {
        for (const c of cells.filter((c) => t.sizes(c.size))) {
          const v = c.ratios[key][t.of]
          if (v != null && (worst === null || v > worst)) [worst, where] = [v, `${formatSize(c.size)}, N=${c.N}`]
        }
      }
      per[key] = { worst, where, met: worst === null ? null : worst <= t.bound }
    }
    return { key: t.key, text: t.text, bound: t.bound, per }
  })
}

/** The workload's own tables (index.js prints them after the main table). */
function summary(rows) {
  const s = rows.find((r) => r.name === 'in flight, summary')?.detail
  if (!s) return null
  const keys = Object.keys(CONFIGS)
  const out = []
  const rounds = rows.find((r) => r.workload === 'inflight' && r.rounds)?.rounds
  out.push(
    `in flight: ns per Buffer (alloc N, one write per 4 KiB page, give all back; medians of ${rounds} rounds)`,
    ...keys.map((k) => `  ${CONFIGS[k].label}`),
    `  floor: views over N pool ArrayBuffers + transfer()${s.floor ? '' : ' - n/a (no ArrayBuffer.prototype.transfer() in this Node)'}; best = the lower of allocUnsafe and allocUnsafeSlow`,
    '',
  )
  const head = [
    'size',
    'N',
    ...keys.map((k) => CONFIGS[k].short),
    'allocUnsafe',
    'allocUnsafeSlow',
    'floor',
    ...keys.map((k) => `${CONFIGS[k].short}/floor`),
    ...keys.map((k) => `${CONFIGS[k].short}/best`),
    '(c) utilization',
  ]
  const body = s.cells.map((c) => [
    formatSize(c.size),
    String(c.N),
    ...keys.map((k) => num(c.medians[k])),
    num(c.medians.allocUnsafe),
    num(c.medians.allocUnsafeSlow),
    num(c.medians.floor),
    ...keys.map((k) => num(c.ratios[k].vsFloor)),
    ...keys.map((k) => num(c.ratios[k].vsNode)),
    `${(c.held.utilizationLow * 100).toFixed(1)}-${(c.held.utilizationHigh * 100).toFixed(1)} % (${c.held.levelChanges} chg)`,
  ])
  out.push(grid(head, body, 1))
  out.push('', 'flatness = (extmem/floor at the largest N) / (extmem/floor at N=16); geomean at 4 KiB of extmem/best:')
  const g4 = geomeanOf(s.cells, 4 * KiB)
  out.push(
    grid(
      ['size', ...keys.map((k) => `flatness ${CONFIGS[k].short}`)],
      [
        ...Object.entries(s.flatness).map(([n, f]) => [formatSize(Number(n)), ...keys.map((k) => num(f[k]))]),
        ['geomean 4 KiB /best', ...keys.map((k) => num(g4[k]))],
      ],
      1,
    ),
  )
  out.push('', "targets (the issue's; worst cell per configuration):")
  out.push(
    grid(
      ['row', 'target', ...keys.map((k) => CONFIGS[k].short)],
      s.targets.map((t) => [
        t.text,
        `<= ${t.bound}`,
        ...keys.map((k) => {
          const p = t.per[k]
          if (p.worst === null) return 'n/a'
          return `${num(p.worst)} ${p.met ? 'met' : 'MISSED'} (${p.where})`
        }),
      ]),
      1,
    ),
  )
  out.push(
    '',
    `V8 heap kept per 1,000 Buffers released into a fresh pool (${"(a)'s options"}; heapUsed after GC, after vs before):`,
  )
  out.push(
    grid(
      ['size', 'heap per 1,000', 'per Buffer', 'slots in thread caches', 'mappings cached', 'reserved'],
      s.heap.map((h) => {
        const last = h.runs[h.runs.length - 1]
        return [
          formatSize(h.size),
          `${num(h.bytesPer1000 / KiB)} KiB`,
          `${num(h.bytesPer1000 / 1000)} B`,
          String(last.cachedSlots),
          String(last.largeCached),
          `${num(last.reservedBytes / MiB)} MiB`,
        ]
      }),
      1,
    ),
  )
  return out.join('\n')
}

runInflight.summary = summary

module.exports = { runInflight, CELLS, heldConfig, timeInFlight, PER_TURN }
