'use strict'
// What users see of a pooled Buffer is what they see of Node's own: the pool's bookkeeping is out
// of their sight and out of their reach.

const test = require('ava')
const { inspect } = require('node:util')
const { Pool } = require('..')

const pool = new Pool({ maxBytes: 64 * 1024 * 1024 })

const KINDS = [
  ['alloc(100)', () => pool.alloc(100)],
  ['allocUnsafe(5000)', () => pool.allocUnsafe(5000).fill(7)],
  ['alloc(100000)', () => pool.alloc(100000)],
  ['alloc(0)', () => pool.alloc(0)],
  ['allocFast(64)', () => pool.allocFast(64).fill(3)],
]

for (const [name, make] of KINDS) {
  test(`${name}: a pooled Buffer has no own property but its bytes; inspect and Object.keys show what they show for Buffer.alloc`, (t) => {
    const buf = make()
    const twin = Buffer.from(buf) // Node's own Buffer with the same bytes
    t.deepEqual(Reflect.ownKeys(buf), Reflect.ownKeys(twin), 'own keys, symbols included')
    t.deepEqual(Object.getOwnPropertySymbols(buf), [])
    t.deepEqual(Object.keys(buf), Object.keys(twin))
    t.is(inspect(buf), inspect(twin))
    t.is(
      inspect(buf, { showHidden: true }).replace(/\[ArrayBuffer[^\]]*\]/, ''),
      inspect(twin, { showHidden: true }).replace(/\[ArrayBuffer[^\]]*\]/, ''),
    )
    t.true(Buffer.isBuffer(buf) && buf instanceof Buffer && buf.constructor === Buffer)
  })
}

test('Object.assign copies no ownership: a copy of a pooled Buffer is not pooled and cannot release it', (t) => {
  const buf = pool.allocUnsafe(64).fill(1)
  const copy = Object.assign(Buffer.alloc(64), buf)
  t.false(pool.isPooled(copy))
  t.throws(() => pool.release(copy), { code: 'ERR_EXTMEM_NOT_POOLED' })
  t.true(pool.isPooled(buf), 'the original is untouched')
  t.is(pool.release(buf), 0)
  const fast = pool.allocFast(64)
  t.throws(() => pool.releaseFast(Object.assign(Buffer.alloc(64), fast)), { code: 'ERR_EXTMEM_NOT_POOLED' })
  pool.releaseFast(fast)
})
