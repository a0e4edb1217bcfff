'use strict'
// Shared test helpers: a seeded PRNG, byte patterns, and waiting for the GC's finalizers.

const { setImmediate: turn } = require('node:timers/promises')
const { spawn } = require('node:child_process')
const path = require('node:path')

const LARGE_CLASS_LENS = require('../binding.js').constants().largeClassLens
const HAS_TRANSFER = typeof ArrayBuffer.prototype.transfer === 'function'

/**
 * Bytes of the mapping a large Buffer of `size` bytes takes: on Node 22+ its class's length up to
 * the last large class (four per doubling, so that its ArrayBuffer serves the next Buffer of its
 * class), else whole pages.
 */
function mappingLen(size) {
  if (HAS_TRANSFER) for (const len of LARGE_CLASS_LENS) if (len >= size) return len
  return Math.ceil(size / 4096) * 4096
}

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

/**
 * Runs this Node with `nodeArgs` from the package root; resolves with its exit code, signal,
 * stdout and stderr. `env` is added to this process's environment (a variable set to undefined
 * is removed); the child is killed with SIGKILL after `timeoutMs`, so a hang fails the test.
 */
function runNode(nodeArgs, env = {}, timeoutMs = 60_000) {
  const merged = { ...process.env }
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete merged[k]
    else merged[k] = v
  }
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, nodeArgs, {
      cwd: path.join(__dirname, '..'),
      env: merged,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    p.stdout.setEncoding('utf8').on('data', (d) => (stdout += d))
    p.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs)
    p.on('error', reject)
    p.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

/**
 * Counts the stats() calls of each of `pools` (an own method that calls the prototype's), for the
 * metric exporters' one-read-per-collection tests: `counts()` gives them in the order of `pools`,
 * `restore()` removes the own methods.
 */
function countStatsCalls(pools) {
  const calls = new Map(pools.map((pool) => [pool, 0]))
  for (const pool of pools) {
    const proto = Object.getPrototypeOf(pool)
    pool.stats = function stats() {
      calls.set(pool, calls.get(pool) + 1)
      return proto.stats.call(this)
    }
  }
  return {
    counts: () => pools.map((pool) => calls.get(pool)),
    restore() {
      for (const pool of pools) delete pool.stats
    },
  }
}

module.exports = { prng, stamp, holds, collectUntil, turn, runNode, mappingLen, countStatsCalls }
