// Smoke test of an installed extmem: loads it through require() and import(), allocates small and
// large Buffers, writes and reads them, releases them, checks stats() at each step and a refusal
// at the cap. Copy it into a project that has extmem in node_modules and run it there (bare
// specifiers resolve from the script's own directory); CI runs it under Node, Node for arm64 in
// qemu, Bun and Deno. Prints one "smoke: ok" line, or throws.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const here = path.dirname(fileURLToPath(import.meta.url))

const resolved = require.resolve('extmem')
assert.ok(
  resolved.startsWith(path.join(here, 'node_modules', 'extmem') + path.sep),
  `extmem resolved to ${resolved}, not to the copy installed beside this script`,
)

const cjs = require('extmem')
const esm = await import('extmem')
assert.equal(typeof cjs.Pool, 'function', 'require: Pool is a class')
assert.equal(esm.Pool, cjs.Pool, 'import and require give the same Pool')
assert.equal(esm.defaultPool, cjs.defaultPool, 'import and require give the same defaultPool')

const { Pool, defaultPool, codes, RefusedError, ExtmemError } = cjs
const pool = new Pool({ maxBytes: 16 * 1024 * 1024 })
const empty = pool.stats()
assert.equal(empty.liveBuffers, 0)
assert.equal(empty.inUseBytes, 0)

const small = pool.allocUnsafe(100) // a slab slot
const large = pool.alloc(64 * 1024) // its own mapping (> 8 KiB), zero-filled
assert.ok(Buffer.isBuffer(small) && small.length === 100)
assert.ok(Buffer.isBuffer(large) && large.length === 64 * 1024)
assert.ok(
  large.every((b) => b === 0),
  'alloc() is zero-filled',
)
small.fill(0xab)
large.write('hello from extmem', 1000, 'utf8')
assert.equal(small[99], 0xab)
assert.equal(large.toString('utf8', 1000, 1017), 'hello from extmem')
assert.ok(pool.isPooled(small) && pool.isPooled(large))

const held = pool.stats()
assert.equal(held.liveBuffers, 2)
assert.equal(held.requestedBytes, 100 + 64 * 1024)
assert.ok(held.inUseBytes >= held.requestedBytes, 'in use counts slot and mapping capacity')
assert.ok(held.reservedBytes >= held.inUseBytes && held.reservedBytes <= held.maxBytes)
assert.equal(held.large.live, 1)

assert.equal(pool.release(small), 0)
assert.equal(pool.release(large), 0)
assert.equal(small.length, 0, 'a released Buffer is detached')
assert.equal(large.length, 0, 'a released Buffer is detached')

const after = pool.stats()
assert.equal(after.liveBuffers, 0)
assert.equal(after.inUseBytes, 0)
assert.equal(after.requestedBytes, 0)
assert.equal(after.releases, 2)
assert.equal(after.allocations, 2)

const capped = new Pool({ maxBytes: 1024 * 1024 })
assert.throws(() => capped.allocUnsafe(2 * 1024 * 1024), { code: codes.ERR_EXTMEM_EXHAUSTED })
assert.throws(
  () => capped.allocUnsafe(2 * 1024 * 1024),
  (err) => err instanceof RefusedError && err instanceof ExtmemError,
)
assert.equal(capped.stats().refused.cap, 2)
capped.close()

const viaDefault = esm.allocUnsafe(5000)
assert.equal(defaultPool.stats().liveBuffers, 1)
esm.release(viaDefault)
assert.equal(defaultPool.stats().liveBuffers, 0)

assert.equal(pool.close(), 0)

const runtime = globalThis.Deno
  ? `deno ${globalThis.Deno.version.deno}`
  : process.versions.bun
    ? `bun ${process.versions.bun}`
    : `node ${process.version}`
console.log(`smoke: ok (${runtime}, ${process.platform}-${process.arch})`)
