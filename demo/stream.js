'use strict'
// extmem live demo (`npm start`): a streaming workload on pooled external memory.
//
// A loopback TCP echo (127.0.0.1, ephemeral port) whose own buffers all come from one extmem Pool
// (64 MiB cap) and are released explicitly:
// - the client builds length-prefixed frames of 64 B .. 256 KiB (slab classes and large mappings)
//   with pool.allocUnsafe() and releases each once its socket write callback fired, never earlier;
// - the server reassembles each frame into a pooled buffer, echoes it, releases it the same way,
//   and stops reading while its writes are backed up or the pool is at its cap;
// - the client reads straight into one pooled buffer (net `onread`) and checks each echoed frame's
//   sequence number, length and bytes in place; at most 64 frames / 12 MiB are in flight.
// Every 250 ms a live line shows throughput and the pool's figures beside V8's external-memory
// counter (above its start value), which also counts the server's read chunks: net allocates those
// itself (accepted sockets take no `onread`) and they stay counted until the GC collects them.
// After ~8 s it stops, drains, closes, releases the rest and checks that the pool is back to zero:
// exit code 0 if so and every frame verified, 1 otherwise.

const net = require('node:net')
const { setTimeout, setInterval, clearTimeout, clearInterval } = require('node:timers')
const { Pool } = require('..')

const RUN_MS = 8000 // stop sending after this
const DEADLINE_MS = 9500 // give up draining (and fail) after this
const TICK_MS = 250
const HEADER = 8 // u32 payload length, u32 sequence number (little-endian)
const MIN_PAYLOAD = 64,
  MAX_PAYLOAD = 256 * 1024
const MAX_INFLIGHT_FRAMES = 64,
  MAX_INFLIGHT_BYTES = 12 * 1024 * 1024
const READ_BUFFER = 64 * 1024
const MiB = 1024 * 1024
// Refusals to wait out: the pool is at its cap (or, where the pool grades admission, shedding load).
const REFUSED = new Set(['ERR_EXTMEM_EXHAUSTED', 'ERR_EXTMEM_THROTTLED'])

const pool = new Pool({ maxBytes: 64 * MiB })
const externalBaseline = process.memoryUsage().external

// Every pooled Buffer the demo holds, so that the end can prove nothing was forgotten.
const held = new Set()
const take = (size) => {
  const buf = pool.allocUnsafe(size)
  held.add(buf)
  return buf
} // may throw, see REFUSED
const give = (buf) => {
  held.delete(buf)
  pool.release(buf)
}

// Frame payloads are windows of one pseudo-random pattern, at an offset derived from the sequence
// number: building a frame is one copy, checking an echo is one compare, and any lost, duplicated,
// reordered or shifted byte shows up.
const PATTERN = Buffer.allocUnsafe(MAX_PAYLOAD + 4096)
for (let i = 0, x = 0x2545f491; i < PATTERN.length; i++) {
  x ^= x << 13
  x ^= x >>> 17
  x ^= x << 5
  PATTERN[i] = x & 0xff
}
const patternOffset = (seq) => Math.imul(seq, 0x9e3779b1) >>> 20 // 0 .. 4095
const payloadSize = () => Math.round(MIN_PAYLOAD * 2 ** (Math.random() * Math.log2(MAX_PAYLOAD / MIN_PAYLOAD)))

const run = {
  failure: null,
  stopping: false,
  started: 0,
  sent: 0,
  verified: 0,
  echoedBytes: 0,
  inflight: 0,
  inflightBytes: 0,
  peakInflight: 0,
  clientDrainWaits: 0,
  serverPauses: 0,
  exhaustedRetries: 0,
}
function fail(reason) {
  if (run.failure === null) run.failure = reason
  run.stopping = true
  client?.destroy()
  for (const s of serverSockets) s.destroy()
}

// ---- server: reassemble each frame into a pooled buffer, echo it, release after the write ----
const serverSockets = new Set()
const serverClosed = []
const server = net.createServer((sock) => {
  serverSockets.add(sock)
  const head = take(HEADER) // header reassembly (a slab slot)
  let headFill = 0,
    frame = null,
    frameFill = 0
  let waitingDrain = false // our writes are backed up: stop reading until 'drain'
  let stalled = false // the pool is at its cap: stop reading until a retry gets memory
  const maybeResume = () => {
    if (!waitingDrain && !stalled && !sock.destroyed) sock.resume()
  }

  function consume(chunk, pos) {
    while (pos < chunk.length) {
      if (frame === null) {
        const n = Math.min(HEADER - headFill, chunk.length - pos)
        chunk.copy(head, headFill, pos, pos + n)
        headFill += n
        pos += n
        if (headFill < HEADER) return
        try {
          frame = take(HEADER + head.readUInt32LE(0))
        } catch (err) {
          if (!REFUSED.has(err.code)) throw err
          run.exhaustedRetries++ // at the cap: stop reading, retry once writes have released memory
          stalled = true
          sock.pause()
          setTimeout(() => {
            stalled = false
            if (!sock.destroyed) {
              consume(chunk, pos)
              maybeResume()
            }
          }, 5)
          return
        }
        head.copy(frame, 0)
        frameFill = HEADER
        headFill = 0
      }
      const n = Math.min(frame.length - frameFill, chunk.length - pos)
      chunk.copy(frame, frameFill, pos, pos + n)
      frameFill += n
      pos += n
      if (frameFill === frame.length) {
        const out = frame
        frame = null
        if (!sock.write(out, () => give(out)) && !waitingDrain) {
          waitingDrain = true
          run.serverPauses++
          sock.pause()
          sock.once('drain', () => {
            waitingDrain = false
            maybeResume()
          })
        }
      }
    }
  }

  sock.on('data', (chunk) => consume(chunk, 0))
  sock.on('error', (err) => {
    if (!run.stopping) fail(`server socket: ${err.message}`)
  })
  serverClosed.push(
    new Promise((resolve) =>
      sock.once('close', () => {
        serverSockets.delete(sock)
        give(head)
        if (frame !== null) give(frame) // a frame cut off by an aborted run
        resolve()
      }),
    ),
  )
})

