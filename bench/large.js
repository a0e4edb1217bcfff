'use strict'
// Large cycle: allocate, fill every byte, give back — file and network bodies.
//   extmem:          pool.allocUnsafe(n) + fill + pool.release(buf)
//   peer:            Buffer.allocUnsafe(n) + fill, dropped to the GC (fresh memory, page faults)
//   reference peer:  fill of one Buffer allocated once and already faulted in: the floor that
//                    reusing memory can reach

const { Pool } = require('..')
const { KiB, MiB, keep, timeOps, alternate, row, assertClean } = require('./common')

const SIZES = [64 * KiB, 1 * MiB, 16 * MiB]

async function runLarge(cfg, log) {
  const pool = new Pool({ maxBytes: 1 << 30 })
  const rows = []
  try {
    for (const n of SIZES) {
      log(`large: ${n / KiB} KiB`)
      const ops = Math.max(cfg.minOps, Math.floor(cfg.bytes / n))
      const perTurn = Math.max(1, Math.floor((4 * MiB) / n))
      const reused = Buffer.allocUnsafe(n).fill(0)

      const extmem = (count) => {
        for (let i = 0; i < count; i++) {
          const buf = pool.allocUnsafe(n)
          buf.fill(i & 0xff)
          pool.release(buf)
        }
      }
      const fresh = (count) => {
        for (let i = 0; i < count; i++) keep(Buffer.allocUnsafe(n).fill(i & 0xff))
      }
      const refill = (count) => {
        for (let i = 0; i < count; i++) reused.fill(i & 0xff)
      }
      const us = async (body) => (await timeOps(body, ops, perTurn)) / 1000

      const samples = await alternate(
        [
          { key: 'extmem', run: () => us(extmem) },
          { key: 'fresh', run: () => us(fresh) },
          { key: 'reused', run: () => us(refill) },
        ],
        cfg.rounds,
      )
      assertClean(pool, `large ${n} B`)
      const extmemSide = { label: 'allocUnsafe+fill+release', samples: samples.extmem }
      const common = { workload: 'large', size: n, unit: 'us/op', kind: 'time', rounds: cfg.rounds, extmem: extmemSide }
      rows.push(
        row({ ...common, name: 'large cycle', peer: { label: 'Buffer.allocUnsafe+fill', samples: samples.fresh } }),
        row({
          ...common,
          name: 'large cycle (ref)',
          peer: { label: 'fill of a reused Buffer', samples: samples.reused },
        }),
      )
    }
  } finally {
    pool.close()
  }
  return rows
}

module.exports = { runLarge, SIZES }
