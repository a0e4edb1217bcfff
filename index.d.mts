// The types of `import ... from 'extmem'`: the same as `require('extmem')`'s (index.d.ts), plus the
// default export that Node gives an ES module importing CommonJS (module.exports).
import extmem from './index.js'

export * from './index.js'
export default extmem
