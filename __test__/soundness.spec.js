'use strict'
// Soundness: no pooled memory is ever reachable by two owners, freed while reachable, or left in a
// state that aborts the process. Each group below states one rule, and each test one case of it.
//
// Scenarios that can crash, hang, abort or tamper with built-ins run in a child process (a fixture
// under ./fixtures/soundness/, run with this Node and --expose-gc, cwd the package root). A child
// must exit with 0, unsignalled, with nothing on stderr, and print one JSON line of findings, which
// the test checks. A child that hangs is killed (SIGKILL) after its timeout, failing its test.
//
// Node 20 has no ArrayBuffer.prototype.transfer(): tests that need it are skipped there.

const test = require('ava')
const os = require('node:os')
const path = require('node:path')
const { runNode } = require('./helpers')
const { Pool } = require('..')

const FIXTURES = path.join(__dirname, 'fixtures', 'soundness')
const HAS_TRANSFER = typeof ArrayBuffer.prototype.transfer === 'function'
/** For tests that need ArrayBuffer.prototype.transfer() (Node 22+). */
const withTransfer = HAS_TRANSFER ? test : test.skip

// ---------------------------------------------------------------------------------------------
// Running fixtures

/** At most this many children at once, so that a slow machine does not time them out. */
const MAX_CHILDREN = Math.max(2, Math.min(4, os.availableParallelism?.() ?? os.cpus().length))
let running = 0
const waiting = []

/**
 * Runs `node --expose-gc fixtures/soundness/<name> ...args` (see helpers.runNode), with no EXTMEM_*
 * variable, so that every child sees the defaults; at most MAX_CHILDREN at once.
 */
async function fixture(name, args = [], timeoutMs = 60_000) {
  if (running >= MAX_CHILDREN) await new Promise((resolve) => waiting.push(resolve))
  running++
  try {
    const env = Object.fromEntries(
      Object.keys(process.env)
        .filter((k) => k.startsWith('EXTMEM_'))
        .map((k) => [k, undefined]),
    )
    return await runNode(['--expose-gc', path.join(FIXTURES, name), ...args], env, timeoutMs)
  } finally {
    running--
    waiting.shift()?.()
  }
}

/** Checks that the child ended cleanly; returns its JSON findings, or null if it printed none. */
function findings(t, run) {
  t.is(run.signal, null, `the child was not killed by a signal (stderr: ${run.stderr.slice(-2000)})`)
  t.is(run.code, 0, `the child exits with 0 (stderr: ${run.stderr.slice(-2000)})`)
  t.is(run.stderr, '', 'and writes nothing to stderr')
  const line = run.stdout.trim().split('\n').at(-1)
  try {
    return JSON.parse(line)
  } catch {
    t.fail(`the child printed no JSON line (stdout: ${run.stdout.slice(-2000)})`)
    return null
  }
}

const isFill = (buf, value) => buf.every((v) => v === value)
const sameBytes = (x, y) => x.buffer === y.buffer && x.byteOffset === y.byteOffset

// ---------------------------------------------------------------------------------------------
// 2. releaseFast() frees a slot only for the Buffer that holds it now, and only in its own Pool.

test('after trim() gave its arena back, a second releaseFast() of a released fast Buffer is refused and the new owner keeps its slot', (t) => {
  const pool = new Pool({ maxBytes: 64 << 20 })
  const a = pool.allocFast(100)
  pool.releaseFast(a)
  pool.trim() // the arena had no Buffer out: given back
  const b = pool.allocFast(100) // a new arena, perhaps in the old one's place
  b.fill(0xbb)
  t.throws(() => pool.releaseFast(a), { code: 'ERR_EXTMEM_RELEASED' }, 'the stale Buffer is refused')
  t.is(pool.stats().fast.liveBuffers, 1, 'b is still counted')
  const c = pool.allocFast(100)
  t.true(c.buffer !== b.buffer || c.byteOffset !== b.byteOffset, "the next allocFast() does not hand out b's bytes")
  c.fill(0xcc)
  t.true(isFill(b, 0xbb), 'b keeps its bytes')
  t.is(pool.stats().fast.liveBuffers, 2)
  t.notThrows(() => pool.releaseFast(b), 'b is released by its owner')
  t.throws(() => pool.releaseFast(b), { code: 'ERR_EXTMEM_RELEASED' }, 'once')
  pool.close()
})

