'use strict'
// Validation at the public entry: everything past these checks is trusted.

const {
  constants: { MAX_LENGTH },
} = require('node:buffer')
const { isUint8Array } = require('node:util/types')
const errors = require('./errors')

/** A Buffer size: an integer in 0..buffer.constants.MAX_LENGTH. */
function validateSize(size, caller) {
  if (typeof size !== 'number') throw errors.invalidArgType('size', 'of type number', size, caller)
  if (!Number.isInteger(size) || size < 0 || size > MAX_LENGTH) {
    throw errors.outOfRange('size', `an integer >= 0 && <= ${MAX_LENGTH}`, size, caller)
  }
}

/** A real Buffer: a Uint8Array (by brand, not by prototype) that is an instance of Buffer. */
function validateBuffer(buf, caller) {
  if (!isUint8Array(buf) || !(buf instanceof Buffer)) {
    throw errors.invalidArgType('buffer', 'an instance of Buffer', buf, caller)
  }
}

/** A byte count: an integer in 1..Number.MAX_SAFE_INTEGER. */
function validateByteCount(value, name, caller) {
  if (typeof value !== 'number') throw errors.invalidArgType(name, 'of type number', value, caller)
  if (!Number.isSafeInteger(value) || value < 1) {
    throw errors.outOfRange(name, `an integer >= 1 && <= ${Number.MAX_SAFE_INTEGER}`, value, caller)
  }
}

/** `undefined` or a plain object whose keys are all in `known`. */
function validateOptions(options, name, known, caller) {
  if (options === undefined) return {}
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw errors.invalidArgType(name, 'of type object', options, caller)
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw errors.invalidArgValue(
        `${name}.${key}`,
        options[key],
        `is not a known option (known: ${known.join(', ')})`,
        caller,
      )
    }
  }
  return options
}

/** One of the strings in `allowed`. */
function validateOneOf(value, name, allowed, caller) {
  if (!allowed.includes(value)) {
    throw errors.invalidArgValue(name, value, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`, caller)
  }
}

/**
 * Watermark thresholds: numbers for the keys of `defaults` (the core's), checked by `check` (the
 * core's rule): `0 < warning < critical < shedding <= 1`, `0 <= hysteresis < warning`.
 */
function validateWatermarks(value, name, defaults, check, caller) {
  const opts = validateOptions(value, name, Object.keys(defaults), caller)
  const marks = { ...defaults, ...opts }
  for (const key of Object.keys(defaults)) {
    if (typeof marks[key] !== 'number')
      throw errors.invalidArgType(`${name}.${key}`, 'of type number', marks[key], caller)
  }
  const { warning, critical, shedding, hysteresis } = marks
  const broken = check(warning, critical, shedding, hysteresis)
  if (broken === 'order')
    throw errors.invalidArgValue(name, value, 'must have 0 < warning < critical < shedding <= 1', caller)
  if (broken === 'hysteresis')
    throw errors.invalidArgValue(`${name}.hysteresis`, hysteresis, 'must be >= 0 and below warning', caller)
  return marks
}

const UNITS = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }

/** Parses a byte count from the environment: digits with an optional K, M, G or T (binary) suffix. */
function parseByteCount(text, name, caller) {
  const m = /^\s*(\d+)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text)
  const bytes = m ? Number(m[1]) * UNITS[m[2].toLowerCase()] : NaN
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw errors.invalidArgValue(name, text, 'must be a positive byte count such as 67108864, 64M or 2GiB', caller)
  }
  return bytes
}

const ALLOC_OPTIONS = ['align', 'priority', 'prefault']

/**
 * The native flags of alloc options `{ align, priority, prefault }`: the index of `align` in
 * `aligns`, and the bits `essential` and `prefault` of `flags` (the native constants).
 */
function allocFlags(options, aligns, flags, caller) {
  const opts = validateOptions(options, 'options', ALLOC_OPTIONS, caller)
  let bits = 0
  if (opts.align !== undefined) {
    let index = -1
    for (let i = 0; i < aligns.length; i++) if (aligns[i] === opts.align) index = i
    if (index < 0)
      throw errors.invalidArgValue('options.align', opts.align, `must be one of ${aligns.join(', ')}`, caller)
    bits |= index
  }
  if (opts.priority !== undefined) {
    validateOneOf(opts.priority, 'options.priority', ['normal', 'essential'], caller)
    if (opts.priority === 'essential') bits |= flags.essential
  }
  if (opts.prefault !== undefined) {
    if (typeof opts.prefault !== 'boolean')
      throw errors.invalidArgType('options.prefault', 'of type boolean', opts.prefault, caller)
    if (opts.prefault) bits |= flags.prefault
  }
  return bits
}

module.exports = {
  validateSize,
  validateBuffer,
  validateByteCount,
  validateOptions,
  validateOneOf,
  validateWatermarks,
  allocFlags,
  parseByteCount,
  MAX_LENGTH,
}
