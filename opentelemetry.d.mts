// The types of `import ... from 'extmem/opentelemetry'`: the same as `require('extmem/opentelemetry')`'s (opentelemetry.d.ts), plus the
// default export that Node gives an ES module importing CommonJS (module.exports).
import opentelemetry from './opentelemetry.js'

export * from './opentelemetry.js'
export default opentelemetry
