'use strict'
// Pool figures as Prometheus metrics with prom-client: gauges read stats() at every scrape,
// counters mirror the pool's monotonic totals. Run: node examples/prometheus.js (prints one scrape).

const client = require('prom-client')
const { defaultPool, levels } = require('..')

const register = new client.Registry()

function gauge(name, help, read) {
  register.registerMetric(
    new client.Gauge({
      name,
      help,
      registers: [],
      collect() {
        this.set(read(defaultPool.stats()))
      },
    }),
  )
}

function counter(name, help, read) {
  // A pool counter only grows; inc() by the difference keeps prom-client's counter equal to it.
  let reported = 0
  register.registerMetric(
    new client.Counter({
      name,
      help,
      registers: [],
      collect() {
        const now = read(defaultPool.stats())
        if (now > reported) this.inc(now - reported)
        reported = now
      },
    }),
  )
}

gauge('extmem_max_bytes', 'Hard cap on memory held from the OS', (s) => s.maxBytes)
gauge('extmem_reserved_bytes', 'Memory held from the OS', (s) => s.reservedBytes)
gauge('extmem_in_use_bytes', 'Memory lent out, by capacity', (s) => s.inUseBytes)
gauge('extmem_external_bytes', 'Memory V8 counts as external for pooled Buffers', (s) => s.externalBytes)
gauge('extmem_live_buffers', 'Buffers out now', (s) => s.liveBuffers)
gauge('extmem_utilization_ratio', 'inUseBytes / maxBytes', (s) => s.utilization)
gauge('extmem_level', `Watermark level: ${levels.map((l, i) => `${i}=${l}`).join(', ')}`, (s) =>
  levels.indexOf(s.level),
)
counter('extmem_allocations_total', 'Successful allocations', (s) => s.allocations)
counter('extmem_releases_total', 'Buffers released explicitly', (s) => s.releases)
counter('extmem_gc_reclaims_total', 'Buffers reclaimed by the GC without release', (s) => s.gcReclaims)
counter('extmem_leaks_total', 'Tracked Buffers collected without release', (s) => s.leaks)
counter('extmem_refused_total', 'Refused allocations', (s) => s.failedAllocations)

module.exports = { register }

if (require.main === module) {
  const held = Array.from({ length: 10 }, () => defaultPool.allocUnsafe(4096))
  register.metrics().then((text) => {
    process.stdout.write(text)
    for (const b of held) defaultPool.release(b)
  })
}
