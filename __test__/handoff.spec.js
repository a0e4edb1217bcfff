'use strict'
// Zero-copy hand-off between threads: pool.share(buf) detaches buf and returns a plain handle;
// pool.adopt(handle) on any thread of the pool gives a Buffer over the same memory, once;
// pool.reclaim(handle) returns memory no one adopted. Named pools are shared like defaultPool.

const test = require('ava')
const { Worker } = require('node:worker_threads')
const { once } = require('node:events')
const { Pool, defaultPool, codes } = require('..')
const { stamp, holds, collectUntil, mappingLen } = require('./helpers')

const PKG = JSON.stringify(require.resolve('..'))

/**
 * A worker that runs `body` (the source of an async function of `(extmem, message)`) for each
 * message it gets and posts back what it returns.
 */
function worker(body) {
  const w = new Worker(
    `
    const { parentPort } = require('node:worker_threads')
    const extmem = require(${PKG})
    const body = ${body}
    parentPort.on('message', async (m) => {
      try { parentPort.postMessage({ ok: await body(extmem, m) }) } catch (e) { parentPort.postMessage({ error: e.code ?? e.message }) }
    })
    `,
    { eval: true },
  )
  w.ask = async (message) => {
    w.postMessage(message)
    const [reply] = await once(w, 'message')
    return reply
  }
  return w
}

for (const size of [100, 64 * 1024, 1 << 20]) {
  test.serial(`a ${size}-byte Buffer goes to a worker and back with its bytes, no copy, and balances`, async (t) => {
    const base = defaultPool.stats()
    const buf = defaultPool.allocUnsafe(size)
    stamp(buf, 7)
    const address = defaultPool.addressOf(buf)
    const handle = defaultPool.share(buf)
    t.is(buf.length, 0, 'the sender’s Buffer is detached')
    t.deepEqual(structuredClone(handle), handle, 'the handle survives structured cloning')
    const during = defaultPool.stats()
    t.is(during.inTransitBuffers, base.inTransitBuffers + 1)
    t.is(during.inTransitBytes, base.inTransitBytes + size)
    const w = worker(`async ({ defaultPool }, h) => {
      const b = defaultPool.adopt(h)
      let sum = 0
      for (let i = 0; i < b.length; i++) sum = (sum + b[i]) | 0
      const address = String(defaultPool.addressOf(b))
      b[0] = 0xab
      return { sum, address, back: defaultPool.share(b) }
    }`)
    try {
      const { ok } = await w.ask(handle)
      t.is(ok.address, String(address), 'the worker’s Buffer is over the same memory')
      let sum = 0
      for (let i = 0; i < size; i++) sum = (sum + ((7 * 131 + i * 7) & 0xff)) | 0
      t.is(ok.sum, sum, 'with the same bytes')
      const back = defaultPool.adopt(ok.back)
      t.is(back[0], 0xab, 'the worker’s write is here')
      t.true(
        back.subarray(1).every((b, i) => b === ((7 * 131 + (i + 1) * 7) & 0xff)),
        'and the rest of the bytes as they were',
      )
      t.throws(() => defaultPool.adopt(ok.back), { code: codes.ERR_EXTMEM_HANDLE_USED })
      t.throws(() => defaultPool.adopt(handle), { code: codes.ERR_EXTMEM_HANDLE_USED })
      defaultPool.release(back)
    } finally {
      await w.terminate()
    }
    const after = defaultPool.stats()
    for (const k of ['liveBuffers', 'inUseBytes', 'requestedBytes', 'inTransitBuffers', 'inTransitBytes'])
      t.is(after[k], base[k], k)
  })
}

