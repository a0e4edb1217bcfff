'use strict'
// Concurrency and teardown of the process-wide defaultPool. Each scenario runs in a child process
// (./fixtures/concurrency-child.js), so that EXTMEM_MAX_BYTES can give its defaultPool a small cap
// and a crash or a hang cannot take the test runner with it. The child prints one JSON line.

const test = require('ava')
const path = require('node:path')
const { runNode } = require('./helpers')

const CHILD = path.join(__dirname, 'fixtures', 'concurrency-child.js')
const REFUSALS = ['ERR_EXTMEM_EXHAUSTED', 'ERR_EXTMEM_THROTTLED']

const CROSS_THREAD = path.join(__dirname, 'fixtures', 'soundness', 'cross-thread.js')
const HAS_TRANSFER = typeof ArrayBuffer.prototype.transfer === 'function'
/** For tests that need ArrayBuffer.prototype.transfer() (Node 22+; Node 20 copies on postMessage). */
const withTransfer = HAS_TRANSFER ? test.serial : test.serial.skip

/** Runs the cross-thread fixture with `args` (`<own|default> <what to send> <exit|terminate>`). */
function crossThread(args) {
  return runNode(['--expose-gc', CROSS_THREAD, ...args], { EXTMEM_MAX_BYTES: undefined })
}

/** Runs the child with `args`; resolves with its exit code, signal, stdout and stderr. */
function child(args, env = {}, timeoutMs = 60_000) {
  return runNode(['--expose-gc', CHILD, ...args], env, timeoutMs)
}

function result(t, run) {
  t.is(run.signal, null, `the child was not killed (stderr: ${run.stderr})`)
  t.is(run.code, 0, `the child exits with 0 (stderr: ${run.stderr})`)
  t.is(run.stderr, '', 'and writes nothing to stderr')
  return JSON.parse(run.stdout)
}

test.serial(
  'the main thread and two workers hammering defaultPool at its cap keep it within the cap and exact',
  async (t) => {
    const maxBytes = 2 * 1024 * 1024
    const out = result(t, await child(['stress', '3000'], { EXTMEM_MAX_BYTES: '2M' }))
    t.is(out.maxBytes, maxBytes)
    t.is(out.threads.length, 3)
    let refusals = 0
    let allocations = 0
    for (const [i, th] of out.threads.entries()) {
      const who = i === 0 ? 'main thread' : `worker ${i}`
      t.is(th.corrupt, 0, `${who}: every Buffer kept its own bytes until its release`)
      t.is(th.overCap, 0, `${who}: reservedBytes never above maxBytes in ${th.samples} samples`)
      t.is(th.incoherent, 0, `${who}: requestedBytes <= inUseBytes <= reservedBytes in every sample`)
      t.deepEqual(th.badErrors, [], `${who}: every refusal is an Error that carries requestedBytes`)
      for (const code of Object.keys(th.refusals)) t.true(REFUSALS.includes(code), `${who}: a refusal with ${code}`)
      t.true(th.allocations > 1000, `${who} did its share (${th.allocations} allocations)`)
      t.is(th.allocations, th.releases, `${who} released everything it allocated`)
      allocations += th.allocations
      for (const n of Object.values(th.refusals)) refusals += n
    }
    const { sampler, after } = out
    t.true(sampler.samples > 100, `the sampler ran (${sampler.samples} samples)`)
    t.is(sampler.overCap, 0, 'the sampler never saw reservedBytes above maxBytes')
    t.is(sampler.incoherent, 0)
    t.true(sampler.maxReserved <= maxBytes)
    t.true(after.refused.cap > 0, 'the threads pushed the pool to its hard cap')
    t.true(
      out.threads.every((th) => (th.refusals.ERR_EXTMEM_EXHAUSTED ?? 0) > 0),
      'every thread met ERR_EXTMEM_EXHAUSTED',
    )
    // Afterwards, every figure balances: nothing is lent, every refusal and allocation is counted.
    t.like(after, { inUseBytes: 0, requestedBytes: 0, liveBuffers: 0, gcReclaims: 0 })
    t.is(after.allocations, allocations)
    t.is(after.releases, allocations)
    t.is(after.failedAllocations, refusals)
    t.is(after.refused.cap + after.refused.throttled + after.refused.shedding, refusals)
    t.true(after.reservedBytes <= maxBytes)
    t.true(after.small.classes.every((c) => c.inUse === 0))
    t.is(after.large.live, 0)
  },
)

