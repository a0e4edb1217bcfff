// Compiled (not run) by types.spec.js like observability.ts, as an ES module: `import` of the
// subpaths gets prometheus.d.mts and opentelemetry.d.mts, whose default export is module.exports.
import prometheus, { collectMetrics } from 'extmem/prometheus'
import opentelemetry, { observe } from 'extmem/opentelemetry'
import type { Meter } from '@opentelemetry/api'
import { Registry } from 'prom-client'
import { pools } from 'extmem'

declare const meter: Meter
const { unregister } = collectMetrics({ register: new Registry() })
unregister()
prometheus.collectMetrics().unregister()
observe(meter).stop()
opentelemetry.observe(meter, { sizeClasses: false }).stop()
console.log(pools().map((p) => p.label))

// @ts-expect-error the default export has no such member
prometheus.nope()
