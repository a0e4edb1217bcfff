'use strict'
// Pool figures as Prometheus metrics: extmem/prometheus registers them with a prom-client registry,
// one series per pool (labelled pool="<label>"), each read from stats() at every scrape.
// Run: node examples/prometheus.js (prints one scrape). A server would answer GET /metrics with
// `await register.metrics()` and the content type `register.contentType`.

const client = require('prom-client')
const { Pool, defaultPool } = require('..')
const { collectMetrics } = require('../prometheus') // in an application: require('extmem/prometheus')

const register = new client.Registry()
const uploads = new Pool({ label: 'uploads', maxBytes: 64 * 1024 * 1024 })
const metrics = collectMetrics({ register, labels: { service: 'example' } })

module.exports = { register, uploads, metrics }

if (require.main === module) {
  const held = Array.from({ length: 10 }, () => defaultPool.allocUnsafe(4096))
  const bodies = Array.from({ length: 3 }, () => uploads.allocUnsafe(100_000))
  register.metrics().then((text) => {
    process.stdout.write(text)
    for (const b of held) defaultPool.release(b)
    for (const b of bodies) uploads.release(b)
    metrics.unregister()
  })
}
