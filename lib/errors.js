'use strict'
// Node-style errors, registered as Node's lib/internal/errors.js registers its own: `E(code,
// message, Base)` once per code, where `message` is a string or a function of the error's
// arguments. Every error extmem throws is made here, with a stable `code` and the figures a caller
// needs to react (for example `requestedBytes` on ERR_EXTMEM_EXHAUSTED). Bad arguments get the
// built-in class Node would use (TypeError, RangeError, Error); extmem's own codes (ERR_EXTMEM_*)
// get the exported classes below, so that `instanceof` tells them apart. This is the only place
// the texts are written.

const { inspect, getSystemErrorName } = require('node:util')

/** Every ERR_EXTMEM_* error is one. */
class ExtmemError extends Error {}
/** An allocation refused by the cap or by graded admission: ERR_EXTMEM_EXHAUSTED, ERR_EXTMEM_THROTTLED. */
class RefusedError extends ExtmemError {}
/** Memory the cap allowed but the OS refused: ERR_EXTMEM_OS, `syscall` and `errno` as Node's system errors have them. */
class OsError extends ExtmemError {}

/** code -> { Base, message } */
const registry = new Map()

function E(code, message, Base) {
  registry.set(code, { Base, message })
}

/** A new error of `code`; `args` go to its message, `fields` onto the error; the stack starts above `caller`. */
function make(code, args, fields, caller) {
  const { Base, message } = registry.get(code)
  const err = new Base(typeof message === 'function' ? message(...args) : message)
  err.code = code
  if (fields !== undefined) Object.assign(err, fields)
  if (caller !== undefined) Error.captureStackTrace(err, caller)
  return err
}

/** 0.7 -> '70 %' */
const percent = (fraction) => `${Math.round(fraction * 1000) / 10} %`

function describe(value) {
  if (value === null || value === undefined) return ` Received ${value}`
  if (typeof value === 'function') return ` Received function ${value.name}`
  if (typeof value === 'object') {
    const name = value.constructor?.name
    return name ? ` Received an instance of ${name}` : ` Received ${inspect(value, { depth: -1 })}`
  }
  return ` Received type ${typeof value} (${inspect(value).slice(0, 28)})`
}

