/// <reference types="node" />
import { EventEmitter } from 'node:events'
import type { Readable, Writable } from 'node:stream'
import type { FileHandle } from 'node:fs/promises'

/** Options of `new Pool()`. Unknown keys are refused with ERR_INVALID_ARG_VALUE. */
export interface PoolOptions {
  /**
   * A named pool is shared by the whole process: a Pool of the same name made in any thread joins
   * the same memory and budget (the options given must agree). Named pools cannot be closed.
   */
  name?: string
  /**
   * What events, live(), the 'extmem:refused' channel and the metrics (extmem/prometheus,
   * extmem/opentelemetry) call this Pool object; it shares nothing. Default: a named pool's name,
   * else 'anonymous'. A non-empty string.
   */
  label?: string
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
  /**
   * A debug mode that catches early release: released memory is filled with the poison byte 0xDD
   * and not lent again before `releases` later releases of its size and `ms` have passed
   * (`true`: 256 and 100); a write into it meanwhile is reported as a 'misuse' event. Every
   * Buffer is then a loan of its own (no thread cache, no reuse of ArrayBuffers), allocFast()
   * throws ERR_EXTMEM_QUARANTINE, and quarantined bytes count as reserved (the quarantine gives
   * way before an allocation would be refused at the cap). Default false; EXTMEM_QUARANTINE=1
   * turns it on for defaultPool.
   */
  quarantine?: boolean | QuarantineOptions
}

/** How long a quarantine holds released memory: until both have passed. */
export interface QuarantineOptions {
  /** Later releases of the same size. Default 256. */
  releases?: number
  /** Milliseconds after the release. Default 100. */
  ms?: number
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
  /** The label of the Pool object that emits it. */
  label: string
}

/** The message of a 'leak' event (and of the 'extmem:leak' channel, with `pool`). */
export interface LeakEvent {
  size: number
  ageMs: number
  address: bigint
  /** The JavaScript stack of the allocation. */
  stack: string
  /** The label of the Pool object that emits it. */
  label: string
  /** (Not enumerable.) The same fields for JSON.stringify, the address as a decimal string. */
  toJSON(): Jsonified<Omit<LeakEvent, 'toJSON'>>
}

/**
 * The message of a 'misuse' event (and of the 'extmem:misuse' channel, with `pool`): memory of a
 * released Buffer changed while a quarantine held it, so something (native code, a socket, a file
 * read) still used it after release().
 */
export interface MisuseEvent {
  /** The length the Buffer had. */
  size: number
  address: bigint
  /** Offset of the first byte that changed. */
  offset: number
  /** The JavaScript stack of its allocation (null if this thread did not see it). */
  allocationStack: string | null
  /** The JavaScript stack of its release (null once forgotten: the last 16,384 releases are kept). */
  releaseStack: string | null
  /** The label of the Pool object that reports it. */
  label: string
}

/** A diagnostic record as JSON.stringify writes it: BigInts as decimal strings. */
export type Jsonified<T> = { [K in keyof T]: T[K] extends bigint ? string : T[K] }

