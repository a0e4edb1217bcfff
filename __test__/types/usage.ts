// Compiled (not run) by types.spec.js with `tsc --noEmit --strict`: the public types describe the
// API as the README shows it, and misuse is a type error.
import extmem, {
  Pool,
  defaultPool,
  alloc,
  allocUnsafe,
  release,
  retain,
  refCount,
  isPooled,
  stats,
  codes,
  levels,
  ExtmemError,
  RefusedError,
  OsError,
} from '../../index.js'
import type {
  PooledBuffer,
  ShareHandle,
  Scope,
  ScopeStats,
  PoolStats,
  WatermarkEvent,
  LeakEvent,
  MisuseEvent,
  QuarantineOptions,
  LiveBuffer,
  Level,
  ErrorCode,
  ExtmemErrorCode,
} from '../../index.js'

const pool = new Pool({
  maxBytes: 64 * 1024 * 1024,
  watermarks: { warning: 0.6, hysteresis: 0.01 },
  admission: 'graded',
  leakDetection: 'sampled',
})
const a: Buffer = pool.alloc(4096)
const b: Buffer = pool.allocUnsafe(300_000, { align: 4096, priority: 'essential', prefault: true })
const f: Buffer = pool.allocFast(512)
pool.releaseFast(f)
{
  using frame: PooledBuffer = pool.allocUnsafe(4096)
  frame.writeUInt32BE(1, 0)
  using request: Scope = pool.scope()
  const head: Buffer = request.allocUnsafe(64)
  const child: Scope = request.scope()
  const left: number = child.release(child.alloc(10)) + request.close()
  const ss: ScopeStats = request.stats()
  const grown: PooledBuffer = pool.resize(pool.allocUnsafe(100), 200, { zero: true })
  pool.release(grown)
  const cache = new Pool({ name: 'cache', maxBytes: 1 << 20, threadCache: false })
  const handle: ShareHandle = cache.share(cache.allocUnsafe(10))
  const adopted: PooledBuffer = cache.adopt(handle)
  cache.reclaim(cache.share(adopted))
  const named: string | null = cache.name
  const cs = cache.stats()
  console.log(named, cs.inTransitBuffers + cs.inTransitBytes, cache.live()[0]?.inTransit)
  console.log(head.length, left, ss.liveBuffers + ss.inUseBytes + ss.requestedBytes, request.closed)
}
const n: number = pool.retain(a) + pool.release(a) + pool.refCount(b)
const pooled: boolean = pool.isPooled(b)
const address: bigint = pool.addressOf(b)
const live: LiveBuffer[] = pool.live({ olderThanMs: 1000 })
const level: Level = pool.level
const s: PoolStats = pool.stats()
const total: number =
  s.inUseBytes +
  s.refused.throttled +
  s.small.classes[0].free +
  s.small.classes[0].cached +
  s.small.cachedSlots +
  s.small.cachedBytes +
  s.large.cachedBytes +
  s.fast.liveBuffers +
  s.leaks
pool.on('watermark', (e: WatermarkEvent) => console.log(e.level, e.previous, e.utilization))
pool.on('leak', (e: LeakEvent) => console.log(e.size, e.stack, e.address))
const debugPool = new Pool({ quarantine: { releases: 64, ms: 10 } })
const q: QuarantineOptions | null = debugPool.quarantine
const held: number = s.quarantinedBytes + s.quarantinedBuffers + s.misuses
console.log(q, held)
debugPool.on('misuse', (e: MisuseEvent) =>
  console.log(e.size, e.offset, e.address, e.allocationStack, e.releaseStack?.length),
)
// @ts-expect-error quarantine takes a boolean or { releases, ms }
new Pool({ quarantine: 'on' })
const trimmed: number = pool.trim()
const out: number = pool.close()
try {
  alloc(1 << 30)
} catch (err) {
  if (err instanceof RefusedError) {
    const code: 'ERR_EXTMEM_EXHAUSTED' | 'ERR_EXTMEM_THROTTLED' = err.code
    if (code === codes.ERR_EXTMEM_EXHAUSTED) console.log(err.requestedBytes, err.availableBytes, err.level)
  } else if (err instanceof OsError) {
    const syscall: string = err.syscall
    const errno: number = err.errno
    console.log(syscall, errno, err.requestedBytes, err.code === 'ERR_EXTMEM_OS')
  } else if (err instanceof ExtmemError) {
    const code: ExtmemErrorCode = err.code
    console.log(code, err.platform, err instanceof Error)
  }
}
const everyCode: ErrorCode[] = [codes.ERR_INVALID_THIS, codes.ERR_EXTMEM_SHARED, codes.ERR_EXTMEM_NO_BINARY]
release(allocUnsafe(10))
retain(alloc(1))
console.log(
  n,
  pooled,
  address,
  live,
  level,
  total,
  trimmed,
  out,
  refCount,
  isPooled,
  stats().maxBytes,
  levels[0],
  defaultPool.maxBytes,
  extmem.defaultMaxBytes(),
  everyCode,
)

// @ts-expect-error alignment must be one of 8, 64, 4096
pool.alloc(10, { align: 16 })
// @ts-expect-error sizes are numbers
pool.alloc('10')
// @ts-expect-error unknown level
const _bad: Level = 'panic'
// @ts-expect-error codes lists only the codes extmem throws
const _unknown = codes.ERR_EXTMEM_NOPE
// @ts-expect-error a RefusedError's code is one of its two
const _wrong: RefusedError['code'] = 'ERR_EXTMEM_OS'
