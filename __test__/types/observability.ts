// Compiled (not run) by types.spec.js like usage.ts, from CommonJS: extmem/prometheus and
// extmem/opentelemetry through the exports map (prometheus.d.ts, opentelemetry.d.ts), with the
// types of prom-client and @opentelemetry/api; pools(), labels, the 'extmem:refused' channel and a
// double release's history.
import * as diagnostics from 'node:diagnostics_channel'
import { Registry } from 'prom-client'
import type { OpenMetricsContentType } from 'prom-client'
import type { Meter, Observable } from '@opentelemetry/api'
import { collectMetrics } from 'extmem/prometheus'
import type { CollectMetricsOptions, CollectedMetrics } from 'extmem/prometheus'
import { observe } from 'extmem/opentelemetry'
import type { ObserveOptions, Observation } from 'extmem/opentelemetry'
import { Pool, pools, defaultPool, ExtmemError } from 'extmem'
import type { RefusedMessage, WatermarkEvent, LeakEvent, LiveBuffer, PoolSummary } from 'extmem'

const register = new Registry()
const options: CollectMetricsOptions = { register, prefix: 'app_', labels: { service: 'api' }, sizeClasses: true }
const collected: CollectedMetrics = collectMetrics(options)
console.log(collected.metrics.length)
collected.unregister()
collectMetrics()[Symbol.dispose]()
collectMetrics({ register: new Registry<OpenMetricsContentType>() }).unregister()

declare const meter: Meter
const observeOptions: ObserveOptions = {
  attributes: { 'service.name': 'api', shard: 3, canary: false },
  sizeClasses: true,
}
const observation: Observation = observe(meter, observeOptions)
const instruments: readonly Observable[] = observation.instruments
observation.stop()
observe(meter)[Symbol.dispose]()

const pool = new Pool({ label: 'images', leakDetection: 'paranoid' })
const label: string = pool.label
const all: Pool[] = pools()
const summary: PoolSummary = pool.toJSON()
pool.on('watermark', (e: WatermarkEvent) => console.log(e.label, e.level))
pool.on('leak', (e: LeakEvent) => console.log(e.label, e.stack))
const live: LiveBuffer[] = pool.live()
console.log(label, all.length, summary.label, live[0]?.label, defaultPool.label, instruments.length)

diagnostics.subscribe('extmem:refused', (message) => {
  const m = message as RefusedMessage
  if (m.code === 'ERR_EXTMEM_OS') console.log(m.label, m.syscall, m.errno, m.error.syscall)
  else console.log(m.pool.label, m.requestedBytes, m.availableBytes, m.level, m.error.level)
})

try {
  const buf = pool.allocUnsafe(10)
  pool.release(buf)
  pool.release(buf)
} catch (err) {
  if (err instanceof ExtmemError && err.code === 'ERR_EXTMEM_RELEASED') console.log(err.firstReleaseStack ?? '')
}

// @ts-expect-error labels are strings
new Pool({ label: 1 })
// @ts-expect-error constant labels are strings
collectMetrics({ labels: { service: 1 } })
// @ts-expect-error observe() needs a Meter
observe()
// @ts-expect-error the OS's refusals carry no level
const _level = ({} as Extract<RefusedMessage, { code: 'ERR_EXTMEM_OS' }>).level
