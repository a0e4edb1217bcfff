// import ... from 'extmem/prometheus': Prometheus metrics of this thread's pools, with prom-client; the same module as require('extmem/prometheus').
import prometheus from './prometheus.js'

export const { collectMetrics } = prometheus
export default prometheus
