'use strict'
// Double releases, with their history: with leakDetection 'paranoid' the ERR_EXTMEM_RELEASED of a
// second release carries the stack of the first (err.firstReleaseStack, and its first frame in the
// message); other modes pay nothing and say what they always said.

const test = require('ava')
const fs = require('node:fs')
const path = require('node:path')
const { Pool } = require('..')
const { collectUntil } = require('./helpers')

const LIB = path.join(__dirname, '..', 'lib') + path.sep

const lines = fs.readFileSync(__filename, 'utf8').split('\n')
/** `spec-file:line:` of the line that ends in `// <tag>`, as a stack frame names it. */
function site(tag) {
  const i = lines.findIndex((line) => line.endsWith(`// ${tag}`))
  if (i < 0) throw new Error(`no line tagged ${tag}`)
  return `double-release.spec.js:${i + 1}:`
}

/** Asserts `err` is a second release's, whose first release was at `first` and which itself happened at `second`. */
function assertHistory(t, err, first, second) {
  t.is(err.code, 'ERR_EXTMEM_RELEASED')
  t.is(typeof err.firstReleaseStack, 'string')
  const top = err.firstReleaseStack.split('\n')[0]
  t.true(top.includes(first), `the first release's stack starts at ${first}: ${top}`)
  t.false(err.firstReleaseStack.includes(LIB), "extmem's own frames are left out")
  t.regex(
    err.message,
    /^The Buffer was already released; the first release was at .*\(its stack: err\.firstReleaseStack\)$/,
  )
  t.true(err.message.includes(first), 'the message names where the first release was')
  const own = err.stack.split('\n')[1]
  t.true(own.includes(second), `the error's own stack is the second release's: ${own}`)
}

test('paranoid: a second release() carries the stack of the first', (t) => {
  const pool = new Pool({ leakDetection: 'paranoid' })
  for (const size of [100, 100_000]) {
    const buf = pool.allocUnsafe(size)
    pool.release(buf) // first
    const err = t.throws(() => pool.release(buf)) // second
    assertHistory(t, err, site('first'), site('second'))
  }
  t.is(pool.stats().liveBuffers, 0)
})

test('paranoid: the release that ended the loan is the one remembered, not one that dropped a reference', (t) => {
  const pool = new Pool({ leakDetection: 'paranoid' })
  const buf = pool.allocUnsafe(64)
  pool.retain(buf)
  t.is(pool.release(buf), 1) // dropped one of two
  t.is(pool.release(buf), 0) // ended the loan
  const err = t.throws(() => pool.release(buf)) // again
  assertHistory(t, err, site('ended the loan'), site('again'))
  t.false(err.firstReleaseStack.includes(site('dropped one of two')))
})

test('paranoid: retain() after the last release carries the stack of that release too', (t) => {
  const pool = new Pool({ leakDetection: 'paranoid' })
  const buf = pool.alloc(10)
  pool.release(buf) // before retain
  const err = t.throws(() => pool.retain(buf)) // retain after
  assertHistory(t, err, site('before retain'), site('retain after'))
})

test('paranoid: a first release by [Symbol.dispose] (using), a scope or releaseOwner() is remembered', (t) => {
  const pool = new Pool({ leakDetection: 'paranoid' })
  const disposed = pool.allocUnsafe(200)
  disposed[Symbol.dispose]() // dispose
  const afterDispose = t.throws(() => pool.release(disposed)) // after dispose
  assertHistory(t, afterDispose, site('dispose'), site('after dispose'))

  const scope = pool.scope()
  const scoped = [scope.allocUnsafe(100), scope.allocUnsafe(200), scope.allocUnsafe(20_000), scope.alloc(300)]
  scope.close() // scope close
  for (const buf of scoped) {
    const afterClose = t.throws(() => pool.release(buf)) // after close
    assertHistory(t, afterClose, site('scope close'), site('after close'))
  }

  const scope2 = pool.scope()
  const early = scope2.allocUnsafe(50)
  scope2.release(early) // scope release
  const afterScopeRelease = t.throws(() => pool.release(early)) // after scope release
  assertHistory(t, afterScopeRelease, site('scope release'), site('after scope release'))
  scope2.close()

  const owner = pool.allocUnsafe(1000)
  pool.releaseOwner(owner.subarray(10, 20)) // release owner
  const afterOwner = t.throws(() => pool.release(owner)) // after owner
  assertHistory(t, afterOwner, site('release owner'), site('after owner'))
  t.is(pool.stats().liveBuffers, 0)
})

test('paranoid: the history holds no Buffer: a released Buffer is collected as any other', async (t) => {
  const pool = new Pool({ leakDetection: 'paranoid' })
  let collected = 0
  const registry = new FinalizationRegistry(() => collected++)
  ;(() => {
    for (const size of [100, 100_000]) {
      const buf = pool.allocUnsafe(size)
      pool.release(buf)
      registry.register(buf, size)
    }
  })()
  t.true(await collectUntil(() => collected === 2), 'both released Buffers were collected')
})

for (const leakDetection of ['off', 'sampled']) {
  test(`${leakDetection}: a second release says what it always said, and the Pool has no methods of its own`, (t) => {
    const pool = new Pool({ leakDetection })
    t.false(
      Object.hasOwn(pool, 'release') || Object.hasOwn(pool, 'retain'),
      'the prototype’s release() and retain(), untouched',
    )
    for (let i = 0; i < 130; i++) {
      const buf = pool.allocUnsafe(64)
      pool.release(buf)
      const err = t.throws(() => pool.release(buf), { code: 'ERR_EXTMEM_RELEASED' })
      t.is(err.message, 'The Buffer was already released')
      t.is(err.firstReleaseStack, undefined)
      if (i !== 0) continue
      t.deepEqual(Object.keys(err), ['code'])
    }
  })
}

test('paranoid: the methods it wraps stay what they were to callers', (t) => {
  const pool = new Pool({ leakDetection: 'paranoid' })
  t.deepEqual(
    Object.keys(pool).filter((k) => k === 'release' || k === 'retain'),
    [],
    'not enumerable',
  )
  t.is(pool.release.name, 'release')
  t.is(pool.retain.name, 'retain')
  const buf = pool.alloc(0)
  t.is(pool.release(buf), 0, 'alloc(0) Buffers need no release and never fail one')
  t.is(pool.release(buf), 0)
  t.throws(() => pool.release(Buffer.alloc(4)), { code: 'ERR_EXTMEM_NOT_POOLED' })
  t.throws(() => pool.release('x'), { code: 'ERR_INVALID_ARG_TYPE' })
  const b = pool.allocUnsafe(10)
  t.throws(() => pool.release(b.subarray(1)), { code: 'ERR_EXTMEM_VIEW_OWNERSHIP' })
  t.is(pool.retain(b), 2)
  t.is(pool.release(b), 1)
  t.is(pool.release(b), 0)
})
