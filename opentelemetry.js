'use strict'
// require('extmem/opentelemetry'): OpenTelemetry metrics of this thread's pools, on a Meter of @opentelemetry/api.
module.exports = require('./lib/opentelemetry.js')
