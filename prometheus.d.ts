/// <reference types="node" />
import type { Counter, Gauge, Registry, RegistryContentType } from 'prom-client'

/** Options of collectMetrics(). Unknown keys are refused with ERR_INVALID_ARG_VALUE. */
export interface CollectMetricsOptions {
  /** The prom-client registry to register the metrics with. Default: prom-client's global `register`. */
  register?: Registry<RegistryContentType>
  /** Put before every metric name. Default 'extmem_'. */
  prefix?: string
  /** Constant labels of every series (none of extmem's own: pool, level, reason, size, state). */
  labels?: Record<string, string>
  /**
   * Also `<prefix>size_class_slots{size, state}`: one series per slab size class (36) and state
   * (in_use, free, cached) of each pool. Default false.
   */
  sizeClasses?: boolean
}

/** What collectMetrics() registered, and the way to take it back. */
export interface CollectedMetrics extends Disposable {
  /** The prom-client metrics, as registered (Gauges, and Counters for what only grows). */
  readonly metrics: ReadonlyArray<Gauge | Counter>
  /** Removes the metrics from the registry; calling it again does nothing. `[Symbol.dispose]` does the same. */
  unregister(): void
}

/**
 * Registers metrics of this thread's live pools (`pools()`: defaultPool, named pools and private
 * ones with a Pool object in this thread) with a prom-client registry. Each scrape reads each
 * pool's `stats()` once; every series has a `pool` label (the pool's `label`). See
 * docs/observability.md for the metrics.
 */
export declare function collectMetrics(options?: CollectMetricsOptions): CollectedMetrics
