'use strict'
// `using`: every Buffer a pool hands out has `[Symbol.dispose]()`, which drops one reference as
// release() (or releaseFast()) does and does nothing once the Buffer is fully released.

const test = require('ava')
const ts = require('typescript')
const { Pool, defaultPool, codes } = require('..')
const { collectUntil } = require('./helpers')

/** Whether this Node parses the `using` declaration (V8 ships it from Node 24). */
const NATIVE_USING = (() => {
  try {
    // eslint-disable-next-line no-new-func
    new Function('{ using x = null }')
    return true
  } catch {
    return false
  }
})()

/** A function compiled from `body`, with the parameter names `params`. */
function compile(params, body) {
  // eslint-disable-next-line no-new-func
  return new Function(...params, body)
}

test('the method lives on the prototype: a Buffer has no own property for it', (t) => {
  const pool = new Pool({ maxBytes: 1 << 20 })
  const bufs = [pool.alloc(10), pool.allocUnsafe(8192), pool.allocUnsafe(20000), pool.alloc(0), pool.allocFast(64)]
  for (const buf of bufs) {
    t.is(typeof buf[Symbol.dispose], 'function')
    t.false(Object.hasOwn(buf, Symbol.dispose))
    t.deepEqual(Reflect.ownKeys(buf), Reflect.ownKeys(Buffer.alloc(buf.length)))
  }
  t.is(bufs[0][Symbol.dispose], bufs[2][Symbol.dispose], 'one function for every safe-path Buffer')
  t.is(Buffer.alloc(1)[Symbol.dispose], undefined, "Node's own Buffers are untouched")
  t.is(bufs[1].subarray(1)[Symbol.dispose], undefined, 'a view has none: only the owner is disposed')
  for (const buf of bufs) buf[Symbol.dispose]()
  t.is(pool.stats().liveBuffers, 1, 'the fast arena is the one loan left')
  t.is(pool.stats().fast.liveBuffers, 0)
  pool.close()
})

for (const size of [100, 8192, 300_000]) {
  test(`dispose of a ${size}-byte Buffer releases it at once and detaches it and its views`, (t) => {
    const pool = new Pool({ maxBytes: 4 << 20 })
    const buf = pool.allocUnsafe(size)
    const view = buf.subarray(1)
    buf[Symbol.dispose]()
    t.is(buf.length, 0)
    t.is(view.length, 0)
    t.is(pool.stats().liveBuffers, 0)
    t.is(pool.stats().releases, 1)
    buf[Symbol.dispose]()
    t.is(pool.stats().releases, 1, 'a second dispose does nothing')
    t.throws(() => pool.release(buf), { code: codes.ERR_EXTMEM_RELEASED }, 'release() still refuses a released Buffer')
    pool.close()
  })
}

test('dispose drops one reference: a retained Buffer lives until its last one goes', (t) => {
  const pool = new Pool({ maxBytes: 1 << 20 })
  const buf = pool.alloc(512)
  t.is(pool.retain(buf), 2)
  buf[Symbol.dispose]()
  t.is(pool.refCount(buf), 1)
  t.is(buf.length, 512)
  buf[Symbol.dispose]()
  t.is(buf.length, 0)
  t.is(pool.stats().liveBuffers, 0)
  pool.close()
})

test('dispose after release(), after close(), and of alloc(0) is a no-op or a release, never an error', (t) => {
  const pool = new Pool({ maxBytes: 1 << 20 })
  const released = pool.allocUnsafe(64)
  pool.release(released)
  t.notThrows(() => released[Symbol.dispose]())
  const empty = pool.alloc(0)
  t.notThrows(() => empty[Symbol.dispose]())
  const out = pool.allocUnsafe(64)
  t.is(pool.close(), 1)
  out[Symbol.dispose]()
  t.is(out.length, 0, 'a Buffer outstanding at close() is still released by dispose')
  t.is(pool.stats().liveBuffers, 0)
})

