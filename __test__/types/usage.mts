// Compiled (not run) by types.spec.js like usage.ts, as an ES module: `import` gets index.d.mts,
// whose default export is module.exports and whose named exports are index.d.ts's.
import extmem, { Pool, RefusedError, ExtmemError, OsError, codes, defaultPool } from 'extmem'
import type { PooledBuffer, PoolStats } from 'extmem'

const pool: Pool = new extmem.Pool({ maxBytes: 1 << 20 })
const buf: PooledBuffer = pool.allocUnsafe(100)
const s: PoolStats = defaultPool.stats()
try {
  pool.allocUnsafe(1 << 30)
} catch (err) {
  if (err instanceof RefusedError) console.log(err.level, err.code === codes.ERR_EXTMEM_THROTTLED)
  else if (err instanceof OsError) console.log(err.syscall, err.errno)
  else if (err instanceof ExtmemError) console.log(err.code)
}
console.log(extmem.RefusedError === RefusedError, pool.release(buf), s.maxBytes, extmem.codes === codes)

// @ts-expect-error the default export has no such member
extmem.nope()
