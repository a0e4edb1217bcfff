// The types of `import ... from 'extmem/prometheus'`: the same as `require('extmem/prometheus')`'s (prometheus.d.ts), plus the
// default export that Node gives an ES module importing CommonJS (module.exports).
import prometheus from './prometheus.js'

export * from './prometheus.js'
export default prometheus
