'use strict'
// Public entry: the Pool class, the process-wide default pool and its shortcuts.

// First: where no binary loads, ERR_EXTMEM_NO_BINARY says what to do.
const { NativePool, LEVELS } = require('./native')
const { Pool, createDefaultPool } = require('./pool')
const { Scope } = require('./scope')
const { codes, ExtmemError, RefusedError, OsError } = require('./errors')
const { parseByteCount } = require('./validate')
const { quarantineFromEnv } = require('./quarantine')
const { pools } = require('./registry')
const io = require('./io')
const views = require('./views')
const json = require('./json')

// Buffer lifetimes in I/O (./io.js) and views' owners (./views.js): methods of every Pool, built
// on its public API.
io.install(Pool)
views.install(Pool)
json.install(Pool)

const envCap = process.env.EXTMEM_MAX_BYTES
const envLeaks = process.env.EXTMEM_LEAK_DETECTION
const envQuarantine = quarantineFromEnv(process.env.EXTMEM_QUARANTINE)
const defaultPool = createDefaultPool({
  ...(envCap ? { maxBytes: parseByteCount(envCap, 'EXTMEM_MAX_BYTES') } : {}),
  ...(envLeaks ? { leakDetection: envLeaks } : {}),
  ...(envQuarantine ? { quarantine: envQuarantine } : {}),
})

module.exports = {
  Pool,
  Scope,
  defaultPool,
  codes,
  ExtmemError,
  RefusedError,
  OsError,
  levels: LEVELS,
  defaultMaxBytes: NativePool.defaultMaxBytes,
  pools,
  alloc: (size, options) => defaultPool.alloc(size, options),
  allocUnsafe: (size, options) => defaultPool.allocUnsafe(size, options),
  release: (buf) => defaultPool.release(buf),
  releaseOwner: (buf) => defaultPool.releaseOwner(buf),
  retain: (buf) => defaultPool.retain(buf),
  refCount: (buf) => defaultPool.refCount(buf),
  isPooled: (buf) => defaultPool.isPooled(buf),
  stats: () => defaultPool.stats(),
}