test.serial(
  'a handle never adopted stays counted and listed, and reclaim() from another thread gives it back',
  async (t) => {
    const base = defaultPool.stats()
    const handle = defaultPool.share(defaultPool.allocUnsafe(300_000))
    const listed = defaultPool.live().filter((l) => l.inTransit)
    t.is(listed.length, 1)
    t.is(listed[0].size, 300_000)
    t.is(defaultPool.stats().inUseBytes - base.inUseBytes, mappingLen(300_000))
    const w = worker(
      `async ({ defaultPool }, h) => { defaultPool.reclaim(h); try { defaultPool.reclaim(h) } catch (e) { return e.code } }`,
    )
    try {
      const { ok } = await w.ask(handle)
      t.is(ok, codes.ERR_EXTMEM_HANDLE_USED, 'a handle serves once')
    } finally {
      await w.terminate()
    }
    const after = defaultPool.stats()
    t.is(after.inTransitBuffers, base.inTransitBuffers)
    t.is(after.inUseBytes, base.inUseBytes)
    t.is(after.liveBuffers, base.liveBuffers)
    t.throws(() => defaultPool.adopt(handle), { code: codes.ERR_EXTMEM_HANDLE_USED })
  },
)

test.serial('a worker terminated holding adopted Buffers gives their memory back, and parks nothing', async (t) => {
  const base = defaultPool.stats()
  const handles = [100, 8192, 200_000].map((n) => defaultPool.share(defaultPool.allocUnsafe(n)))
  const w = worker(
    `async ({ defaultPool }, hs) => { globalThis.held = hs.map((h) => defaultPool.adopt(h)); return defaultPool.stats().inTransitBuffers }`,
  )
  const { ok } = await w.ask(handles)
  t.is(ok, base.inTransitBuffers)
  await w.terminate()
  t.true(await collectUntil(() => defaultPool.stats().liveBuffers === base.liveBuffers), 'their memory came back')
  const after = defaultPool.stats()
  t.is(after.inUseBytes, base.inUseBytes)
  t.is(after.parkedBuffers, base.parkedBuffers)
})

test.serial('refusals have their code and change nothing', (t) => {
  const own = new Pool({ maxBytes: 1 << 20 })
  const named = new Pool({ name: 'handoff-refusals', maxBytes: 1 << 20 })
  const buf = defaultPool.allocUnsafe(100)
  stamp(buf, 3)
  const retained = defaultPool.allocUnsafe(100)
  defaultPool.retain(retained)
  const released = defaultPool.allocUnsafe(10)
  defaultPool.release(released)
  const mine = own.allocUnsafe(10)
  const live = defaultPool.allocUnsafe(10)
  const transit = defaultPool.share(live)
  const namedHandle = named.share(named.allocUnsafe(10))
  const before = defaultPool.stats()
  const cases = [
    [() => defaultPool.share(buf.subarray(1)), codes.ERR_EXTMEM_VIEW_OWNERSHIP],
    [() => defaultPool.share(retained), codes.ERR_EXTMEM_SHARED],
    [() => defaultPool.share(released), codes.ERR_EXTMEM_RELEASED],
    [() => defaultPool.share(mine), codes.ERR_EXTMEM_NOT_POOLED],
    [() => defaultPool.share(defaultPool.alloc(0)), codes.ERR_EXTMEM_NOT_POOLED],
    [() => defaultPool.share(Buffer.alloc(4)), codes.ERR_EXTMEM_NOT_POOLED],
    [() => own.share(mine), codes.ERR_INVALID_STATE],
    [() => defaultPool.adopt({ ...transit, secret: transit.secret ^ 1 }), codes.ERR_EXTMEM_INVALID_HANDLE],
    [() => defaultPool.adopt({ ...transit, token: transit.token + 1 }), codes.ERR_EXTMEM_HANDLE_USED],
    [() => defaultPool.adopt(namedHandle), codes.ERR_EXTMEM_INVALID_HANDLE],
    [() => named.adopt(transit), codes.ERR_EXTMEM_INVALID_HANDLE],
    [() => own.adopt(transit), codes.ERR_EXTMEM_INVALID_HANDLE],
    [() => defaultPool.adopt({ ...transit, pool: 'other' }), codes.ERR_EXTMEM_INVALID_HANDLE],
    [() => defaultPool.adopt({ ...transit, size: transit.size + 1 }), codes.ERR_EXTMEM_INVALID_HANDLE],
    [() => defaultPool.adopt({ ...transit, size: 1 }), codes.ERR_EXTMEM_INVALID_HANDLE],
    [() => defaultPool.adopt({ ...transit, size: 0 }), codes.ERR_EXTMEM_INVALID_HANDLE],
    [() => defaultPool.adopt({ ...transit, secret: -1 }), codes.ERR_EXTMEM_INVALID_HANDLE],
    [() => defaultPool.adopt({ ...transit, secret: 1.5 }), codes.ERR_EXTMEM_INVALID_HANDLE],
    [() => defaultPool.adopt({ ...transit, secret: '1' }), codes.ERR_INVALID_ARG_TYPE],
    [() => defaultPool.adopt(null), codes.ERR_INVALID_ARG_TYPE],
    [() => defaultPool.adopt(42), codes.ERR_INVALID_ARG_TYPE],
    [() => defaultPool.reclaim({ ...transit, secret: transit.secret + 2 }), codes.ERR_EXTMEM_INVALID_HANDLE],
    [() => defaultPool.reclaim({}), codes.ERR_INVALID_ARG_TYPE],
  ]
  for (const [call, code] of cases) t.throws(call, { code }, String(call))
  t.is(buf.length, 100)
  t.true(holds(buf, 3))
  t.is(defaultPool.refCount(retained), 2)
  const after = defaultPool.stats()
  for (const k of ['liveBuffers', 'inUseBytes', 'inTransitBuffers', 'inTransitBytes', 'externalBytes'])
    t.is(after[k], before[k], k)
  defaultPool.reclaim(transit)
  named.reclaim(namedHandle)
  defaultPool.release(buf)
  defaultPool.release(retained)
  defaultPool.release(retained)
  own.close()
})

