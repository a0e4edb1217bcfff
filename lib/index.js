'use strict'
// Public entry: the Pool class, the process-wide default pool and its shortcuts.

const { Pool, createDefaultPool, defaultMaxBytes, LEVELS } = require('./pool')
const { Scope } = require('./scope')
const { codes } = require('./errors')
const { parseByteCount } = require('./validate')

const envCap = process.env.EXTMEM_MAX_BYTES
const envLeaks = process.env.EXTMEM_LEAK_DETECTION
const defaultPool = createDefaultPool({
  ...(envCap ? { maxBytes: parseByteCount(envCap, 'EXTMEM_MAX_BYTES') } : {}),
  ...(envLeaks ? { leakDetection: envLeaks } : {}),
})

module.exports = {
  Pool,
  Scope,
  defaultPool,
  codes,
  levels: LEVELS,
  defaultMaxBytes,
  alloc: (size, options) => defaultPool.alloc(size, options),
  allocUnsafe: (size, options) => defaultPool.allocUnsafe(size, options),
  release: (buf) => defaultPool.release(buf),
  retain: (buf) => defaultPool.retain(buf),
  refCount: (buf) => defaultPool.refCount(buf),
  isPooled: (buf) => defaultPool.isPooled(buf),
  stats: () => defaultPool.stats(),
}
