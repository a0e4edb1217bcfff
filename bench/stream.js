'use strict'
// Streaming: push a fixed volume through chunks of 64 KiB and 1 MiB, 16 chunks in flight per
// event-loop turn. Every turn allocates 16 chunks and fills them; on the next turn (setImmediate)
// they are released (extmem) or dropped to the GC (peer: Buffer.allocUnsafe), and 16 new ones come.
//
// Each side runs in a child process of its own (`node --expose-gc bench/stream.js --child …`), so
// that its peak RSS is its own (VmHWM: see peakRssMiB()); the order of the two sides
// alternates across rounds. The peer child never loads the addon.

const { fork } = require('node:child_process')
const { once } = require('node:events')
const { KiB, MiB, GiB, formatSize, row } = require('./common')

const CHUNKS = [64 * KiB, 1 * MiB]
const IN_FLIGHT = 16

/**
 * This process's peak RSS in MiB. On Linux, VmHWM of /proc/self/status: process.resourceUsage()
 * .maxRSS (getrusage) is not this process's own there, as the kernel carries the parent's peak
 * across fork + exec, so every child would report at least the parent's peak.
 */
function peakRssMiB() {
  try {
    const m = /^VmHWM:\s*(\d+)\s*kB/m.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'))
    if (m) return Number(m[1]) / KiB
  } catch {}
  return process.resourceUsage().maxRSS / KiB
}

/** Child: streams `totalBytes` through `chunkSize` chunks on `side` and reports to the parent. */
function child(side, chunkSize, totalBytes) {
  let alloc
  let drop
  let pool = null
  if (side === 'extmem') {
    const { Pool } = require('..')
    pool = new Pool({ maxBytes: 1 << 30 })
    alloc = (n) => pool.allocUnsafe(n)
    drop = (buf) => pool.release(buf)
  } else {
    alloc = (n) => Buffer.allocUnsafe(n)
    drop = () => {}
  }

  /** Streams `turns` turns of IN_FLIGHT chunks; resolves with the elapsed nanoseconds. */
  function stream(turns) {
    return new Promise((resolve) => {
      const inFlight = Array.from({ length: IN_FLIGHT }, () => null)
      let left = turns
      const t0 = process.hrtime.bigint()
      const step = () => {
        for (let i = 0; i < IN_FLIGHT; i++) {
          if (inFlight[i] !== null) drop(inFlight[i])
          inFlight[i] = null
        }
        if (left-- === 0) return resolve(Number(process.hrtime.bigint() - t0))
        for (let i = 0; i < IN_FLIGHT; i++) {
          const buf = alloc(chunkSize)
          buf.fill(left & 0xff)
          inFlight[i] = buf
        }
        setImmediate(step)
      }
      step()
    })
  }

  const turns = Math.ceil(totalBytes / (chunkSize * IN_FLIGHT))
  ;(async () => {
    await stream(Math.max(8, turns >> 4)) // warm-up: a sixteenth of the volume
    globalThis.gc()
    const ns = await stream(turns)
    const bytes = turns * chunkSize * IN_FLIGHT
    const result = {
      gibPerS: bytes / GiB / (ns / 1e9),
      peakRssMiB: peakRssMiB(),
      maxRssMiB: process.resourceUsage().maxRSS / KiB, // see peakRssMiB()
      bytes,
    }
    if (pool) {
      const s = pool.stats()
      if (s.liveBuffers !== 0 || s.gcReclaims !== 0)
        throw new Error(`stream child: pool not clean: ${JSON.stringify(s)}`)
      result.pool = {
        peakInUseMiB: s.peakInUseBytes / MiB,
        reservedMiB: s.reservedBytes / MiB,
        largeCached: s.large.cached,
      }
    }
    process.send(result, () => process.exit(0))
  })()
}

/** Parent: runs one side in a fresh child process and returns its report. */
async function runChild(side, chunkSize, totalBytes) {
  const proc = fork(__filename, ['--child', side, String(chunkSize), String(totalBytes)], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  let report = null
  proc.on('message', (msg) => {
    report = msg
  })
  const [code, signal] = await once(proc, 'exit')
  if (code !== 0 || report === null)
    throw new Error(`stream child (${side}, ${chunkSize} B) exited with ${signal ?? code}`)
  return report
}

async function runStream(cfg, log) {
  const rows = []
  for (const chunk of CHUNKS) {
    const reports = { extmem: [], peer: [] }
    for (let r = 0; r < cfg.rounds; r++) {
      log(`stream: ${chunk / KiB} KiB chunks, round ${r + 1}/${cfg.rounds}`)
      for (const side of r % 2 === 0 ? ['extmem', 'peer'] : ['peer', 'extmem']) {
        reports[side].push(await runChild(side, chunk, cfg.bytes))
      }
    }
    const common = { workload: 'stream', size: chunk, rounds: cfg.rounds }
    const pick = (side, field) => reports[side].map((rep) => rep[field])
    rows.push(
      row({
        ...common,
        name: `stream ${formatSize(cfg.bytes)}, throughput`,
        unit: 'GiB/s',
        kind: 'throughput',
        extmem: { label: 'allocUnsafe+fill, release next turn', samples: pick('extmem', 'gibPerS') },
        peer: { label: 'Buffer.allocUnsafe+fill, dropped', samples: pick('peer', 'gibPerS') },
        detail: { extmemPool: reports.extmem.map((rep) => rep.pool), bytesPerRun: reports.extmem[0].bytes },
      }),
      row({
        ...common,
        name: 'stream, peak RSS',
        unit: 'MiB',
        kind: 'memory',
        extmem: { label: 'child peak RSS (VmHWM)', samples: pick('extmem', 'peakRssMiB') },
        peer: { label: 'child peak RSS (VmHWM)', samples: pick('peer', 'peakRssMiB') },
        detail: {
          maxOfRounds: {
            extmem: Math.max(...pick('extmem', 'peakRssMiB')),
            peer: Math.max(...pick('peer', 'peakRssMiB')),
          },
          getrusageMaxRssMiB: { extmem: pick('extmem', 'maxRssMiB'), peer: pick('peer', 'maxRssMiB') },
        },
      }),
    )
  }
  return rows
}

if (require.main === module && process.argv[2] === '--child') {
  child(process.argv[3], Number(process.argv[4]), Number(process.argv[5]))
}

module.exports = { runStream, CHUNKS, IN_FLIGHT }
