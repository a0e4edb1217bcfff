'use strict'
// Lifetimes: what a scope's close() and resize() cost against doing the same by hand.
//   scope close   64 Buffers of 512 B, all released by one scope.close()  vs  64 pool.release() calls
//                 (only the releasing is timed; both sides allocate the same way before it)
//   arena scope   64 Buffers of 1 KiB from one pool.scope({ arena: true }), allocations and close()
//                 timed  vs  64 Buffer.allocUnsafe(1024), dropped to the GC (an event-loop turn
//                 every 64 scopes on both sides, so the GC's work is inside the measurement)
//   resize        a 16 MiB Buffer grown to 32 MiB with pool.resize()  vs  pool.allocUnsafe(32 MiB)
//                 + copy of the 16 MiB + release of the old one (only the growing is timed)
//   hand-off      a 64 KiB / 1 MiB Buffer to a worker thread and back: defaultPool.share() +
//                 postMessage(handle) + adopt() each way  vs  postMessage(buf), which copies it
//                 (structured clone), each way
// Targets: closing costs at most half of the single releases; an arena scope no more than Node's
// Buffers; growing and a 1 MiB hand-off are at least 10x faster.

const { Worker } = require('node:worker_threads')
const { once } = require('node:events')
const { Pool, defaultPool } = require('..')
const { KiB, MiB, alternate, row, assertClean, turn } = require('./common')

const SCOPE_BUFFERS = 64
const SCOPE_SIZE = 512
const GROW_FROM = 16 * MiB
const GROW_TO = 32 * MiB

/** Nanoseconds per Buffer to release `rounds` x 64 Buffers with `releaseAll(pool, bufs, scope)`. */
async function timeReleases(pool, rounds, useScope) {
  let total = 0n
  for (let r = 0; r < rounds; r++) {
    const scope = useScope ? pool.scope() : null
    const bufs = []
    for (let i = 0; i < SCOPE_BUFFERS; i++) {
      const b = useScope ? scope.allocUnsafe(SCOPE_SIZE) : pool.allocUnsafe(SCOPE_SIZE)
      b[0] = i
      bufs.push(b)
    }
    const t0 = process.hrtime.bigint()
    if (useScope) scope.close()
    else for (let i = 0; i < SCOPE_BUFFERS; i++) pool.release(bufs[i])
    total += process.hrtime.bigint() - t0
    if (r % 64 === 63) await turn()
  }
  return Number(total) / (rounds * SCOPE_BUFFERS)
}

const ARENA_SIZE = 1024

/**
 * Nanoseconds per Buffer of `rounds` x 64 Buffers of 1 KiB, allocated and let go: by an arena
 * scope of `pool` and its close(), or (`pool` null) by Buffer.allocUnsafe and the GC.
 */
async function timeArena(pool, rounds) {
  const bufs = Array.from({ length: SCOPE_BUFFERS })
  const t0 = process.hrtime.bigint()
  for (let r = 0; r < rounds; r++) {
    const scope = pool === null ? null : pool.scope({ arena: true })
    for (let i = 0; i < SCOPE_BUFFERS; i++) {
      const b = scope === null ? Buffer.allocUnsafe(ARENA_SIZE) : scope.allocUnsafe(ARENA_SIZE)
      b[0] = i
      bufs[i] = b
    }
    if (scope !== null) scope.close()
    bufs.fill(undefined)
    if (r % 64 === 63) await turn()
  }
  return Number(process.hrtime.bigint() - t0) / (rounds * SCOPE_BUFFERS)
}

/** Microseconds per grow of a 16 MiB Buffer (its pages written) to 32 MiB, `count` times. */
async function timeGrows(pool, count, byResize) {
  let total = 0n
  for (let i = 0; i < count; i++) {
    const buf = pool.allocUnsafe(GROW_FROM)
    buf.fill(i & 0xff)
    const t0 = process.hrtime.bigint()
    let grown
    if (byResize) {
      grown = pool.resize(buf, GROW_TO)
    } else {
      grown = pool.allocUnsafe(GROW_TO)
      buf.copy(grown, 0, 0, GROW_FROM)
      pool.release(buf)
    }
    total += process.hrtime.bigint() - t0
    if (grown[GROW_FROM - 1] !== (i & 0xff)) throw new Error('the grown Buffer lost its bytes')
    pool.release(grown)
    await turn()
  }
  return Number(total) / count / 1000
}

/** A worker that sends back what it gets: the Buffer (copied), or a handle it adopts and shares on. */
function echoWorker() {
  return new Worker(
    `const { parentPort } = require('node:worker_threads')
     const { defaultPool } = require(${JSON.stringify(require.resolve('..'))})
     parentPort.on('message', (m) => {
       if (m.ping !== undefined) {
         parentPort.postMessage({ ping: m.ping + 1 })
       } else if (m.handle) {
         const buf = defaultPool.adopt(m.handle)
         buf[0]++
         parentPort.postMessage({ handle: defaultPool.share(buf) })
       } else {
         m.buf[0]++
         parentPort.postMessage({ buf: m.buf })
       }
     })`,
    { eval: true },
  )
}

