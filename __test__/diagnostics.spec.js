'use strict'
// Finding where memory goes: leak detection with allocation stacks, the live listing, and the
// native addresses of Buffers (with their alignment).

const test = require('ava')
const diagnostics = require('node:diagnostics_channel')
const { execFileSync } = require('node:child_process')
const { readFileSync } = require('node:fs')
const path = require('node:path')
const { Pool } = require('..')
const { collectUntil } = require('./helpers')

function leakOne(pool, size) {
  pool.allocUnsafe(size) // the leak: never released
}

/** Where leakOne allocates, as a stack frame shows it: `line:column` of `allocUnsafe` in this file. */
function leakSite() {
  const lines = readFileSync(__filename, 'utf8').split('\n')
  const index = lines.findIndex((line) => line.endsWith('// the leak: never released'))
  return `${index + 1}:${lines[index].indexOf('allocUnsafe(size)') + 1}`
}

test.serial('paranoid mode reports a leaked Buffer with the stack of its allocation', async (t) => {
  const pool = new Pool({ maxBytes: 1 << 20, leakDetection: 'paranoid' })
  const leaks = []
  const published = []
  const warnings = []
  pool.on('leak', (l) => leaks.push(l))
  const onLeak = (m) => m.pool === pool && published.push(m)
  diagnostics.subscribe('extmem:leak', onLeak)
  const onWarning = (w) => w.code === 'EXTMEM_LEAK' && warnings.push(w)
  process.on('warning', onWarning)
  const kept = pool.alloc(10)
  leakOne(pool, 333)
  leakOne(pool, 444)
  t.true(await collectUntil(() => leaks.length === 2 && warnings.length === 1), 'two leaks, one warning')
  await collectUntil(() => false, 3)
  const [a] = leaks.sort((x, y) => x.size - y.size)
  t.is(a.size, 333)
  t.is(typeof a.address, 'bigint')
  t.true(a.ageMs >= 0)
  const frame = a.stack.split('\n')[0].trim()
  t.regex(frame, /^at leakOne \(/, 'the first frame is leakOne')
  t.is(
    frame.slice(frame.lastIndexOf(path.sep) + 1),
    `diagnostics.spec.js:${leakSite()})`,
    'at the allocation in this file',
  )
  t.false(a.stack.includes('lib/pool.js'), "extmem's own frames are left out")
  t.is(warnings.length, 1, 'one warning per allocation site')
  t.regex(warnings[0].message, /garbage-collected without release/)
  t.is(published.length, 2)
  t.is(pool.stats().leaks, 2)
  t.is(pool.stats().gcReclaims, 2)
  pool.release(kept)
  t.is(pool.stats().leaks, 2, 'a released Buffer is never a leak')
  process.off('warning', onWarning)
  diagnostics.unsubscribe('extmem:leak', onLeak)
  pool.close()
})

test.serial('sampled mode tracks one allocation in 128 and finds the leaks among them', async (t) => {
  const pool = new Pool({ maxBytes: 64 << 20 })
  const leaks = []
  pool.on('leak', (l) => leaks.push(l))
  ;(() => {
    for (let i = 0; i < 1280; i++) pool.allocUnsafe(100)
  })()
  t.is(pool.live().filter((l) => l.stack).length, 10, '1280 allocations, 10 with a stack')
  t.true(await collectUntil(() => pool.stats().gcReclaims === 1280))
  await collectUntil(() => leaks.length === 10)
  t.is(pool.stats().leaks, 10)
  t.is(leaks.length, 10)
  t.true(leaks.every((l) => l.stack.includes('diagnostics.spec.js')))
  pool.close()
})

test.serial("'off' tracks nothing, and its GC reclaims are not leaks", async (t) => {
  const pool = new Pool({ maxBytes: 1 << 20, leakDetection: 'off' })
  ;(() => {
    for (let i = 0; i < 300; i++) pool.allocUnsafe(100)
  })()
  t.true(pool.live().every((l) => l.stack === undefined))
  t.true(await collectUntil(() => pool.stats().gcReclaims === 300))
  t.is(pool.stats().leaks, 0)
  pool.close()
})

test('live({ olderThanMs }) lists live Buffers, oldest first, filtered by age', async (t) => {
  const pool = new Pool({ maxBytes: 1 << 20, leakDetection: 'paranoid' })
  const old = pool.alloc(1000)
  pool.retain(old)
  await new Promise((resolve) => setTimeout(resolve, 120))
  const young = pool.alloc(20000)
  const all = pool.live()
  t.is(all.length, 2)
  t.like(all[0], { size: 1000, refCount: 2, address: pool.addressOf(old) })
  t.like(all[1], { size: 20000, refCount: 1, address: pool.addressOf(young) })
  t.true(all[0].ageMs >= 100)
  t.true(all[0].stack.includes('diagnostics.spec.js'))
  const older = pool.live({ olderThanMs: 100 })
  t.is(older.length, 1)
  t.is(older[0].size, 1000)
  t.deepEqual(pool.live({ olderThanMs: 60_000 }), [])
  t.throws(() => pool.live({ olderThanMs: -1 }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => pool.live({ olderThanMs: '5' }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => pool.live({ older: 5 }), { code: 'ERR_INVALID_ARG_VALUE' })
  pool.release(young)
  t.is(pool.live().length, 1)
  pool.close()
})

test('alloc({ align }) places the first byte on a multiple of 8, 64 or 4096', (t) => {
  const pool = new Pool({ maxBytes: 64 << 20 })
  const sizes = [1, 8, 63, 64, 65, 100, 1000, 4095, 4096, 4097, 8192, 8193, 100000]
  for (const align of [8, 64, 4096]) {
    for (const size of sizes) {
      for (let i = 0; i < 3; i++) {
        const buf = pool.alloc(size, { align })
        t.is(buf.length, size)
        t.is(pool.addressOf(buf) % BigInt(align), 0n, `alloc(${size}, { align: ${align} })`)
      }
    }
  }
  t.is(pool.addressOf(pool.allocUnsafe(24)) % 8n, 0n, 'the default is 8')
  pool.close()
})

test('addressOf gives each live Buffer its own address, and refuses what release refuses', (t) => {
  const pool = new Pool({ maxBytes: 1 << 20 })
  const a = pool.alloc(100)
  const b = pool.alloc(100)
  const addrA = pool.addressOf(a)
  t.is(typeof addrA, 'bigint')
  t.true(addrA > 0n)
  const diff = pool.addressOf(b) - addrA
  t.true(diff >= 100n || diff <= -100n, 'no overlap')
  t.is(pool.addressOf(pool.alloc(0)), 0n)
  t.throws(() => pool.addressOf(a.subarray(1)), { code: 'ERR_EXTMEM_VIEW_OWNERSHIP' })
  t.throws(() => pool.addressOf(Buffer.alloc(4)), { code: 'ERR_EXTMEM_NOT_POOLED' })
  t.throws(() => pool.addressOf(new Uint8Array(4)), { code: 'ERR_INVALID_ARG_TYPE' })
  pool.release(a)
  t.throws(() => pool.addressOf(a), { code: 'ERR_EXTMEM_RELEASED' })
  pool.close()
  t.throws(() => pool.addressOf(b), { code: 'ERR_EXTMEM_CLOSED' })
})

test('EXTMEM_LEAK_DETECTION sets the default pool mode', (t) => {
  const script =
    "const e = require('.'); for (let i = 0; i < 3; i++) e.alloc(8); console.log(e.defaultPool.live().filter((l) => l.stack).length)"
  const run = (mode) =>
    execFileSync(process.execPath, ['-e', script], {
      cwd: `${__dirname}/..`,
      env: { ...process.env, EXTMEM_LEAK_DETECTION: mode },
      encoding: 'utf8',
    }).trim()
  t.is(run('paranoid'), '3')
  t.is(run('off'), '0')
  t.throws(() =>
    execFileSync(process.execPath, ['-e', script], {
      cwd: `${__dirname}/..`,
      env: { ...process.env, EXTMEM_LEAK_DETECTION: 'loud' },
      stdio: 'pipe',
    }),
  )
})
