'use strict'
// The bad-input catalogue, continued from errors.spec.js (whose 29 cases are not repeated here):
// more bad calls of every public function, each refused with the documented class and code,
// leaving the pool's and defaultPool's figures exactly as they were, and the process going on.
// Then the inputs at the edges that are *not* errors.

const test = require('ava')
const fs = require('node:fs')
const path = require('node:path')
const {
  constants: { MAX_LENGTH },
} = require('node:buffer')
const extmem = require('..')

const { Pool, defaultPool, codes, ExtmemError, RefusedError } = extmem

const MiB = 1024 * 1024

/** A Node Buffer that was never pooled, whose ArrayBuffer was transferred away: length 0. */
function detachedNodeBuffer() {
  const ab = new ArrayBuffer(16)
  const buf = Buffer.from(ab)
  structuredClone(ab, { transfer: [ab] })
  return buf
}

/** A pool of 4 MiB that the case is free to use; `held` collects [pool, buf] to release after. */
function use(pool, held, size) {
  const buf = pool.alloc(size)
  held.push([pool, buf])
  return buf
}

/** Releases what a case kept in `held`, and closes its pool. */
function cleanUp(pool, held) {
  for (const [p, b] of held) if (p.refCount(b) > 0) p.release(b)
  pool.close()
}

