'use strict'
// Per-thread slot caches (Node 22+): a thread lends and takes back slots the core handed it with
// no native call. What must still hold: every figure of stats() is exact from any thread, cached
// slots count as reserved and not in use, caches give their slots back on trim(), at 'critical',
// before a refusal at the cap, when their thread ends; a Buffer lent from a cache and dropped is a
// GC reclaim; and two threads at random leave a pool that balances to zero.

const test = require('ava')
const { once } = require('node:events')
const { Worker } = require('node:worker_threads')
const { Pool } = require('..')
const { prng, stamp, holds, collectUntil, mappingLen } = require('./helpers')

const HAS_CACHE = typeof ArrayBuffer.prototype.transfer === 'function'
const cacheTest = HAS_CACHE ? test : test.skip
const KiB = 1024
const MiB = 1024 * KiB
let names = 0
const uniqueName = () => `thread-cache-${process.pid}-${names++}`

/** The stats of the class whose slots are `size` bytes. */
const classOf = (pool, size) => pool.stats().small.classes.find((c) => c.size === size)

/** Runs `body` (a function's source, given `extmem`, `name` and `port`) in a worker. */
function worker(name, body) {
  const code = `
    const { parentPort } = require('node:worker_threads')
    const extmem = require(${JSON.stringify(require.resolve('..'))})
    const name = ${JSON.stringify(name)}
    ;(${body})(extmem, name, parentPort)
  `
  return new Worker(code, { eval: true })
}

cacheTest('a cache hit lends a slot the core handed this thread; cached slots are reserved, not in use', (t) => {
  const pool = new Pool({ maxBytes: 64 * MiB })
  const a = pool.allocUnsafe(4000)
  let s = pool.stats()
  t.like(s, { liveBuffers: 1, inUseBytes: 4096, requestedBytes: 4000, allocations: 1, releases: 0 })
  t.true(s.small.cachedSlots > 0, 'the core handed this thread more slots than the one lent')
  t.is(s.small.cachedBytes, s.small.cachedSlots * 4096)
  t.like(classOf(pool, 4096), { inUse: 1, cached: s.small.cachedSlots })
  t.true(s.reservedBytes >= s.inUseBytes + s.small.cachedBytes)
  const reserved = s.reservedBytes
  pool.release(a)
  t.is(a.length, 0, 'released into the cache, and detached all the same')
  s = pool.stats()
  t.like(s, { liveBuffers: 0, inUseBytes: 0, requestedBytes: 0, allocations: 1, releases: 1 })
  for (let i = 0; i < 1000; i++) {
    const b = pool.alloc(4000)
    if (!b.every((x) => x === 0)) t.fail(`cycle ${i}: alloc() from the cache is not zero-filled`)
    b.fill(0xaa)
    pool.release(b)
  }
  s = pool.stats()
  t.like(s, { liveBuffers: 0, inUseBytes: 0, allocations: 1001, releases: 1001, reservedBytes: reserved })
  t.is(classOf(pool, 4096).inUse, 0)
  pool.close()
  t.like(pool.stats(), { reservedBytes: 0 })
})

cacheTest('alloc() from a cache zero-fills the whole slot, also after a Buffer wrote all of it', (t) => {
  const pool = new Pool({ maxBytes: 64 * MiB })
  for (let i = 0; i < 64; i++) {
    const dirty = pool.allocUnsafe(1000)
    new Uint8Array(dirty.buffer).fill(0xee)
    pool.release(dirty)
    const clean = pool.alloc(700)
    t.true(
      new Uint8Array(clean.buffer).every((x) => x === 0),
      'the slot behind it too',
    )
    pool.release(clean)
  }
  pool.close()
})

