'use strict'
// Every refusal is a Node-style error with a stable code, and changes nothing in the pool.

const test = require('ava')
const fs = require('node:fs')
const path = require('node:path')
const {
  constants: { MAX_LENGTH },
} = require('node:buffer')
const { Pool, defaultPool, release, codes, ExtmemError, RefusedError } = require('..')
const { mappingLen } = require('./helpers')

function freshPool() {
  return new Pool({ maxBytes: 4 * 1024 * 1024 })
}

// [title, make(pool) -> thunk, error class, code]
// One case per line, as a table (so prettier leaves it alone):
// prettier-ignore
const CASES = [
  ['alloc of a string size', (p) => () => p.alloc('10'), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['alloc of a BigInt size', (p) => () => p.alloc(10n), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['alloc without a size', (p) => () => p.alloc(), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['alloc of a negative size', (p) => () => p.alloc(-1), RangeError, 'ERR_OUT_OF_RANGE'],
  ['alloc of a fractional size', (p) => () => p.alloc(1.5), RangeError, 'ERR_OUT_OF_RANGE'],
  ['alloc of NaN', (p) => () => p.alloc(NaN), RangeError, 'ERR_OUT_OF_RANGE'],
  ['alloc of Infinity', (p) => () => p.alloc(Infinity), RangeError, 'ERR_OUT_OF_RANGE'],
  ['allocUnsafe above buffer.constants.MAX_LENGTH', (p) => () => p.allocUnsafe(MAX_LENGTH + 1), RangeError, 'ERR_OUT_OF_RANGE'],
  ['alloc above the cap', (p) => () => p.alloc(5 * 1024 * 1024), RefusedError, 'ERR_EXTMEM_EXHAUSTED'],
  ['release of a non-Buffer', (p) => () => p.release({}), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['release of a Uint8Array that is not a Buffer', (p) => () => p.release(new Uint8Array(8)), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['release of an object faking a Buffer', (p) => () => p.release(Object.create(Buffer.prototype)), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['release of a Buffer from Node', (p) => () => p.release(Buffer.alloc(16)), ExtmemError, 'ERR_EXTMEM_NOT_POOLED'],
  ['release of a Buffer from another pool', (p) => { const q = freshPool(); const b = q.alloc(16); return () => p.release(b) }, ExtmemError, 'ERR_EXTMEM_NOT_POOLED'],
  ['release of a subarray', (p) => { const b = p.alloc(64); return () => p.release(b.subarray(8)) }, ExtmemError, 'ERR_EXTMEM_VIEW_OWNERSHIP'],
  ['release of a whole-length slice', (p) => { const b = p.alloc(64); return () => p.release(b.slice()) }, ExtmemError, 'ERR_EXTMEM_VIEW_OWNERSHIP'],
  ['retain of a subarray of a large Buffer', (p) => { const b = p.alloc(100000); return () => p.retain(b.subarray(0, 10)) }, ExtmemError, 'ERR_EXTMEM_VIEW_OWNERSHIP'],
  ['release of a released Buffer', (p) => { const b = p.alloc(64); p.release(b); return () => p.release(b) }, ExtmemError, 'ERR_EXTMEM_RELEASED'],
  ['retain of a released Buffer', (p) => { const b = p.alloc(64); p.release(b); return () => p.retain(b) }, ExtmemError, 'ERR_EXTMEM_RELEASED'],
  ['refCount of a foreign Buffer', (p) => () => p.refCount(Buffer.from('x')), ExtmemError, 'ERR_EXTMEM_NOT_POOLED'],
  ['refCount of a view', (p) => { const b = p.alloc(64); return () => p.refCount(b.subarray(1)) }, ExtmemError, 'ERR_EXTMEM_VIEW_OWNERSHIP'],
  ['refCount of a number', (p) => () => p.refCount(5), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['a pool from a non-object', () => () => new Pool(5), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['a pool with an unknown option', () => () => new Pool({ maxbytes: 5 }), TypeError, 'ERR_INVALID_ARG_VALUE'],
  ['a pool with a string maxBytes', () => () => new Pool({ maxBytes: '1M' }), TypeError, 'ERR_INVALID_ARG_TYPE'],
  ['a pool with maxBytes 0', () => () => new Pool({ maxBytes: 0 }), RangeError, 'ERR_OUT_OF_RANGE'],
  ['a pool with a fractional maxBytes', () => () => new Pool({ maxBytes: 1.5 }), RangeError, 'ERR_OUT_OF_RANGE'],
  ['closing the default pool', () => () => defaultPool.close(), Error, 'ERR_INVALID_STATE'],
  ['the top-level release of a Buffer from a Pool', (p) => { const b = p.alloc(8); return () => release(b) }, ExtmemError, 'ERR_EXTMEM_NOT_POOLED'],
]

for (const [title, make, Type, code] of CASES) {
  test(`${title} throws ${Type.name} ${code} and changes nothing`, (t) => {
    const pool = freshPool()
    const thunk = make(pool)
    const before = pool.stats()
    const defaultBefore = defaultPool.stats()
    const err = t.throws(thunk, { instanceOf: Type, code })
    t.is(Object.getPrototypeOf(err), Type.prototype, `exactly a ${Type.name}`)
    t.is(err.code, code)
    t.is(codes[code], code, `extmem.codes lists ${code}`)
    t.true(err.message.length > 10, 'the message says what went wrong')
    const after = pool.stats()
    if (code === 'ERR_EXTMEM_EXHAUSTED') {
      t.is(after.failedAllocations, before.failedAllocations + 1, 'a refusal is counted')
      t.is(after.refused.cap, before.refused.cap + 1, 'as a refusal at the cap')
      after.failedAllocations = before.failedAllocations
      after.refused = before.refused
    }
    t.deepEqual(after, before)
    t.deepEqual(defaultPool.stats(), defaultBefore)
    pool.close()
  })
}

test('the catalogue lists each case once, and docs/guarantees.md states how many there are', (t) => {
  t.is(new Set(CASES.map(([title]) => title)).size, CASES.length, 'no case is listed twice')
  const guarantees = fs.readFileSync(path.join(__dirname, '..', 'docs', 'guarantees.md'), 'utf8')
  const stated = /`errors › … throws … and changes nothing` \((\d+) cases\)/.exec(guarantees)
  t.truthy(stated, 'docs/guarantees.md names this catalogue with its count')
  t.is(Number(stated?.[1]), CASES.length, "the count in docs/guarantees.md is this catalogue's")
})

test('ERR_EXTMEM_EXHAUSTED carries requestedBytes, availableBytes and level', (t) => {
  const pool = new Pool({ maxBytes: 1024 * 1024 })
  const big = pool.allocUnsafe(640 * 1024)
  const err = t.throws(() => pool.allocUnsafe(400 * 1024), { code: 'ERR_EXTMEM_EXHAUSTED' })
  t.is(err.requestedBytes, 400 * 1024)
  t.is(err.availableBytes, 1024 * 1024 - mappingLen(640 * 1024))
  t.is(err.level, 'normal')
  t.regex(err.message, /409600 bytes/)
  t.is(pool.stats().reservedBytes, mappingLen(640 * 1024))
  pool.release(big)
  t.notThrows(() => pool.release(pool.allocUnsafe(400 * 1024)), 'the cached mapping is given back to make room')
  pool.close()
})

test('the cap is never exceeded while small and large allocations fill the pool', (t) => {
  const maxBytes = 2 * 1024 * 1024
  const pool = new Pool({ maxBytes, admission: 'cap' })
  const held = []
  let refusals = 0
  for (let i = 0; i < 2000; i++) {
    const size = i % 3 === 0 ? 50000 : 1 + ((i * 37) % 8192)
    try {
      held.push(pool.allocUnsafe(size))
    } catch (err) {
      t.is(err.code, 'ERR_EXTMEM_EXHAUSTED')
      t.true(err.availableBytes < Math.max(size, 64 * 1024))
      refusals++
    }
    t.true(pool.stats().reservedBytes <= maxBytes)
  }
  t.true(refusals > 0, 'the cap was reached')
  t.is(pool.stats().failedAllocations, refusals)
  for (const b of held) pool.release(b)
  t.is(pool.stats().inUseBytes, 0)
  pool.close()
})

test('a refused allocation succeeds once memory is released', (t) => {
  const pool = new Pool({ maxBytes: 256 * 1024, admission: 'cap' })
  const bufs = []
  t.throws(
    () => {
      for (;;) bufs.push(pool.allocUnsafe(8192))
    },
    { code: 'ERR_EXTMEM_EXHAUSTED' },
  )
  t.is(bufs.length, (256 * 1024) / 8192)
  pool.release(bufs.pop())
  t.notThrows(() => bufs.push(pool.allocUnsafe(8000)))
  for (const b of bufs) pool.release(b)
  pool.close()
})

test('ERR_EXTMEM_THROTTLED names the level, its threshold and both ways out', (t) => {
  const pool = new Pool({ maxBytes: 1024 * 1024, watermarks: { warning: 0.5, critical: 0.75 } })
  const held = []
  while (pool.level === 'normal') held.push(pool.allocUnsafe(8192))
  const atWarning = t.throws(() => pool.allocUnsafe(64 * 1024), {
    instanceOf: RefusedError,
    code: 'ERR_EXTMEM_THROTTLED',
  })
  t.is(atWarning.level, 'warning')
  t.regex(atWarning.message, /level 'warning' \(from 50 % of maxBytes\)/)
  t.regex(atWarning.message, /Buffers above 8 KiB/)
  t.regex(atWarning.message, /\{ priority: 'essential' \}/)
  t.regex(atWarning.message, /\{ admission: 'cap' \}/)
  while (pool.level === 'warning') held.push(pool.allocUnsafe(8192))
  const atCritical = t.throws(() => pool.allocUnsafe(100), { instanceOf: RefusedError, code: 'ERR_EXTMEM_THROTTLED' })
  t.regex(
    atCritical.message,
    /level 'critical' \(from 75 % of maxBytes\), where graded admission refuses every allocation/,
  )
  t.regex(atCritical.message, /\{ priority: 'essential' \}.*\{ admission: 'cap' \}/)
  t.notThrows(() => held.push(pool.allocUnsafe(100, { priority: 'essential' })), 'the first way out')
  for (const b of held) pool.release(b)
  pool.close()
})

test('a named pool joined without watermarks names its own thresholds when it throttles', (t) => {
  const first = new Pool({ name: 'throttled-message', maxBytes: 1024 * 1024, watermarks: { warning: 0.4 } })
  const joined = new Pool({ name: 'throttled-message' })
  const held = []
  while (joined.level === 'normal') held.push(joined.allocUnsafe(8192))
  const err = t.throws(() => joined.allocUnsafe(64 * 1024), { code: 'ERR_EXTMEM_THROTTLED' })
  t.regex(err.message, /level 'warning' \(from 40 % of maxBytes\)/)
  for (const b of held) first.release(b)
})

test('extmem errors are instances of the exported classes, and bad arguments of Node’s own', (t) => {
  const pool = new Pool({ maxBytes: 1024 * 1024, admission: 'cap' })
  const refused = t.throws(() => pool.allocUnsafe(2 * 1024 * 1024))
  t.true(refused instanceof RefusedError && refused instanceof ExtmemError && refused instanceof Error)
  const released = pool.alloc(10)
  pool.release(released)
  const again = t.throws(() => pool.release(released))
  t.true(again instanceof ExtmemError && !(again instanceof RefusedError))
  const bad = t.throws(() => pool.alloc(-1))
  t.true(bad instanceof RangeError && !(bad instanceof ExtmemError))
  pool.close()
})