// [title, make(pool, held) -> thunk, error class, code]. `make` prepares what the bad call needs;
// the figures are compared from just after it to just after the call.
// One case per line, as a table (so prettier leaves it alone):
// prettier-ignore
const CASES = [
  // new Pool(options)
  ['new Pool(null)', () => () => new Pool(null), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['new Pool([]) (an array is not an options object)', () => () => new Pool([]), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['new Pool("64M")', () => () => new Pool('64M'), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['new Pool({ maxBytes: -1 })', () => () => new Pool({ maxBytes: -1 }), RangeError, 'ERR_OUT_OF_RANGE'],
  ['new Pool({ maxBytes: NaN })', () => () => new Pool({ maxBytes: NaN }), RangeError, 'ERR_OUT_OF_RANGE'],
  ['new Pool({ maxBytes: Infinity })', () => () => new Pool({ maxBytes: Infinity }), RangeError, 'ERR_OUT_OF_RANGE'],
  ['new Pool({ maxBytes: 2 ** 53 }) (not a safe integer)', () => () => new Pool({ maxBytes: 2 ** 53 }), RangeError, 'ERR_OUT_OF_RANGE'],
  ['new Pool({ maxBytes: 10n })', () => () => new Pool({ maxBytes: 10n }), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['new Pool({ maxBytes: null })', () => () => new Pool({ maxBytes: null }), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['new Pool with an unknown option beside a good one', () => () => new Pool({ maxBytes: MiB, extra: true }), TypeError, 'ERR_INVALID_ARG_VALUE'],
  ['new Pool({ threadCache: 1 })', () => () => new Pool({ threadCache: 1 }), TypeError, 'ERR_INVALID_ARG_TYPE'],

  // alloc(size) / allocUnsafe(size)
  ['alloc(null)', (p) => () => p.alloc(null), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['allocUnsafe() without a size', (p) => () => p.allocUnsafe(), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['alloc(true)', (p) => () => p.alloc(true), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['alloc(Symbol())', (p) => () => p.alloc(Symbol('size')), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['alloc(new Number(8)) (a boxed number)', (p) => () => p.alloc(new Number(8)), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['allocUnsafe(-Infinity)', (p) => () => p.allocUnsafe(-Infinity), RangeError, 'ERR_OUT_OF_RANGE'],
  ['allocUnsafe(2 ** 53)', (p) => () => p.allocUnsafe(2 ** 53), RangeError, 'ERR_OUT_OF_RANGE'],
  ['allocUnsafe(8192.5) (a fraction at the slab boundary)', (p) => () => p.allocUnsafe(8192.5), RangeError, 'ERR_OUT_OF_RANGE'],
  ['allocUnsafe(buffer.constants.MAX_LENGTH) on a 4 MiB pool', (p) => () => p.allocUnsafe(MAX_LENGTH), RefusedError, 'ERR_EXTMEM_EXHAUSTED'],
  ['alloc after close()', (p) => { p.close(); return () => p.alloc(10) }, ExtmemError, 'ERR_EXTMEM_CLOSED'],
  ['allocUnsafe(0) after close()', (p) => { p.close(); return () => p.allocUnsafe(0) }, ExtmemError, 'ERR_EXTMEM_CLOSED'],

  // retain(buf)
  ['retain(null)', (p) => () => p.retain(null), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['retain of a Buffer from Node', (p) => () => p.retain(Buffer.alloc(8)), ExtmemError, 'ERR_EXTMEM_NOT_POOLED'],
  ['retain of a Buffer from another pool', (p, held) => { const b = use(new Pool({ maxBytes: MiB }), held, 32); return () => p.retain(b) }, ExtmemError, 'ERR_EXTMEM_NOT_POOLED'],
  ['retain of a never-pooled Buffer whose ArrayBuffer was transferred', (p) => { const b = detachedNodeBuffer(); return () => p.retain(b) }, ExtmemError, 'ERR_EXTMEM_NOT_POOLED'],
  ['retain of a live Buffer after close()', (p, held) => { const b = use(p, held, 64); p.close(); return () => p.retain(b) }, ExtmemError, 'ERR_EXTMEM_CLOSED'],

  // release(buf)
  ['release(undefined)', (p) => () => p.release(undefined), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['release(Symbol())', (p) => () => p.release(Symbol('buf')), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['release of a DataView', (p) => () => p.release(new DataView(new ArrayBuffer(8))), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['release of an ArrayBuffer', (p) => () => p.release(new ArrayBuffer(8)), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['release of the ArrayBuffer behind a pooled Buffer', (p, held) => { const b = use(p, held, 100000); return () => p.release(b.buffer) }, TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['release of a Buffer over a SharedArrayBuffer', (p) => () => p.release(Buffer.from(new SharedArrayBuffer(8))), ExtmemError, 'ERR_EXTMEM_NOT_POOLED'],
  ['release of a never-pooled Buffer whose ArrayBuffer was transferred', (p) => { const b = detachedNodeBuffer(); return () => p.release(b) }, ExtmemError, 'ERR_EXTMEM_NOT_POOLED'],
  ["release of Buffer.allocUnsafe(10) (a slice of Node's own pool)", (p) => () => p.release(Buffer.allocUnsafe(10)), ExtmemError, 'ERR_EXTMEM_NOT_POOLED'],
  ['release of Buffer.from(buf.buffer, offset, length) over a pooled Buffer', (p, held) => { const b = use(p, held, 64); return () => p.release(Buffer.from(b.buffer, b.byteOffset, b.length)) }, ExtmemError, 'ERR_EXTMEM_VIEW_OWNERSHIP'],
  ['release of a view of another pool\'s Buffer', (p, held) => { const b = use(new Pool({ maxBytes: MiB }), held, 32); return () => p.release(b.subarray(1)) }, ExtmemError, 'ERR_EXTMEM_NOT_POOLED'],
  ['release of a released Buffer after close()', (p) => { const b = p.alloc(64); p.release(b); p.close(); return () => p.release(b) }, ExtmemError, 'ERR_EXTMEM_RELEASED'],
  ['a third release of a Buffer retained once', (p) => { const b = p.alloc(64); p.retain(b); p.release(b); p.release(b); return () => p.release(b) }, ExtmemError, 'ERR_EXTMEM_RELEASED'],

  // refCount(buf) / addressOf(buf) (isPooled(buf) never throws: predicates-json.spec.js)
  ['refCount(null)', (p) => () => p.refCount(null), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['refCount of a Uint8Array', (p) => () => p.refCount(new Uint8Array(4)), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['refCount of a Buffer from another pool', (p, held) => { const b = use(new Pool({ maxBytes: MiB }), held, 32); return () => p.refCount(b) }, ExtmemError, 'ERR_EXTMEM_NOT_POOLED'],
  ['refCount of a slice of a large Buffer', (p, held) => { const b = use(p, held, 300000); return () => p.refCount(b.slice(1000, 2000)) }, ExtmemError, 'ERR_EXTMEM_VIEW_OWNERSHIP'],
  ['addressOf(undefined)', (p) => () => p.addressOf(undefined), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['addressOf of an ArrayBuffer', (p) => () => p.addressOf(new ArrayBuffer(4)), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['addressOf of a DataView over a pooled Buffer', (p, held) => { const b = use(p, held, 64); return () => p.addressOf(new DataView(b.buffer, b.byteOffset, b.length)) }, TypeError, 'ERR_INVALID_ARG_TYPE'],

  // trim() / close()
  ['trim after close()', (p) => { p.close(); return () => p.trim() }, ExtmemError, 'ERR_EXTMEM_CLOSED'],
  ['close() of defaultPool while it has Buffers out', (p, held) => { use(defaultPool, held, 100); return () => defaultPool.close() }, Error, 'ERR_INVALID_STATE'],

  // resize(buf, size[, options])
  ['resize of a view', (p, held) => { const b = use(p, held, 64); return () => p.resize(b.subarray(1), 10) }, ExtmemError, 'ERR_EXTMEM_VIEW_OWNERSHIP'],
  ['resize of a retained Buffer', (p, held) => { const b = use(p, held, 64); p.retain(b); held.push([p, b]); return () => p.resize(b, 100) }, ExtmemError, 'ERR_EXTMEM_SHARED'],
  ['resize of a released Buffer', (p) => { const b = p.alloc(64); p.release(b); return () => p.resize(b, 10) }, ExtmemError, 'ERR_EXTMEM_RELEASED'],
  ['resize to "10"', (p, held) => { const b = use(p, held, 64); return () => p.resize(b, '10') }, TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['resize to -1', (p, held) => { const b = use(p, held, 64); return () => p.resize(b, -1) }, RangeError, 'ERR_OUT_OF_RANGE'],
  ['resize with options null', (p, held) => { const b = use(p, held, 64); return () => p.resize(b, 10, null) }, TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['resize with { zero: "yes" }', (p, held) => { const b = use(p, held, 64); return () => p.resize(b, 10, { zero: 'yes' }) }, TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['resize after close()', (p, held) => { const b = use(p, held, 64); p.close(); return () => p.resize(b, 10) }, ExtmemError, 'ERR_EXTMEM_CLOSED'],

  // share(buf) / adopt(handle) / reclaim(handle), named pools
  ['share on a private pool', (p, held) => { const b = use(p, held, 64); return () => p.share(b) }, Error, 'ERR_INVALID_STATE'],
  ['share of a view of a defaultPool Buffer', (p, held) => { const b = use(defaultPool, held, 64); return () => defaultPool.share(b.subarray(1)) }, ExtmemError, 'ERR_EXTMEM_VIEW_OWNERSHIP'],
  ['adopt(undefined)', () => () => defaultPool.adopt(undefined), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['adopt of a handle whose secret is a string', () => () => defaultPool.adopt({ pool: null, token: 1, secret: '2', size: 3 }), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ["adopt of a named pool's handle by defaultPool", (p, held) => { const named = new Pool({ name: 'bad-input-handles' }); const h = named.share(named.allocUnsafe(10)); held.push([named, named.adopt(h)]); return () => defaultPool.adopt(h) }, ExtmemError, 'ERR_EXTMEM_INVALID_HANDLE'],
  ['adopt of a handle already adopted', (p, held) => { const named = new Pool({ name: 'bad-input-handles' }); const h = named.share(named.allocUnsafe(10)); held.push([named, named.adopt(h)]); return () => named.adopt(h) }, ExtmemError, 'ERR_EXTMEM_HANDLE_USED'],
  ['reclaim(null)', () => () => defaultPool.reclaim(null), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ["new Pool({ name: '' })", () => () => new Pool({ name: '' }), TypeError, 'ERR_INVALID_ARG_VALUE'],
  ['new Pool({ name: 1 })', () => () => new Pool({ name: 1 }), TypeError, 'ERR_INVALID_ARG_TYPE'],

  // scope() and its Buffers; [Symbol.dispose]
  ['scope.alloc("1")', (p) => { const s = p.scope(); return () => s.alloc('1') }, TypeError, 'ERR_INVALID_ARG_TYPE'],
  ["scope.release of the pool's own Buffer", (p, held) => { const s = p.scope(); const b = use(p, held, 64); return () => s.release(b) }, ExtmemError, 'ERR_EXTMEM_NOT_POOLED'],
  ['scope.allocUnsafe after scope.close()', (p) => { const s = p.scope(); s.close(); return () => s.allocUnsafe(1) }, ExtmemError, 'ERR_EXTMEM_CLOSED'],
  ['scope() after close()', (p) => { p.close(); return () => p.scope() }, ExtmemError, 'ERR_EXTMEM_CLOSED'],
  ["a pooled Buffer's dispose called on a Node Buffer", (p, held) => { const b = use(p, held, 64); return () => b[Symbol.dispose].call(Buffer.alloc(1)) }, TypeError, 'ERR_INVALID_THIS'],

  // The top-level functions (on defaultPool)
  ['top-level alloc("1")', () => () => extmem.alloc('1'), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['top-level allocUnsafe(-1)', () => () => extmem.allocUnsafe(-1), RangeError, 'ERR_OUT_OF_RANGE'],
  ['top-level retain(null)', () => () => extmem.retain(null), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['top-level refCount of a Buffer from Node', () => () => extmem.refCount(Buffer.alloc(1)), ExtmemError, 'ERR_EXTMEM_NOT_POOLED'],
  ['top-level releaseOwner({})', () => () => extmem.releaseOwner({}), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['top-level release of a view of a defaultPool Buffer', (p, held) => { const b = use(defaultPool, held, 64); return () => extmem.release(b.subarray(1)) }, ExtmemError, 'ERR_EXTMEM_VIEW_OWNERSHIP'],
  ['top-level retain of a released defaultPool Buffer', () => { const b = extmem.alloc(64); extmem.release(b); return () => extmem.retain(b) }, ExtmemError, 'ERR_EXTMEM_RELEASED'],
  ['top-level refCount of a view of a Pool Buffer', (p, held) => { const b = use(p, held, 64); return () => extmem.refCount(b.subarray(1)) }, ExtmemError, 'ERR_EXTMEM_NOT_POOLED'],
]

for (const [title, make, Type, code] of CASES) {
  test(`${title} throws ${Type.name} ${code} and changes nothing`, (t) => {
    const pool = new Pool({ maxBytes: 4 * MiB })
    const held = []
    const thunk = make(pool, held)
    const before = pool.stats()
    const defaultBefore = defaultPool.stats()
    const err = t.throws(thunk, { instanceOf: Type, code })
    t.is(Object.getPrototypeOf(err), Type.prototype, `exactly a ${Type.name}`)
    t.is(err.code, code)
    t.is(codes[code], code, `extmem.codes lists ${code}`)
    t.true(err.message.length > 10, 'the message says what went wrong')
    const after = pool.stats()
    if (code === 'ERR_EXTMEM_EXHAUSTED') {
      t.is(err.requestedBytes, MAX_LENGTH)
      t.is(after.failedAllocations, before.failedAllocations + 1, 'a refusal is counted')
      t.is(after.refused.cap, before.refused.cap + 1, 'as a refusal at the cap')
      after.failedAllocations = before.failedAllocations
      after.refused = before.refused
    }
    t.deepEqual(after, before, "the pool's figures are unchanged")
    t.deepEqual(defaultPool.stats(), defaultBefore, "defaultPool's figures are unchanged")
    cleanUp(pool, held)
    // The process goes on.
    const fresh = new Pool({ maxBytes: MiB })
    t.is(fresh.release(fresh.alloc(10)), 0, 'allocation works after the refusal')
    fresh.close()
  })
}

test('the catalogue: every case is refused with its class and code, is listed once, every public function has cases, and docs/guarantees.md counts them', (t) => {
  const titles = new Set(CASES.map(([title]) => title))
  t.is(titles.size, CASES.length, 'no case is listed twice')
  const fns = [
    'new Pool',
    'alloc',
    'allocUnsafe',
    'retain',
    'release',
    'refCount',
    'addressOf',
    'trim',
    'close',
    'resize',
    'share',
    'adopt',
    'reclaim',
    'scope',
    'dispose',
  ]
  for (const fn of [...fns, 'top-level']) {
    const covered = CASES.some(([title]) => title.includes(fn))
    t.true(covered, `${fn} has a case here`)
  }
  // Each case again, in one run: a case that stopped throwing, or threw another class or code,
  // is named here, and the count of refusals must be the catalogue's length.
  const wrong = []
  for (const [title, make, Type, code] of CASES) {
    const pool = new Pool({ maxBytes: 4 * MiB })
    const held = []
    try {
      make(pool, held)()
      wrong.push(`${title}: no error`)
    } catch (err) {
      if (Object.getPrototypeOf(err) !== Type.prototype || err.code !== code) {
        wrong.push(`${title}: ${err?.name} ${err?.code}`)
      }
    } finally {
      cleanUp(pool, held)
    }
  }
  t.deepEqual(wrong, [], 'every case throws its class and code')
  const guarantees = fs.readFileSync(path.join(__dirname, '..', 'docs', 'guarantees.md'), 'utf8')
  const stated = /`bad-input › …` \((\d+) more/.exec(guarantees)
  t.truthy(stated, 'docs/guarantees.md names this catalogue with its count')
  t.is(Number(stated?.[1]), CASES.length, "the count in docs/guarantees.md is this catalogue's")
})

// Inputs at the edges that are not errors.

test('alloc(-0) is alloc(0): an empty Buffer that holds nothing and needs no release', (t) => {
  const pool = new Pool({ maxBytes: MiB })
  const before = pool.stats()
  for (const make of [() => pool.alloc(-0), () => pool.allocUnsafe(-0)]) {
    const b = make()
    t.true(Buffer.isBuffer(b))
    t.is(b.length, 0)
    t.is(pool.release(b), 0)
    t.is(pool.refCount(b), 0)
    t.false(pool.isPooled(b))
  }
  t.deepEqual(pool.stats(), before)
  pool.close()
})

test('sizes 8192 and 8193, either side of the slab boundary, are served and released', (t) => {
  const pool = new Pool({ maxBytes: MiB })
  const small = pool.alloc(8192)
  const large = pool.allocUnsafe(8193)
  t.is(small.length, 8192)
  t.is(large.length, 8193)
  const s = pool.stats()
  t.is(s.small.classes.at(-1).size, 8192)
  t.is(s.small.classes.at(-1).inUse, 1, '8192 bytes come from the last slab class')
  t.is(s.large.live, 1, '8193 bytes get a mapping of their own')
  t.true(small.every((b) => b === 0))
  t.is(pool.release(small), 0)
  t.is(pool.release(large), 0)
  t.like(pool.stats(), { liveBuffers: 0, inUseBytes: 0 })
  pool.close()
})

test('a pool whose cap is 1 byte is valid, and refuses every allocation but alloc(0)', (t) => {
  const pool = new Pool({ maxBytes: 1 })
  t.is(pool.maxBytes, 1)
  t.is(pool.alloc(0).length, 0)
  const err = t.throws(() => pool.alloc(1), { instanceOf: Error, code: 'ERR_EXTMEM_EXHAUSTED' })
  t.is(err.requestedBytes, 1)
  t.is(err.availableBytes, 1)
  t.like(pool.stats(), { reservedBytes: 0, failedAllocations: 1, liveBuffers: 0 })
  pool.close()
})

// An empty subarray (buf.subarray(n, n), buf.subarray(buf.length)) is a view too.
test('an empty subarray of a pooled Buffer is refused as a view, as a non-empty one is', (t) => {
  const pool = new Pool({ maxBytes: MiB })
  const buf = pool.alloc(64)
  for (const view of [buf.subarray(5, 5), buf.subarray(64), buf.subarray(0, 0)]) {
    t.throws(() => pool.release(view), { code: 'ERR_EXTMEM_VIEW_OWNERSHIP' })
    t.throws(() => pool.retain(view), { code: 'ERR_EXTMEM_VIEW_OWNERSHIP' })
    t.throws(() => pool.refCount(view), { code: 'ERR_EXTMEM_VIEW_OWNERSHIP' })
  }
  t.is(pool.refCount(buf), 1, 'and the Buffer itself is untouched')
  pool.release(buf)
  pool.close()
})
