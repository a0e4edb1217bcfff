'use strict'
// Small cycle: allocate, write a few bytes, give back — the per-message churn of a server.
//   1. safe path:  pool.allocUnsafe(n) + writes + pool.release(buf)   vs  Buffer.allocUnsafeSlow(n) + writes, dropped
//   2. fast path:  pool.allocFast(n)   + writes + pool.releaseFast(buf) vs  Buffer.allocUnsafe(n) + writes, dropped
//      (only when the library has allocFast/releaseFast; "not available" rows otherwise)

const { Pool } = require('..')
const { keep, timeOps, alternate, row, unavailable, assertClean } = require('./common')

const SIZES = [64, 512, 4096, 8192]

// Each cycle is compiled afresh (`new Function`) so that every variant has its own type feedback:
// a loop shared by all variants would see several `alloc` functions at one call site and measure
// V8's megamorphic calls instead of the allocators.

/** The small cycle on an extmem pool: `alloc(n)` + two writes + `release(buf)`, `count` times. */
function extmemCycle(alloc, release, n) {
  // eslint-disable-next-line no-new-func
  return new Function(
    'alloc',
    'release',
    'n',
    `return function extmemCycle(count) {
    for (let i = 0; i < count; i++) {
      const buf = alloc(n)
      buf[0] = 1
      buf[n - 1] = 2
      release(buf)
    }
  }`,
  )(alloc, release, n)
}

/** The same on Node's own allocator: `alloc(n)` + two writes, the Buffer dropped to the GC. */
function nodeCycle(alloc, n) {
  // eslint-disable-next-line no-new-func
  return new Function(
    'alloc',
    'keep',
    'n',
    `return function nodeCycle(count) {
    for (let i = 0; i < count; i++) {
      const buf = alloc(n)
      buf[0] = 1
      buf[n - 1] = 2
      keep(buf)
    }
  }`,
  )(alloc, keep, n)
}

/** Rows of one path, per size: extmem's `alloc`/`release` (on `pool`) against Node's `peerAlloc`. */
async function measurePath({ workload, name, pool, alloc, release, peerLabel, peerAlloc, extmemLabel }, cfg, log) {
  const rows = []
  for (const n of SIZES) {
    log(`${workload}: ${n} B`)
    const extmem = extmemCycle(alloc, release, n)
    const peer = nodeCycle(peerAlloc, n)
    const samples = await alternate(
      [
        { key: 'extmem', run: () => timeOps(extmem, cfg.ops, cfg.perTurn) },
        { key: 'peer', run: () => timeOps(peer, cfg.ops, cfg.perTurn) },
      ],
      cfg.rounds,
    )
    assertClean(pool, `${workload} ${n} B`)
    rows.push(
      row({
        workload,
        name,
        size: n,
        unit: 'ns/op',
        kind: 'time',
        extmem: { label: extmemLabel, samples: samples.extmem },
        peer: { label: peerLabel, samples: samples.peer },
        rounds: cfg.rounds,
      }),
    )
  }
  return rows
}

/** Workload 1: the safe default path against Buffer.allocUnsafeSlow. */
async function runSafe(cfg, log) {
  const pool = new Pool({ maxBytes: 1 << 30 })
  try {
    return await measurePath(
      {
        workload: 'small',
        name: 'small cycle, safe path',
        pool,
        alloc: (n) => pool.allocUnsafe(n),
        release: (buf) => pool.release(buf),
        extmemLabel: 'allocUnsafe+release',
        peerLabel: 'Buffer.allocUnsafeSlow',
        peerAlloc: (n) => Buffer.allocUnsafeSlow(n),
      },
      cfg,
      log,
    )
  } finally {
    pool.close()
  }
}

/** Workload 2: the opt-in fast path against Node's pooled Buffer.allocUnsafe, if the library has one. */
async function runFast(cfg, log) {
  const pool = new Pool({ maxBytes: 1 << 30 })
  try {
    const available = typeof pool.allocFast === 'function' && typeof pool.releaseFast === 'function'
    const common = {
      workload: 'fast',
      name: 'small cycle, fast path',
      extmemLabel: 'allocFast+releaseFast',
      peerLabel: 'Buffer.allocUnsafe',
    }
    if (!available) {
      return SIZES.map((size) =>
        unavailable({ ...common, size, unit: 'ns/op', why: 'pool.allocFast/releaseFast not in this build' }),
      )
    }
    return await measurePath(
      {
        ...common,
        pool,
        alloc: (n) => pool.allocFast(n),
        release: (buf) => pool.releaseFast(buf),
        peerAlloc: (n) => Buffer.allocUnsafe(n),
      },
      cfg,
      log,
    )
  } finally {
    pool.close()
  }
}

module.exports = { runSafe, runFast, SIZES, extmemCycle, nodeCycle }