test('a released fast Buffer stays refused however often its slot is reused (65536 reuses: no generation wrap)', (t) => {
  const pool = new Pool({ maxBytes: 64 << 20 })
  const a = pool.allocFast(100)
  pool.releaseFast(a)
  // The slot is handed out again at every step (most recently freed first); at each, the stale
  // Buffer must be refused, whatever the slot's generation counter has come round to.
  let acceptedAt = -1
  for (let i = 0; i < 65536 && acceptedAt < 0; i++) {
    const x = pool.allocFast(100)
    try {
      pool.releaseFast(a)
      acceptedAt = i
    } catch (e) {
      if (e.code !== 'ERR_EXTMEM_RELEASED') throw e
      pool.releaseFast(x)
    }
  }
  t.is(acceptedAt, -1, `the stale releaseFast() was accepted at reuse #${acceptedAt + 1}, freeing a live Buffer's slot`)
  if (acceptedAt >= 0) {
    pool.close()
    return
  }
  const b = pool.allocFast(100)
  b.fill(1)
  t.throws(() => pool.releaseFast(a), { code: 'ERR_EXTMEM_RELEASED' })
  t.is(pool.stats().fast.liveBuffers, 1)
  const c = pool.allocFast(100)
  t.false(sameBytes(b, c), "b's bytes are not handed out again")
  t.notThrows(() => pool.releaseFast(b), 'b is released by its owner')
  t.throws(() => pool.releaseFast(b), { code: 'ERR_EXTMEM_RELEASED' }, 'once')
  pool.close()
})

test("releaseFast() refuses another Pool's fast Buffer with ERR_EXTMEM_NOT_POOLED and its own live Buffer is unaffected", (t) => {
  const A = new Pool({ maxBytes: 8 << 20 })
  const B = new Pool({ maxBytes: 8 << 20 })
  const a = A.allocFast(100)
  const b = B.allocFast(100) // the same arena index, slot and generation as a, in B
  b.fill(0xbb)
  t.throws(() => B.releaseFast(a), { code: 'ERR_EXTMEM_NOT_POOLED' })
  t.is(B.stats().fast.liveBuffers, 1, 'B still counts b')
  t.is(A.stats().fast.liveBuffers, 1, 'A still counts a')
  const c = B.allocFast(100)
  t.false(sameBytes(b, c), "B's next allocFast() does not hand out b's bytes")
  c.fill(0xcc)
  t.true(isFill(b, 0xbb), 'b keeps its bytes')
  t.notThrows(() => B.releaseFast(b), 'b is released by its owner')
  t.notThrows(() => A.releaseFast(a), 'a is released by its owner')
  A.close()
  B.close()
})

for (const how of ['own properties', 'a replaced prototype']) {
  test(`releaseFast() reads a Buffer's real ArrayBuffer and offset, never ${how} that say another pool's`, (t) => {
    const A = new Pool({ maxBytes: 8 << 20 })
    const B = new Pool({ maxBytes: 8 << 20 })
    const a = A.allocFast(100)
    const b = B.allocFast(100)
    b.fill(0xbb)
    if (how === 'own properties') {
      Object.defineProperty(a, 'buffer', { value: b.buffer })
      Object.defineProperty(a, 'byteOffset', { value: b.byteOffset })
      Object.defineProperty(a, 'byteLength', { value: b.byteLength })
      Object.defineProperty(a, 'length', { value: b.length })
    } else {
      const proto = Object.create(Object.getPrototypeOf(a), {
        buffer: { get: () => b.buffer },
        byteOffset: { get: () => b.byteOffset },
      })
      Object.setPrototypeOf(a, proto)
    }
    t.throws(() => B.releaseFast(a), { code: 'ERR_EXTMEM_NOT_POOLED' })
    t.notThrows(() => a[Symbol.dispose](), "dispose() of a gives back only a's own slot")
    const c = B.allocFast(100)
    c.fill(0xcc)
    t.true(isFill(b, 0xbb), "b keeps its bytes: B's next Buffer is not b's")
    t.is(B.stats().fast.liveBuffers, 2)
    B.releaseFast(b)
    B.releaseFast(c)
    A.close()
    B.close()
  })
}

