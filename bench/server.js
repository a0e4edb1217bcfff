'use strict'
// Server: a real request/response workload over loopback TCP, three allocators side by side.
//
// The protocol is length-prefixed binary frames. Every frame starts with a 16-byte header of four
// little-endian u32: the frame's length (header included), then for a request the length of the
// response it wants, its sequence number and 0, for a response the sequence number, the request's
// checksum and the request's length. Both lengths are drawn from a fixed mix by a seeded PRNG per
// connection, so every variant sees the same frames. Two mixes (MIXES below): today's, 256 B to
// 64 KiB and mostly small (an RPC server), and a mid-size one, 16 to 256 KiB (a proxy or a file
// server). Each mix runs with 64 and with 256 connections (SCENARIOS); every scenario sends the
// same number of frames per run whatever its connections (the mid-size mix an eighth of them).
//
// The server, per request: allocates a Buffer of the frame's length with the variant's allocator
// and copies the frame into it from the socket's chunks (a frame may span chunks, a chunk may hold
// several frames); decodes it (the header fields, and a checksum over every 16th byte of the
// body); lets the request Buffer go; allocates the response with the same allocator, writes its
// header and fills its body; writes it to the socket; and lets it go. The variants:
//   extmem           pool.allocUnsafe; pool.release(request) after decoding, pool.release(response)
//                    in the write callback
//   scope            a pool.scope() per request, opened when its first bytes come: the request and
//                    the response are the scope's, closed in the response's write callback
//   arena            the same with pool.scope({ arena: true }), where the library has it (detected
//                    at run time: an arena scope's small Buffers share one ArrayBuffer)
//   allocUnsafe      Buffer.allocUnsafe (Node's pool under half of Buffer.poolSize), both dropped to the GC
//   allocUnsafeSlow  Buffer.allocUnsafeSlow, both dropped to the GC
// Rows compare each extmem variant with the better of the two Node variants, metric by metric.
//
// Processes. Each run is two fresh child processes: the server (one variant; the Node variants
// never load the addon) and the clients (64 connections in one process, the same code for every
// variant). On 2 cores that gives each one a core, as far as the machine's other work allows;
// clients inside the server process (a worker thread) would add their memory to the server's RSS
// and compete with it inside one process. The server's figures are its own: peak RSS (VmHWM,
// reset when the measured phase starts), peak process.memoryUsage().external (sampled every 20 ms),
// GC pause (the durations of perf_hooks 'gc' entries, which V8 spends on the main thread), GC counts
// by kind and by the flags V8 gives as their cause, and CPU time, all over the measured phase
// only; for extmem, the pool's peak reservedBytes (and a count of live weak references, if the
// pool's stats() ever has one: there is none today). The clients measure round trips (closed loop: one
// request in flight per connection), so latency includes both processes and the kernel.
//
// A run: the clients connect and send `warmFrames` requests per connection (warm-up, unmeasured),
// the server starts measuring, the clients send `frames` requests per connection and report, then
// close; the server reports after its last connection closed, checks (extmem) that its pool lent
// nothing it did not get back, and exits. An extmem server then first waits `memoryBackS` (15 s)
// with no call into its pool (no allocation, no release, no trim()) and reports "memory back": the
// pool's reservedBytes then, over their peak (while the next runs go on; the waiting process is
// idle). A run stops sending at `deadlineS` (the row is marked
// truncated) and the parent kills what is still running `deadlineS` + 30 s after the start.
// Variant order rotates over rounds; rows give medians over rounds.

const { fork } = require('node:child_process')
const { once } = require('node:events')
const fs = require('node:fs')
const { MiB, median, row, summaryRow, num, grid } = require('./common')

const CONNECTIONS = 64
const HEADER = 16
const SEED = 0x5eed1e55

/** Frame sizes: [weight %, lowest, highest] (uniform inside a bucket); mean about 4.9 KiB. */
const MIX = [
  [45, 256, 511],
  [25, 512, 2047],
  [16, 2048, 8191],
  [9, 8192, 16383],
  [5, 16384, 65536],
]
/** The mid-size mix: mean about 98 KiB. */
const MID_MIX = [
  [40, 16384, 65535],
  [35, 65536, 131071],
  [25, 131072, 262144],
]
const MIXES = {
  today: { label: '256 B-64 KiB', short: "today's mix", buckets: MIX, maxFrame: 65536, frameShare: 1 },
  mid: {
    label: '16-256 KiB',
    short: 'mid-size mix',
    buckets: MID_MIX,
    maxFrame: 262144,
    frameShare: 1 / 8,
  },
}
const SCENARIOS = [
  { mix: 'today', connections: 64 },
  { mix: 'today', connections: 256 },
  { mix: 'mid', connections: 64 },
  { mix: 'mid', connections: 256 },
]
/** Fewest requests per connection and phase, whatever the scaling. */
const MIN_FRAMES = 8