// ---- client: send frames with bounded in-flight, verify echoes in place in the read buffer ----
let client = null
const readBuffer = take(READ_BUFFER) // net reads into it directly: release only after 'close'
const rxHead = take(HEADER)
const expected = [] // { seq, len } of frames sent and not yet echoed, in order
let rxHeadFill = 0,
  nextSeq = 0,
  waitingDrain = false
let rx = null // { seq, len, base, done } of the frame being received

function pump() {
  while (
    !run.stopping &&
    !waitingDrain &&
    run.inflight < MAX_INFLIGHT_FRAMES &&
    run.inflightBytes < MAX_INFLIGHT_BYTES
  ) {
    const seq = nextSeq
    const len = payloadSize()
    let frame
    try {
      frame = take(HEADER + len)
    } catch (err) {
      if (!REFUSED.has(err.code)) throw err
      run.exhaustedRetries++ // echoes arriving will call pump() again; if none are due, poll
      if (run.inflight === 0) setTimeout(pump, 5)
      return
    }
    frame.writeUInt32LE(len, 0)
    frame.writeUInt32LE(seq, 4)
    PATTERN.copy(frame, HEADER, patternOffset(seq), patternOffset(seq) + len)
    expected.push({ seq, len })
    nextSeq++
    run.sent++
    run.inflight++
    run.inflightBytes += frame.length
    run.peakInflight = Math.max(run.peakInflight, run.inflight)
    const flushed = client.write(frame, (err) => {
      give(frame) // the write completed (or failed): the socket no longer touches these bytes
      if (err && !run.stopping) fail(`client write: ${err.message}`)
    })
    if (!flushed) {
      waitingDrain = true
      run.clientDrainWaits++
      client.once('drain', () => {
        waitingDrain = false
        pump()
      })
    }
  }
  if (run.stopping && run.inflight === 0 && run.failure === null && !client.writableEnded) client.end()
}

function onEcho(nread, buf) {
  let pos = 0
  while (pos < nread && run.failure === null) {
    if (rx === null) {
      const n = Math.min(HEADER - rxHeadFill, nread - pos)
      buf.copy(rxHead, rxHeadFill, pos, pos + n)
      rxHeadFill += n
      pos += n
      if (rxHeadFill < HEADER) break
      rxHeadFill = 0
      const len = rxHead.readUInt32LE(0),
        seq = rxHead.readUInt32LE(4)
      const want = expected.shift()
      if (want === undefined || want.seq !== seq || want.len !== len) {
        return fail(
          `frame header mismatch: got seq ${seq} len ${len}, expected ${want ? `seq ${want.seq} len ${want.len}` : 'nothing'}`,
        )
      }
      rx = { seq, len, base: patternOffset(seq), done: 0 }
    }
    const n = Math.min(rx.len - rx.done, nread - pos)
    const start = rx.base + rx.done
    if (buf.compare(PATTERN, start, start + n, pos, pos + n) !== 0) {
      return fail(`frame ${rx.seq}: payload bytes ${rx.done}..${rx.done + n} differ from what was sent`)
    }
    rx.done += n
    pos += n
    if (rx.done === rx.len) {
      run.verified++
      run.inflight--
      run.echoedBytes += HEADER + rx.len
      run.inflightBytes -= HEADER + rx.len
      rx = null
    }
  }
  pump()
}

// ---- live line ----
const mib = (bytes) => (bytes / MiB).toFixed(1)
let last = { t: 0, bytes: 0 }
function report() {
  const now = performance.now() - run.started
  const s = pool.stats()
  const rate = (run.echoedBytes - last.bytes) / MiB / ((now - last.t) / 1000 || 1)
  last = { t: now, bytes: run.echoedBytes }
  const line =
    `${(now / 1000).toFixed(1).padStart(4)}s ${mib(run.echoedBytes).padStart(7)} MiB ${rate.toFixed(0).padStart(4)} MiB/s ` +
    `${String(run.verified).padStart(6)} frames | pool inUse ${mib(s.inUseBytes)} reserved ${mib(s.reservedBytes)} MiB ` +
    `live ${s.liveBuffers} util ${(s.utilization * 100).toFixed(1)}% | external ${mib(s.externalBytes)} MiB ` +
    `(V8 +${mib(process.memoryUsage().external - externalBaseline)})`
  // On a terminal, overwrite the line in place (cut to its width, so that it never wraps).
  if (process.stdout.isTTY) process.stdout.write(`\r${line.slice(0, (process.stdout.columns || 200) - 1)}\x1b[K`)
  else process.stdout.write(`${line}\n`)
}

