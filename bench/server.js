'use strict'
// Server: a real request/response workload over loopback TCP, three allocators side by side.
//
// The protocol is length-prefixed binary frames. Every frame starts with a 16-byte header of four
// little-endian u32: the frame's length (header included), then for a request the length of the
// response it wants, its sequence number and 0, for a response the sequence number, the request's
// checksum and the request's length. Both lengths are drawn from a fixed mix of 256 B to 64 KiB,
// mostly small (MIX below), by a seeded PRNG per connection, so every variant sees the same frames.
//
// The server, per request: allocates a Buffer of the frame's length with the variant's allocator
// and copies the frame into it from the socket's chunks (a frame may span chunks, a chunk may hold
// several frames); decodes it (the header fields, and a checksum over every 16th byte of the
// body); lets the request Buffer go; allocates the response with the same allocator, writes its
// header and fills its body; writes it to the socket; and lets it go. The variants:
//   extmem           pool.allocUnsafe; pool.release(request) after decoding, pool.release(response)
//                    in the write callback
//   allocUnsafe      Buffer.allocUnsafe (Node's 8 KiB pool under 4 KiB), both dropped to the GC
//   allocUnsafeSlow  Buffer.allocUnsafeSlow, both dropped to the GC
// Rows compare extmem with the better of the two Node variants, metric by metric.
//
// Processes. Each run is two fresh child processes: the server (one variant; the Node variants
// never load the addon) and the clients (64 connections in one process, the same code for every
// variant). On 2 cores that gives each one a core, as far as the machine's other work allows;
// clients inside the server process (a worker thread) would add their memory to the server's RSS
// and compete with it inside one process. The server's figures are its own: peak RSS (VmHWM,
// reset when the measured phase starts), peak process.memoryUsage().external (sampled every 20 ms),
// GC pause (the durations of perf_hooks 'gc' entries, which V8 spends on the main thread) and CPU
// time, all over the measured phase only. The clients measure round trips (closed loop: one
// request in flight per connection), so latency includes both processes and the kernel.
//
// A run: the clients connect and send `warmFrames` requests per connection (warm-up, unmeasured),
// the server starts measuring, the clients send `frames` requests per connection and report, then
// close; the server reports after its last connection closed, checks (extmem) that its pool lent
// nothing it did not get back, and exits. A run stops sending at `deadlineS` (the row is marked
// truncated) and the parent kills what is still running `deadlineS` + 30 s after the start.
// Variant order rotates over rounds; rows give medians over rounds.

const { fork } = require('node:child_process')
const { once } = require('node:events')
const fs = require('node:fs')
const { MiB, median, row } = require('./common')

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
const MAX_FRAME = 65536

const VARIANTS = {
  extmem: 'pool.allocUnsafe+release',
  allocUnsafe: 'Buffer.allocUnsafe',
  allocUnsafeSlow: 'Buffer.allocUnsafeSlow',
}
const NODE_VARIANTS = ['allocUnsafe', 'allocUnsafeSlow']
/** Column heads of the side-by-side table. */
const VARIANTS_SHORT = { extmem: 'extmem', allocUnsafe: 'allocUnsafe', allocUnsafeSlow: 'allocUnsafeSlow' }

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

