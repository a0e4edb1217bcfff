'use strict'
// What happens to Buffers nobody releases (the GC safety net) and to a pool that is closed.

const test = require('ava')
const { readFileSync } = require('node:fs')
const { Pool } = require('..')
const { collectUntil, stamp, holds, mappingLen } = require('./helpers')

test.serial('a Buffer dropped without release is reclaimed after gc() and a few event-loop turns', async (t) => {
  const pool = new Pool({ maxBytes: 16 * 1024 * 1024 })
  const kept = pool.alloc(4096)
  ;(() => {
    for (const size of [100, 8192, 70000]) pool.allocUnsafe(size).fill(1)
  })()
  t.is(pool.stats().liveBuffers, 4)
  t.true(await collectUntil(() => pool.stats().gcReclaims === 3), 'three dropped Buffers were reclaimed')
  const s = pool.stats()
  t.is(s.liveBuffers, 1)
  t.is(s.releases, 0)
  t.is(s.requestedBytes, 4096)
  t.is(kept.length, 4096, 'a reachable Buffer is never reclaimed')
  t.is(pool.release(kept), 0)
  t.is(pool.stats().gcReclaims, 3, 'a released Buffer is not reclaimed again when collected')
  pool.close()
})

test.serial("a released Buffer's finalizer does nothing when it runs later", async (t) => {
  const pool = new Pool({ maxBytes: 16 * 1024 * 1024 })
  ;(() => {
    for (let i = 0; i < 50; i++) pool.release(pool.allocUnsafe(512))
  })()
  // The memory was reused by a new loan before the old Buffers' finalizers run.
  const live = pool.allocUnsafe(512)
  stamp(live, 9)
  await collectUntil(() => false, 10)
  const s = pool.stats()
  t.is(s.gcReclaims, 0)
  t.is(s.releases, 50)
  t.is(s.liveBuffers, 1)
  t.true(holds(live, 9))
  t.is(pool.refCount(live), 1)
  pool.close()
})

/** Whether any of this process's mappings (/proc/self/maps) overlaps [address, address + size). */
function mapped(address, size) {
  const end = address + BigInt(size)
  for (const [, from, to] of readFileSync('/proc/self/maps', 'utf8').matchAll(/^([0-9a-f]+)-([0-9a-f]+) /gm)) {
    if (BigInt(`0x${from}`) < end && address < BigInt(`0x${to}`)) return true
  }
  return false
}

for (const size of [300, 1024 * 1024]) {
  test.serial(`a ${size}-byte Buffer outlives its Pool object and is still reclaimed`, async (t) => {
    // The Pool object becomes garbage at once; the Buffer keeps its memory valid. Once the Buffer is
    // dropped too, the GC's finalizers end its loan and the pool's memory (its slab chunk or the
    // Buffer's own mapping) goes back to the OS: the address range is no longer mapped.
    let poolCollected = false
    const registry = new FinalizationRegistry(() => (poolCollected = true))
    let address
    let buf = (() => {
      const pool = new Pool({ maxBytes: 4 * 1024 * 1024 })
      registry.register(pool, 'pool')
      const b = pool.alloc(size)
      address = pool.addressOf(b)
      return b
    })()
    stamp(buf, 3)
    t.true(mapped(address, size), 'the memory is mapped while the Buffer lives')
    t.true(await collectUntil(() => poolCollected), 'the Pool object was collected while its Buffer lives')
    t.true(holds(buf, 3), 'the memory stays valid while the Buffer lives')
    t.true(mapped(address, size))
    buf = null
    t.true(await collectUntil(() => !mapped(address, size)), "the dropped Buffer's memory was given back to the OS")
  })
}

test.serial("a released Buffer's late finalizer never ends a newer loan that reuses its token", async (t) => {
  // Loan tokens reuse keys and wrap their generation every 8192 loans; the finalizer of a released
  // Buffer runs turns later. It must find nothing to reclaim, whatever loan holds the key now.
  const pool = new Pool({ maxBytes: 64 << 20, leakDetection: 'off' })
  for (const size of [64, 100000]) {
    ;(() => {
      for (let i = 0; i < 8192; i++) pool.release(pool.allocUnsafe(size))
    })()
    const live = pool.allocUnsafe(size)
    live.fill(0xaa)
    await collectUntil(() => false, 6)
    const next = pool.allocUnsafe(size)
    next.fill(0x55)
    t.true(
      live.every((b) => b === 0xaa),
      `size ${size}: the live Buffer kept its bytes`,
    )
    t.true(pool.isPooled(live))
    t.like(pool.stats(), { liveBuffers: 2, gcReclaims: 0 })
    pool.release(live)
    pool.release(next)
  }
  pool.close()
})