test('release, share, resize and dispose read the real length of a Buffer whose `length`/`byteLength` are shadowed', (t) => {
  const pool = new Pool({ maxBytes: 8 << 20 })
  const shadow = (buf) => {
    Object.defineProperty(buf, 'length', { value: 0 })
    Object.defineProperty(buf, 'byteLength', { value: 0 })
    return buf
  }
  const a = shadow(pool.allocUnsafe(100))
  t.is(pool.refCount(a), 1, 'refCount sees it live')
  t.true(pool.isPooled(a))
  t.is(pool.release(a), 0, 'release() releases it, not "already released"')
  const b = shadow(pool.allocUnsafe(5000))
  const grown = pool.resize(b, 9000)
  t.is(grown.length, 9000)
  pool.release(grown)
  const c = shadow(pool.allocUnsafe(300))
  c[Symbol.dispose]()
  t.is(pool.isPooled(c), false, 'dispose() released it')
  t.like(pool.stats(), { liveBuffers: 0, inUseBytes: 0 })
  pool.close()
})

// ---------------------------------------------------------------------------------------------
// 3. A fast arena transferred away (f.buffer.transfer() after releaseFast(f)) belongs to whoever
//    took it: the pool carries on without it, counts exactly, and still trims and closes.

let arenaRun = null
const arenaTransfer = () => (arenaRun ??= fixture('fast-arena-transfer.js'))

withTransfer(
  "after a released fast Buffer's arena is transferred away, allocFast() serves writable Buffers and trim() and close() succeed",
  async (t) => {
    const out = findings(t, await arenaTransfer())
    if (out === null) return
    t.is(out.stolenBytes, 65536, 'transfer() took the whole 64 KiB arena')
    t.is(out.allocs.length, 3)
    for (const [i, a] of out.allocs.entries()) {
      t.true(a.ok, `allocFast(100) #${i + 1} succeeds (${JSON.stringify(a.error)})`)
      t.like(a, { length: 100, writable: true })
    }
    t.is(out.fastLiveAfterAllocs, 3, 'stats().fast.liveBuffers is 3')
    t.is(out.stolenFill, 0x5c, "the stolen arena holds the released Buffer's bytes")
    t.true(out.stolenIntactAfterAllocs, 'new fast Buffers do not write into the stolen arena')
    t.true(out.trim.ok, `trim() does not throw (${JSON.stringify(out.trim.error)})`)
    t.true(out.close.ok, `close() does not throw (${JSON.stringify(out.close.error)})`)
    t.true(out.closed, 'pool.closed is true')
    t.true(out.statsClosed, 'stats().closed is true')
    t.true(out.stolenIntactAfterClose, 'the stolen bytes stay readable and unchanged after close()')
  },
)

withTransfer(
  'stats().fast.liveBuffers equals the fast Buffers really handed out at every step, also around a transferred arena',
  async (t) => {
    const out = findings(t, await arenaTransfer())
    if (out === null) return
    t.true(out.steps.length >= 7)
    for (const s of out.steps) t.is(s.fastLive, s.held, `after ${s.what}: ${s.held} held`)
  },
)

// ---------------------------------------------------------------------------------------------
// 4. Built-ins that user code replaced never run inside a release, nor see a private ArrayBuffer
//    of the pool. (Each in a child process, so that the patches cannot leak into other tests.)

