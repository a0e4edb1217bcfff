'use strict'
// Refusals that are not the cap's: what the OS refuses, and how the core admits a fast-path arena.

const test = require('ava')
const {
  constants: { MAX_LENGTH },
} = require('node:buffer')
const { Pool, OsError, ExtmemError, RefusedError } = require('..')

const TiB = 2 ** 40

// Linux refuses (ENOMEM) an anonymous mapping far beyond RAM and swap under its default
// overcommit heuristic; Node 20 cannot even ask for one (its Buffers end at 4 GiB).
const bigEnough = MAX_LENGTH >= 2 * TiB ? test : test.skip

bigEnough(
  'a mapping the OS refuses is ERR_EXTMEM_OS with syscall and errno, counted apart from the cap, and changes nothing',
  (t) => {
    const pool = new Pool({ maxBytes: 4 * TiB })
    const before = pool.stats()
    const err = t.throws(() => pool.allocUnsafe(2 * TiB), { code: 'ERR_EXTMEM_OS', instanceOf: OsError })
    t.true(err instanceof ExtmemError && !(err instanceof RefusedError), 'an ExtmemError, not a RefusedError')
    t.is(err.syscall, 'mmap')
    t.is(err.errno, -require('node:os').constants.errno.ENOMEM)
    t.is(err.requestedBytes, 2 * TiB)
    t.regex(err.message, /mmap failed \(ENOMEM\)/)
    const after = pool.stats()
    t.deepEqual(after.refused, { ...before.refused, os: before.refused.os + 1 })
    t.is(after.refused.cap, 0, 'not reported as the cap')
    t.is(after.failedAllocations, before.failedAllocations + 1)
    t.like(after, { reservedBytes: before.reservedBytes, inUseBytes: 0, liveBuffers: 0, allocations: 0 })
    pool.allocUnsafe(1024 * 1024).fill(1) // and the pool still works
    pool.close()
  },
)

test('the core admits a fast-path arena as the small Buffers it holds: allowed at warning, refused from critical', (t) => {
  // 100 slots of 8 KiB: each essential 8 KiB Buffer moves utilization by 1 %.
  const pool = new Pool({ maxBytes: 100 * 8192 })
  const held = []
  const to = (level) => {
    while (pool.level !== level) held.push(pool.allocUnsafe(8192, { priority: 'essential' }))
  }
  to('warning')
  t.throws(() => pool.allocUnsafe(65536), { code: 'ERR_EXTMEM_THROTTLED' }, 'a large Buffer is throttled at warning')
  const f = pool.allocFast(100) // takes a 64 KiB arena: admitted as small
  t.is(f.length, 100)
  t.is(pool.stats().fast.arenas, 1)
  pool.releaseFast(f)
  t.is(pool.trim() > 0, true, 'the arena goes back')
  to('critical')
  t.throws(() => pool.allocFast(100), { code: 'ERR_EXTMEM_THROTTLED' }, 'no arena at critical')
  to('shedding')
  t.throws(() => pool.allocFast(100), { code: 'ERR_EXTMEM_EXHAUSTED' }, 'nor at shedding')
  t.is(pool.stats().fast.arenas, 0)
  for (const b of held) pool.release(b)
  pool.close()
})

test('the native hot path answers malformed calls with a status, never a crash', (t) => {
  const native = require('../binding.js')
  const nativePool = new native.NativePool({
    maxBytes: 1024 * 1024,
    warning: 0.7,
    critical: 0.85,
    shedding: 0.95,
    hysteresis: 0.02,
    admission: 'graded',
  })
  const poolRef = nativePool.poolRef()
  t.is(native.hot_alloc({}, 100, false, 0, false), native.STATUS_NOT_POOLED, 'not a pool reference')
  t.is(native.hot_alloc(poolRef, 'x', false, 0, false), native.STATUS_BAD_ARGUMENT, 'a size that is not a number')
  t.is(native.hot_alloc(poolRef, 0, false, 0, false), native.STATUS_BAD_ARGUMENT, 'a size below 1')
  t.is(native.hot_alloc(poolRef, 100), native.STATUS_BAD_ARGUMENT, 'missing arguments')
  t.is(native.hot_release(poolRef, {}, 1), native.STATUS_NOT_POOLED, 'not a Buffer')
  t.is(native.hot_finishRelease(poolRef, new ArrayBuffer(8), 12345, true), native.STATUS_NOT_POOLED, 'no such loan')
  t.like(
    nativePool.stats(),
    { liveBuffers: 0, allocations: 0, failedAllocations: 0, reservedBytes: 0 },
    'and nothing changed',
  )
})