cacheTest('stats() in another thread counts the Buffers a worker lent from its cache, exactly', async (t) => {
  const name = uniqueName()
  const pool = new Pool({ name, maxBytes: 64 * MiB })
  const before = pool.stats()
  const w = worker(name, (extmem, name, port) => {
    // Kept reachable and running: a Pool object that is collected, or a thread that ends,
    // takes its cache with it.
    const pool = (globalThis.pool = new extmem.Pool({ name }))
    setInterval(() => {}, 1000)
    const held = []
    for (let i = 0; i < 10; i++) held.push(pool.allocUnsafe(1000))
    port.postMessage(pool.stats())
    port.once('message', () => {
      for (const b of held) pool.release(b)
      port.postMessage(pool.stats())
    })
  })
  const [theirs] = await once(w, 'message')
  const mine = pool.stats()
  t.like(mine, {
    liveBuffers: before.liveBuffers + 10,
    requestedBytes: before.requestedBytes + 10000,
    allocations: before.allocations + 10,
    inUseBytes: theirs.inUseBytes,
    reservedBytes: theirs.reservedBytes,
  })
  t.true(theirs.small.cachedSlots > 0)
  t.is(mine.small.cachedSlots, theirs.small.cachedSlots)
  w.postMessage('release')
  const [after] = await once(w, 'message')
  t.like(pool.stats(), { liveBuffers: 0, inUseBytes: 0, releases: before.releases + 10 })
  t.is(after.small.cachedSlots, pool.stats().small.cachedSlots)
  await w.terminate()
})

cacheTest("trim() gives this thread's cached slots back at once and asks other threads' caches", async (t) => {
  const name = uniqueName()
  const pool = new Pool({ name, maxBytes: 64 * MiB })
  pool.release(pool.allocUnsafe(100))
  const w = worker(name, (extmem, name, port) => {
    const pool = new extmem.Pool({ name })
    pool.release(pool.allocUnsafe(2000))
    port.postMessage(pool.stats().small.cachedSlots)
    port.on('message', () => {
      // Its next call sees the request and flushes; this allocation then goes the native way.
      const b = pool.allocUnsafe(2000)
      port.postMessage(pool.stats().small.cachedSlots)
      pool.release(b)
    })
  })
  const [both] = await once(w, 'message')
  t.is(both, pool.stats().small.cachedSlots)
  pool.trim()
  const left = pool.stats().small.cachedSlots
  t.true(left > 0 && left < both, "this thread's slots are back at once; the worker's wait for its next call")
  w.postMessage('go')
  const [after] = await once(w, 'message')
  t.is(after, 0, 'no cache holds a slot any more')
  await w.terminate()
})

for (const nextCall of ['a small allocation', 'a large allocation', 'a release']) {
  cacheTest(
    `a flush request reaches another thread's cache at its next call (${nextCall}), whatever calls ran in between`,
    async (t) => {
      const name = uniqueName()
      const pool = new Pool({ name, maxBytes: 64 * MiB, admission: 'cap', leakDetection: 'off' })
      const w = worker(name, (extmem, name, port) => {
        const pool = new extmem.Pool({ name, leakDetection: 'off' })
        const fill = () => {
          for (const size of [100, 1000, 4000]) {
            const bs = []
            for (let i = 0; i < 40; i++) bs.push(pool.allocUnsafe(size))
            for (const b of bs) pool.release(b)
          }
        }
        fill()
        let keep = pool.allocUnsafe(50_000)
        port.postMessage(pool.stats().small.cachedBytes)
        port.on('message', (call) => {
          if (call === 'a small allocation') pool.release(pool.allocUnsafe(2000))
          else if (call === 'a large allocation') pool.release(pool.allocUnsafe(100_000))
          else pool.release(keep)
          // What this thread's cache holds right after that one call (none of it was refilled:
          // the call above needs no slot of the classes it kept).
          port.postMessage(pool.stats().small.cachedBytes)
        })
      })
      const [before] = await once(w, 'message')
      t.true(before > 64 * KiB, 'the worker keeps slots')
      pool.trim()
      // Calls in this thread after the request: each opens the gates again.
      for (let i = 0; i < 10; i++) pool.release(pool.allocUnsafe(100 + i))
      pool.release(pool.allocUnsafe(20_000))
      t.true(pool.stats().small.cachedBytes >= before, "the worker's slots wait for its next call")
      w.postMessage(nextCall)
      const [after] = await once(w, 'message')
      t.true(after <= 4 * KiB, `the worker gave its slots back at its next call (${after} bytes left)`)
      await w.terminate()
    },
  )
}