const VARIANTS = {
  extmem: 'pool.allocUnsafe+release',
  scope: 'pool.scope() per request',
  arena: 'pool.scope({ arena: true }) per request',
  allocUnsafe: 'Buffer.allocUnsafe',
  allocUnsafeSlow: 'Buffer.allocUnsafeSlow',
}
const EXTMEM_VARIANTS = ['extmem', 'scope', 'arena']
const NODE_VARIANTS = ['allocUnsafe', 'allocUnsafeSlow']

/**
 * Whether this library's pool.scope({ arena: true }) makes arena scopes: their small Buffers share
 * one ArrayBuffer (an ordinary scope ignores the argument, and its Buffers have one each).
 */
function hasArenaScopes() {
  const { Pool } = require('..')
  const pool = new Pool({ leakDetection: 'off' })
  try {
    const scope = pool.scope({ arena: true })
    const a = scope.allocUnsafe(64)
    const b = scope.allocUnsafe(64)
    const shared = scope.arena === true || (a.buffer === b.buffer && a.buffer.byteLength > 64)
    scope.close()
    return shared
  } catch {
    return false
  } finally {
    pool.close()
  }
}

/**
 * A count of live weak references (the witnesses of a terminated worker's memory) among a pool's
 * stats(), if it has one: the first numeric figure whose name says weak or witness; else null.
 */
function weakRefsOf(stats) {
  for (const [key, value] of Object.entries(stats)) {
    if (/weak|witness/i.test(key)) {
      if (typeof value === 'number') return value
      if (value && typeof value === 'object') {
        for (const v of Object.values(value)) if (typeof v === 'number') return v
      }
    }
  }
  return null
}

/** perf_hooks' GC kinds and flags by bit, named from its constants (major, minor, …; forced, …). */
function gcNames() {
  const { constants } = require('node:perf_hooks')
  const camel = (s) => s.toLowerCase().replace(/_(\w)/g, (_, c) => c.toUpperCase())
  const kinds = {}
  const flags = {}
  for (const [k, v] of Object.entries(constants)) {
    const flag = /^NODE_PERFORMANCE_GC_FLAGS_(\w+)$/.exec(k)
    if (flag) {
      if (v !== 0) flags[v] = camel(flag[1])
      continue
    }
    const kind = /^NODE_PERFORMANCE_GC_(\w+)$/.exec(k)
    if (kind) kinds[v] = camel(kind[1])
  }
  return { kinds, flags }
}

/** mulberry32: a small, seeded PRNG; returns u32 values. */
function prng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
}

/** A frame length from `mix` (a list of buckets). */
function drawSize(next, mix) {
  let pick = next() % 100
  for (const [weight, lo, hi] of mix) {
    if (pick < weight) return lo + (next() % (hi - lo + 1))
    pick -= weight
  }
  throw new Error('MIX weights must add up to 100')
}

/** FNV-1a over every 16th byte of the body: the decoder's work, the same for every variant. */
function checksum(buf) {
  let h = 0x811c9dc5
  const n = buf.length
  for (let i = HEADER; i < n; i += 16) h = Math.imul(h ^ buf[i], 0x01000193)
  return h >>> 0
}

/** This process's peak RSS in MiB (VmHWM; see stream.js), or null where there is none. */
function vmHwmMiB() {
  try {
    const m = /^VmHWM:\s*(\d+)\s*kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))
    if (m) return Number(m[1]) / 1024
  } catch {}
  return null
}

/** Resets VmHWM to the current RSS (Linux >= 4.0); whether it could. */
function resetPeakRss() {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5')
    return true
  } catch {
    return false
  }
}

/** In a child: reports an error to the parent, which then ends both children. */
function reportErrors(role) {
  process.on('uncaughtException', (err) => {
    process.exitCode = 1
    if (process.connected) process.send({ type: 'error', error: `${role}: ${err.stack ?? err}` })
  })
}

// ---------------------------------------------------------------------------------------------
// Server child

