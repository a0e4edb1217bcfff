'use strict'
// The debug modes' cost: the small cycle (allocUnsafe + writes + release) on pools created with
// `leakDetection: 'sampled'` and `'paranoid'`, and with `quarantine: true` (released memory
// poisoned and held back, with its stacks), each against the same cycle on `leakDetection: 'off'`.
// Only if the library accepts the option; "not available" rows otherwise.

const { Pool } = require('..')
const { timeOps, alternate, row, unavailable, assertClean } = require('./common')
const { extmemCycle } = require('./small')

const SIZES = [64, 4096]
/** Each mode's options, and its rows' name. */
const OPTIONS = {
  off: { leakDetection: 'off' },
  sampled: { leakDetection: 'sampled' },
  paranoid: { leakDetection: 'paranoid' },
  quarantine: { leakDetection: 'off', quarantine: true },
}
const MODES = ['sampled', 'paranoid', 'quarantine']
const nameOf = (mode) => (mode === 'quarantine' ? 'quarantine: true' : `leakDetection '${mode}'`)

/** A pool of `mode`, or null if the library refuses the option or the value. */
function tryPool(mode) {
  try {
    return new Pool({ maxBytes: 1 << 30, ...OPTIONS[mode] })
  } catch {
    return null
  }
}

async function runLeak(cfg, log) {
  const common = { workload: 'leak', unit: 'ns/op', peerLabel: "leakDetection 'off'" }
  const off = tryPool('off')
  if (off === null) {
    return MODES.flatMap((mode) =>
      SIZES.map((size) =>
        unavailable({
          ...common,
          name: nameOf(mode),
          size,
          extmemLabel: nameOf(mode),
          why: "new Pool({ leakDetection: 'off' }) is refused",
        }),
      ),
    )
  }
  const pools = { off, ...Object.fromEntries(MODES.map((mode) => [mode, tryPool(mode)])) }
  const rows = []
  try {
    for (const size of SIZES) {
      log(`leak: ${size} B`)
      const modes = Object.keys(pools).filter((mode) => pools[mode] !== null)
      const variants = modes.map((mode) => {
        const pool = pools[mode]
        const body = extmemCycle(
          (n) => pool.allocUnsafe(n),
          (buf) => pool.release(buf),
          size,
        )
        return { key: mode, run: () => timeOps(body, cfg.ops, cfg.perTurn) }
      })
      const samples = await alternate(variants, cfg.rounds)
      for (const mode of modes) assertClean(pools[mode], `leak ${mode} ${size} B`)
      for (const mode of MODES) {
        const name = nameOf(mode)
        rows.push(
          pools[mode] === null
            ? unavailable({ ...common, name, size, extmemLabel: name, why: `${name} is refused` })
            : row({
                ...common,
                name,
                size,
                kind: 'time',
                extmem: { label: `allocUnsafe+release, ${name}`, samples: samples[mode] },
                peer: { label: common.peerLabel, samples: samples.off },
                rounds: cfg.rounds,
              }),
        )
      }
    }
  } finally {
    for (const pool of Object.values(pools)) pool?.close()
  }
  return rows
}

module.exports = { runLeak, SIZES, MODES }