test.serial(
  'named pools: a Pool of the same name in a worker joins the same memory and budget; options must agree',
  async (t) => {
    const name = `joined-${process.pid}`
    const pool = new Pool({ name, maxBytes: 1 << 20, admission: 'cap' })
    t.is(pool.name, name)
    // Each option that differs is named (the native side reports which by its index).
    for (const [option, value] of [
      ['maxBytes', 2 << 20],
      ['admission', 'graded'],
      ['watermarks', { warning: 0.5 }],
      ['quarantine', true],
    ]) {
      t.throws(() => new Pool({ name, [option]: value }), {
        code: codes.ERR_EXTMEM_OPTIONS_MISMATCH,
        message: new RegExp(`another ${option};`),
      })
    }
    // Options that agree, or that are not given, join.
    t.is(new Pool({ name, admission: 'cap', quarantine: false }).maxBytes, 1 << 20)
    t.throws(() => new Pool({ name: '' }), { code: codes.ERR_INVALID_ARG_VALUE })
    t.throws(() => new Pool({ name: 7 }), { code: codes.ERR_INVALID_ARG_TYPE })
    t.throws(() => pool.close(), { code: codes.ERR_INVALID_STATE })
    const joined = new Pool({ name, maxBytes: 1 << 20 })
    const held = pool.allocUnsafe(600_000)
    const w = worker(`async ({ Pool }, { name, handle }) => {
    const pool = new Pool({ name })
    const b = pool.adopt(handle)
    let refused = null
    try { pool.allocUnsafe(600_000) } catch (e) { refused = e.code }
    const back = pool.share(b)
    return { refused, back, maxBytes: pool.maxBytes }
  }`)
    try {
      const { ok } = await w.ask({ name, handle: joined.share(joined.allocUnsafe(100)) })
      t.is(
        ok.refused,
        codes.ERR_EXTMEM_EXHAUSTED,
        'the worker’s Pool counts the main thread’s 600 KB against the same cap',
      )
      t.is(ok.maxBytes, 1 << 20)
      const back = pool.adopt(ok.back)
      t.is(back.length, 100)
      pool.release(back)
    } finally {
      await w.terminate()
    }
    joined.release(held)
    t.is(pool.stats().liveBuffers, 0)
  },
)

test.serial(
  'share() of a Buffer marked untransferable never aborts: it is handed off, or refused with ERR_EXTMEM_NOT_DETACHABLE and left intact',
  (t) => {
    const { markAsUntransferable } = require('node:worker_threads')
    for (const size of [100, 300_000]) {
      const buf = defaultPool.allocUnsafe(size)
      stamp(buf, 6)
      markAsUntransferable(buf.buffer)
      const before = defaultPool.stats()
      let handle
      try {
        handle = defaultPool.share(buf)
      } catch (err) {
        // Node 24+ refuses to detach a marked ArrayBuffer.
        t.is(err.code, codes.ERR_EXTMEM_NOT_DETACHABLE)
        t.is(buf.length, size)
        t.true(holds(buf, 6))
        t.is(defaultPool.stats().inTransitBuffers, before.inTransitBuffers, 'nothing went in transit')
        t.is(defaultPool.refCount(buf), 1, 'still a live Buffer (its memory returns when it is collected)')
        continue
      }
      t.is(buf.length, 0)
      const adopted = defaultPool.adopt(handle)
      t.true(holds(adopted, 6))
      defaultPool.release(adopted)
    }
  },
)

