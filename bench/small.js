'use strict'
// Small cycle: allocate, write a few bytes, give back — the per-message churn of a server.
//   1. safe path:  pool.allocUnsafe(n) + writes + pool.release(buf)   vs  Buffer.allocUnsafeSlow(n) + writes, dropped
//   2. fast path:  pool.allocFast(n)   + writes + pool.releaseFast(buf) vs  Buffer.allocUnsafe(n) + writes, dropped
//      (only when the library has allocFast/releaseFast; "not available" rows otherwise)
//   floor (safe path only): what a detaching Buffer costs at the least, with no pool work at all:
//      a Buffer view over one external ArrayBuffer that came from the pool, made the way the pool
//      makes its Buffers, the same two writes, then `ab = ab.transfer()` to detach it. The safe
//      path does this and its bookkeeping (native calls to lend and end the loan, the kept
//      ArrayBuffers); each safe-path row gives its ratio to the floor ("vs floor"). Node 22+ only:
//      Node 20 has no ArrayBuffer.prototype.transfer().

const { Pool } = require('..')
const { keep, settle, timeOps, alternate, median, row, unavailable, assertClean } = require('./common')

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

/**
 * A Buffer view as the pool makes its own (see lib/pooled-buffer.js): a subclass of Uint8Array
 * whose prototype chain runs through Buffer.prototype, without the loan's private token.
 */
class FloorBuffer extends Uint8Array {}
Object.setPrototypeOf(FloorBuffer.prototype, Buffer.prototype)
Object.defineProperty(FloorBuffer.prototype, 'constructor', { value: Buffer, writable: true, configurable: true })

const HAS_TRANSFER = typeof ArrayBuffer.prototype.transfer === 'function'

/**
 * The floor cycle over the external ArrayBuffer `holder.ab`: a FloorBuffer view of `n` bytes + two
 * writes + `ab.transfer()`, which detaches the view and gives the next ArrayBuffer over the same
 * memory, `count` times. `holder.ab` is the live one at the end.
 */
function floorCycle(holder, n) {
  // eslint-disable-next-line no-new-func
  return new Function(
    'holder',
    'FloorBuffer',
    'n',
    `return function floorCycle(count) {
    let ab = holder.ab
    for (let i = 0; i < count; i++) {
      const buf = new FloorBuffer(ab, 0, n)
      buf[0] = 1
      buf[n - 1] = 2
      ab = ab.transfer()
    }
    holder.ab = ab
  }`,
  )(holder, FloorBuffer, n)
}

/**
 * Rows of one path, per size: extmem's `alloc`/`release` (on `pool`) against Node's `peerAlloc`;
 * with `floorPool`, also the floor cycle over memory of that pool, in the same alternation.
 */
async function measurePath(
  { workload, name, pool, alloc, release, peerLabel, peerAlloc, extmemLabel, floorPool = null },
  cfg,
  log,
) {
  const rows = []
  const floorRows = []
  for (const n of SIZES) {
    log(`${workload}: ${n} B`)
    const extmem = extmemCycle(alloc, release, n)
    const peer = nodeCycle(peerAlloc, n)
    const variants = [
      { key: 'extmem', run: () => timeOps(extmem, cfg.ops, cfg.perTurn) },
      { key: 'peer', run: () => timeOps(peer, cfg.ops, cfg.perTurn) },
    ]
    // The floor's memory: one Buffer of floorPool, whose ArrayBuffer the floor cycle transfers
    // on and on. Its loan cannot be released after that (release() needs the Buffer attached),
    // so it ends through the GC once the last ArrayBuffer is dropped: floorPool is a pool of its
    // own for that reason, and `pool` stays clean.
    const holder = floorPool === null ? null : { ab: floorPool.allocUnsafe(n).buffer }
    if (holder !== null) {
      const floor = floorCycle(holder, n)
      variants.push({ key: 'floor', run: () => timeOps(floor, cfg.ops, cfg.perTurn) })
    }
    const samples = await alternate(variants, cfg.rounds)
    assertClean(pool, `${workload} ${n} B`)
    if (holder !== null) holder.ab = null
    const peerSide = { label: peerLabel, samples: samples.peer }
    rows.push({
      ...row({
        workload,
        name,
        size: n,
        unit: 'ns/op',
        kind: 'time',
        extmem: { label: extmemLabel, samples: samples.extmem },
        peer: peerSide,
        rounds: cfg.rounds,
      }),
      ...(holder === null ? {} : { vsFloor: median(samples.extmem) / median(samples.floor) }),
    })
    if (holder !== null) {
      floorRows.push(
        row({
          workload,
          name: 'small cycle, floor',
          size: n,
          unit: 'ns/op',
          kind: 'time',
          extmem: { label: 'view of a pool ArrayBuffer+transfer()', samples: samples.floor },
          peer: peerSide,
          rounds: cfg.rounds,
        }),
      )
    }
  }
  return [...rows, ...floorRows]
}