function serverMain(variant, mixName, memoryBackS) {
  reportErrors(`server (${variant})`)
  if (!(variant in VARIANTS)) throw new Error(`unknown variant ${variant}`)
  if (!(mixName in MIXES)) throw new Error(`unknown mix ${mixName}`)
  const maxFrame = MIXES[mixName].maxFrame
  const net = require('node:net')
  const { PerformanceObserver, performance } = require('node:perf_hooks')

  // Per variant: `open()` gives a request's context (its scope, or null) when its first bytes
  // come; `alloc(ctx, n)` a Buffer; `drop(ctx, req)` lets the request go after decoding;
  // `send(socket, ctx, res)` writes the response and lets it (and the context) go.
  let pool = null
  let open = () => null
  let alloc
  let drop = () => {}
  let send
  if (EXTMEM_VARIANTS.includes(variant)) {
    const { Pool } = require('..')
    pool = new Pool({ maxBytes: 1 << 30 })
    if (variant === 'extmem') {
      alloc = (ctx, n) => pool.allocUnsafe(n)
      drop = (ctx, buf) => pool.release(buf)
      send = (socket, ctx, res) => socket.write(res, () => pool.release(res))
    } else {
      open = variant === 'arena' ? () => pool.scope({ arena: true }) : () => pool.scope()
      alloc = (scope, n) => scope.allocUnsafe(n)
      send = (socket, scope, res) => socket.write(res, () => scope.close())
    }
  } else {
    alloc = variant === 'allocUnsafe' ? (ctx, n) => Buffer.allocUnsafe(n) : (ctx, n) => Buffer.allocUnsafeSlow(n)
    send = (socket, ctx, res) => socket.write(res)
  }

  const m = { measuring: false, frames: 0, bytesIn: 0, bytesOut: 0, errors: 0 }
  const names = gcNames()
  const gc = { since: Infinity, until: Infinity, pauseMs: 0, count: 0, byKind: {}, byFlag: {} }
  const account = (entries) => {
    for (const e of entries) {
      if (e.startTime >= gc.since && e.startTime <= gc.until) {
        gc.pauseMs += e.duration
        gc.count++
        const kind = names.kinds[e.detail?.kind ?? e.kind] ?? `kind${e.detail?.kind ?? e.kind}`
        const k = (gc.byKind[kind] ??= { count: 0, ms: 0 })
        k.count++
        k.ms += e.duration
        const flags = e.detail?.flags ?? e.flags ?? 0
        for (const [bit, name] of Object.entries(names.flags)) {
          if (flags & Number(bit)) gc.byFlag[name] = (gc.byFlag[name] ?? 0) + 1
        }
      }
    }
  }
  const observer = new PerformanceObserver((list) => account(list.getEntries()))
  observer.observe({ entryTypes: ['gc'] })

  const peak = { rss: 0, external: 0, arrayBuffers: 0, reserved: 0, weakRefs: null }
  const sample = () => {
    const u = process.memoryUsage()
    if (u.rss > peak.rss) peak.rss = u.rss
    if (u.external > peak.external) peak.external = u.external
    if (u.arrayBuffers > peak.arrayBuffers) peak.arrayBuffers = u.arrayBuffers
    if (pool !== null) {
      const s = pool.stats()
      if (s.reservedBytes > peak.reserved) peak.reserved = s.reservedBytes
      const weak = weakRefsOf(s)
      if (weak !== null && !(weak <= peak.weakRefs)) peak.weakRefs = weak
    }
  }
  let sampler = null
  let cpu0 = null
  let hwmReset = false

  function respond(socket, req, ctx) {
    const respLen = req.readUInt32LE(4)
    const seq = req.readUInt32LE(8)
    const reqLen = req.length
    if (respLen < HEADER || respLen > maxFrame) throw new Error(`bad response length ${respLen}`)
    const sum = checksum(req)
    drop(ctx, req)
    const res = alloc(ctx, respLen)
    res.writeUInt32LE(respLen, 0)
    res.writeUInt32LE(seq, 4)
    res.writeUInt32LE(sum, 8)
    res.writeUInt32LE(reqLen, 12)
    res.fill(seq & 0xff, HEADER)
    send(socket, ctx, res)
    if (m.measuring) {
      m.frames++
      m.bytesIn += reqLen
      m.bytesOut += respLen
    }
  }

  function onConnection(socket) {
    socket.setNoDelay(true)
    socket.on('error', () => m.errors++)
    const prefix = Buffer.alloc(4) // a length prefix split across chunks
    let prefixHave = 0
    let frame = null // the request being filled
    let ctx = null // its context
    let have = 0
    socket.on('data', (chunk) => {
      const end = chunk.length
      let at = 0
      while (at < end) {
        if (frame === null) {
          let len
          if (prefixHave === 0 && end - at >= 4) {
            len = chunk.readUInt32LE(at)
          } else {
            const k = Math.min(4 - prefixHave, end - at)
            chunk.copy(prefix, prefixHave, at, at + k)
            prefixHave += k
            at += k
            if (prefixHave < 4) break
            len = prefix.readUInt32LE(0)
          }
          if (len < HEADER || len > maxFrame) throw new Error(`bad frame length ${len}`)
          ctx = open()
          frame = alloc(ctx, len)
          have = 0
          if (prefixHave === 4) {
            prefix.copy(frame, 0)
            have = 4
            prefixHave = 0
          }
        }
        const k = Math.min(frame.length - have, end - at)
        chunk.copy(frame, have, at, at + k)
        have += k
        at += k
        if (have === frame.length) {
          const req = frame
          frame = null
          respond(socket, req, ctx)
        }
      }
    })
  }

  const server = net.createServer(onConnection)
  server.listen(0, '127.0.0.1', () => process.send({ type: 'listening', port: server.address().port }))

  process.on('message', (msg) => {
    if (msg.cmd === 'measure') {
      globalThis.gc?.()
      hwmReset = resetPeakRss()
      peak.rss = peak.external = peak.arrayBuffers = peak.reserved = 0
      peak.weakRefs = null
      sample()
      sampler = setInterval(sample, 20)
      gc.since = performance.now()
      cpu0 = process.cpuUsage()
      m.measuring = true
      process.send({ type: 'measuring' })
    } else if (msg.cmd === 'report') {
      // The measured phase is over (the clients have their last responses).
      m.measuring = false
      const cpu = process.cpuUsage(cpu0)
      gc.until = performance.now()
      account(observer.takeRecords())
      observer.disconnect()
      clearInterval(sampler)
      sample()
      const hwm = vmHwmMiB()
      const report = {
        type: 'report',
        frames: m.frames,
        bytesIn: m.bytesIn,
        bytesOut: m.bytesOut,
        socketErrors: m.errors,
        cpuMs: (cpu.user + cpu.system) / 1000,
        gcPauseMs: gc.pauseMs,
        gcCount: gc.count,
        gcByKind: gc.byKind,
        gcByFlag: gc.byFlag,
        peakRssMiB: hwmReset && hwm !== null ? hwm : peak.rss / MiB,
        peakRssSource: hwmReset && hwm !== null ? 'VmHWM since the measured phase began' : 'sampled every 20 ms',
        peakExternalMiB: peak.external / MiB,
        peakArrayBuffersMiB: peak.arrayBuffers / MiB,
        ...(peak.weakRefs !== null ? { peakWeakRefs: peak.weakRefs } : {}),
      }
      // Ends once the clients have closed their connections: every write callback has run then.
      server.close(() => {
        if (pool === null) {
          process.send(report, () => process.disconnect())
          return
        }
        const s = pool.stats()
        const peakReserved = Math.max(peak.reserved, s.reservedBytes)
        report.pool = {
          liveBuffers: s.liveBuffers,
          gcReclaims: s.gcReclaims,
          allocations: s.allocations,
          peakInUseMiB: s.peakInUseBytes / MiB,
          reservedMiB: s.reservedBytes / MiB,
          peakReservedMiB: peakReserved / MiB,
        }
        if (s.liveBuffers !== 0 || s.gcReclaims !== 0) {
          pool.close()
          throw new Error(`the pool should be clean, has liveBuffers=${s.liveBuffers} gcReclaims=${s.gcReclaims}`)
        }
        process.send(report)
        // Memory back: no call into the pool until the wait is over.
        const t0 = performance.now()
        setTimeout(() => {
          const waitedS = (performance.now() - t0) / 1000
          const after = pool.stats()
          const back = {
            type: 'memoryBack',
            waitedS,
            reservedAtLastFrameMiB: s.reservedBytes / MiB,
            peakReservedMiB: peakReserved / MiB,
            reservedAfterMiB: after.reservedBytes / MiB,
            ratio: peakReserved === 0 ? 0 : after.reservedBytes / peakReserved,
            cachedSlots: after.small.cachedSlots,
            largeCached: after.large.cached,
          }
          pool.close()
          process.send(back, () => process.disconnect())
        }, memoryBackS * 1000)
      })
    }
  })
}

