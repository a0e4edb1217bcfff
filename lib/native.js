'use strict'
// Loads the native binding through the generated loader (binding.js), which looks for
// extmem.<platform>.node beside it and then for the package @extmem/binding-<platform>. Where
// neither loads, the loader's error becomes ERR_EXTMEM_NO_BINARY, which names the platform and the
// way to build a binary for it. lib/index.js loads this first, so that a missing binary is
// reported here before any other module asks the loader.

const errors = require('./errors')
const { platformArchABI } = require('./platform')

let binding
try {
  binding = require('../binding.js')
} catch (cause) {
  throw errors.noBinary(platformArchABI(), cause)
}

module.exports = binding
