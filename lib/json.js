'use strict'
// Diagnostics as JSON: live() entries, 'leak' events and the channel messages carry a BigInt
// `address`, which JSON.stringify refuses, and channel messages carry the Pool. Each such record
// gets a `toJSON()` that writes the same fields with the address as a decimal string; the method
// is not enumerable, so util.inspect and Object.keys show the record as they did. A Pool is
// written (and inspected) as its summary: `{ name, label, maxBytes, level, closed }`.

const { inspect } = require('node:util')

/** Gives `record` its toJSON(); returns it. */
function jsonSafe(record) {
  Object.defineProperty(record, 'toJSON', { value: recordToJSON, writable: true, configurable: true })
  return record
}

function recordToJSON() {
  const out = {}
  for (const key of Object.keys(this)) {
    const value = this[key]
    out[key] = typeof value === 'bigint' ? value.toString() : value
  }
  return out
}

/** A Pool's summary, for JSON.stringify and util.inspect. */
function poolSummary(pool) {
  return { name: pool.name, label: pool.label, maxBytes: pool.maxBytes, level: pool.level, closed: pool.closed }
}

/** Installs Pool's toJSON() and util.inspect form. */
function install(Pool) {
  Object.defineProperties(Pool.prototype, {
    toJSON: {
      value: function toJSON() {
        return poolSummary(this)
      },
      writable: true,
      configurable: true,
    },
    [inspect.custom]: {
      value: function inspectPool(depth, options, inspectValue = inspect) {
        return `Pool ${inspectValue(poolSummary(this), options)}`
      },
      writable: true,
      configurable: true,
    },
  })
}

module.exports = { jsonSafe, install }