// ---------------------------------------------------------------------------------------------
// Client child

function clientMain(port, cfg) {
  reportErrors('clients')
  const net = require('node:net')
  const { buckets, maxFrame } = MIXES[cfg.mix]
  const total = cfg.connections * cfg.frames
  const latencyUs = new Float64Array(total)
  const run = { measuring: false, recorded: 0, bytes: 0, digest: 0, active: 0, stopAt: Infinity, truncated: false }
  let onIdle = null // called when no connection has a request left in its phase

  /** One connection: its own PRNG, its own request bytes, one request in flight. */
  function connection(i) {
    const next = prng(SEED + i)
    const template = Buffer.alloc(maxFrame)
    for (let at = 0; at < maxFrame; at += 4) template.writeUInt32LE(next(), at)
    const socket = net.connect({ port, host: '127.0.0.1' })
    socket.setNoDelay(true)
    const c = { socket, left: 0, seq: 0, respLen: 0, t0: 0n }
    const header = Buffer.alloc(HEADER)
    let headerHave = 0
    let skip = 0 // body bytes of the current response still to come

    c.send = () => {
      const reqLen = drawSize(next, buckets)
      c.respLen = drawSize(next, buckets)
      c.seq++
      template.writeUInt32LE(reqLen, 0)
      template.writeUInt32LE(c.respLen, 4)
      template.writeUInt32LE(c.seq, 8)
      template.writeUInt32LE(0, 12)
      c.reqLen = reqLen
      c.t0 = process.hrtime.bigint()
      socket.write(template.subarray(0, reqLen))
    }

    const onResponse = () => {
      const t1 = process.hrtime.bigint()
      const len = header.readUInt32LE(0)
      if (len !== c.respLen || header.readUInt32LE(4) !== c.seq || header.readUInt32LE(12) !== c.reqLen) {
        throw new Error(`connection ${i}: unexpected response ${header.toString('hex')}`)
      }
      if (run.measuring) {
        latencyUs[run.recorded++] = Number(t1 - c.t0) / 1000
        run.bytes += c.reqLen + len
        run.digest = (run.digest + header.readUInt32LE(8)) >>> 0
      }
      if (--c.left > 0 && !(run.measuring && Date.now() >= run.stopAt)) {
        c.send()
      } else {
        if (c.left > 0) run.truncated = true
        c.left = 0
        if (--run.active === 0) onIdle()
      }
    }

    socket.on('data', (chunk) => {
      const end = chunk.length
      let at = 0
      while (at < end) {
        if (skip === 0) {
          const k = Math.min(HEADER - headerHave, end - at)
          chunk.copy(header, headerHave, at, at + k)
          headerHave += k
          at += k
          if (headerHave < HEADER) break
          headerHave = 0
          skip = header.readUInt32LE(0) - HEADER
          if (skip === 0) onResponse()
        } else {
          const k = Math.min(skip, end - at)
          skip -= k
          at += k
          if (skip === 0) onResponse()
        }
      }
    })
    return c
  }

  /** Every connection sends `frames` requests, one at a time; resolves when all are answered. */
  function phase(conns, frames) {
    return new Promise((resolve) => {
      onIdle = resolve
      run.active = conns.length
      for (const c of conns) {
        c.left = frames
        c.send()
      }
    })
  }

  ;(async () => {
    const conns = Array.from({ length: cfg.connections }, (_, i) => connection(i))
    await Promise.all(conns.map((c) => once(c.socket, 'connect')))
    await phase(conns, cfg.warmFrames)
    process.send({ type: 'warm' })
    const [msg] = await once(process, 'message')
    if (msg.cmd !== 'go') throw new Error(`clients: expected go, got ${msg.cmd}`)
    run.measuring = true
    run.stopAt = Date.now() + cfg.deadlineS * 1000
    const cpu0 = process.cpuUsage()
    const t0 = process.hrtime.bigint()
    await phase(conns, cfg.frames)
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9
    const cpu = process.cpuUsage(cpu0)
    run.measuring = false
    const lat = latencyUs.subarray(0, run.recorded).sort()
    const pct = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]
    process.send({
      type: 'result',
      frames: run.recorded,
      bytes: run.bytes,
      seconds,
      p50Us: pct(0.5),
      p99Us: pct(0.99),
      meanUs: lat.reduce((a, b) => a + b, 0) / lat.length,
      maxUs: lat[lat.length - 1],
      digest: run.digest,
      truncated: run.truncated,
      clientCpuShare: (cpu.user + cpu.system) / 1e6 / seconds,
    })
    for (const c of conns) c.socket.end()
    await Promise.all(conns.map((c) => (c.socket.closed ? null : once(c.socket, 'close'))))
    process.disconnect()
  })().catch((err) => {
    process.exitCode = 1
    if (process.connected) process.send({ type: 'error', error: `clients: ${err.stack ?? err}` })
  })
}

