/// <reference types="node" />
import { EventEmitter } from 'node:events'

/** Options of `new Pool()`. Unknown keys are refused with ERR_INVALID_ARG_VALUE. */
export interface PoolOptions {
  /**
   * A named pool is shared by the whole process: a Pool of the same name made in any thread joins
   * the same memory and budget (the options given must agree). Named pools cannot be closed.
   */
  name?: string
  /**
   * Hard cap on the memory the pool holds from the OS (slab chunks + large mappings + cache), in
   * bytes. Default: half of the smaller of physical memory and the cgroup memory limit.
   */
  maxBytes?: number
  /** Level thresholds over utilization. Default 0.70 / 0.85 / 0.95, hysteresis 0.02. */
  watermarks?: Watermarks
  /** 'graded' (default): refuse by level; 'cap': refuse only at the hard cap. */
  admission?: 'graded' | 'cap'
  /** Default 'sampled' (1 allocation in 128 carries its stack). */
  leakDetection?: 'off' | 'sampled' | 'paranoid'
  /** Whether this Pool object keeps a per-thread slot cache (Node 22+). Default true. */
  threadCache?: boolean
}

/** Thresholds as fractions of maxBytes: 0 < warning < critical < shedding <= 1; 0 <= hysteresis < warning. */
export interface Watermarks {
  warning?: number
  critical?: number
  shedding?: number
  /** How far below a threshold utilization must fall before the level drops. */
  hysteresis?: number
}

export type Level = 'normal' | 'warning' | 'critical' | 'shedding'

/** Options of one allocation. */
export interface AllocOptions {
  /** Alignment of the first byte: 8 (default), 64 (cache line) or 4096 (page). */
  align?: 8 | 64 | 4096
  /** 'essential' allocations pass graded admission at every level, up to the hard cap. */
  priority?: 'normal' | 'essential'
  /** For a Buffer above 8 KiB that needs a new mapping: fault its pages in at once (MAP_POPULATE). */
  prefault?: boolean
}

/** The message of a 'watermark' event (and of the 'extmem:watermark' channel, with `pool`). */
export interface WatermarkEvent {
  level: Level
  previous: Level
  utilization: number
  inUseBytes: number
  maxBytes: number
}

/** The message of a 'leak' event (and of the 'extmem:leak' channel, with `pool`). */
export interface LeakEvent {
  size: number
  ageMs: number
  address: bigint
  /** The JavaScript stack of the allocation. */
  stack: string
}

/** A live Buffer, as live() lists it. */
export interface LiveBuffer {
  size: number
  ageMs: number
  refCount: number
  address: bigint
  /** Its memory moved to another thread's ArrayBuffer and its own thread ended: kept for good, never re-lent. */
  parked: boolean
  /** Handed off by share() and not yet adopted or reclaimed: no Buffer has it now. */
  inTransit: boolean
  /** For Buffers that leak detection tracks and this thread allocated. */
  stack?: string
}

/** Slot counts of one slab size class. */
export interface SizeClassStats {
  /** Slot capacity in bytes. */
  size: number
  /** Slots lent out. */
  inUse: number
  /** Free slots in chunks already taken from the OS. */
  free: number
  /** Slots held by threads' slot caches for their next Buffers (reserved, not in use). */
  cached: number
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
  /** Refused allocations, all reasons. */
  failedAllocations: number
  /** Refused allocations by reason: the hard cap, graded admission at warning/critical, at shedding. */
  /** Refusals: at the hard cap; by graded admission at warning/critical; at shedding; by the OS (a failed mmap). */
  refused: { cap: number; throttled: number; shedding: number; os: number }
  /** Tracked Buffers collected without release. */
  leaks: number
  /** Buffers whose memory may still be reachable from another thread after their own thread ended: never re-lent. */
  parkedBuffers: number
  /** Capacity of the parked Buffers (counted in inUseBytes). */
  parkedBytes: number
  /** Buffers handed off by share() and not yet adopted or reclaimed (counted in liveBuffers). */
  inTransitBuffers: number
  /** Their bytes, as requested. */
  inTransitBytes: number
  level: Level
  /** inUseBytes / maxBytes. */
  utilization: number
  small: {
    classes: SizeClassStats[]
    /** Slots threads' slot caches hold for their next Buffers: reserved, not in use. */
    cachedSlots: number
    /** Their bytes. */
    cachedBytes: number
  }
  large: { live: number; cached: number; cachedBytes: number }
  /** This thread's fast-path arenas (each counts as one 64 KiB Buffer in the figures above). */
  fast: { arenas: number; arenaBytes: number; inUseBytes: number; liveBuffers: number }
  closed: boolean
}

/**
 * Every error code extmem throws, as the runtime registry lists them (a test checks that this
 * list and the registry agree).
 */