test('release() detaches the Buffer even if a Map.prototype.size getter allocates, and the new Buffer shares nothing with it', async (t) => {
  const out = findings(t, await fixture('patched-builtins.js', ['map-size']))
  if (out === null) return
  t.is(out.releaseError, null)
  t.is(out.oldLength, 0, 'the released Buffer reads as empty')
  if (out.getterRan) {
    t.true(out.freshLive, 'the Buffer allocated by the getter is live')
    t.is(out.freshNonZeroBefore, 0, 'and zero-filled')
    t.is(out.freshNonZeroAfter, 0, 'and stays so when the released Buffer is written')
  }
})

test('a patched Array.prototype.push never gets the ArrayBuffer the pool lends next, and writes through what it got change no live Buffer', async (t) => {
  const out = findings(t, await fixture('patched-builtins.js', ['array-push']))
  if (out === null) return
  t.is(out.releaseError, null)
  t.is(out.aLength, 0, 'the released Buffer reads as empty')
  t.false(out.stolenIsB, "no ArrayBuffer the patch captured is the next Buffer's .buffer")
  t.true(out.bLive)
  t.is(out.bChanged, 0, 'writes through the captured ArrayBuffers leave the next (zero-filled) Buffer zeroed')
})

test("accessors defined on Array.prototype indexes never see an ArrayBuffer the pool may lend again (kept slots, a scope's batch)", async (t) => {
  const out = findings(t, await fixture('patched-builtins.js', ['index-accessors']))
  if (out === null) return
  t.is(out.error, null, 'alloc, release and scope close ran with the accessors in place')
  t.is(out.seen, 0, 'no accessor saw an ArrayBuffer')
  t.is(out.aliased, 0, 'and the Buffers lent afterwards are zero-filled and untouched')
  t.is(out.liveBuffers, 4)
})

test("a Set.prototype.add or TypedArray slice patched after load cannot steer a scope's close() to another live Buffer", async (t) => {
  const out = findings(t, await fixture('patched-builtins.js', ['scope-patched']))
  if (out === null) return
  t.is(out.error, null)
  t.is(out.closed, 1, 'close() released its own Buffer, and only it')
  t.is(out.ownLength, 0)
  t.is(out.victimLength, 64, 'the other Buffer is still attached')
  t.true(out.victimPooled, 'and still lent')
  t.is(out.victimChanged, 0, 'and no later Buffer was lent its memory')
})

test('recorders on Array#push/pop/map/fill/filter/indexOf, Map#set/get/delete, WeakMap#get/set/has and transfer, installed before the Pool is made, see no ArrayBuffer the pool lends later, and writes through what they saw change no live Buffer', async (t) => {
  const out = findings(t, await fixture('patched-builtins.js', ['cycles']))
  if (out === null) return
  t.log('ArrayBuffers seen by the recorders:', out.recorded, JSON.stringify(out.recordedBy))
  t.is(out.error, null, 'the alloc/release cycles ran with the recorders in place')
  t.is(
    out.capturedThenLent,
    0,
    `no later Buffer's .buffer was seen by a recorder before it was lent (${out.lentThrough.join(', ')})`,
  )
  t.true(out.checked > 0)
  t.is(
    out.aliased,
    0,
    `no live Buffer changes when every recorded ArrayBuffer is written (${out.aliasedKinds.join(', ')})`,
  )
})

// ---------------------------------------------------------------------------------------------
// 5. When Node-API refuses to create an external ArrayBuffer, the allocation fails cleanly.