/** What JSON.stringify and util.inspect show of a Pool. */
export interface PoolSummary {
  name: string | null
  label: string
  maxBytes: number
  level: Level
  closed: boolean
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
  /** The label of the Pool object that lists it. */
  label: string
  /** For Buffers that leak detection tracks and this thread allocated. */
  stack?: string
  /** (Not enumerable.) The same fields for JSON.stringify, the address as a decimal string. */
  toJSON(): Jsonified<Omit<LiveBuffer, 'toJSON'>>
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
  /** Released memory a quarantine holds back (0 without one): reserved, neither in use nor free. */
  quarantinedBuffers: number
  /** Its bytes. */
  quarantinedBytes: number
  /** Writes the quarantine found in memory after its release ('misuse' events). */
  misuses: number
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
  ERR_EXTMEM_QUARANTINE: 'ERR_EXTMEM_QUARANTINE'
  ERR_EXTMEM_OPTIONS_MISMATCH: 'ERR_EXTMEM_OPTIONS_MISMATCH'
  ERR_EXTMEM_HANDLE_USED: 'ERR_EXTMEM_HANDLE_USED'
  ERR_EXTMEM_INVALID_HANDLE: 'ERR_EXTMEM_INVALID_HANDLE'
  ERR_EXTMEM_EXTERNAL_REFUSED: 'ERR_EXTMEM_EXTERNAL_REFUSED'
  ERR_EXTMEM_NOT_DETACHABLE: 'ERR_EXTMEM_NOT_DETACHABLE'
  ERR_EXTMEM_OS: 'ERR_EXTMEM_OS'
  ERR_EXTMEM_NO_BINARY: 'ERR_EXTMEM_NO_BINARY'
  ERR_EXTMEM_TOO_LARGE: 'ERR_EXTMEM_TOO_LARGE'
  ERR_STREAM_DESTROYED: 'ERR_STREAM_DESTROYED'
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
  /**
   * ERR_EXTMEM_RELEASED of a Pool with leakDetection 'paranoid', when the Buffer's release was
   * seen: the JavaScript stack of the release that ended its loan (the error's own stack is the
   * second's).
   */
  firstReleaseStack?: string
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
 * A message of the 'extmem:refused' diagnostics channel: one per refused allocation (the cap,
 * graded admission, the OS), published where the error is made, before it is thrown.
 */
export type RefusedMessage =
  | {
      pool: Pool
      label: string
      code: 'ERR_EXTMEM_EXHAUSTED'
      requestedBytes: number
      availableBytes: number
      level: Level
      cachedElsewhereBytes: number
      error: RefusedError
    }
  | {
      pool: Pool
      label: string
      code: 'ERR_EXTMEM_THROTTLED'
      requestedBytes: number
      availableBytes: number
      level: Level
      error: RefusedError
    }
  | {
      pool: Pool
      label: string
      code: 'ERR_EXTMEM_OS'
      syscall: string
      errno: number
      requestedBytes: number
      error: OsError
    }

/** readAll()'s rejection when a stream is longer than `limit` (code ERR_EXTMEM_TOO_LARGE). */
export interface TooLargeError extends RangeError {
  code: 'ERR_EXTMEM_TOO_LARGE'
  /** The limit it passed. */
  limit: number
  /** Bytes received when it passed the limit (0 if its announced length did). */
  receivedBytes: number
  /** The length it announced (an HTTP message's content-length), if any. */
  declaredBytes: number | undefined
}

/** Options of pool.readAll(). Unknown keys are refused. */
export interface ReadAllOptions {
  /** Most bytes accepted; more rejects with ERR_EXTMEM_TOO_LARGE. Default 1 MiB (1048576); `Infinity` lifts it. */
  limit?: number
  /** The first Buffer's size for a stream that does not announce its length. Default 16 KiB. */
  sizeHint?: number
}

/** What pool.chunks() and pool.createReadStream() read: a path, a FileHandle or a file descriptor. */
export type FileSource = string | Buffer | URL | number | FileHandle

/** The part of a file read, and the chunks it is read in. Unknown keys are refused. */
export interface ChunkOptions {
  /** Bytes per chunk (the last one may be shorter). Default 65536. */
  chunkSize?: number
  /** First byte read. Default: the start of a path; a FileHandle's or fd's current position. */
  start?: number
  /** Last byte read (inclusive, as in fs.createReadStream). Default: the end of the file. */
  end?: number
}

/** Options of pool.createReadStream(). */
export interface ReadStreamOptions extends ChunkOptions {
  /** Chunks read ahead of the reader. Default 2. */
  highWaterMark?: number
  signal?: AbortSignal
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
 * `pool.scope()` / `scope.scope()` options. `arena: true` (default false): Buffers of 1–8192 bytes
 * allocated with no options are views of chunks (8 KiB, then 64 KiB) the scope takes from the pool, made with
 * no native call; they share their chunk's ArrayBuffer (`buf.buffer` reaches scope-mates' bytes),
 * none can be released alone, and close() detaches them all at once.
 */
export interface ScopeOptions {
  arena?: boolean
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
  scope(options?: ScopeOptions): Scope
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
  /** The pool's quarantine (a named pool's own), or null if it has none. */
  readonly quarantine: Required<QuarantineOptions> | null
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
   * release() for the Buffer that `buf` lies in: `buf` is a Buffer this pool returned, or a view
   * (subarray()/slice()) of one. Returns the count left.
   */
  releaseOwner(buf: Buffer): number
  /**
   * Writes `buf` (a Buffer of this pool or a view of one) to `writable` and releases it (its
   * owner, for a view) once, in the write's own callback; then calls `callback` with the write's
   * error. Returns what `writable.write()` returns. Not for a Writable that keeps the chunk after
   * calling back (a PassThrough, a Transform, one that queues it).
   */
  writeAndRelease(writable: NodeJS.WritableStream, buf: Buffer, callback?: (err?: Error | null) => void): boolean
  /**
   * The whole of `readable` (an http.IncomingMessage included) in one Buffer of this pool, of
   * exactly its length. Rejects, with nothing left allocated, on the limit (TooLargeError), a
   * refusal (RefusedError), an abort or a stream error; the stream is then paused, not destroyed.
   */
  readAll(readable: NodeJS.ReadableStream, options?: ReadAllOptions): Promise<PooledBuffer>
  /**
   * A file in chunks of this pool. Each chunk is lent to one step of the loop: it is released
   * when the loop asks for the next one (or ends) unless the step retained it or gave it to
   * writeAndRelease() or releasing(); a file opened here is closed when the loop ends.
   */
  chunks(source: FileSource, options?: ChunkOptions): AsyncGenerator<PooledBuffer, void, undefined>
  /**
   * A Readable (object mode) of a file's chunks, Buffers of this pool. It releases the chunks in
   * its own buffer when destroyed; a chunk it hands to a reader is the reader's to release.
   */
  createReadStream(source: FileSource, options?: ReadStreamOptions): Readable
  /**
   * A Writable that writes each chunk to `writable` and releases the Buffers of this pool (and
   * views of them) in that write's callback. With `end` (default true) it ends `writable` when it
   * finishes, and destroys it when it is destroyed first.
   */
  releasing(writable: NodeJS.WritableStream, options?: { end?: boolean }): Writable
  /**
   * Resizes a Buffer this pool returned, as realloc does: a Buffer of `size` bytes starting with
   * the old bytes; `buf` is detached. New bytes are unspecified, or zero with `{ zero: true }`.
   * Refused (ERR_EXTMEM_SHARED) while `buf` holds more than one reference.
   */
  resize(buf: Buffer, size: number, options?: { zero?: boolean }): PooledBuffer
  /** References held on a Buffer this pool returned; 0 once released. */
  refCount(buf: Buffer): number
  /** Whether `buf` is a live Buffer this pool returned: false for anything else (views, released Buffers, non-Buffers); never throws. */
  isPooled(buf: unknown): boolean
  /** The native address of a Buffer this pool returned (0n for alloc(0)'s). */
  addressOf(buf: Buffer): bigint
  /** Live Buffers, oldest first; `olderThanMs` keeps those at least that old. */
  live(options?: { olderThanMs?: number }): LiveBuffer[]
  /** The name of a named pool; null for the others. */
  readonly name: string | null
  /** `options.label`, else 'default' for defaultPool, a named pool's name, 'anonymous' for the others. */
  readonly label: string
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
  scope(options?: ScopeOptions): Scope
  /** Gives cached memory back to the OS; returns the bytes given back. */
  trim(): number
  stats(): PoolStats
  /** Refuses new loans from now on (ERR_EXTMEM_CLOSED) and gives free memory back; Buffers still out stay valid until released. Returns their number. */
  close(): number
  /** `{ name, label, maxBytes, level, closed }`, as util.inspect shows a Pool. */
  toJSON(): PoolSummary