async function main() {
  server.listen(0, '127.0.0.1')
  await new Promise((resolve, reject) => server.once('listening', resolve).once('error', reject))
  const { port } = server.address()
  console.log(
    `extmem stream demo: echo over 127.0.0.1:${port}, frames ${MIN_PAYLOAD} B .. ${MAX_PAYLOAD / 1024} KiB, ` +
      `<= ${MAX_INFLIGHT_FRAMES} frames / ${MAX_INFLIGHT_BYTES / MiB} MiB in flight, pool cap ${pool.maxBytes / MiB} MiB, ${RUN_MS / 1000} s`,
  )

  run.started = performance.now()
  const ticker = setInterval(report, TICK_MS)
  const stopTimer = setTimeout(() => {
    run.stopping = true
    pump()
  }, RUN_MS)
  const deadline = setTimeout(
    () => fail(`not drained ${DEADLINE_MS / 1000} s after start (${run.inflight} frames outstanding)`),
    DEADLINE_MS,
  )

  client = net.connect({ host: '127.0.0.1', port, noDelay: true, onread: { buffer: readBuffer, callback: onEcho } })
  client.on('connect', pump)
  client.on('error', (err) => {
    if (!run.stopping) fail(`client socket: ${err.message}`)
  })
  await new Promise((resolve) => client.once('close', resolve))
  const elapsed = (performance.now() - run.started) / 1000
  await Promise.all(serverClosed)
  await new Promise((resolve) => server.close(resolve))
  clearTimeout(stopTimer)
  clearTimeout(deadline)
  clearInterval(ticker)
  report()
  if (process.stdout.isTTY) process.stdout.write('\n')

  // Everything is closed: release what was held for the whole run, then check the books.
  give(readBuffer)
  give(rxHead)
  const leaked = held.size
  for (const buf of held) give(buf)
  const s = pool.stats(),
    problems = []
  if (run.failure !== null) problems.push(run.failure)
  if (run.verified !== run.sent)
    problems.push(`${run.sent - run.verified} of ${run.sent} frames sent were not echoed and verified`)
  if (leaked > 0) problems.push(`${leaked} pooled buffers were still held after all sockets closed`)
  if (s.inUseBytes !== 0 || s.liveBuffers !== 0)
    problems.push(`pool not back to zero: inUseBytes ${s.inUseBytes}, liveBuffers ${s.liveBuffers}`)
  if (s.releases !== s.allocations)
    problems.push(`${s.allocations - s.releases} allocations not released explicitly (gcReclaims ${s.gcReclaims})`)

  const trimmed = pool.trim() // nothing is in use: every reserved byte should now go back to the OS
  const reservedAfterTrim = pool.stats().reservedBytes
  console.log('summary')
  console.log(
    `  echoed      ${mib(run.echoedBytes)} MiB (${run.echoedBytes} bytes) in ${elapsed.toFixed(2)} s: ${(run.echoedBytes / MiB / elapsed).toFixed(1)} MiB/s`,
  )
  console.log(`  frames      ${run.verified} of ${run.sent} verified (header + byte pattern)`)
  console.log(
    `  pool        peak in-use ${mib(s.peakInUseBytes)} MiB of ${mib(s.maxBytes)} MiB cap; allocations ${s.allocations}, releases ${s.releases}, gcReclaims ${s.gcReclaims}, failedAllocations ${s.failedAllocations}`,
  )
  console.log(
    `  pressure    peak ${run.peakInflight} frames in flight; client waited for 'drain' ${run.clientDrainWaits}x, server paused ${run.serverPauses}x, retries at the cap ${run.exhaustedRetries}`,
  )
  console.log(
    `  at the end  inUseBytes ${s.inUseBytes}, liveBuffers ${s.liveBuffers}, externalBytes ${s.externalBytes}; ` +
      `V8 external +${mib(process.memoryUsage().external - externalBaseline)} MiB (mostly net's read chunks, not yet collected)`,
  )
  console.log(
    `  trim()      gave back ${mib(trimmed)} of ${mib(s.reservedBytes)} MiB reserved; reservedBytes now ${reservedAfterTrim}`,
  )
  if (reservedAfterTrim !== 0)
    problems.push(`reservedBytes is ${reservedAfterTrim}, not 0, after trim() with nothing in use`)
  pool.close()
  if (problems.length === 0)
    return console.log('OK: every frame verified; inUseBytes, liveBuffers and (after trim) reservedBytes are 0')
  console.log(`FAILED: ${problems.join('; ')}`)
  process.exitCode = 1
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
