'use strict'
// Leak detection: which allocations carry a stack, and the one warning per allocation site.

const path = require('node:path')

/** Allocations between two tracked ones in 'sampled' mode. */
const SAMPLE_INTERVAL = 128

/** `leakDetection` mode -> allocations per tracked one (0: none tracked). */
const INTERVALS = Object.freeze({ off: 0, sampled: SAMPLE_INTERVAL, paranoid: 1 })

const LIB_DIR = __dirname + path.sep
const PKG_INDEX = path.join(__dirname, '..', 'index')

/**
 * The JavaScript stack of the caller of `caller`, captured but not yet formatted: V8 formats a
 * stack when `.stack` is first read, which costs ~8x the capture, so that waits until a leak or
 * live() needs it.
 */
function captureTrace(caller) {
  const holder = {}
  Error.captureStackTrace(holder, caller)
  return holder
}

/** The stack of a captured trace, as text, without this package's own frames. */
function formatTrace(holder) {
  return holder.stack
    .split('\n')
    .slice(1)
    .filter((line) => !line.includes(LIB_DIR) && !line.includes(PKG_INDEX))
    .join('\n')
}

/** Sites already warned about on this thread. */
const warnedSites = new Set()

/** Emits one process warning (code EXTMEM_LEAK) per distinct allocation site. */
function warnOnce(leak) {
  const site = leak.stack.split('\n')[0]?.trim() ?? '<unknown>'
  if (warnedSites.has(site)) return
  warnedSites.add(site)
  process.emitWarning(
    `A pooled Buffer of ${leak.size} bytes was garbage-collected without release() after ${leak.ageMs} ms; allocated ${site}`,
    { type: 'ExtmemLeakWarning', code: 'EXTMEM_LEAK', detail: leak.stack },
  )
}

module.exports = { INTERVALS, captureTrace, formatTrace, warnOnce }