export declare const codes: Readonly<{
  ERR_INVALID_ARG_TYPE: 'ERR_INVALID_ARG_TYPE'
  ERR_INVALID_ARG_VALUE: 'ERR_INVALID_ARG_VALUE'
  ERR_OUT_OF_RANGE: 'ERR_OUT_OF_RANGE'
  ERR_INVALID_THIS: 'ERR_INVALID_THIS'
  ERR_ILLEGAL_CONSTRUCTOR: 'ERR_ILLEGAL_CONSTRUCTOR'
  ERR_INVALID_STATE: 'ERR_INVALID_STATE'
  ERR_EXTMEM_EXHAUSTED: 'ERR_EXTMEM_EXHAUSTED'
  ERR_EXTMEM_THROTTLED: 'ERR_EXTMEM_THROTTLED'
  ERR_EXTMEM_NOT_POOLED: 'ERR_EXTMEM_NOT_POOLED'
  ERR_EXTMEM_VIEW_OWNERSHIP: 'ERR_EXTMEM_VIEW_OWNERSHIP'
  ERR_EXTMEM_RELEASED: 'ERR_EXTMEM_RELEASED'
  ERR_EXTMEM_SHARED: 'ERR_EXTMEM_SHARED'
  ERR_EXTMEM_CLOSED: 'ERR_EXTMEM_CLOSED'
  ERR_EXTMEM_OPTIONS_MISMATCH: 'ERR_EXTMEM_OPTIONS_MISMATCH'
  ERR_EXTMEM_HANDLE_USED: 'ERR_EXTMEM_HANDLE_USED'
  ERR_EXTMEM_INVALID_HANDLE: 'ERR_EXTMEM_INVALID_HANDLE'
  ERR_EXTMEM_EXTERNAL_REFUSED: 'ERR_EXTMEM_EXTERNAL_REFUSED'
  ERR_EXTMEM_NOT_DETACHABLE: 'ERR_EXTMEM_NOT_DETACHABLE'
  ERR_EXTMEM_OS: 'ERR_EXTMEM_OS'
  ERR_EXTMEM_NO_BINARY: 'ERR_EXTMEM_NO_BINARY'
}>

/** An error code extmem throws. */
export type ErrorCode = keyof typeof codes
/** The codes of extmem's own errors, each thrown as an ExtmemError (or a subclass). */
export type ExtmemErrorCode = Extract<ErrorCode, `ERR_EXTMEM_${string}`>

/**
 * Every `ERR_EXTMEM_*` error is an ExtmemError (an Error). Bad arguments throw Node's own classes
 * (TypeError, RangeError) with an `ERR_INVALID_*` or `ERR_OUT_OF_RANGE` code, as Node does.
 */
export declare class ExtmemError extends Error {
  code: ExtmemErrorCode
  /** ERR_EXTMEM_NO_BINARY: the platform, as napi-rs names it (`linux-x64-gnu`, `darwin-arm64`, …). */
  platform?: string
}

/** An allocation refused: ERR_EXTMEM_EXHAUSTED (the cap, or shedding) or ERR_EXTMEM_THROTTLED (graded admission). */
export declare class RefusedError extends ExtmemError {
  code: 'ERR_EXTMEM_EXHAUSTED' | 'ERR_EXTMEM_THROTTLED'
  /** Bytes the allocation asked for. */
  requestedBytes: number
  /** Bytes of the cap not held from the OS (after cached memory was given back). */
  availableBytes: number
  /** The level when it was refused. */
  level: Level
  /**
   * ERR_EXTMEM_EXHAUSTED only: bytes of free slots other threads' caches held when it was
   * refused. They come back at each of those threads' next allocation or release, so the same
   * request may succeed then.
   */
  cachedElsewhereBytes?: number
}

/** ERR_EXTMEM_OS: the OS refused memory the cap allowed (a failed mmap); counted in `stats().refused.os`. */
export declare class OsError extends ExtmemError {
  code: 'ERR_EXTMEM_OS'
  /** The system call that failed, as Node names it (`'mmap'`). */
  syscall: string
  /** Negative, as Node's system errors have it (`-os.constants.errno.ENOMEM`). */
  errno: number
  /** Bytes the allocation asked for. */
  requestedBytes: number
}

/**
 * A Buffer that a pool handed out. `[Symbol.dispose]()` drops one reference, as `release()` (or
 * `releaseFast()` for `allocFast()`'s) does, and does nothing once it is fully released: so
 * `using buf = pool.allocUnsafe(n)` releases it at the end of the block.
 */
export type PooledBuffer = Buffer & Disposable

/** What share() returns: a plain object that postMessage can carry to another thread. */
export interface ShareHandle {
  /** The pool's name; null for defaultPool. */
  readonly pool: string | null
  readonly token: number
  readonly secret: number
  /** Bytes of the Buffer. */
  readonly size: number
}

/** Figures of the live Buffers a scope (and its children) owns. */
export interface ScopeStats {
  liveBuffers: number
  /** Bytes their slots or mappings take. */
  inUseBytes: number
  /** Bytes asked for. */
  requestedBytes: number
}

/**
 * An arena over a pool: it owns one reference of each Buffer it allocates, and close() (or
 * `using`) drops them all at once. Made by `pool.scope()` or `scope.scope()`.
 */
