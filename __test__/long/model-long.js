'use strict'
// `npm run test:long`: the model-based test of ../model.spec.js at length. Runs random command
// sequences against a real Pool and the model until EXTMEM_LONG_OPS operations (default
// 1,000,000) have run, a few hundred of them with Buffers dropped for the GC, then prints how
// many operations and sequences ran and how long it took. Exits 1, with fast-check's shrunk
// counterexample and the seed to replay it, at the first failure.
//
// Run with --expose-gc (the npm script does). EXTMEM_LONG_SEED sets the first seed (default: the
// time); each batch of sequences uses the next one.

const fc = require('fast-check')
const { syncProperty, gcProperty, counters, envInt } = require('../model')

const hasGc = typeof globalThis.gc === 'function'
if (!hasGc) {
  console.error('model-long: run with node --expose-gc')
  process.exitCode = 2
}

const TARGET_OPS = envInt('EXTMEM_LONG_OPS', 1_000_000)
const GC_SEQUENCES = envInt('EXTMEM_LONG_GC_RUNS', 200)
const BATCH = 250
/** Longer sequences than the ava test's: fewer fresh pools, deeper states. */
const SYNC_MAX_COMMANDS = 200
const GC_MAX_COMMANDS = 40

const firstSeed = envInt('EXTMEM_LONG_SEED', Date.now() % 2 ** 31)

function fail(out, which, seed, maxCommands) {
  console.error(fc.defaultReportMessage(out) ?? 'failed')
  console.error(
    `\nmodel-long: the ${which} property failed after ${counters.ops} operations in ${counters.sequences} sequences.`,
  )
  console.error(`Replay it with: EXTMEM_LONG_SEED=${seed} EXTMEM_LONG_OPS=${counters.ops} npm run test:long`)
  console.error(
    `(or fc.check(${which}Property({ maxCommands: ${maxCommands} }), { seed: ${seed}, path: ${JSON.stringify(out.counterexamplePath)} }))`,
  )
  process.exitCode = 1
}

function line(started) {
  const s = (performance.now() - started) / 1000
  return `${counters.ops.toLocaleString('en')} operations in ${counters.sequences.toLocaleString('en')} sequences, ${s.toFixed(1)} s`
}

async function main() {
  const started = performance.now()
  let seed = firstSeed
  console.log(
    `model-long: ${TARGET_OPS.toLocaleString('en')} operations, first seed ${firstSeed}, node ${process.version}`,
  )

  const gcProp = gcProperty({ maxCommands: GC_MAX_COMMANDS })
  for (let done = 0; done < GC_SEQUENCES; done += 50, seed++) {
    const out = await fc.check(gcProp, { numRuns: Math.min(50, GC_SEQUENCES - done), seed, includeErrorInReport: true })
    if (out.failed) return fail(out, 'gc', seed, GC_MAX_COMMANDS)
  }
  console.log(`  with the GC: ${line(started)}`)

  const syncProp = syncProperty({ maxCommands: SYNC_MAX_COMMANDS })
  let nextReport = 100_000
  while (counters.ops < TARGET_OPS) {
    const out = fc.check(syncProp, { numRuns: BATCH, seed, includeErrorInReport: true })
    if (out.failed) return fail(out, 'sync', seed, SYNC_MAX_COMMANDS)
    seed++
    // A turn of the event loop between batches, for the finalizers of collected pools and Buffers.
    await new Promise((resolve) => setImmediate(resolve))
    if (counters.ops >= nextReport) {
      console.log(`  ${line(started)}`)
      while (nextReport <= counters.ops) nextReport += 100_000
    }
  }
  console.log(`model-long: passed: ${line(started)}`)
}

if (hasGc) {
  main().catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
}