// ---------------------------------------------------------------------------------------------
// Parent

/**
 * The messages of a child, in order: `next(type)` gives the next one, which must be of that type.
 * An error a child reports, or a child that dies, calls `fail`: the run is over, whichever child
 * the parent was waiting for.
 */
function inbox(proc, name, failure) {
  const queue = []
  let waiter = null
  let ended = null
  proc.on('message', (msg) => {
    if (msg.type === 'error') return failure.fail(new Error(msg.error))
    if (waiter === null) return queue.push(msg)
    const w = waiter
    waiter = null
    w.resolve(msg)
  })
  proc.on('exit', (code, signal) => {
    ended = new Error(`${name} exited with ${signal ?? code}`)
    if (code !== 0) failure.fail(ended)
    if (waiter !== null) waiter.reject(ended)
    waiter = null
  })
  return async (type) => {
    const msg =
      queue.length !== 0
        ? queue.shift()
        : await Promise.race([
            failure.failed,
            new Promise((resolve, reject) => (ended ? reject(ended) : (waiter = { resolve, reject }))),
          ])
    if (msg.type !== type) throw new Error(`${name}: expected a ${type} message, got ${JSON.stringify(msg)}`)
    return msg
  }
}

/** The first failure of a run (`fail(err)`), as a promise that rejects with it (`failed`). */
function failureOfRun() {
  const failure = {}
  failure.failed = new Promise((_, reject) => (failure.fail = reject))
  failure.failed.catch(() => {}) // read by whoever waits; no unhandled rejection when nobody does
  return failure
}

/** Resolves when `proc` has exited; fails unless it exited with 0. */
async function exited(proc, name) {
  if (proc.exitCode === null && proc.signalCode === null) await once(proc, 'exit')
  if (proc.exitCode !== 0) throw new Error(`${name} exited with ${proc.signalCode ?? proc.exitCode}`)
}

/**
 * One run of `variant` in scenario `sc` (mix, connections, frames, warmFrames, deadlineS,
 * memoryBackS): a fresh server and fresh clients. Returns what both measured, once the clients
 * are done; an extmem server is still waiting then, and `memoryBack` is the promise of its last
 * figure (see the header).
 */
