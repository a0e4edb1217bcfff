'use strict'
// The facts that cross between JavaScript and the core (ARCHITECTURE.md, "Facts that cross"):
// each is written once, on the Rust side, and lib/ reads it from constants(). These tests fail
// when one side changes without the other: a position written by hand in lib/, a status lib/
// does not turn into its error, a size lent by the thread cache in another class than the core
// gives it.

const test = require('ava')
const fs = require('node:fs')
const path = require('node:path')
const binding = require('../binding.js')
const native = require('../lib/native')
const { Pool } = require('..')

const C = binding.constants()
/** A NativePool's settings, as lib/pool.js gives them. */
const CONFIG = { maxBytes: 1 << 20, warning: 0.7, critical: 0.85, shedding: 0.95, hysteresis: 0.02 }
const lib = path.join(__dirname, '..', 'lib')

/** Places in `src` where the scratch array or a batch release's io is indexed with a number. */
function positionsWrittenByHand(src) {
  return src.match(/\b(scratch|io)\[[^\]]*\b\d+\b[^\]]*\]/g) ?? []
}

test("lib/ reads the scratch array and a batch release's io only at the indexes constants() names", (t) => {
  // The check finds what it looks for.
  t.deepEqual(positionsWrittenByHand('a = scratch[0]; b = io[4 * i + 1]; c = io[IO.stride * i + IO.token]'), [
    'scratch[0]',
    'io[4 * i + 1]',
  ])
  for (const file of fs.readdirSync(lib).filter((f) => f.endsWith('.js'))) {
    const src = fs.readFileSync(path.join(lib, file), 'utf8')
    t.deepEqual(positionsWrittenByHand(src), [], file)
  }
})

test("every figure the scratch array and a batch release's io carry fits the numbers JavaScript provides", (t) => {
  const { length, keptNothing, keptSlot, keptMapping, ...at } = C.scratch
  t.is(native.scratch.length, length)
  for (const [name, index] of Object.entries(at)) t.true(index >= 0 && index < length, `scratch.${name}`)
  t.is(new Set([keptNothing, keptSlot, keptMapping]).size, 3)
  const { stride, ...io } = C.releaseIo
  for (const [name, index] of Object.entries(io)) t.true(index >= 0 && index < stride, `releaseIo.${name}`)
  // The core refuses a scratch array shorter than it writes (and keeps the one it has).
  t.false(binding.bindScratch(new Float64Array(length - 1)))
  t.is(new Set(Object.values(C.releaseOutcomes)).size, Object.keys(C.releaseOutcomes).length)
})

test("a batch release's io that does not hold whole Buffers is refused, and changes nothing", (t) => {
  const nativePool = new binding.NativePool({ ...CONFIG, admission: 'cap' })
  const poolRef = nativePool.poolRef()
  const { stride } = C.releaseIo
  t.is(binding.hot_releaseMany(poolRef, [], new Float64Array(stride + 1)), binding.STATUS_BAD_ARGUMENT)
  t.is(binding.hot_finishMany(poolRef, [], new Float64Array(stride - 1)), binding.STATUS_BAD_ARGUMENT)
  t.is(binding.hot_releaseMany(poolRef, [], new Float64Array(0)), 0)
  t.is(nativePool.stats().liveBuffers, 0)
})

/** Statuses lib/ handles where it calls, never turning them into an error. */
const HANDLED_BY_THE_CALLER = {
  STATUS_STALE: 'a kept ArrayBuffer went stale: the caller allocates afresh',
  STATUS_RETRY: 'the caller flushes its thread cache and asks again',
}

test('every status the binding exports is negative, its own, and stands for an error of its own', (t) => {
  const statuses = Object.keys(binding).filter((k) => k.startsWith('STATUS_'))
  t.true(statuses.length >= 10)
  t.is(new Set(statuses.map((k) => binding[k])).size, statuses.length, 'two statuses share a value')
  const pool = new binding.NativePool({ ...CONFIG, admission: 'graded' })
  const codes = new Map()
  for (const name of statuses) {
    const status = binding[name]
    t.true(Number.isInteger(status) && status < 0, name)
    if (name in HANDLED_BY_THE_CALLER) continue
    native.scratch.fill(0)
    native.scratch[C.scratch.level] = 1
    const err = native.statusError(status, pool, 'test')
    t.true(err instanceof Error, name)
    t.is(typeof err.code, 'string', name)
    codes.set(name, err.code)
  }
  // The limit a refused retain names is the core's.
  const tooMany = native.statusError(binding.STATUS_TOO_MANY_REFS, pool, 'test')
  t.true(tooMany instanceof RangeError)
  t.true(tooMany.message.includes(`<= ${C.maxRefs}`), tooMany.message)
  // Only the statuses that mean "not this pool's Buffer" share ERR_EXTMEM_NOT_POOLED: any other
  // status lib/ does not know falls there too, and fails here.
  const notPooled = codes.get('STATUS_NOT_POOLED')
  const sharing = [...codes].filter(([, code]) => code === notPooled).map(([name]) => name)
  t.deepEqual(sharing.sort(), ['STATUS_BAD_ARGUMENT', 'STATUS_NOT_POOLED'])
  const others = [...codes].filter(([, code]) => code !== notPooled)
  t.is(new Set(others.map(([, code]) => code)).size, others.length, JSON.stringify(others))
})

// Node 20 has no thread cache.
;(native.TRANSFER ? test : test.skip)(
  'a size lent by the thread cache lands in the class the core gives it, at every class edge and alignment',
  (t) => {
    const cached = new Pool({ maxBytes: 64 << 20 })
    const core = new Pool({ maxBytes: 64 << 20, threadCache: false })
    const classOf = (pool) => pool.stats().small.classes.findIndex((c) => c.inUse === 1)
    const sizes = new Set()
    for (const s of C.classSizes) for (const d of [-1, 0, 1]) if (s + d >= 1 && s + d <= C.smallMax) sizes.add(s + d)
    for (const align of C.alignments) {
      for (const size of sizes) {
        const a = cached.alloc(size, { align })
        const b = core.alloc(size, { align })
        const want = C.classOf[C.alignments.indexOf(align) * (C.smallMax + 1) + size]
        t.is(classOf(core), want, `core: ${size} B, align ${align}`)
        t.is(classOf(cached), want, `thread cache: ${size} B, align ${align}`)
        t.is(cached.stats().inUseBytes, core.stats().inUseBytes, `bytes of ${size} B, align ${align}`)
        cached.release(a)
        core.release(b)
      }
    }
    t.true(
      cached.stats().small.classes.some((c) => c.cached > 0),
      'the thread cache served',
    )
    cached.close()
    core.close()
  },
)

test("the default watermarks are the core's, and docs/api.md states them", (t) => {
  const docs = fs.readFileSync(path.join(__dirname, '..', 'docs', 'api.md'), 'utf8')
  const stated = docs.match(/\(default `([\d.]+)`, `([\d.]+)`, `([\d.]+)`, `([\d.]+)`\)/)
  t.truthy(stated, 'docs/api.md states the defaults of options.watermarks')
  const [warning, critical, shedding, hysteresis] = stated.slice(1).map(Number)
  t.deepEqual({ warning, critical, shedding, hysteresis }, { ...C.watermarks })
  t.deepEqual({ ...native.WATERMARKS }, { ...C.watermarks })
})