/** A frame length from MIX. */
function drawSize(next) {
  let pick = next() % 100
  for (const [weight, lo, hi] of MIX) {
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

function serverMain(variant) {
  reportErrors(`server (${variant})`)
  if (!(variant in VARIANTS)) throw new Error(`unknown variant ${variant}`)
  const net = require('node:net')
  const { PerformanceObserver, performance } = require('node:perf_hooks')

  let pool = null
  let alloc
  let drop
  let send
  if (variant === 'extmem') {
    const { Pool } = require('..')
    pool = new Pool({ maxBytes: 1 << 30 })
    alloc = (n) => pool.allocUnsafe(n)
    drop = (buf) => pool.release(buf)
    send = (socket, res) => socket.write(res, () => pool.release(res))
  } else {
    alloc = variant === 'allocUnsafe' ? (n) => Buffer.allocUnsafe(n) : (n) => Buffer.allocUnsafeSlow(n)
    drop = () => {}
    send = (socket, res) => socket.write(res)
  }

  const m = { measuring: false, frames: 0, bytesIn: 0, bytesOut: 0, errors: 0 }
  const gc = { since: Infinity, until: Infinity, pauseMs: 0, count: 0 }
  const account = (entries) => {
    for (const e of entries) {
      if (e.startTime >= gc.since && e.startTime <= gc.until) {
        gc.pauseMs += e.duration
        gc.count++
      }
    }
  }
  const observer = new PerformanceObserver((list) => account(list.getEntries()))
  observer.observe({ entryTypes: ['gc'] })

  const peak = { rss: 0, external: 0, arrayBuffers: 0 }
  const sample = () => {
    const u = process.memoryUsage()
    if (u.rss > peak.rss) peak.rss = u.rss
    if (u.external > peak.external) peak.external = u.external
    if (u.arrayBuffers > peak.arrayBuffers) peak.arrayBuffers = u.arrayBuffers
  }
  let sampler = null
  let cpu0 = null
  let hwmReset = false

  function respond(socket, req) {
    const respLen = req.readUInt32LE(4)
    const seq = req.readUInt32LE(8)
    const reqLen = req.length
    if (respLen < HEADER || respLen > MAX_FRAME) throw new Error(`bad response length ${respLen}`)
    const sum = checksum(req)
    drop(req)
    const res = alloc(respLen)
    res.writeUInt32LE(respLen, 0)
    res.writeUInt32LE(seq, 4)
    res.writeUInt32LE(sum, 8)
    res.writeUInt32LE(reqLen, 12)
    res.fill(seq & 0xff, HEADER)
    send(socket, res)
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
          if (len < HEADER || len > MAX_FRAME) throw new Error(`bad frame length ${len}`)
          frame = alloc(len)
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
          respond(socket, req)
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
      peak.rss = peak.external = peak.arrayBuffers = 0
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
        peakRssMiB: hwmReset && hwm !== null ? hwm : peak.rss / MiB,
        peakRssSource: hwmReset && hwm !== null ? 'VmHWM since the measured phase began' : 'sampled every 20 ms',
        peakExternalMiB: peak.external / MiB,
        peakArrayBuffersMiB: peak.arrayBuffers / MiB,
      }
      // Ends once the clients have closed their connections: every write callback has run then.
      server.close(() => {
        if (pool !== null) {
          const s = pool.stats()
          report.pool = {
            liveBuffers: s.liveBuffers,
            gcReclaims: s.gcReclaims,
            allocations: s.allocations,
            peakInUseMiB: s.peakInUseBytes / MiB,
            reservedMiB: s.reservedBytes / MiB,
          }
          pool.close()
          if (s.liveBuffers !== 0 || s.gcReclaims !== 0) {
            throw new Error(`the pool should be clean, has liveBuffers=${s.liveBuffers} gcReclaims=${s.gcReclaims}`)
          }
        }
        process.send(report, () => process.disconnect())
      })
    }
  })
}

// ---------------------------------------------------------------------------------------------
// Client child

