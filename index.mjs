import extmem from './lib/index.js'

export const {
  Pool,
  Scope,
  defaultPool,
  codes,
  ExtmemError,
  RefusedError,
  OsError,
  levels,
  defaultMaxBytes,
  pools,
  alloc,
  allocUnsafe,
  release,
  releaseOwner,
  retain,
  refCount,
  isPooled,
  stats,
} = extmem
export default extmem
