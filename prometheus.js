'use strict'
// require('extmem/prometheus'): Prometheus metrics of this thread's pools, with prom-client.
module.exports = require('./lib/prometheus.js')