test('while external ArrayBuffers are refused, alloc() and allocUnsafe() throw ERR_EXTMEM_EXTERNAL_REFUSED and no figure of the pool moves; afterwards allocation works', async (t) => {
  const out = findings(t, await fixture('external-refused.js'))
  if (out === null) return
  t.true(out.hasSwitch, 'the binding has the test switch failExternalForTesting()')
  if (!out.hasSwitch) return
  t.deepEqual(
    out.refused.map((r) => r.label),
    ['alloc(100)', 'allocUnsafe(5000)', 'alloc(100000)'],
  )
  for (const r of out.refused) {
    t.is(r.returned, null, `${r.label} does not return a Buffer`)
    t.true(r.error?.isError, `${r.label} throws an Error`)
    t.is(r.error?.code, 'ERR_EXTMEM_EXTERNAL_REFUSED', `${r.label}: ${r.error?.message}`)
    t.deepEqual(
      r.after,
      r.before,
      `${r.label} leaves externalBytes, inUseBytes, requestedBytes, liveBuffers and allocations as they were`,
    )
  }
  for (const a of out.again) t.true(a.ok, `with the switch off, ${a.label} works again (${JSON.stringify(a.error)})`)
  t.like(out.final, { liveBuffers: 0, inUseBytes: 0, requestedBytes: 0 })
})

// ---------------------------------------------------------------------------------------------
// 6. An ArrayBuffer the user marked untransferable (not detachable on Node 24+) never aborts a
//    release: where it can still be detached it is released; where it cannot, release() refuses
//    with ERR_EXTMEM_NOT_DETACHABLE and the Buffer stays live and intact.

for (const where of ['main', 'worker']) {
  for (const size of ['large', 'small']) {
    const which = size === 'large' ? 'a 100000-byte Buffer' : 'a 100-byte Buffer of a reused slot'
    const title =
      where === 'main'
        ? `releasing ${which} whose ArrayBuffer was marked untransferable does not abort: it is released, or refused with ERR_EXTMEM_NOT_DETACHABLE and left intact`
        : `a worker releasing ${which} whose ArrayBuffer was marked untransferable does not abort and exits with 0`
    test(title, async (t) => {
      const out = findings(t, await fixture('untransferable.js', [where, size]))
      if (out === null) return
      if (where === 'worker') {
        t.is(out.workerError, null)
        t.is(out.workerExitCode, 0, 'the worker exits with 0')
      }
      const o = out.outcome
      t.truthy(o, 'release() returned or threw')
      if (o === null) return
      if (out.detachable) {
        t.true(o.released, `a detachable ArrayBuffer is released (${JSON.stringify(o.error)})`)
        t.is(o.length, 0, 'and the Buffer reads as empty')
      } else {
        t.false(o.released, 'a non-detachable ArrayBuffer cannot be released')
        t.true(o.error.isError, 'refused with an Error')
        t.is(o.error.code, 'ERR_EXTMEM_NOT_DETACHABLE', o.error.message)
        t.true(o.pooled, 'the refused Buffer is still live (isPooled)')
        t.is(o.notIntact, 0, 'with its bytes intact')
      }
    })
  }
}

test('built-ins replaced after load (constructors, Object.freeze, Map/Set/WeakMap/WeakRef/FinalizationRegistry methods, typed-array getters, Array methods and iteration, Math) receive nothing private and steer nothing, in the main thread and a worker', async (t) => {
  const out = findings(t, await fixture('replaced-builtins.js', [], 120_000))
  // The built-ins the issue of each hole named are among those replaced.
  for (const name of [
    'new Float64Array',
    'new Int32Array',
    'new Map',
    'new Set',
    'new WeakRef',
    'new FinalizationRegistry',
    'Object.freeze',
    'Map.prototype.size',
    'Array.prototype.[Symbol.iterator]',
    'Array.prototype.indexOf',
    'TypedArray.prototype.length',
    'WeakMap.prototype.get',
    'Math.floor',
  ])
    t.true(out.recorded.includes(name), `${name} is replaced`)
  for (const where of ['main', 'worker']) {
    const r = out[where]
    t.is(r.error, undefined, `${where}: the scenario ran`)
    t.deepEqual(r.violations, [], `${where}: no replaced built-in reached private data`)
    t.is(r.damaged, 0, `${where}: every live Buffer holds its own bytes`)
    t.true(r.live > 100)
    t.is(r.ops.length, 10, `${where}: every group of operations ran`)
  }
})