function clientMain(port, cfg) {
  reportErrors('clients')
  const net = require('node:net')
  const total = CONNECTIONS * cfg.frames
  const latencyUs = new Float64Array(total)
  const run = { measuring: false, recorded: 0, bytes: 0, digest: 0, active: 0, stopAt: Infinity, truncated: false }
  let onIdle = null // called when no connection has a request left in its phase

  /** One connection: its own PRNG, its own request bytes, one request in flight. */
  function connection(i) {
    const next = prng(SEED + i)
    const template = Buffer.alloc(MAX_FRAME)
    for (let at = 0; at < MAX_FRAME; at += 4) template.writeUInt32LE(next(), at)
    const socket = net.connect({ port, host: '127.0.0.1' })
    socket.setNoDelay(true)
    const c = { socket, left: 0, seq: 0, respLen: 0, t0: 0n }
    const header = Buffer.alloc(HEADER)
    let headerHave = 0
    let skip = 0 // body bytes of the current response still to come

    c.send = () => {
      const reqLen = drawSize(next)
      c.respLen = drawSize(next)
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
    const conns = Array.from({ length: CONNECTIONS }, (_, i) => connection(i))
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

/** One run of `variant`: a fresh server and fresh clients; returns what both measured. */
async function runOnce(variant, cfg) {
  const spawn = (args) =>
    fork(__filename, args, { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const failure = failureOfRun()
  const server = spawn(['--server', variant])
  const children = [server]
  const kill = () => {
    for (const p of children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM')
  }
  const limit = setTimeout(kill, (cfg.deadlineS + 30) * 1000)
  try {
    const fromServer = inbox(server, `server (${variant})`, failure)
    const { port } = await fromServer('listening')
    const clients = spawn(['--client', String(port), JSON.stringify(cfg)])
    children.push(clients)
    const fromClients = inbox(clients, 'clients', failure)
    await fromClients('warm')
    server.send({ cmd: 'measure' })
    await fromServer('measuring')
    clients.send({ cmd: 'go' })
    const result = await fromClients('result')
    server.send({ cmd: 'report' })
    const report = await fromServer('report')
    await Promise.all([exited(server, `server (${variant})`), exited(clients, 'clients')])
    return { ...result, server: report }
  } catch (err) {
    kill()
    throw err
  } finally {
    clearTimeout(limit)
  }
}

/** The figures of one run that the rows compare: higher is better for the first two. */
const METRICS = [
  { key: 'framesPerS', name: 'frames/s', unit: 'frames/s', kind: 'throughput', target: '>= 1.0x', pass: (r) => r >= 1 },
  { key: 'mbPerS', name: 'MB/s (both ways)', unit: 'MB/s', kind: 'throughput' },
  { key: 'p50Us', name: 'p50 round trip', unit: 'us', kind: 'time' },
  { key: 'p99Us', name: 'p99 round trip', unit: 'us', kind: 'time', target: '<= 1.0x', pass: (r) => r <= 1 },
  { key: 'gcPauseMs', name: 'GC pause total', unit: 'ms', kind: 'time', target: '<= 0.5x', pass: (r) => r <= 0.5 },
  { key: 'peakRssMiB', name: 'peak RSS', unit: 'MiB', kind: 'memory', target: '<= 0.7x', pass: (r) => r <= 0.7 },
  { key: 'peakExternalMiB', name: 'peak external', unit: 'MiB', kind: 'memory' },
  { key: 'cpuUsPerFrame', name: 'server CPU per frame', unit: 'us', kind: 'time' },
]

function figures(run) {
  return {
    framesPerS: run.frames / run.seconds,
    mbPerS: run.bytes / 1e6 / run.seconds,
    p50Us: run.p50Us,
    p99Us: run.p99Us,
    gcPauseMs: run.server.gcPauseMs,
    peakRssMiB: run.server.peakRssMiB,
    peakExternalMiB: run.server.peakExternalMiB,
    cpuUsPerFrame: (run.server.cpuMs * 1000) / run.server.frames,
  }
}

async function runServer(cfg, log) {
  const keys = Object.keys(VARIANTS)
  const runs = Object.fromEntries(keys.map((k) => [k, []]))
  for (let r = 0; r < cfg.rounds; r++) {
    const k = r % keys.length
    for (const variant of [...keys.slice(k), ...keys.slice(0, k)]) {
      log(`server: ${variant}, round ${r + 1}/${cfg.rounds}`)
      runs[variant].push(await runOnce(variant, cfg))
    }
  }
  const all = Object.values(runs).flat()
  const truncated = all.some((run) => run.truncated)
  if (!truncated && new Set(all.map((run) => run.digest)).size !== 1) {
    throw new Error(`the variants answered differently (checksum digests ${all.map((run) => run.digest)})`)
  }
  const samples = Object.fromEntries(keys.map((k) => [k, runs[k].map(figures)]))
  const title = `server, ${CONNECTIONS} connections`
  return METRICS.map((metric) => {
    const of = (k) => samples[k].map((f) => f[metric.key])
    const medians = Object.fromEntries(keys.map((k) => [k, median(of(k))]))
    const higherIsBetter = metric.kind === 'throughput'
    const [a, b] = NODE_VARIANTS
    const bBetter = higherIsBetter ? medians[b] > medians[a] : medians[b] < medians[a]
    const best = bBetter ? b : a
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
        sideBySide: { columns: VARIANTS_SHORT, medians, target: metric.target ?? null },
        samples: Object.fromEntries(keys.map((k) => [k, of(k)])),
        ...(metric.key === 'framesPerS'
          ? {
              truncated,
              framesPerRun: CONNECTIONS * cfg.frames,
              runs: Object.fromEntries(keys.map((k) => [k, runs[k]])),
            }
          : {}),
      },
    })
    if (!Number.isFinite(r.ratio)) r.ratio = null
    if (metric.target) {
      r.target = metric.target
      r.targetMet = r.ratio != null && metric.pass(r.ratio)
    }
    return r
  })
}

if (require.main === module && process.argv[2] === '--server') serverMain(process.argv[3])
if (require.main === module && process.argv[2] === '--client')
  clientMain(Number(process.argv[3]), JSON.parse(process.argv[4]))

module.exports = { runServer, runOnce, MIX, CONNECTIONS, VARIANTS }
