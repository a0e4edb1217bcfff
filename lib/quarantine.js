'use strict'
// The quarantine's JavaScript side (`new Pool({ quarantine })`, EXTMEM_QUARANTINE=1): its option,
// and the stacks a 'misuse' event names. The core holds released memory back, poisoned, and
// finds the writes (crates/extmem-core/src/quarantine.rs); it names the loan by its token, and
// this thread answers with where that Buffer was allocated and released.

const errors = require('./errors')
const { captureTrace, formatTrace } = require('./leaks')
const { SafeMap, SafeWeakMap, F64, mapGet, mapSet, mapDelete, weakMapGet, weakMapSet } = require('./intrinsics')

/** What `quarantine: true` means: 256 later releases of the same size, and 100 ms. */
const DEFAULTS = Object.freeze({ releases: 256, ms: 100 })
/** Largest values the options take (the core keeps releases in 32 bits). */
const RELEASES_MAX = 2 ** 32 - 1
const MS_MAX = 2 ** 31 - 1
/** Releases whose stacks a Pool object keeps, newest first (a misuse found later has none). */
const RECORDS_MAX = 1 << 14

/**
 * `options.quarantine` as `{ releases, ms }`, or null for none: `true`, `false`, or an object
 * with either (each a non-negative integer; the other as in DEFAULTS).
 */
function quarantineOption(value, caller) {
  if (value === undefined || value === false) return null
  if (value === true) return DEFAULTS
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw errors.invalidArgType('options.quarantine', 'of type boolean or an object', value, caller)
  for (const key of Object.keys(value)) {
    if (key !== 'releases' && key !== 'ms')
      throw errors.invalidArgValue(`options.quarantine.${key}`, value[key], 'is not an option (releases, ms)', caller)
  }
  return {
    releases: count(value.releases, 'releases', RELEASES_MAX, caller),
    ms: count(value.ms, 'ms', MS_MAX, caller),
  }
}

function count(value, key, max, caller) {
  if (value === undefined) return DEFAULTS[key]
  if (typeof value !== 'number')
    throw errors.invalidArgType(`options.quarantine.${key}`, 'of type number', value, caller)
  if (!Number.isInteger(value) || value < 0 || value > max)
    throw errors.outOfRange(`options.quarantine.${key}`, `an integer >= 0 && <= ${max}`, value, caller)
  return value
}

/** EXTMEM_QUARANTINE for the default pool: '1' or 'true' turn it on, '0', 'false' or '' leave it off. */
function quarantineFromEnv(text) {
  if (text === undefined || text === '' || text === '0' || text === 'false') return undefined
  if (text === '1' || text === 'true') return true
  throw errors.invalidArgValue('EXTMEM_QUARANTINE', text, "must be '1' or '0'", quarantineFromEnv)
}

/**
 * The stacks of one Pool object's Buffers: where each live one was allocated (held by the Buffer,
 * weakly), and where the last RECORDS_MAX were released, by loan token.
 */
class QuarantineRecords {
  #allocated = new SafeWeakMap()
  #released = new SafeMap()
  /** The tokens in `#released`, in a ring: the oldest is forgotten when a new one comes. */
  #ring = new F64(RECORDS_MAX).fill(-1)
  #next = 0

  /** Records where `buf` is allocated (the caller of `caller`). */
  allocated(buf, caller) {
    weakMapSet(this.#allocated, buf, captureTrace(caller))
  }

  /** Records that `buf`, the Buffer of the loan `token`, was released by the caller of `caller`. */
  released(buf, token, caller) {
    const old = this.#ring[this.#next]
    if (old !== -1) mapDelete(this.#released, old)
    this.#ring[this.#next] = token
    this.#next = (this.#next + 1) % RECORDS_MAX
    mapSet(this.#released, token, { allocation: weakMapGet(this.#allocated, buf), release: captureTrace(caller) })
  }

  /**
   * The 'misuse' event for `event` (from the core), with the stacks this thread has of its loan;
   * undefined if it has none and `mustReport` is false (another thread may have them).
   */
  misuse(event, mustReport) {
    const record = mapGet(this.#released, event.token)
    if (record === undefined && !mustReport) return undefined
    if (record !== undefined) mapDelete(this.#released, event.token)
    return {
      size: event.size,
      address: BigInt(event.address),
      offset: event.offset,
      allocationStack: record?.allocation === undefined ? null : formatTrace(record.allocation),
      releaseStack: record === undefined ? null : formatTrace(record.release),
    }
  }
}

/** One process warning (code EXTMEM_MISUSE) per Pool object, for its first misuse nobody listens to. */
function warnMisuse(misuse) {
  process.emitWarning(
    `A pooled Buffer's memory (${misuse.size} bytes) was written ${misuse.offset} bytes in after its release(): ` +
      'something (native code, a socket write or read) still used it. Listen for the pool\'s "misuse" event for the stacks.',
    { type: 'ExtmemMisuseWarning', code: 'EXTMEM_MISUSE', detail: misuse.releaseStack ?? undefined },
  )
}

module.exports = { QuarantineRecords, quarantineOption, quarantineFromEnv, warnMisuse }
