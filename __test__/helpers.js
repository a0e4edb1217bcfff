'use strict'
// Shared test helpers: a seeded PRNG, byte patterns, and waiting for the GC's finalizers.

const { setImmediate: turn } = require('node:timers/promises')

/** A small deterministic PRNG (mulberry32), so failures reproduce. */
function prng(seed) {
  let a = seed >>> 0
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Fills `buf` with a pattern unique to `id`. */
function stamp(buf, id) {
  for (let i = 0; i < buf.length; i++) buf[i] = (id * 131 + i * 7) & 0xff
}

/** Whether `buf` still holds the pattern of `id`. */
function holds(buf, id) {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== ((id * 131 + i * 7) & 0xff)) return false
  return true
}

/** Runs gc() and event-loop turns until `done()` or `tries` rounds pass; returns done(). */
async function collectUntil(done, tries = 50) {
  for (let i = 0; i < tries && !done(); i++) {
    globalThis.gc()
    await turn()
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return done()
}

module.exports = { prng, stamp, holds, collectUntil, turn }
