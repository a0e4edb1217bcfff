'use strict'
// isPooled() never throws: false for anything that is not a live pooled Buffer of that pool. And
// the diagnostics are JSON: JSON.stringify works on stats(), live() and every event payload (the
// 'watermark' and 'leak' events and their diagnostics_channel messages), and writes what
// util.inspect shows, a BigInt address as its decimal string.

const test = require('ava')
const util = require('node:util')
const diagnostics = require('node:diagnostics_channel')
const extmem = require('..')
const { collectUntil } = require('./helpers')

const { Pool } = extmem
const MiB = 1024 * 1024

/** What JSON.stringify should write for a record util.inspect shows: its fields, BigInts as strings. */
function asJSON(record) {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, typeof v === 'bigint' ? v.toString() : v]))
}

/** Asserts `record` serialises to `asJSON(record)` and util.inspect shows the same values. */
function sameInJSONAndInspect(t, record, what) {
  const json = JSON.parse(JSON.stringify(record))
  t.deepEqual(json, JSON.parse(JSON.stringify(asJSON(record))), `${what}: JSON`)
  const shown = util.inspect(record, { depth: 0 })
  for (const [k, v] of Object.entries(record)) {
    if (typeof v === 'bigint') t.true(shown.includes(`${k}: ${v}n`), `${what}: inspect shows ${k}`)
    else if (typeof v === 'number' || typeof v === 'boolean') t.true(shown.includes(`${k}: ${v}`), `${what}: ${k}`)
  }
  t.false(Object.keys(record).includes('toJSON'), `${what}: toJSON is not an own enumerable key`)
}

test('isPooled() is false, never an exception, for anything that is not a live Buffer of that pool', (t) => {
  const pool = new Pool({ maxBytes: MiB })
  const other = new Pool({ maxBytes: MiB })
  const live = pool.allocUnsafe(64)
  const released = pool.allocUnsafe(64)
  pool.release(released)
  const theirs = other.allocUnsafe(64)
  const fast = pool.allocFast(64)
  const { proxy: revoked, revoke } = Proxy.revocable({}, {})
  revoke()
  const throwing = new Proxy(
    {},
    {
      get() {
        throw new Error('get')
      },
      getPrototypeOf() {
        throw new Error('getPrototypeOf')
      },
    },
  )
  const trickyProto = new Uint8Array(4)
  Object.setPrototypeOf(trickyProto, throwing)
  const lengthThrows = pool.allocUnsafe(8)
  Object.defineProperty(lengthThrows, 'length', {
    configurable: true,
    get() {
      throw new Error('length')
    },
  })
  const values = {
    null: null,
    undefined,
    string: 'buffer',
    number: 5,
    bigint: 5n,
    symbol: Symbol('x'),
    object: {},
    array: [1, 2],
    function: () => {},
    'a Uint8Array': new Uint8Array(4),
    'a DataView over a pooled Buffer': new DataView(live.buffer, live.byteOffset, 4),
    'an ArrayBuffer': new ArrayBuffer(4),
    'a SharedArrayBuffer Buffer': Buffer.from(new SharedArrayBuffer(4)),
    'a revoked Proxy': revoked,
    'a Proxy whose traps throw': throwing,
    'a Uint8Array whose prototype throws': trickyProto,
    'an object with Buffer.prototype': Object.create(Buffer.prototype),
    'a Node Buffer': Buffer.alloc(4),
    'a view of a pooled Buffer': live.subarray(1),
    'a released Buffer': released,
    "another pool's Buffer": theirs,
    'a fast-path Buffer': fast,
    "alloc(0)'s Buffer": pool.alloc(0),
  }
  for (const [name, value] of Object.entries(values)) {
    t.is(pool.isPooled(value), false, name)
    t.is(extmem.isPooled(value), false, `top-level: ${name}`)
  }
  t.true(pool.isPooled(live))
  t.true(pool.isPooled(lengthThrows), 'a shadowed length getter is not read')
  t.true(other.isPooled(theirs))
  pool.release(live)
  delete lengthThrows.length
  pool.release(lengthThrows)
  pool.releaseFast(fast)
  other.release(theirs)
  pool.close()
  other.close()
})