E(
  'ERR_INVALID_ARG_TYPE',
  (name, expected, actual) => `The "${name}" argument must be ${expected}.${describe(actual)}`,
  TypeError,
)
E(
  'ERR_INVALID_ARG_VALUE',
  (name, value, reason) =>
    `The ${name.includes('.') ? 'property' : 'argument'} '${name}' ${reason}. Received ${inspect(value)}`,
  TypeError,
)
E(
  'ERR_OUT_OF_RANGE',
  (name, range, value) => `The value of "${name}" is out of range. It must be ${range}. Received ${inspect(value)}`,
  RangeError,
)
E('ERR_INVALID_THIS', (type) => `Value of "this" must be ${type}`, TypeError)
E('ERR_ILLEGAL_CONSTRUCTOR', 'Illegal constructor', TypeError)
E('ERR_INVALID_STATE', (message) => `Invalid state: ${message}`, Error)
E(
  'ERR_EXTMEM_EXHAUSTED',
  (requested, available, level, maxBytes, cachedElsewhere) =>
    (level === 'shedding'
      ? `Cannot allocate ${requested} bytes: the pool is shedding load (maxBytes ${maxBytes}, ${available} bytes available)`
      : `Cannot allocate ${requested} bytes: the pool is at its cap (maxBytes ${maxBytes}, ${available} bytes available)`) +
    (cachedElsewhere > 0
      ? `; other threads' caches hold ${cachedElsewhere} bytes, which come back at each of those threads' next call`
      : ''),
  RefusedError,
)
E(
  'ERR_EXTMEM_THROTTLED',
  (requested, level, threshold) =>
    `Cannot allocate ${requested} bytes: the pool is at level '${level}' (from ${percent(threshold)} of maxBytes), ` +
    `where graded admission refuses ${level === 'warning' ? 'Buffers above 8 KiB' : 'every allocation'} of normal priority. ` +
    "Ways out: allocate with { priority: 'essential' } what must not fail, " +
    "or make the pool with { admission: 'cap' } to refuse only at its hard cap",
  RefusedError,
)
E('ERR_EXTMEM_NOT_POOLED', (detail = '') => `The Buffer was not allocated by this pool${detail}`, ExtmemError)
E(
  'ERR_EXTMEM_VIEW_OWNERSHIP',
  (detail = '') =>
    `The Buffer is a view (subarray or slice) of a pooled Buffer; only the Buffer that alloc() returned can be retained or released (releaseOwner() releases the Buffer a view lies in)${detail}`,
  ExtmemError,
)
E(
  'ERR_EXTMEM_RELEASED',
  (firstRelease) =>
    'The Buffer was already released' +
    (firstRelease === undefined ? '' : `; the first release was ${firstRelease} (its stack: err.firstReleaseStack)`),
  ExtmemError,
)
E(
  'ERR_EXTMEM_SHARED',
  'The Buffer holds more than one reference (it was retained), so it cannot be resized: release the others first',
  ExtmemError,
)
E('ERR_EXTMEM_CLOSED', 'The pool is closed', ExtmemError)
E(
  'ERR_EXTMEM_QUARANTINE',
  'allocFast() is not available on a pool with a quarantine: releaseFast() does not detach, so the quarantine ' +
    'could not hold its memory back. Use alloc() or allocUnsafe()',
  ExtmemError,
)
E(
  'ERR_EXTMEM_OPTIONS_MISMATCH',
  (name, option) => `A pool named '${name}' already exists with another ${option}; a Pool that joins it must agree`,
  ExtmemError,
)
E('ERR_EXTMEM_HANDLE_USED', 'The handle was already adopted or reclaimed (a handle serves once)', ExtmemError)
E('ERR_EXTMEM_INVALID_HANDLE', (why) => `The handle was not made by this pool: ${why}`, ExtmemError)
E(
  'ERR_EXTMEM_EXTERNAL_REFUSED',
  'Node-API refused to create or detach an external Buffer (external buffers are not allowed in this runtime)',
  ExtmemError,
)
E(
  'ERR_EXTMEM_NOT_DETACHABLE',
  "The Buffer's ArrayBuffer cannot be detached (it was marked untransferable), so its memory cannot be released; it returns to the pool when the Buffer is collected",
  ExtmemError,
)
E(
  'ERR_EXTMEM_TOO_LARGE',
  (limit, receivedBytes, declaredBytes) =>
    declaredBytes !== undefined && receivedBytes === 0
      ? `The stream announces ${declaredBytes} bytes, more than the limit of ${limit}`
      : `The stream is larger than the limit of ${limit} bytes (${receivedBytes} bytes received)`,
  RangeError,
)
E('ERR_STREAM_DESTROYED', (method) => `Cannot call ${method} after a stream was destroyed`, Error)
E(
  'ERR_EXTMEM_OS',
  (requested, syscall, name) => `Cannot allocate ${requested} bytes: ${syscall} failed (${name})`,
  OsError,
)
E(
  'ERR_EXTMEM_NO_BINARY',
  (platform) =>
    `extmem has no native binary that loads on ${platform}: neither the package @extmem/binding-${platform} ` +
    `nor extmem.${platform}.node beside its loader (err.cause says why each failed). ` +
    'Where no prebuilt binary exists, run `npm run pack:local` in a checkout of extmem (it needs Rust) ' +
    'and install the tarball it makes; see docs/platforms.md',
  ExtmemError,
)

/** Every code extmem throws, by name. */
const codes = Object.freeze(Object.fromEntries([...registry.keys()].map((code) => [code, code])))