/** Microseconds per round trip of a message with no Buffer to `worker` and back: the floor. */
async function timePings(worker, count) {
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < count; i++) {
    worker.postMessage({ ping: i })
    await once(worker, 'message')
  }
  return Number(process.hrtime.bigint() - t0) / count / 1000
}

/** Microseconds per round trip of a `size`-byte Buffer to `worker` and back, `count` times. */
async function timeRoundTrips(worker, size, count, byHandle) {
  let buf = byHandle ? defaultPool.allocUnsafe(size) : Buffer.allocUnsafe(size)
  buf[0] = 0
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < count; i++) {
    worker.postMessage(byHandle ? { handle: defaultPool.share(buf) } : { buf })
    const [reply] = await once(worker, 'message')
    buf = byHandle ? defaultPool.adopt(reply.handle) : reply.buf
  }
  const us = Number(process.hrtime.bigint() - t0) / count / 1000
  if (buf[0] !== count % 256) throw new Error('the Buffer lost a write on its way')
  if (byHandle) defaultPool.release(buf)
  return us
}

/**
 * A row of this workload: `extmem` and `peer` are `[label, samples]`; `target` (a ratio bound,
 * extmem / peer) is optional.
 */
function lifetimesRow(name, size, unit, rounds, extmem, peer, target) {
  const r = row({
    workload: 'lifetimes',
    name,
    size,
    unit,
    kind: 'time',
    rounds,
    extmem: { label: extmem[0], samples: extmem[1] },
    peer: { label: peer[0], samples: peer[1] },
  })
  if (target !== undefined) {
    r.target = `<= ${target}x`
    r.targetMet = r.ratio <= target
  }
  return r
}

async function runLifetimes(cfg) {
  const pool = new Pool({ maxBytes: 512 * MiB, leakDetection: 'off' })
  const rows = []
  try {
    const release = await alternate(
      [
        { key: 'scope', run: () => timeReleases(pool, cfg.scopes, true) },
        { key: 'single', run: () => timeReleases(pool, cfg.scopes, false) },
      ],
      cfg.rounds,
    )
    rows.push(
      lifetimesRow(
        'scope close (64 Buffers)',
        SCOPE_SIZE,
        'ns/Buffer',
        cfg.rounds,
        ['scope.close()', release.scope],
        ['64 x pool.release()', release.single],
        0.5,
      ),
    )
    const arena = await alternate(
      [
        { key: 'arena', run: () => timeArena(pool, cfg.scopes) },
        { key: 'node', run: () => timeArena(null, cfg.scopes) },
      ],
      cfg.rounds,
    )
    rows.push(
      lifetimesRow(
        'arena scope (64 Buffers)',
        ARENA_SIZE,
        'ns/Buffer',
        cfg.rounds,
        ['pool.scope({ arena: true }): allocUnsafe + close()', arena.arena],
        ['64 x Buffer.allocUnsafe(1024), dropped', arena.node],
        1,
      ),
    )
    const grow = await alternate(
      [
        { key: 'resize', run: () => timeGrows(pool, cfg.grows, true) },
        { key: 'copy', run: () => timeGrows(pool, cfg.grows, false) },
      ],
      cfg.rounds,
    )
    rows.push(
      lifetimesRow(
        'resize 16 MiB -> 32 MiB',
        GROW_TO,
        'us/op',
        cfg.rounds,
        ['pool.resize()', grow.resize],
        ['allocUnsafe + copy + release', grow.copy],
        0.1,
      ),
    )
    const worker = echoWorker()
    try {
      for (const size of [64 * KiB, MiB]) {
        const trips = await alternate(
          [
            { key: 'handoff', run: () => timeRoundTrips(worker, size, cfg.trips, true) },
            { key: 'copy', run: () => timeRoundTrips(worker, size, cfg.trips, false) },
            { key: 'ping', run: () => timePings(worker, cfg.trips) },
          ],
          cfg.rounds,
        )
        const handoff = ['share + adopt, each way', trips.handoff]
        const name = 'hand-off to a worker and back'
        rows.push(
          lifetimesRow(
            name,
            size,
            'us/op',
            cfg.rounds,
            handoff,
            ['postMessage(buf) (a copy), each way', trips.copy],
            size === MiB ? 0.1 : undefined,
          ),
          lifetimesRow(`${name} (ref)`, size, 'us/op', cfg.rounds, handoff, [
            'a message with no Buffer, each way (the floor)',
            trips.ping,
          ]),
        )
      }
    } finally {
      await worker.terminate()
    }
    assertClean(pool, 'lifetimes')
  } finally {
    pool.close()
  }
  return rows
}

module.exports = { runLifetimes }