test.serial(
  'workers terminated while holding or churning Buffers give back all memory that provably stayed in them',
  async (t) => {
    const maxBytes = 64 * 1024 * 1024
    const out = result(t, await child(['terminate'], { EXTMEM_MAX_BYTES: '64M' }))
    const [held, ...churned] = out.rounds
    t.is(held.holding, 3012, 'one worker held 3000 small Buffers and twelve of 1 MiB (some retained twice)')
    t.is(held.liveDuring, 3012)
    t.true(held.inUseDuring > 12 * 1024 * 1024)
    t.is(held.parkedAfter, 0, 'Buffers the terminated worker still referenced all came back')
    t.is(held.liveAfter, 0)
    t.is(churned.length, 4, 'four workers were terminated in the middle of allocating and releasing')
    const { baseline, after } = out
    // A worker terminated in the middle of a loop drops the Buffers only its stack referenced; the
    // GC may collect them before Node runs their finalizers at teardown, and then nothing can prove
    // their memory did not move to another thread first: those loans are parked, not re-lent.
    t.is(after.liveBuffers - baseline.liveBuffers, after.parkedBuffers, 'every loan ended or was parked')
    t.is(after.inUseBytes, after.parkedBytes)
    t.is(
      after.allocations - after.parkedBuffers,
      after.releases + after.gcReclaims,
      'the others ended, by release or by reclaim',
    )
    t.true(after.gcReclaims >= 3012, 'the held Buffers were reclaimed')
    // A parked slot pins its 64 KiB chunk; the refill takes 1 MiB at a time.
    const MiB = 1024 * 1024
    const pinned = after.parkedBytes + after.parkedBuffers * 64 * 1024
    const refillable = Math.floor((maxBytes - pinned) / MiB) * MiB
    t.true(
      out.refilledBytes >= refillable,
      `all but the parked memory can be allocated again (${out.refilledBytes} of ${maxBytes}, ${pinned} pinned)`,
    )
    t.is(out.refillError, 'ERR_EXTMEM_EXHAUSTED')
    t.like(out.final, { inUseBytes: after.parkedBytes, liveBuffers: after.parkedBuffers })
  },
)

for (const how of ['exit', 'natural']) {
  const title =
    how === 'exit'
      ? 'a process that calls process.exit(0) with live Buffers in two threads exits cleanly'
      : 'a process that ends naturally with live Buffers in two threads exits cleanly'
  test.serial(title, async (t) => {
    const out = result(t, await child(['exit', how]))
    t.deepEqual(out, { live: 4, how }, 'two Buffers of the main thread and two of a worker were out')
  })
}

test.serial(
  "a process that exits from inside a 'watermark' listener, with a worker's Buffers out, exits cleanly",
  async (t) => {
    const pkg = JSON.stringify(path.join(__dirname, '..'))
    const script = `
    const { Worker } = require('node:worker_threads')
    const { defaultPool } = require(${pkg})
    const held = []
    defaultPool.on('watermark', (e) => {
      if (e.level !== 'critical') return
      console.log(JSON.stringify({ level: e.level, live: defaultPool.stats().liveBuffers }))
      process.exit(0)
    })
    const w = new Worker(\`
      const extmem = require(${pkg})
      const mine = []
      for (let i = 0; i < 40; i++) mine.push(extmem.allocUnsafe(12288, { priority: 'essential' }))
      setInterval(() => {}, 1000)
    \`, { eval: true })
    w.on('online', () => setTimeout(() => {
      for (let i = 0; i < 50; i++) held.push(defaultPool.allocUnsafe(12288, { priority: 'essential' }))
    }, 200))
  `
    const run = await runNode(['-e', script], { EXTMEM_MAX_BYTES: String(100 * 12288) }, 30_000)
    const out = result(t, run)
    t.is(out.level, 'critical')
    t.true(out.live >= 85, `Buffers of both threads were out (${out.live})`)
  },
)