test('close() refuses new loans and gives free memory back; Buffers still out stay valid until released', (t) => {
  const pool = new Pool({ maxBytes: 16 * 1024 * 1024 })
  const small = pool.alloc(100)
  const large = pool.alloc(100000)
  small.fill(7)
  large.fill(9)
  const view = large.subarray(5)
  pool.release(pool.alloc(50))
  pool.release(pool.alloc(300000))
  t.is(pool.close(), 2, 'two Buffers are still out')
  t.true(pool.closed)
  t.true(small.every((b) => b === 7) && large.every((b) => b === 9), 'their bytes are untouched')
  t.is(view.length, 99995)
  const s = pool.stats()
  t.like(s, { closed: true, liveBuffers: 2, large: { live: 1, cached: 0 } })
  t.is(s.reservedBytes, 64 * 1024 + mappingLen(100000), 'only the memory of the Buffers still out is held')
  for (const call of [
    () => pool.alloc(1),
    () => pool.allocUnsafe(10),
    () => pool.retain(large),
    () => pool.trim(),
    () => pool.addressOf(small),
  ]) {
    t.throws(call, { code: 'ERR_EXTMEM_CLOSED' })
  }
  t.is(pool.refCount(small), 1)
  t.true(pool.isPooled(large))
  t.is(pool.release(small), 0)
  t.is(small.length, 0, 'release still detaches')
  t.is(pool.release(large), 0)
  t.is(view.length, 0)
  t.like(pool.stats(), { liveBuffers: 0, inUseBytes: 0, reservedBytes: 0, releases: 4 })
  t.throws(() => pool.release(small), { code: 'ERR_EXTMEM_RELEASED' })
  t.is(pool.close(), 0, 'closing twice is harmless')
})

test('trim() gives back cached mappings and empty chunks, and says how many bytes', (t) => {
  const pool = new Pool({ maxBytes: 64 * 1024 * 1024 })
  const bufs = [pool.alloc(100), pool.alloc(2 * 1024 * 1024), pool.alloc(5000)]
  for (const b of bufs) pool.release(b)
  const before = pool.stats()
  t.is(before.large.cached, 1)
  t.is(before.large.cachedBytes, 2 * 1024 * 1024)
  t.is(before.reservedBytes, 2 * 64 * 1024 + 2 * 1024 * 1024)
  t.is(pool.trim(), before.reservedBytes)
  t.like(pool.stats(), { reservedBytes: 0, large: { live: 0, cached: 0, cachedBytes: 0 } })
  t.is(pool.trim(), 0)
  pool.close()
})

test.serial(
  'Pool objects dropped without close() leave no listener behind: level changes stay as cheap, their events as prompt, the heap as it was',
  async (t) => {
    const { setImmediate: turn } = require('node:timers/promises')
    const name = `dropped-objects-${process.pid}`
    const keeper = new Pool({ name, maxBytes: 8 << 20, leakDetection: 'off', threadCache: false })
    const settle = async () => {
      for (let i = 0; i < 8; i++) {
        globalThis.gc()
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    }
    /** The fastest of 7 runs of 20 level round trips (ms), and whether each run's 40 events arrived within one turn. */
    const roundTrips = async () => {
      let best = Infinity
      let prompt = true
      for (let run = 0; run < 7; run++) {
        let events = 0
        const on = () => events++
        keeper.on('watermark', on)
        const t0 = process.hrtime.bigint()
        for (let i = 0; i < 20; i++) keeper.release(keeper.allocUnsafe(7 << 20)) // normal -> critical -> normal
        best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6)
        await turn()
        if (events !== 40) prompt = false
        while (events < 40) await turn()
        keeper.off('watermark', on)
      }
      return { best, prompt }
    }
    await settle()
    const before = await roundTrips()
    const heapBefore = process.memoryUsage().heapUsed
    for (let i = 0; i < 20_000; i++) {
      new Pool({ name, threadCache: false }) // eslint-disable-line no-new
      new Pool({ maxBytes: 1 << 20, threadCache: false }) // eslint-disable-line no-new
      if (i % 2000 === 0) await turn()
    }
    await settle()
    const after = await roundTrips()
    const heapAfter = process.memoryUsage().heapUsed
    t.true(before.prompt && after.prompt, 'every run’s events arrived within one event-loop turn')
    // 2× with 1 ms for the timer's own grain at these sub-millisecond figures.
    t.true(after.best <= 2 * before.best + 1, `20 round trips: ${after.best} ms after, ${before.best} ms before`)
    t.true(heapAfter <= heapBefore * 1.1, `heap used: ${heapAfter} after, ${heapBefore} before`)
  },
)