cacheTest(
  "a refusal at the cap that only other threads' cached slots cause says so, and succeeds after their next call",
  async (t) => {
    const name = uniqueName()
    const pool = new Pool({ name, maxBytes: 8 * MiB, admission: 'cap', leakDetection: 'off' })
    const w = worker(name, (extmem, name, port) => {
      const pool = new extmem.Pool({ name, leakDetection: 'off' })
      for (let n = 8; n <= 8192; n = Math.ceil(n * 1.25)) {
        const bs = []
        for (let i = 0; i < 70; i++) bs.push(pool.allocUnsafe(n))
        for (const b of bs) pool.release(b)
      }
      port.postMessage(pool.stats().small.cachedBytes)
      port.on('message', () => {
        pool.release(pool.allocUnsafe(50_000))
        port.postMessage(pool.stats().small.cachedBytes)
      })
    })
    const [cached] = await once(w, 'message')
    const held = pool.allocUnsafe(3 * MiB)
    // Fits only once the worker's cached slots are back.
    const ask = 8 * MiB - 3 * MiB - 64 * KiB
    const err = t.throws(() => pool.allocUnsafe(ask), { code: 'ERR_EXTMEM_EXHAUSTED' })
    t.is(err.cachedElsewhereBytes, cached, "the refusal says how many bytes the worker's cache holds")
    t.regex(err.message, /other threads' caches hold \d+ bytes/)
    // Calls here reopen the gates; the request stands all the same.
    pool.release(pool.allocUnsafe(100))
    t.throws(() => pool.allocUnsafe(ask), { code: 'ERR_EXTMEM_EXHAUSTED' })
    w.postMessage('one call')
    const [after] = await once(w, 'message')
    t.is(after, 0)
    const got = pool.allocUnsafe(ask)
    t.is(got.length, ask)
    pool.release(got)
    pool.release(held)
    await w.terminate()
  },
)

cacheTest('at critical every cache gives its slots back', (t) => {
  const pool = new Pool({ maxBytes: 16 * MiB })
  const small = [pool.allocUnsafe(500), pool.allocUnsafe(500)]
  pool.release(small[0])
  t.true(pool.stats().small.cachedSlots > 0)
  const big = pool.allocUnsafe(14 * MiB)
  t.is(pool.level, 'critical')
  // The next call into the cache sees the request.
  pool.release(small[1])
  t.is(pool.stats().small.cachedSlots, 0)
  pool.release(big)
  t.is(pool.level, 'normal')
  t.like(pool.stats(), { liveBuffers: 0, inUseBytes: 0 })
  pool.close()
})

cacheTest('a refusal at the cap first gives back the slots this thread keeps, then succeeds, uncounted', (t) => {
  const pool = new Pool({ maxBytes: 4 * MiB, admission: 'cap' })
  pool.release(pool.allocUnsafe(4096))
  t.true(pool.stats().small.cachedSlots > 0, 'a 64 KiB chunk is held by the cache')
  const big = pool.allocUnsafe(4 * MiB - 32 * KiB)
  t.like(pool.stats(), { failedAllocations: 0, reservedBytes: 4 * MiB - 32 * KiB })
  t.is(pool.stats().refused.cap, 0)
  t.is(pool.stats().small.cachedSlots, 0)
  pool.release(big)
  pool.close()
})

cacheTest(
  'a Buffer lent from a cache and dropped is a GC reclaim; the slots cached beside it stay exact',
  async (t) => {
    const pool = new Pool({ maxBytes: 64 * MiB, leakDetection: 'off' })
    const kept = [pool.allocUnsafe(300), pool.allocUnsafe(300)]
    ;(() => {
      pool.allocUnsafe(300).fill(1)
    })()
    const slot = pool.stats().inUseBytes / 3
    const cached = pool.stats().small.cachedSlots
    t.true(await collectUntil(() => pool.stats().gcReclaims === 1))
    t.like(pool.stats(), { liveBuffers: 2, inUseBytes: 2 * slot })
    t.is(pool.stats().small.cachedSlots, cached, 'the reclaimed slot went back to the core, not the cache')
    for (const b of kept) pool.release(b)
    const s = pool.stats()
    t.like(s, { liveBuffers: 0, inUseBytes: 0, requestedBytes: 0, allocations: 3, releases: 2, gcReclaims: 1 })
    const c = classOf(pool, slot)
    t.is(c.inUse, 0)
    t.is(c.free + c.cached, Math.floor((64 * KiB) / slot))
    pool.close()
  },
)

cacheTest(
  'large Buffers are lent from the cache too: the same mapping again with no native call, exact figures, a GC reclaim when dropped, all back on trim()',
  async (t) => {
    const pool = new Pool({ maxBytes: 64 * MiB, leakDetection: 'off', admission: 'cap' })
    const len = mappingLen(100_000)
    const a = pool.allocUnsafe(100_000)
    stamp(a, 1)
    const at = pool.addressOf(a)
    let s = pool.stats()
    t.like(s, { liveBuffers: 1, inUseBytes: len, requestedBytes: 100_000 })
    t.like(s.large, { live: 1 })
    pool.release(a)
    t.is(a.length, 0, 'detached on release, as any pooled Buffer')
    s = pool.stats()
    t.like(s, { liveBuffers: 0, inUseBytes: 0, requestedBytes: 0, releases: 1 })
    t.like(s.large, { live: 0 })
    t.true(s.large.cached >= 1 && s.large.cachedBytes >= len, 'the mapping stays cached, reserved')
    const b = pool.allocUnsafe(99_000)
    t.is(pool.addressOf(b), at, 'the same mapping again (the most recently released)')
    t.is(b.buffer.byteLength, len, "its ArrayBuffer shows the class's mapping")
    const z = pool.alloc(100_000)
    t.true(
      z.every((x) => x === 0),
      'alloc() zero-fills',
    )
    t.true(
      new Uint8Array(z.buffer).every((x) => x === 0),
      'all of the mapping its ArrayBuffer shows',
    )
    pool.release(z)
    // Checked against the loan: retain makes it ordinary, release still ends it exactly.
    t.is(pool.retain(b), 2)
    t.is(pool.release(b), 1)
    t.is(pool.release(b), 0)
    ;(() => {
      pool.allocUnsafe(100_000).fill(7)
    })()
    t.true(await collectUntil(() => pool.stats().gcReclaims === 1), 'a dropped one is a GC reclaim')
    s = pool.stats()
    t.like(s, { liveBuffers: 0, inUseBytes: 0, requestedBytes: 0, gcReclaims: 1 })
    t.like(s.large, { live: 0 })
    const freed = pool.trim()
    t.is(freed, s.reservedBytes, 'trim() gives every cached mapping back and says how much')
    t.like(pool.stats(), { reservedBytes: 0 })
    t.like(pool.stats().large, { cached: 0, cachedBytes: 0 })
    pool.close()
  },
)

cacheTest('retain, refCount, resize and share make a cache-served Buffer an ordinary loan', (t) => {
  const name = uniqueName()
  const pool = new Pool({ name, maxBytes: 64 * MiB })
  const a = pool.allocUnsafe(200)
  t.is(pool.retain(a), 2)
  t.is(pool.release(a), 1)
  t.is(pool.release(a), 0)
  t.is(a.length, 0)
  const b = pool.allocUnsafe(200)
  stamp(b, 7)
  t.is(pool.refCount(b), 1)
  const c = pool.resize(b, 5000)
  t.is(b.length, 0, 'the old Buffer is detached')
  t.true(holds(c.subarray(0, 200), 7), 'resize kept the first 200 bytes')
  const handle = pool.share(c)
  const d = pool.adopt(handle)
  t.is(d.length, 5000)
  pool.release(d)
  t.like(pool.stats(), { liveBuffers: 0, inUseBytes: 0, requestedBytes: 0 })
})

cacheTest(
  'a worker terminated holding Buffers lent from its cache and slots in it gives all back, and parks nothing',
  async (t) => {
    const name = uniqueName()
    const pool = new Pool({ name, maxBytes: 64 * MiB })
    const w = worker(name, (extmem, name, port) => {
      const pool = new extmem.Pool({ name })
      const held = []
      for (let i = 0; i < 40; i++) held.push(pool.allocUnsafe(1 + ((i * 397) % 8000)))
      // Large ones too (mappings lent from the cache), some given back to it.
      for (let i = 0; i < 8; i++) held.push(pool.allocUnsafe(20_000 + i * 30_000))
      for (let i = 0; i < 48; i += 2) pool.release(held[i])
      globalThis.held = held
      port.postMessage(pool.stats())
      setInterval(() => {}, 1000)
    })
    const [s] = await once(w, 'message')
    t.is(s.liveBuffers, 24)
    t.true(s.small.cachedSlots > 0)
    t.true(s.large.cached > 0)
    await w.terminate()
    const clean = () => {
      const now = pool.stats()
      return now.liveBuffers === 0 && now.small.cachedSlots === 0 && now.large.live === 0
    }
    t.true(await collectUntil(clean))
    t.like(pool.stats(), { inUseBytes: 0, requestedBytes: 0, parkedBuffers: 0 })
    const c = pool.stats().small.classes
    t.true(c.every((k) => k.inUse === 0 && k.cached === 0))
  },
)

cacheTest(
  'two threads at random (alloc, release, retain, drop, trim) keep a named pool exact, and it balances to zero',
  async (t) => {
    const name = uniqueName()
    const pool = new Pool({ name, maxBytes: 256 * MiB, leakDetection: 'off' })
    const run = (extmem, name, seed, ops, prng) => {
      const pool = new extmem.Pool({ name, leakDetection: 'off' })
      const rand = prng(seed)
      const live = []
      let dropped = 0
      for (let i = 0; i < ops; i++) {
        const r = rand()
        if (r < 0.45 || live.length === 0) {
          const size = rand() < 0.05 ? 8193 + Math.floor(rand() * 100000) : 1 + Math.floor(rand() * 8192)
          const b = rand() < 0.5 ? pool.alloc(size) : pool.allocUnsafe(size)
          b[0] = i & 0xff
          live.push({ b, refs: 1, tag: i & 0xff })
        } else if (r < 0.85) {
          const k = Math.floor(rand() * live.length)
          const e = live[k]
          if (e.b[0] !== e.tag) throw new Error(`a live Buffer changed under its owner (${e.b[0]} != ${e.tag})`)
          if (--e.refs === 0) live.splice(k, 1)
          pool.release(e.b)
        } else if (r < 0.93) {
          const e = live[Math.floor(rand() * live.length)]
          e.refs = pool.retain(e.b)
        } else if (r < 0.97) {
          const e = live.splice(Math.floor(rand() * live.length), 1)[0]
          if (e.refs === 1) dropped++
          else while (e.refs-- > 0) pool.release(e.b)
        } else {
          pool.trim()
        }
      }
      for (const e of live) while (e.refs-- > 0) pool.release(e.b)
      return dropped
    }
    const w = worker(
      name,
      `(extmem, name, port) => {
      const { prng, collectUntil } = require(${JSON.stringify(require.resolve('./helpers'))})
      const dropped = (${run})(extmem, name, 99, 6000, prng)
      // Collect what this thread dropped while it can still run its finalizers: a thread that
      // ends first parks what it cannot prove unreachable (see the worker tests).
      collectUntil(() => false, 10).then(() => port.postMessage(dropped))
      port.on('message', () => {})
    }`,
    )
    const mine = run(require('..'), name, 7, 6000, prng)
    const [theirs] = await once(w, 'message')
    t.true(mine + theirs > 0, 'some Buffers were left to the GC')
    t.true(await collectUntil(() => pool.stats().liveBuffers === 0, 100), 'every dropped Buffer is reclaimed')
    const s = pool.stats()
    t.like(s, { inUseBytes: 0, requestedBytes: 0, parkedBuffers: 0 })
    t.is(s.allocations, s.releases + s.gcReclaims)
    t.true(s.reservedBytes <= s.maxBytes)
    t.true(s.small.classes.every((c) => c.inUse === 0))
    await w.terminate()
  },
)

cacheTest('a Pool object that is collected gives the slots its cache kept back', async (t) => {
  const name = uniqueName()
  const watcher = new Pool({ name, maxBytes: 64 * MiB })
  ;(() => {
    const pool = new Pool({ name })
    pool.release(pool.allocUnsafe(100))
  })()
  t.true(watcher.stats().small.cachedSlots > 0)
  t.true(await collectUntil(() => watcher.stats().small.cachedSlots === 0), 'its cache closed with it')
  t.like(watcher.stats(), { liveBuffers: 0, inUseBytes: 0 })
  t.true(watcher.stats().small.classes.every((c) => c.inUse === 0 && c.cached === 0))
})
