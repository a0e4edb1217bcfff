'use strict'
// The pool's figures agree with what V8 counts: process.memoryUsage().external moves exactly with
// the pools' externalBytes (within one 64 KiB slab chunk).

const test = require('ava')
const { Pool, defaultPool } = require('..')
const { collectUntil } = require('./helpers')

const CHUNK = 64 * 1024
/** Bytes of a thread cache's block (see crates/extmem-core/src/pool/cache/block.rs). */
const BLOCK_BYTES = require('../binding.js').constants().cache.blockBytes

test.serial('process.memoryUsage().external moves with the sum of the pools externalBytes', async (t) => {
  await collectUntil(() => false, 5)
  const a = new Pool({ maxBytes: 256 * 1024 * 1024 })
  const pools = [a, defaultPool]
  const sum = () => pools.reduce((n, p) => n + p.stats().externalBytes, 0)
  const base = process.memoryUsage().external - sum()
  // V8 also counts the block each pool's thread cache (Node 22+) shares with the core, which the
  // pools' externalBytes do not; the caches open with the first small allocations below.
  const blocks = typeof ArrayBuffer.prototype.transfer === 'function' ? 2 * BLOCK_BYTES : 0
  const check = (when) => {
    const drift = process.memoryUsage().external - base - sum() - blocks
    t.true(Math.abs(drift) <= CHUNK, `${when}: external differs from the pools' externalBytes by ${drift} bytes`)
    for (const p of pools) {
      const s = p.stats()
      t.true(s.externalBytes >= s.requestedBytes)
    }
  }
  const held = []
  for (let i = 0; i < 3000; i++) {
    const pool = i % 2 ? a : defaultPool
    held.push([pool, pool.allocUnsafe(1 + ((i * 7919) % 20000))])
  }
  for (let i = 0; i < 10; i++) held.push([a, a.allocUnsafe(3 * 1024 * 1024)])
  check('after 3010 allocations')
  t.true(sum() > 40 * 1024 * 1024)
  for (let i = 0; i < held.length; i += 2) held[i][0].release(held[i][1])
  check('after releasing half')
  for (let i = 1; i < held.length; i += 2) held[i][0].release(held[i][1])
  check('after releasing all')
  // What remains is the slot ArrayBuffers kept for reuse (Node 22+); trim() lets them go.
  a.trim()
  defaultPool.trim()
  t.true(await collectUntil(() => sum() === 0), 'every external byte leaves once kept ArrayBuffers are collected')
  await collectUntil(() => Math.abs(process.memoryUsage().external - base - blocks) <= CHUNK, 20)
  check('after trim() and GC')
  a.close()
})

test.serial('externalBytes leaves process.memoryUsage().external when a dropped Buffer is reclaimed', async (t) => {
  const pool = new Pool({ maxBytes: 64 * 1024 * 1024 })
  await collectUntil(() => false, 5)
  const base = process.memoryUsage().external
  ;(() => {
    for (let i = 0; i < 20; i++) pool.allocUnsafe(1024 * 1024)
  })()
  t.true(process.memoryUsage().external - base >= 20 * 1024 * 1024 - CHUNK)
  t.true(await collectUntil(() => pool.stats().gcReclaims === 20))
  t.is(pool.stats().externalBytes, 0)
  // V8 lowers its figure when it sweeps the collected ArrayBuffers, which may take another GC.
  await collectUntil(() => Math.abs(process.memoryUsage().external - base) <= CHUNK, 20)
  const drift = process.memoryUsage().external - base
  t.true(Math.abs(drift) <= CHUNK, `external differs from its baseline by ${drift} bytes`)
  pool.close()
})