  on(event: 'watermark', listener: (event: WatermarkEvent) => void): this
  on(event: 'leak', listener: (event: LeakEvent) => void): this
  on(event: 'misuse', listener: (event: MisuseEvent) => void): this
  on(event: string | symbol, listener: (...args: any[]) => void): this
  once(event: 'watermark', listener: (event: WatermarkEvent) => void): this
  once(event: 'leak', listener: (event: LeakEvent) => void): this
  once(event: 'misuse', listener: (event: MisuseEvent) => void): this
  once(event: string | symbol, listener: (...args: any[]) => void): this
}

/** The level names, lowest first. */
export declare const levels: readonly Level[]

/** The process-wide pool, shared by the main thread and every worker thread. Capped by EXTMEM_MAX_BYTES if set. */
export declare const defaultPool: Pool
/**
 * The Pool objects of this thread that are not collected yet (closed ones too), oldest first:
 * defaultPool, and every Pool made here. Held weakly: listing keeps none alive.
 */
export declare function pools(): Pool[]
/** The default cap: half of the smaller of physical memory and the cgroup memory limit. */
export declare function defaultMaxBytes(): number
export declare function alloc(size: number, options?: AllocOptions): PooledBuffer
export declare function allocUnsafe(size: number, options?: AllocOptions): PooledBuffer
export declare function retain(buf: Buffer): number
export declare function release(buf: Buffer): number
export declare function releaseOwner(buf: Buffer): number
export declare function refCount(buf: Buffer): number
export declare function isPooled(buf: unknown): boolean
export declare function stats(): PoolStats