test('a fast-path Buffer is returned once; a stale one (its slot handed out again) is left alone', (t) => {
  const pool = new Pool({ maxBytes: 1 << 20 })
  const a = pool.allocFast(100)
  a[Symbol.dispose]()
  t.is(pool.stats().fast.liveBuffers, 0)
  const b = pool.allocFast(100)
  t.is(b.byteOffset, a.byteOffset, 'the slot went to b')
  a[Symbol.dispose]()
  t.is(pool.stats().fast.liveBuffers, 1, "disposing a stale Buffer does not return b's slot")
  t.notThrows(() => pool.releaseFast(b))
  pool.close()
  t.notThrows(() => b[Symbol.dispose](), 'after close() nothing is left to return')
})

test('called on anything else, the method throws ERR_INVALID_THIS', (t) => {
  const pool = new Pool({ maxBytes: 1 << 20 })
  const buf = pool.allocUnsafe(10)
  const fast = pool.allocFast(10)
  for (const [method, victim] of [
    [buf[Symbol.dispose], Buffer.alloc(10)],
    [buf[Symbol.dispose], buf.subarray(0)],
    [buf[Symbol.dispose], fast],
    [fast[Symbol.dispose], buf],
    [fast[Symbol.dispose], {}],
  ]) {
    t.throws(() => method.call(victim), { code: 'ERR_INVALID_THIS', instanceOf: TypeError })
  }
  t.is(pool.refCount(buf), 1, 'nothing changed')
  t.is(pool.stats().fast.liveBuffers, 1)
  pool.close()
})

// Serial: the process's external memory is read across turns, which no other test may move.
test.serial('a Buffer whose Pool object was collected is still released by dispose', async (t) => {
  const size = 1 << 20
  let collected = false
  const registry = new FinalizationRegistry(() => (collected = true))
  const buf = (() => {
    const pool = new Pool({ maxBytes: 8 << 20 })
    registry.register(pool, 'pool')
    return pool.allocUnsafe(size)
  })()
  t.true(await collectUntil(() => collected), 'the Pool object was collected while its Buffer lives')
  const view = buf.subarray(10)
  const external = process.memoryUsage().external
  buf[Symbol.dispose]()
  t.is(buf.length, 0)
  t.is(view.length, 0)
  // V8 may settle its count of a detached ArrayBuffer only after a concurrent sweep that the GCs
  // above started; `buf` is still referenced, so nothing but dispose can give this memory up.
  const givenUp = () => external - process.memoryUsage().external >= size
  t.true(givenUp() || (await collectUntil(givenUp, 10)), 'its external memory was given up')
  t.notThrows(() => buf[Symbol.dispose]())
})

// Node 20 and 22 do not parse `using`; the down-levelled test below covers them.
;(NATIVE_USING ? test : test.skip)('`using` releases at the end of the block, also when the block throws', (t) => {
  const pool = new Pool({ maxBytes: 1 << 20 })
  const scoped = compile(['pool'], `{ using buf = pool.allocUnsafe(4096); buf[0] = 1; return buf }`)
  const escaped = scoped(pool)
  t.is(escaped.length, 0, 'released on leaving the block')
  const failing = compile(
    ['pool', 'seen'],
    `{ using buf = pool.alloc(300000); seen.push(buf); throw new Error('boom') }`,
  )
  const seen = []
  t.throws(() => failing(pool, seen), { message: 'boom' })
  t.is(seen[0].length, 0, 'released although the block threw')
  t.is(pool.stats().liveBuffers, 0)
  pool.close()
})

test("TypeScript's down-levelled `using` releases too (Node 20 and 22)", (t) => {
  const source = `
    export function run(pool: { allocUnsafe(n: number): Buffer & Disposable }) {
      using head = pool.allocUnsafe(64)
      using body = pool.allocUnsafe(20000)
      head[0] = 1
      body[0] = 2
      return [head, body]
    }`
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS },
  })
  t.regex(outputText, /__disposeResources/, 'compiled to the helper, not to native using')
  const exports = {}
  compile(['exports', 'require'], outputText)(exports, require)
  const [head, body] = exports.run(defaultPool)
  t.is(head.length, 0)
  t.is(body.length, 0)
})
