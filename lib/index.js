'use strict'
// Public entry: the Pool class, the process-wide default pool and its shortcuts.

const { Pool, createDefaultPool, defaultMaxBytes } = require('./pool')
const { codes } = require('./errors')
const { parseByteCount } = require('./validate')

const envCap = process.env.EXTMEM_MAX_BYTES
const defaultPool = createDefaultPool(envCap === undefined || envCap === '' ? 0 : parseByteCount(envCap, 'EXTMEM_MAX_BYTES'))

module.exports = {
  Pool,
  defaultPool,
  codes,
  defaultMaxBytes,
  alloc: (size) => defaultPool.alloc(size),
  allocUnsafe: (size) => defaultPool.allocUnsafe(size),
  release: (buf) => defaultPool.release(buf),
  retain: (buf) => defaultPool.retain(buf),
  refCount: (buf) => defaultPool.refCount(buf),
  isPooled: (buf) => defaultPool.isPooled(buf),
  stats: () => defaultPool.stats(),
}