async function runOnce(variant, sc) {
  // EXTMEM_BENCH_PROFILE=<dir>: each server child writes a CPU profile there (where the time goes).
  const profile = process.env.EXTMEM_BENCH_PROFILE
  const spawn = (args) =>
    fork(__filename, args, {
      execArgv: [
        '--expose-gc',
        ...(profile && args[0] === '--server' ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []),
      ],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
  const failure = failureOfRun()
  const server = spawn(['--server', variant, sc.mix, String(sc.memoryBackS)])
  const children = [server]
  const kill = () => {
    for (const p of children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM')
  }
  const limit = setTimeout(kill, (sc.deadlineS + 30) * 1000)
  try {
    const fromServer = inbox(server, `server (${variant})`, failure)
    const { port } = await fromServer('listening')
    const clients = spawn(['--client', String(port), JSON.stringify(sc)])
    children.push(clients)
    const fromClients = inbox(clients, 'clients', failure)
    await fromClients('warm')
    server.send({ cmd: 'measure' })
    await fromServer('measuring')
    clients.send({ cmd: 'go' })
    const result = await fromClients('result')
    server.send({ cmd: 'report' })
    const report = await fromServer('report')
    await exited(clients, 'clients')
    if (!EXTMEM_VARIANTS.includes(variant)) {
      await exited(server, `server (${variant})`)
      return { ...result, server: report, memoryBack: null }
    }
    const linger = setTimeout(kill, (sc.memoryBackS + 30) * 1000)
    const memoryBack = (async () => {
      try {
        const back = await fromServer('memoryBack')
        await exited(server, `server (${variant})`)
        delete back.type
        return back
      } catch (err) {
        kill()
        throw err
      } finally {
        clearTimeout(linger)
      }
    })()
    memoryBack.catch(() => {}) // awaited by runServer; no unhandled rejection meanwhile
    return { ...result, server: report, memoryBack }
  } catch (err) {
    kill()
    throw err
  } finally {
    clearTimeout(limit)
  }
}

/**
 * The figures of one run that the rows compare: higher is better for the first two. `targets`:
 * the issue's bound on extmem / the better Node variant, per mix.
 */
const METRICS = [
  {
    key: 'framesPerS',
    name: 'frames/s',
    unit: 'frames/s',
    kind: 'throughput',
    targets: { today: ['>=', 0.95], mid: ['>=', 1.2] },
  },
  { key: 'mbPerS', name: 'MB/s (both ways)', unit: 'MB/s', kind: 'throughput' },
  { key: 'p50Us', name: 'p50 round trip', unit: 'us', kind: 'time' },
  {
    key: 'p99Us',
    name: 'p99 round trip',
    unit: 'us',
    kind: 'time',
    targets: { today: ['<=', 1.05], mid: ['<=', 0.9] },
  },
  {
    key: 'gcPauseMs',
    name: 'GC pause total',
    unit: 'ms',
    kind: 'time',
    targets: { today: ['<=', 1.0], mid: ['<=', 0.5] },
  },
  { key: 'gcCount', name: 'GC count', unit: 'GCs', kind: 'time' },
  {
    key: 'peakRssMiB',
    name: 'peak RSS',
    unit: 'MiB',
    kind: 'memory',
    targets: { today: ['<=', 0.8], mid: ['<=', 0.8] },
  },
  {
    key: 'peakExternalMiB',
    name: 'peak external',
    unit: 'MiB',
    kind: 'memory',
    targets: { today: ['<=', 0.3], mid: ['<=', 0.3] },
  },
  {
    key: 'cpuUsPerFrame',
    name: 'server CPU per frame',
    unit: 'us',
    kind: 'time',
    targets: { today: ['<=', 1.05], mid: ['<=', 0.8] },
  },
]
/** The arena scope's own target: today's mix, throughput / the better Node variant. */
const ARENA_TARGETS = { today: { framesPerS: ['>=', 1.0] } }
/** Memory back: reservedBytes after the wait / their peak. */
const MEMORY_BACK_TARGET = ['<=', 0.1]

const meets = ([op, bound], ratio) => ratio != null && (op === '>=' ? ratio >= bound : ratio <= bound)

function figures(run) {
  return {
    framesPerS: run.frames / run.seconds,
    mbPerS: run.bytes / 1e6 / run.seconds,
    p50Us: run.p50Us,
    p99Us: run.p99Us,
    gcPauseMs: run.server.gcPauseMs,
    gcCount: run.server.gcCount,
    peakRssMiB: run.server.peakRssMiB,
    peakExternalMiB: run.server.peakExternalMiB,
    cpuUsPerFrame: (run.server.cpuMs * 1000) / run.server.frames,
  }
}

/** A scenario's requests per connection, measured and warm-up, from the 64-connection, today's-mix figures. */
function scenarioConfig(sc, cfg) {
  const scale = (CONNECTIONS / sc.connections) * MIXES[sc.mix].frameShare
  return {
    mix: sc.mix,
    connections: sc.connections,
    frames: Math.max(MIN_FRAMES, Math.round(cfg.frames * scale)),
    warmFrames: Math.max(MIN_FRAMES, Math.round(cfg.warmFrames * scale)),
    deadlineS: cfg.deadlineS,
    memoryBackS: cfg.memoryBackS,
  }
}

/** Medians over runs of the GC counts by kind and by cause (flags). */
function gcMedians(runs) {
  const out = { byKind: {}, byFlag: {} }
  for (const part of ['byKind', 'byFlag']) {
    const names = new Set(runs.flatMap((run) => Object.keys(run.server[part === 'byKind' ? 'gcByKind' : 'gcByFlag'])))
    for (const name of names) {
      const values = runs.map((run) => {
        const v = run.server[part === 'byKind' ? 'gcByKind' : 'gcByFlag'][name]
        return part === 'byKind' ? (v?.count ?? 0) : (v ?? 0)
      })
      out[part][name] = median(values)
    }
  }
  return out
}

async function runServer(cfg, log) {
  const arena = hasArenaScopes()
  const keys = Object.keys(VARIANTS).filter((k) => k !== 'arena' || arena)
  const extmemKeys = EXTMEM_VARIANTS.filter((k) => keys.includes(k))
  const done = []
  for (const sc of SCENARIOS) {
    const runCfg = scenarioConfig(sc, cfg)
    const runs = Object.fromEntries(keys.map((k) => [k, []]))
    for (let r = 0; r < cfg.rounds; r++) {
      const k = r % keys.length
      for (const variant of [...keys.slice(k), ...keys.slice(0, k)]) {
        log(`server: ${MIXES[sc.mix].short}, ${sc.connections} connections, ${variant}, round ${r + 1}/${cfg.rounds}`)
        runs[variant].push(await runOnce(variant, runCfg))
      }
    }
    done.push({ sc, runCfg, runs })
  }
  log(`server: memory back (${cfg.memoryBackS} s after each extmem run's last frame)`)
  for (const { runs } of done)
    for (const k of extmemKeys) for (const run of runs[k]) run.memoryBack = await run.memoryBack

  const rows = []
  for (const { sc, runCfg, runs } of done) {
    const all = Object.values(runs).flat()
    const truncated = all.some((run) => run.truncated)
    if (!truncated && new Set(all.map((run) => run.digest)).size !== 1) {
      throw new Error(`the variants answered differently (checksum digests ${all.map((run) => run.digest)})`)
    }
    const samples = Object.fromEntries(keys.map((k) => [k, runs[k].map(figures)]))
    const title = `server, ${MIXES[sc.mix].short}, ${sc.connections} connections`
    const scenario = { ...sc, mixLabel: MIXES[sc.mix].label, framesPerConnection: runCfg.frames }
    for (const metric of METRICS) {
      const of = (k) => samples[k].map((f) => f[metric.key])
      const medians = Object.fromEntries(keys.map((k) => [k, median(of(k))]))
      const higherIsBetter = metric.kind === 'throughput'
      const [a, b] = NODE_VARIANTS
      const bBetter = higherIsBetter ? medians[b] > medians[a] : medians[b] < medians[a]
      const best = bBetter ? b : a
      const ratio = (k) => (medians[best] === 0 ? null : medians[k] / medians[best])
      const ratios = Object.fromEntries(extmemKeys.map((k) => [k, ratio(k)]))
      const target = metric.targets?.[sc.mix] ?? null
      const arenaTarget = arena ? (ARENA_TARGETS[sc.mix]?.[metric.key] ?? null) : null
      const r = row({
        workload: 'server',
        name: `${title}, ${metric.name}`,
        size: null,
        unit: metric.unit,
        kind: metric.kind,
        extmem: { label: VARIANTS.extmem, samples: of('extmem') },
        peer: { label: `best of Node: ${VARIANTS[best]}`, samples: of(best) },
        rounds: cfg.rounds,
        detail: {
          scenario,
          metric: metric.key,
          best,
          medians,
          ratios,
          samples: Object.fromEntries(keys.map((k) => [k, of(k)])),
          ...(arenaTarget
            ? {
                arenaTarget: `${arenaTarget[0]} ${arenaTarget[1]}x`,
                arenaMet: meets(arenaTarget, ratios.arena ?? null),
              }
            : {}),
          ...(metric.key === 'framesPerS'
            ? {
                truncated,
                framesPerRun: sc.connections * runCfg.frames,
                runs: Object.fromEntries(keys.map((k) => [k, runs[k]])),
              }
            : {}),
        },
      })
      if (!Number.isFinite(r.ratio)) r.ratio = null
      if (target) {
        r.target = `${target[0]} ${target[1]}x`
        r.targetMet = meets(target, r.ratio)
      }
      r.hideInTable = true
      rows.push(r)
    }
    const back = Object.fromEntries(
      extmemKeys.map((k) => {
        const list = runs[k].map((run) => run.memoryBack)
        return [
          k,
          {
            ratio: median(list.map((m) => m.ratio)),
            peakReservedMiB: median(list.map((m) => m.peakReservedMiB)),
            reservedAfterMiB: median(list.map((m) => m.reservedAfterMiB)),
            runs: list,
          },
        ]
      }),
    )
    const weak = Object.fromEntries(
      extmemKeys.flatMap((k) => {
        const list = runs[k].map((run) => run.server.peakWeakRefs).filter((v) => v !== undefined)
        return list.length === 0 ? [] : [[k, median(list)]]
      }),
    )
    rows.push(
      summaryRow('server', `${title}, summary`, {
        scenario,
        variants: keys,
        arenaScopes: arena,
        memoryBack: {
          waitS: cfg.memoryBackS,
          target: `${MEMORY_BACK_TARGET[0]} ${MEMORY_BACK_TARGET[1]}`,
          met: meets(MEMORY_BACK_TARGET, back.extmem.ratio),
          ...back,
        },
        gc: Object.fromEntries(keys.map((k) => [k, gcMedians(runs[k])])),
        ...(Object.keys(weak).length !== 0 ? { peakWeakRefs: weak } : {}),
      }),
    )
  }
  return rows
}

/** The workload's own tables (index.js prints them after the main table). */
function summary(rows) {
  const out = []
  const summaries = rows.filter((r) => r.workload === 'server' && r.name.endsWith(', summary'))
  if (summaries.length === 0) return null
  const rounds = rows.find((r) => r.workload === 'server' && r.rounds)?.rounds
  const first = summaries[0].detail
  out.push(
    `server: medians of ${rounds} runs per variant; ratio = the variant / the better Node variant; target: the issue's, on extmem`,
    first.arenaScopes
      ? 'arena: pool.scope({ arena: true }) per request'
      : 'arena scopes: not in this build (pool.scope({ arena: true }) gives an ordinary scope): no arena variant',
  )
  for (const s of summaries) {
    const d = s.detail
    const sc = d.scenario
    const title = `server, ${MIXES[sc.mix].short}, ${sc.connections} connections`
    const metrics = rows.filter(
      (r) => r.workload === 'server' && r.detail?.scenario && r.name.startsWith(`${title}, `) && r !== s,
    )
    const ext = d.variants.filter((k) => EXTMEM_VARIANTS.includes(k))
    out.push(
      '',
      `${title}: frames of ${sc.mixLabel}, ${sc.framesPerConnection} requests per connection (${sc.framesPerConnection * sc.connections} per run)`,
    )
    const head = ['metric', 'unit', ...d.variants, ...ext.map((k) => `${k}/best`), 'target', 'met']
    const body = metrics.map((r) => {
      const m = r.detail
      const arena = m.arenaTarget ? `; arena ${m.arenaTarget}: ${m.arenaMet ? 'met' : 'MISSED'}` : ''
      return [
        r.name.slice(title.length + 2),
        r.unit,
        ...d.variants.map((k) => num(m.medians[k])),
        ...ext.map((k) => (m.ratios[k] == null ? '-' : `${m.ratios[k].toFixed(2)}x`)),
        r.target ?? '',
        (r.target ? (r.targetMet ? 'yes' : 'no') : '') + arena,
      ]
    })
    const mb = d.memoryBack
    body.push([
      `memory back (reserved ${mb.waitS} s after the last frame / peak)`,
      'ratio',
      ...d.variants.map((k) => (mb[k] ? num(mb[k].ratio) : '-')),
      ...ext.map(() => ''),
      `${mb.target}`,
      mb.met ? 'yes' : 'no',
    ])
    out.push(grid(head, body, 2))
    const kinds = [...new Set(d.variants.flatMap((k) => Object.keys(d.gc[k].byKind)))]
    const causes = (k) =>
      Object.entries(d.gc[k].byFlag)
        .filter(([, v]) => v !== 0)
        .map(([name, v]) => `${name} ${num(v)}`)
        .join(', ') || '-'
    out.push(
      '',
      grid(
        ['GCs per run (medians)', ...kinds, 'flags (cause)', 'peak reserved -> after wait'],
        d.variants.map((k) => [
          k,
          ...kinds.map((kind) => num(d.gc[k].byKind[kind] ?? 0)),
          causes(k),
          mb[k] ? `${num(mb[k].peakReservedMiB)} -> ${num(mb[k].reservedAfterMiB)} MiB` : '',
        ]),
        1,
      ),
    )
    if (d.peakWeakRefs) {
      out.push(
        `live weak references at peak: ${Object.entries(d.peakWeakRefs)
          .map(([k, v]) => `${k} ${num(v)}`)
          .join(', ')}`,
      )
    }
  }
  if (!summaries.some((s) => s.detail.peakWeakRefs)) {
    out.push('', "live weak references: the pool's stats() have no such count (omitted)")
  }
  const waitS = first.memoryBack.waitS
  if (waitS < 15) out.push(`memory back waited ${waitS} s, not 15 s (--quick)`)
  return out.join('\n')
}

runServer.summary = summary

if (require.main === module && process.argv[2] === '--server')
  serverMain(process.argv[3], process.argv[4], Number(process.argv[5]))
if (require.main === module && process.argv[2] === '--client')
  clientMain(Number(process.argv[3]), JSON.parse(process.argv[4]))

module.exports = { runServer, runOnce, MIX, MID_MIX, MIXES, SCENARIOS, CONNECTIONS, VARIANTS }
