'use strict'
// Node-style errors: the built-in class Node would use, a stable `code`, and the figures a caller
// needs to react (for example `requestedBytes` on ERR_EXTMEM_EXHAUSTED).

const { inspect, getSystemErrorName } = require('node:util')

/** Every code extmem throws, by name. */
const codes = Object.freeze({
  ERR_INVALID_ARG_TYPE: 'ERR_INVALID_ARG_TYPE',
  ERR_INVALID_ARG_VALUE: 'ERR_INVALID_ARG_VALUE',
  ERR_OUT_OF_RANGE: 'ERR_OUT_OF_RANGE',
  ERR_INVALID_STATE: 'ERR_INVALID_STATE',
  ERR_EXTMEM_EXHAUSTED: 'ERR_EXTMEM_EXHAUSTED',
  ERR_EXTMEM_THROTTLED: 'ERR_EXTMEM_THROTTLED',
  ERR_EXTMEM_NOT_POOLED: 'ERR_EXTMEM_NOT_POOLED',
  ERR_EXTMEM_VIEW_OWNERSHIP: 'ERR_EXTMEM_VIEW_OWNERSHIP',
  ERR_EXTMEM_RELEASED: 'ERR_EXTMEM_RELEASED',
  ERR_EXTMEM_CLOSED: 'ERR_EXTMEM_CLOSED',
  ERR_EXTMEM_EXTERNAL_REFUSED: 'ERR_EXTMEM_EXTERNAL_REFUSED',
  ERR_EXTMEM_NOT_DETACHABLE: 'ERR_EXTMEM_NOT_DETACHABLE',
  ERR_EXTMEM_OS: 'ERR_EXTMEM_OS',
})

function coded(Base, code, message, fields, caller) {
  const err = new Base(message)
  err.code = code
  if (fields !== undefined) Object.assign(err, fields)
  if (caller !== undefined) Error.captureStackTrace(err, caller)
  return err
}

function describe(value) {
  if (value === null || value === undefined) return ` Received ${value}`
  if (typeof value === 'function') return ` Received function ${value.name}`
  if (typeof value === 'object') {
    const name = value.constructor?.name
    return name ? ` Received an instance of ${name}` : ` Received ${inspect(value, { depth: -1 })}`
  }
  return ` Received type ${typeof value} (${inspect(value).slice(0, 28)})`
}

const invalidArgType = (name, expected, actual, caller) =>
  coded(TypeError, codes.ERR_INVALID_ARG_TYPE, `The "${name}" argument must be ${expected}.${describe(actual)}`, undefined, caller)

const invalidArgValue = (name, value, reason, caller) =>
  coded(TypeError, codes.ERR_INVALID_ARG_VALUE, `The ${name.includes('.') ? 'property' : 'argument'} '${name}' ${reason}. Received ${inspect(value)}`, undefined, caller)

const outOfRange = (name, range, value, caller) =>
  coded(RangeError, codes.ERR_OUT_OF_RANGE, `The value of "${name}" is out of range. It must be ${range}. Received ${inspect(value)}`, undefined, caller)

const invalidState = (message, caller) => coded(Error, codes.ERR_INVALID_STATE, `Invalid state: ${message}`, undefined, caller)

const exhausted = (requestedBytes, availableBytes, level, maxBytes, caller) =>
  coded(
    Error,
    codes.ERR_EXTMEM_EXHAUSTED,
    level === 'shedding'
      ? `Cannot allocate ${requestedBytes} bytes: the pool is shedding load (maxBytes ${maxBytes}, ${availableBytes} bytes available)`
      : `Cannot allocate ${requestedBytes} bytes: the pool is at its cap (maxBytes ${maxBytes}, ${availableBytes} bytes available)`,
    { requestedBytes, availableBytes, level },
    caller,
  )

const throttled = (requestedBytes, availableBytes, level, caller) =>
  coded(
    Error,
    codes.ERR_EXTMEM_THROTTLED,
    `Allocation of ${requestedBytes} bytes throttled: the pool is at level '${level}'`,
    { requestedBytes, availableBytes, level },
    caller,
  )

const notPooled = (caller, detail = '') =>
  coded(Error, codes.ERR_EXTMEM_NOT_POOLED, `The Buffer was not allocated by this pool${detail}`, undefined, caller)

const viewOwnership = (caller) =>
  coded(
    Error,
    codes.ERR_EXTMEM_VIEW_OWNERSHIP,
    'The Buffer is a view (subarray or slice) of a pooled Buffer; only the Buffer that alloc() returned can be retained or released',
    undefined,
    caller,
  )

const released = (caller) => coded(Error, codes.ERR_EXTMEM_RELEASED, 'The Buffer was already released', undefined, caller)

const closed = (caller) => coded(Error, codes.ERR_EXTMEM_CLOSED, 'The pool is closed', undefined, caller)

const externalRefused = (caller) =>
  coded(
    Error,
    codes.ERR_EXTMEM_EXTERNAL_REFUSED,
    'Node-API refused to create or detach an external Buffer (external buffers are not allowed in this runtime)',
    undefined,
    caller,
  )

const notDetachable = (caller) =>
  coded(
    Error,
    codes.ERR_EXTMEM_NOT_DETACHABLE,
    "The Buffer's ArrayBuffer cannot be detached (it was marked untransferable), so its memory cannot be released; it returns to the pool when the Buffer is collected",
    undefined,
    caller,
  )

/** The OS refused memory the cap allowed: fields as Node's system errors have them (negative `errno`). */
const os = (syscall, errno, requestedBytes, caller) => {
  const name = errno > 0 ? getSystemErrorName(-errno) : 'unknown error'
  return coded(
    Error,
    codes.ERR_EXTMEM_OS,
    `Cannot allocate ${requestedBytes} bytes: ${syscall} failed (${name})`,
    { syscall, errno: -errno, requestedBytes },
    caller,
  )
}

module.exports = {
  codes,
  invalidArgType,
  invalidArgValue,
  outOfRange,
  invalidState,
  exhausted,
  throttled,
  notPooled,
  viewOwnership,
  released,
  closed,
  externalRefused,
  notDetachable,
  os,
}