export declare class Scope implements Disposable {
  private constructor()
  /** Whether close() was called on it or an ancestor. */
  readonly closed: boolean
  /** A zero-filled Buffer owned by this scope. */
  alloc(size: number, options?: AllocOptions): PooledBuffer
  /** A Buffer with unspecified contents owned by this scope. */
  allocUnsafe(size: number, options?: AllocOptions): PooledBuffer
  /** Releases one of this scope's Buffers early; returns the references left. */
  release(buf: Buffer): number
  /** A child scope, closed with this one at the latest. */
  scope(): Scope
  /** Drops the reference of every Buffer this scope and its children still own; returns how many. */
  close(): number
  [Symbol.dispose](): void
  stats(): ScopeStats
}

/** A pool of external memory: slab classes up to 8 KiB, an anonymous mapping each above. */
export declare class Pool extends EventEmitter {
  constructor(options?: PoolOptions)
  /** The hard cap, in bytes. */
  readonly maxBytes: number
  /** Whether close() was called. */
  readonly closed: boolean
  /** The watermark level now. */
  readonly level: Level
  /** A zero-filled Buffer of `size` bytes (like Buffer.alloc). `alloc(0)` needs no release. */
  alloc(size: number, options?: AllocOptions): PooledBuffer
  /** A Buffer of `size` bytes with unspecified contents (like Buffer.allocUnsafe). */
  allocUnsafe(size: number, options?: AllocOptions): PooledBuffer
  /**
   * The opt-in fast path: a Buffer of 1..8192 bytes (contents unspecified) from this thread's
   * arenas, with no native call. Give it back with releaseFast(). A reference kept after
   * releaseFast() is NOT detached and sees the next owner's bytes, as with Buffer.allocUnsafe().
   */
  allocFast(size: number): PooledBuffer
  /** Returns an allocFast() Buffer to the pool at once, without detaching it. */
  releaseFast(buf: Buffer): void
  /** Adds a reference to a Buffer this pool returned; returns the new count. */
  retain(buf: Buffer): number
  /** Drops a reference; returns the count left. At 0 the Buffer and its views are detached (length 0) and the memory is reused. */
  release(buf: Buffer): number
  /**
   * Resizes a Buffer this pool returned, as realloc does: a Buffer of `size` bytes starting with
   * the old bytes; `buf` is detached. New bytes are unspecified, or zero with `{ zero: true }`.
   * Refused (ERR_EXTMEM_SHARED) while `buf` holds more than one reference.
   */
  resize(buf: Buffer, size: number, options?: { zero?: boolean }): PooledBuffer
  /** References held on a Buffer this pool returned; 0 once released. */
  refCount(buf: Buffer): number
  /** Whether `buf` is a live Buffer this pool returned (false for views, foreign and released Buffers). */
  isPooled(buf: Buffer): boolean
  /** The native address of a Buffer this pool returned (0n for alloc(0)'s). */
  addressOf(buf: Buffer): bigint
  /** Live Buffers, oldest first; `olderThanMs` keeps those at least that old. */
  live(options?: { olderThanMs?: number }): LiveBuffer[]
  /** The name of a named pool; null for the others. */
  readonly name: string | null
  /**
   * Hands `buf` (one reference) to whichever thread of this pool adopts the returned handle (it
   * survives postMessage); `buf` is detached. Only for pools several threads share (defaultPool,
   * named pools).
   */
  share(buf: Buffer): ShareHandle
  /** A Buffer over the memory of a handle from share(), with the same bytes, on any thread of this pool. Once per handle. */
  adopt(handle: ShareHandle): PooledBuffer
  /** Gives the memory of a handle no one adopted back to the pool. */
  reclaim(handle: ShareHandle): void
  /** A Scope over this pool: Buffers it allocates are released together by its close(). */
  scope(): Scope
  /** Gives cached memory back to the OS; returns the bytes given back. */
  trim(): number
  stats(): PoolStats
  /** Refuses new loans from now on (ERR_EXTMEM_CLOSED) and gives free memory back; Buffers still out stay valid until released. Returns their number. */
  close(): number

  on(event: 'watermark', listener: (event: WatermarkEvent) => void): this
  on(event: 'leak', listener: (event: LeakEvent) => void): this
  on(event: string | symbol, listener: (...args: any[]) => void): this
  once(event: 'watermark', listener: (event: WatermarkEvent) => void): this
  once(event: 'leak', listener: (event: LeakEvent) => void): this
  once(event: string | symbol, listener: (...args: any[]) => void): this
}

/** The level names, lowest first. */
export declare const levels: readonly Level[]

/** The process-wide pool, shared by the main thread and every worker thread. Capped by EXTMEM_MAX_BYTES if set. */
export declare const defaultPool: Pool
/** The default cap: half of the smaller of physical memory and the cgroup memory limit. */
export declare function defaultMaxBytes(): number
export declare function alloc(size: number, options?: AllocOptions): PooledBuffer
export declare function allocUnsafe(size: number, options?: AllocOptions): PooledBuffer
export declare function retain(buf: Buffer): number
export declare function release(buf: Buffer): number
export declare function refCount(buf: Buffer): number
export declare function isPooled(buf: Buffer): boolean
export declare function stats(): PoolStats
