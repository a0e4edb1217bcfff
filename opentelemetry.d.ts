/// <reference types="node" />
import type { Meter, Observable } from '@opentelemetry/api'

/** Options of observe(). Unknown keys are refused with ERR_INVALID_ARG_VALUE. */
export interface ObserveOptions {
  /**
   * Constant attributes of every data point (none of extmem's own: extmem.pool.name,
   * extmem.level, extmem.refusal.reason, extmem.size_class.size, extmem.slot.state).
   */
  attributes?: Record<string, string | number | boolean>
  /**
   * Also `extmem.size_class.slots`: one data point per slab size class (36) and state (in_use,
   * free, cached) of each pool. Default false.
   */
  sizeClasses?: boolean
}

/** The instruments observe() made, and the way to stop them. */
export interface Observation extends Disposable {
  /** The observable instruments, all observed by one batch callback. */
  readonly instruments: readonly Observable[]
  /** Removes the batch callback: no new values from the next collection on. Calling it again does nothing. `[Symbol.dispose]` does the same. */
  stop(): void
}

/**
 * Observes this thread's live pools (`pools()`) through observable instruments of `meter`, named
 * after the JVM buffer-pool conventions (extmem.memory.used, extmem.memory.limit,
 * extmem.buffer.count, …), each data point with the attribute `extmem.pool.name` (the pool's
 * `label`). One batch callback reads each pool's `stats()` once per collection. See
 * docs/observability.md for the instruments.
 */
export declare function observe(meter: Meter, options?: ObserveOptions): Observation