test('stats() and live() are JSON, and say what util.inspect says', (t) => {
  const pool = new Pool({ maxBytes: 16 * MiB, leakDetection: 'paranoid' })
  const bufs = [pool.allocUnsafe(100), pool.allocUnsafe(300000)]
  const stats = pool.stats()
  t.deepEqual(JSON.parse(JSON.stringify(stats)), stats)
  const live = pool.live()
  t.is(live.length, 2)
  const json = JSON.parse(JSON.stringify(live))
  for (const [i, entry] of live.entries()) {
    t.is(typeof entry.address, 'bigint')
    t.is(json[i].address, entry.address.toString())
    t.is(typeof entry.stack, 'string')
    sameInJSONAndInspect(t, entry, `live()[${i}]`)
  }
  for (const b of bufs) pool.release(b)
  pool.close()
})

test('a Pool is JSON (and inspects) as its summary', (t) => {
  const pool = new Pool({ maxBytes: MiB, name: 'json-summary' })
  const summary = { name: 'json-summary', label: 'json-summary', maxBytes: MiB, level: 'normal', closed: false }
  t.deepEqual(JSON.parse(JSON.stringify(pool)), summary)
  t.is(util.inspect(pool), `Pool ${util.inspect(summary)}`)
})

test('watermark events and their channel messages are JSON', async (t) => {
  const pool = new Pool({ maxBytes: MiB, admission: 'cap' })
  const events = []
  const messages = []
  const onMessage = (m) => {
    if (m.pool === pool) messages.push(m)
  }
  diagnostics.subscribe('extmem:watermark', onMessage)
  pool.on('watermark', (e) => events.push(e))
  const held = []
  while (pool.level !== 'critical') held.push(pool.allocUnsafe(64 * 1024))
  for (const b of held) pool.release(b)
  await collectUntil(() => events.length >= 3, 20)
  diagnostics.unsubscribe('extmem:watermark', onMessage)
  t.true(events.length >= 3)
  for (const e of events) t.deepEqual(JSON.parse(JSON.stringify(e)), e)
  for (const m of messages) {
    const { pool: summary, ...rest } = JSON.parse(JSON.stringify(m))
    const { pool: _, ...fields } = m
    t.deepEqual(summary, pool.toJSON())
    t.deepEqual(rest, fields)
  }
  pool.close()
})

test('leak events and their channel messages are JSON, the address a string', async (t) => {
  const pool = new Pool({ maxBytes: MiB, leakDetection: 'paranoid' })
  const leaks = []
  const messages = []
  const onMessage = (m) => {
    if (m.pool === pool) messages.push(m)
  }
  diagnostics.subscribe('extmem:leak', onMessage)
  pool.on('leak', (e) => leaks.push(e))
  const warned = []
  const onWarning = (w) => warned.push(w)
  process.on('warning', onWarning)
  ;(() => {
    pool.allocUnsafe(2000) // dropped without release
  })()
  const found = await collectUntil(() => leaks.length > 0 && messages.length > 0)
  diagnostics.unsubscribe('extmem:leak', onMessage)
  process.off('warning', onWarning)
  t.true(found, 'the leak was reported')
  const [leak] = leaks
  t.is(typeof leak.address, 'bigint')
  sameInJSONAndInspect(t, leak, 'leak event')
  t.is(JSON.parse(JSON.stringify(leak)).address, leak.address.toString())
  const message = JSON.parse(JSON.stringify(messages[0]))
  t.deepEqual(message.pool, pool.toJSON())
  t.is(message.address, leak.address.toString())
  t.is(message.stack, leak.stack)
  pool.close()
})