/**
 * The floor pool's loans (one per size) have ended through the GC, and nothing else happened to
 * it: a harness bug otherwise.
 */
async function assertFloorDone(floorPool) {
  let s = floorPool.stats()
  for (let i = 0; i < 10 && s.liveBuffers !== 0; i++) {
    await settle()
    s = floorPool.stats()
  }
  if (s.liveBuffers !== 0 || s.gcReclaims !== SIZES.length || s.releases !== 0) {
    throw new Error(
      `small cycle, floor: its pool should have lent ${SIZES.length} Buffers and got them back through the GC, has liveBuffers=${s.liveBuffers} gcReclaims=${s.gcReclaims} releases=${s.releases}`,
    )
  }
}

/**
 * The zero-filled cycle at 4 KiB: `alloc` + writes + `release` against `allocUnsafe` + `fill(0)` +
 * the same, on one pool: what zeroing costs the pool against zeroing by hand (target <= 1.0).
 */
async function measureZeroed(pool, cfg, log) {
  const n = 4096
  log(`small: alloc (zero-filled) ${n} B`)
  const zeroed = extmemCycle(
    (size) => pool.alloc(size),
    (buf) => pool.release(buf),
    n,
  )
  const byHand = extmemCycle(
    (size) => pool.allocUnsafe(size).fill(0),
    (buf) => pool.release(buf),
    n,
  )
  const samples = await alternate(
    [
      { key: 'zeroed', run: () => timeOps(zeroed, cfg.ops, cfg.perTurn) },
      { key: 'byHand', run: () => timeOps(byHand, cfg.ops, cfg.perTurn) },
    ],
    cfg.rounds,
  )
  assertClean(pool, `small alloc ${n} B`)
  const r = row({
    workload: 'small',
    name: 'small cycle, alloc (zero-filled)',
    size: n,
    unit: 'ns/op',
    kind: 'time',
    extmem: { label: 'alloc+release', samples: samples.zeroed },
    peer: { label: 'allocUnsafe+fill(0)+release', samples: samples.byHand },
    rounds: cfg.rounds,
  })
  return { ...r, target: '<= 1.0x', targetMet: r.ratio <= 1 }
}

/** Workload 1: the safe default path against Buffer.allocUnsafeSlow, and the floor under it. */
async function runSafe(cfg, log) {
  const pool = new Pool({ maxBytes: 1 << 30 })
  const floorPool = HAS_TRANSFER ? new Pool({ maxBytes: 1 << 30, leakDetection: 'off' }) : null
  try {
    const rows = await measurePath(
      {
        workload: 'small',
        name: 'small cycle, safe path',
        pool,
        alloc: (n) => pool.allocUnsafe(n),
        release: (buf) => pool.release(buf),
        extmemLabel: 'allocUnsafe+release',
        peerLabel: 'Buffer.allocUnsafeSlow',
        peerAlloc: (n) => Buffer.allocUnsafeSlow(n),
        floorPool,
      },
      cfg,
      log,
    )
    rows.push(await measureZeroed(pool, cfg, log))
    if (floorPool !== null) {
      await assertFloorDone(floorPool)
      return rows
    }
    return [
      ...rows.map((r) => ({ ...r, vsFloor: r.vsFloor === undefined ? undefined : null })),
      ...SIZES.map((size) =>
        unavailable({
          workload: 'small',
          name: 'small cycle, floor',
          size,
          unit: 'ns/op',
          extmemLabel: 'view of a pool ArrayBuffer+transfer()',
          peerLabel: 'Buffer.allocUnsafeSlow',
          why: 'no ArrayBuffer.prototype.transfer() in this Node',
        }),
      ),
    ]
  } finally {
    pool.close()
    floorPool?.close()
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

module.exports = { runSafe, runFast, SIZES, extmemCycle, nodeCycle, floorCycle, FloorBuffer, HAS_TRANSFER }