// Pooled memory that leaves its thread stays valid and is never lent again while reachable.
//
// A worker sends pooled memory to the main thread and then ends, by itself or terminated. The
// memory must stay readable and writable in the main thread with the worker's bytes; from the
// default pool it is parked (stats().parkedBuffers, live() entries with parked: true), never lent
// to a new Buffer. Memory that never left the worker comes back when it ends.

const SENDS = [
  {
    send: 'post-4000',
    size: 4000,
    what: 'a 4000-byte Buffer of a reused slot with postMessage(buf.buffer, [buf.buffer])',
  },
  {
    send: 'post-100',
    size: 100,
    what: 'a 100-byte Buffer of a reused slot with postMessage(buf.buffer, [buf.buffer])',
  },
  { send: 'transfer-1048576', size: 1 << 20, what: 'a 1 MiB Buffer with buf.buffer.transfer() and postMessage' },
  { send: 'transfer-100', size: 100, what: 'a 100-byte Buffer with buf.buffer.transfer() and postMessage' },
]

for (const pool of ['own', 'default']) {
  for (const { send, size, what } of SENDS) {
    for (const end of ['exit', 'terminate']) {
      const ends = end === 'exit' ? 'then exits' : 'then is terminated'
      const title =
        pool === 'own'
          ? `a worker that sends ${what} and ${ends} leaves that memory intact and usable in the main thread (own Pool)`
          : `a worker that sends ${what} and ${ends} leaves that memory intact, parked and never re-lent (defaultPool)`
      withTransfer(title, async (t) => {
        const out = result(t, await crossThread([pool, send, end]))
        t.is(out.workerError, undefined, 'the worker sent its memory without an error')
        t.is(out.size, size)
        t.is(out.receivedBytes, out.sentBytes, 'the main thread received the whole ArrayBuffer')
        t.true(out.receivedBytes >= size)
        t.is(out.notIntact, 0, "after the worker ended, every byte still holds the worker's fill (0xab)")
        t.is(out.notWritten, 0, 'and every byte can be written')
        t.is(out.allocated, 64)
        t.is(out.startedNonZero, 0, 'zero-filled default-pool Buffers allocated afterwards start zeroed')
        t.is(out.aliased, 0, 'and none of them changes when the received memory is written (no aliasing)')
        if (pool === 'default') {
          t.true(
            out.parkedBuffers >= 1,
            `stats().parkedBuffers counts the memory that left its thread (${out.parkedBuffers})`,
          )
          t.true(out.parkedInLive >= 1, 'live() lists it with parked: true')
        }
      })
    }
  }
}

for (const end of ['exit', 'terminate']) {
  const ends = end === 'exit' ? 'then exits' : 'then is terminated'
  test.serial(
    `a worker that holds defaultPool Buffers it never sent and ${ends} gives them all back, and parks nothing`,
    async (t) => {
      const out = result(t, await crossThread(['default', 'hold', end]))
      t.is(out.workerError, undefined)
      t.is(out.holding, 5, 'the worker held small (one of a reused slot) and large Buffers')
      t.is(out.liveInWorker, out.liveBefore + 5)
      t.is(out.liveAfter, out.liveBefore, 'after its exit and a few GC turns, stats().liveBuffers is back where it was')
      // parkedBuffers is new; where the field is missing nothing can have been parked either.
      t.is(out.parkedBuffers ?? 0, 0, 'memory that did not leave its thread is not parked')
    },
  )
}