module.exports = {
  codes,
  ExtmemError,
  RefusedError,
  OsError,
  invalidArgType: (name, expected, actual, caller) =>
    make('ERR_INVALID_ARG_TYPE', [name, expected, actual], undefined, caller),
  invalidArgValue: (name, value, reason, caller) =>
    make('ERR_INVALID_ARG_VALUE', [name, value, reason], undefined, caller),
  outOfRange: (name, range, value, caller) => make('ERR_OUT_OF_RANGE', [name, range, value], undefined, caller),
  invalidThis: (type, caller) => make('ERR_INVALID_THIS', [type], undefined, caller),
  illegalConstructor: (caller) => make('ERR_ILLEGAL_CONSTRUCTOR', [], undefined, caller),
  invalidState: (message, caller) => make('ERR_INVALID_STATE', [message], undefined, caller),
  exhausted: (requestedBytes, availableBytes, level, maxBytes, cachedElsewhereBytes, caller) =>
    make(
      'ERR_EXTMEM_EXHAUSTED',
      [requestedBytes, availableBytes, level, maxBytes, cachedElsewhereBytes],
      { requestedBytes, availableBytes, level, cachedElsewhereBytes },
      caller,
    ),
  /** `threshold`: the fraction of maxBytes from which the pool is at `level`. */
  throttled: (requestedBytes, availableBytes, level, threshold, caller) =>
    make('ERR_EXTMEM_THROTTLED', [requestedBytes, level, threshold], { requestedBytes, availableBytes, level }, caller),
  notPooled: (caller, detail) => make('ERR_EXTMEM_NOT_POOLED', [detail], undefined, caller),
  viewOwnership: (caller, detail) => make('ERR_EXTMEM_VIEW_OWNERSHIP', [detail], undefined, caller),
  /** viewOwnership's detail for a view whose owner releaseOwner() cannot find. */
  UNKNOWN_OWNER:
    ': no Buffer from alloc() is on record for it (releaseOwner() knows the views that subarray() and slice() made, not views made from an ArrayBuffer or of allocFast() Buffers)',
  /** A stream past `limit` bytes: `receivedBytes` so far, `declaredBytes` it announced (content-length), if any. */
  tooLarge: (limit, receivedBytes, declaredBytes, caller) =>
    make(
      'ERR_EXTMEM_TOO_LARGE',
      [limit, receivedBytes, declaredBytes],
      { limit, receivedBytes, declaredBytes },
      caller,
    ),
  streamDestroyed: (method, caller) => make('ERR_STREAM_DESTROYED', [method], undefined, caller),
  /**
   * `firstReleaseStack` (leakDetection 'paranoid' only): the stack of the release that ended the
   * Buffer's loan, as formatTrace() writes it; the message names its first frame.
   */
  released: (caller, firstReleaseStack) =>
    firstReleaseStack === undefined
      ? make('ERR_EXTMEM_RELEASED', [], undefined, caller)
      : make(
          'ERR_EXTMEM_RELEASED',
          [firstReleaseStack.split('\n')[0].trim() || 'inside extmem'],
          { firstReleaseStack },
          caller,
        ),
  shared: (caller) => make('ERR_EXTMEM_SHARED', [], undefined, caller),
  closed: (caller) => make('ERR_EXTMEM_CLOSED', [], undefined, caller),
  quarantine: (caller) => make('ERR_EXTMEM_QUARANTINE', [], undefined, caller),
  optionsMismatch: (name, option, caller) => make('ERR_EXTMEM_OPTIONS_MISMATCH', [name, option], undefined, caller),
  handleUsed: (caller) => make('ERR_EXTMEM_HANDLE_USED', [], undefined, caller),
  invalidHandle: (why, caller) => make('ERR_EXTMEM_INVALID_HANDLE', [why], undefined, caller),
  externalRefused: (caller) => make('ERR_EXTMEM_EXTERNAL_REFUSED', [], undefined, caller),
  notDetachable: (caller) => make('ERR_EXTMEM_NOT_DETACHABLE', [], undefined, caller),
  /** The OS refused memory the cap allowed: fields as Node's system errors have them (negative `errno`). */
  os: (syscall, errno, requestedBytes, caller) =>
    make(
      'ERR_EXTMEM_OS',
      [requestedBytes, syscall, errno > 0 ? getSystemErrorName(-errno) : 'unknown error'],
      { syscall, errno: -errno, requestedBytes },
      caller,
    ),
  /** No native binary loads here (`platform` as napi-rs names it); `cause`: the loader's error. */
  noBinary: (platform, cause, caller) => {
    const err = make('ERR_EXTMEM_NO_BINARY', [platform], { platform }, caller)
    // As `new Error(message, { cause })` has it: an own property that is not enumerable.
    Object.defineProperty(err, 'cause', { value: cause, writable: true, configurable: true })
    return err
  },
}