test.serial(
  'an earlier handle replayed while its loan is in transit again is ERR_EXTMEM_HANDLE_USED, however often it was shared on',
  (t) => {
    const handles = [defaultPool.share(defaultPool.allocUnsafe(100))]
    for (let i = 0; i < 4; i++) {
      const buf = defaultPool.adopt(handles[handles.length - 1])
      handles.push(defaultPool.share(buf))
      t.is(handles[i + 1].token, handles[0].token, 'the loan keeps its token')
      for (const old of handles.slice(0, -1)) {
        t.throws(() => defaultPool.adopt(old), { code: 'ERR_EXTMEM_HANDLE_USED' })
        t.throws(() => defaultPool.reclaim(old), { code: 'ERR_EXTMEM_HANDLE_USED' })
      }
      const latest = handles[handles.length - 1]
      t.throws(() => defaultPool.adopt({ ...latest, secret: latest.secret ^ 1 }), { code: 'ERR_EXTMEM_INVALID_HANDLE' })
    }
    defaultPool.reclaim(handles[handles.length - 1])
    for (const old of handles) t.throws(() => defaultPool.adopt(old), { code: 'ERR_EXTMEM_HANDLE_USED' })
  },
)

test.serial(
  'a refused share() leaves the Buffer as it was, and share() reads the real length, never an own `length`',
  (t) => {
    const buf = defaultPool.allocUnsafe(100)
    buf.fill(7)
    Object.defineProperty(buf, 'length', { value: 50 })
    const handle = defaultPool.share(buf)
    t.is(handle.size, 100, 'the handle carries the real size')
    const back = defaultPool.adopt(handle)
    t.is(back.byteLength, 100)
    t.true(back.every((b) => b === 7))
    defaultPool.release(back)
    // A refusal (the Buffer holds two references) consumes nothing.
    const two = defaultPool.allocUnsafe(100)
    two.fill(9)
    defaultPool.retain(two)
    t.throws(() => defaultPool.share(two), { code: 'ERR_EXTMEM_SHARED' })
    t.is(two.byteLength, 100)
    t.true(two.every((b) => b === 9))
    t.is(defaultPool.release(two), 1)
    t.is(defaultPool.release(two), 0)
  },
)

test.serial(
  'memory in transit keeps its named pool alive: a thread that joins the name later sees it and adopts it',
  async (t) => {
    const name = `handoff-dropped-${process.pid}`
    const w = new Worker(
      `
    const { parentPort } = require('node:worker_threads')
    const { Pool } = require(${PKG})
    const pool = new Pool({ name: ${JSON.stringify(name)}, maxBytes: 8 << 20 })
    const b = pool.allocUnsafe(5000)
    b.fill(0x5a)
    parentPort.postMessage(pool.share(b))
  `,
      { eval: true },
    )
    // Listening for 'exit' before the message arrives: a worker that ends first has its last
    // message and its 'exit' emitted in the same turn, and a listener added after the message
    // would never see the exit.
    const exited = once(w, 'exit')
    const [handle] = await once(w, 'message')
    await exited
    // The worker's Pool object, its handle and its env are gone; only the memory in transit is left.
    await collectUntil(() => false, 5)
    const pool = new Pool({ name })
    t.is(pool.maxBytes, 8 << 20, 'the same pool, with the options the worker gave it')
    t.like(pool.stats(), { inTransitBuffers: 1, inTransitBytes: 5000 })
    const b = pool.adopt(handle)
    t.is(b.length, 5000)
    t.true(b.every((x) => x === 0x5a))
    pool.release(b)
    t.like(pool.stats(), { inTransitBuffers: 0, liveBuffers: 0, inUseBytes: 0 })
  },
)
