/// <reference types="node" />
import { EventEmitter } from 'node:events'

/** Options of `new Pool()`. Unknown keys are refused with ERR_INVALID_ARG_VALUE. */
export interface PoolOptions {
  /**
   * Hard cap on the memory the pool holds from the OS (slab chunks + large mappings + cache), in
   * bytes. Default: half of the smaller of physical memory and the cgroup memory limit.
   */
  maxBytes?: number
}

/** Slot counts of one slab size class. */
export interface SizeClassStats {
  /** Slot capacity in bytes. */
  size: number
  /** Slots lent out. */
  inUse: number
  /** Free slots in chunks already taken from the OS. */
  free: number
}

/** A consistent snapshot of a pool. Every figure is exact at the moment it was taken. */
export interface PoolStats {
  maxBytes: number
  /** Bytes held from the OS: slab chunks, live and cached large mappings. Never above maxBytes. */
  reservedBytes: number
  /** Bytes lent out, by slot or mapping capacity. */
  inUseBytes: number
  /** Bytes lent out, as asked. */
  requestedBytes: number
  /** Bytes V8 counts as external memory for this pool's Buffers (part of process.memoryUsage().external). */
  externalBytes: number
  peakInUseBytes: number
  liveBuffers: number
  allocations: number
  /** Buffers whose last reference was released explicitly. */
  releases: number
  /** Buffers collected by the GC without release (the safety net). */
  gcReclaims: number
  /** Buffers detached by close(). */
  closedReclaims: number
  failedAllocations: number
  /** inUseBytes / maxBytes. */
  utilization: number
  small: { classes: SizeClassStats[] }
  large: { live: number; cached: number; cachedBytes: number }
  closed: boolean
}

/** Every error code extmem throws. */
export declare const codes: Readonly<{
  ERR_INVALID_ARG_TYPE: 'ERR_INVALID_ARG_TYPE'
  ERR_INVALID_ARG_VALUE: 'ERR_INVALID_ARG_VALUE'
  ERR_OUT_OF_RANGE: 'ERR_OUT_OF_RANGE'
  ERR_INVALID_STATE: 'ERR_INVALID_STATE'
  ERR_EXTMEM_EXHAUSTED: 'ERR_EXTMEM_EXHAUSTED'
  ERR_EXTMEM_NOT_POOLED: 'ERR_EXTMEM_NOT_POOLED'
  ERR_EXTMEM_VIEW_OWNERSHIP: 'ERR_EXTMEM_VIEW_OWNERSHIP'
  ERR_EXTMEM_RELEASED: 'ERR_EXTMEM_RELEASED'
  ERR_EXTMEM_CLOSED: 'ERR_EXTMEM_CLOSED'
  ERR_EXTMEM_EXTERNAL_REFUSED: 'ERR_EXTMEM_EXTERNAL_REFUSED'
}>

/** Thrown with code ERR_EXTMEM_EXHAUSTED when the cap refuses an allocation. */
export interface ExhaustedError extends Error {
  code: 'ERR_EXTMEM_EXHAUSTED'
  requestedBytes: number
  availableBytes: number
}

/** A pool of external memory: slab classes up to 8 KiB, an anonymous mapping each above. */
export declare class Pool extends EventEmitter {
  constructor(options?: PoolOptions)
  /** The hard cap, in bytes. */
  readonly maxBytes: number
  /** Whether close() was called. */
  readonly closed: boolean
  /** A zero-filled Buffer of `size` bytes (like Buffer.alloc). `alloc(0)` needs no release. */
  alloc(size: number): Buffer
  /** A Buffer of `size` bytes with unspecified contents (like Buffer.allocUnsafe). */
  allocUnsafe(size: number): Buffer
  /** Adds a reference to a Buffer this pool returned; returns the new count. */
  retain(buf: Buffer): number
  /** Drops a reference; returns the count left. At 0 the Buffer and its views are detached (length 0) and the memory is reused. */
  release(buf: Buffer): number
  /** References held on a Buffer this pool returned; 0 once released. */
  refCount(buf: Buffer): number
  /** Whether `buf` is a live Buffer this pool returned (false for views, foreign and released Buffers). */
  isPooled(buf: Buffer): boolean
  /** Gives cached memory back to the OS; returns the bytes given back. */
  trim(): number
  stats(): PoolStats
  /** Detaches this thread's outstanding Buffers, gives all memory back; later calls throw ERR_EXTMEM_CLOSED. Returns the number of Buffers detached. */
  close(): number
}

/** The process-wide pool, shared by the main thread and every worker thread. Capped by EXTMEM_MAX_BYTES if set. */
export declare const defaultPool: Pool
/** The default cap: half of the smaller of physical memory and the cgroup memory limit. */
export declare function defaultMaxBytes(): number
export declare function alloc(size: number): Buffer
export declare function allocUnsafe(size: number): Buffer
export declare function retain(buf: Buffer): number
export declare function release(buf: Buffer): number
export declare function refCount(buf: Buffer): number
export declare function isPooled(buf: Buffer): boolean
export declare function stats(): PoolStats

declare const extmem: {
  Pool: typeof Pool
  defaultPool: Pool
  codes: typeof codes
  defaultMaxBytes: typeof defaultMaxBytes
  alloc: typeof alloc
  allocUnsafe: typeof allocUnsafe
  retain: typeof retain
  release: typeof release
  refCount: typeof refCount
  isPooled: typeof isPooled
  stats: typeof stats
}
export default extmem
