'use strict'
// pool.releaseOwner(x): a pooled Buffer or any subarray()/slice() of one drops one reference of the
// loan it lies in; retain() and release() of a view keep refusing, with a message that names
// releaseOwner(); fast-path Buffers and their views are refused as release() refuses them.

const test = require('ava')
const extmem = require('..')
const { holds, stamp } = require('./helpers')

const { Pool, defaultPool } = extmem
const MiB = 1024 * 1024

test('a view (subarray, slice, a view of a view) releases the Buffer it lies in, small or large', (t) => {
  const pool = new Pool({ maxBytes: 16 * MiB })
  for (const size of [64, 5000, 8192, 300000]) {
    for (const make of [
      (b) => b.subarray(1, 10),
      (b) => b.slice(2),
      (b) => b.subarray(3).subarray(1, 2),
      (b) => b.subarray(0, 0),
    ]) {
      const buf = pool.allocUnsafe(size)
      const view = make(buf)
      t.false(pool.isPooled(view))
      t.is(pool.releaseOwner(view), 0)
      t.is(buf.length, 0, `${size}: the owner is detached`)
      t.is(view.length, 0, `${size}: and so is the view`)
    }
  }
  const s = pool.stats()
  t.is(s.liveBuffers, 0)
  t.is(s.allocations, s.releases)
  pool.close()
})

test('releaseOwner drops one reference: a retained Buffer stays, with its bytes, until its last', (t) => {
  const pool = new Pool({ maxBytes: 16 * MiB })
  const buf = pool.allocUnsafe(4000)
  stamp(buf, 7)
  const view = buf.subarray(100, 200)
  pool.retain(buf)
  t.is(pool.releaseOwner(view), 1)
  t.true(holds(buf, 7))
  t.is(view.length, 100)
  t.is(pool.releaseOwner(view), 0)
  t.is(view.length, 0)
  t.throws(() => pool.releaseOwner(view), { code: 'ERR_EXTMEM_RELEASED' })
  t.throws(() => pool.releaseOwner(buf), { code: 'ERR_EXTMEM_RELEASED' })
  pool.close()
})

test('the Buffer itself is accepted as release() accepts it, alloc(0)’s included', (t) => {
  const pool = new Pool({ maxBytes: MiB })
  t.is(pool.releaseOwner(pool.allocUnsafe(10)), 0)
  t.is(pool.releaseOwner(pool.alloc(0)), 0)
  t.is(pool.stats().liveBuffers, 0)
  pool.close()
})

test('retain and release of a view refuse with ERR_EXTMEM_VIEW_OWNERSHIP, whose message names releaseOwner', (t) => {
  const pool = new Pool({ maxBytes: MiB })
  const buf = pool.allocUnsafe(100)
  const view = buf.subarray(1)
  for (const call of [() => pool.release(view), () => pool.retain(view)]) {
    const err = t.throws(call, { code: 'ERR_EXTMEM_VIEW_OWNERSHIP' })
    t.regex(err.message, /releaseOwner\(\)/)
  }
  t.is(pool.refCount(buf), 1)
  pool.release(buf)
  pool.close()
})

test('fast-path Buffers and their views are refused as release() refuses them; the arena is untouched', (t) => {
  const pool = new Pool({ maxBytes: MiB })
  const fast = pool.allocFast(100)
  fast.fill(9)
  const before = pool.stats()
  t.throws(() => pool.releaseOwner(fast), { code: 'ERR_EXTMEM_NOT_POOLED', message: /allocFast/ })
  const err = t.throws(() => pool.releaseOwner(fast.subarray(1, 5)), { code: 'ERR_EXTMEM_VIEW_OWNERSHIP' })
  t.regex(err.message, /allocFast/)
  t.deepEqual(pool.stats().liveBuffers, before.liveBuffers, 'the arena is still lent')
  t.is(fast.length, 100)
  t.true(fast.every((b) => b === 9))
  pool.releaseFast(fast)
  pool.close()
})

test('another pool’s Buffer or view, a Node Buffer and non-Buffers get release()’s errors', (t) => {
  const pool = new Pool({ maxBytes: MiB })
  const other = new Pool({ maxBytes: MiB })
  const theirs = other.allocUnsafe(100)
  t.throws(() => pool.releaseOwner(theirs), { code: 'ERR_EXTMEM_NOT_POOLED' })
  t.throws(() => pool.releaseOwner(theirs.subarray(1)), { code: 'ERR_EXTMEM_NOT_POOLED' })
  t.is(other.refCount(theirs), 1)
  t.throws(() => pool.releaseOwner(Buffer.alloc(10)), { code: 'ERR_EXTMEM_NOT_POOLED' })
  for (const bad of [null, undefined, 'x', 5, {}, new Uint8Array(4), new ArrayBuffer(4)])
    t.throws(() => pool.releaseOwner(bad), { code: 'ERR_INVALID_ARG_TYPE' })
  other.release(theirs)
  pool.close()
  other.close()
})

test('a view made from the ArrayBuffer, with no subarray() or slice() of its Buffer on record, is refused and says why', (t) => {
  const pool = new Pool({ maxBytes: MiB })
  const buf = pool.allocUnsafe(64)
  const raw = Buffer.from(buf.buffer, buf.byteOffset, 8)
  const err = t.throws(() => pool.releaseOwner(raw), { code: 'ERR_EXTMEM_VIEW_OWNERSHIP' })
  t.regex(err.message, /no Buffer from alloc\(\) is on record/)
  t.is(pool.refCount(buf), 1)
  // Once some subarray() of the Buffer recorded its owner, any view over it is known.
  buf.subarray(0, 1)
  t.is(pool.releaseOwner(raw), 0)
  t.is(buf.length, 0)
  pool.close()
})

test('a view of a Buffer that resize() replaced is a released view: the new Buffer is not released through it', (t) => {
  const pool = new Pool({ maxBytes: 16 * MiB })
  const buf = pool.allocUnsafe(100000)
  const view = buf.subarray(0, 10)
  const grown = pool.resize(buf, 200000)
  t.throws(() => pool.releaseOwner(view), { code: 'ERR_EXTMEM_RELEASED' })
  t.is(pool.refCount(grown), 1)
  t.is(pool.releaseOwner(grown.subarray(5)), 0)
  pool.close()
})

test('views behave as Node’s: subarray() and slice() of a pooled Buffer give plain Buffers over the same bytes', (t) => {
  const pool = new Pool({ maxBytes: MiB })
  const buf = pool.alloc(16)
  const a = buf.subarray(4, 8)
  const b = buf.slice(-4)
  t.true(Buffer.isBuffer(a) && Buffer.isBuffer(b))
  t.is(a.constructor, Buffer)
  a[0] = 1
  b[3] = 2
  t.is(buf[4], 1)
  t.is(buf[15], 2)
  t.deepEqual([a.length, b.length, buf.subarray().length, buf.subarray(20).length], [4, 4, 16, 0])
  t.is(Object.keys(buf).length, 16, 'no own property was added')
  pool.release(buf)
  pool.close()
})

test('the top-level releaseOwner() works on defaultPool', (t) => {
  const buf = defaultPool.allocUnsafe(300)
  t.is(extmem.releaseOwner(buf.subarray(10, 20)), 0)
  t.is(buf.length, 0)
})
