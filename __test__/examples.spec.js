'use strict'
// The example programs in examples/ (which the README links to) run, and print what they promise.
// The README's own code blocks are run by readme.spec.js.

const test = require('ava')
const path = require('node:path')
const { execFile } = require('node:child_process')
const { promisify } = require('node:util')

const run = (file) =>
  promisify(execFile)(process.execPath, [path.join(__dirname, '..', 'examples', file)], { timeout: 30_000 })

test('examples/http-shedding.js sheds uploads at critical and recovers', async (t) => {
  const { stdout } = await run('http-shedding.js')
  t.regex(stdout, /warning -> critical at \d+ %: shedding new uploads/)
  const [, stored, shed] = /40 uploads: (\d+) stored, (\d+) shed/.exec(stdout)
  t.true(Number(stored) > 0 && Number(shed) > 0)
  t.regex(stdout, /after processing: level normal, 0 Buffers live/)
})

test('examples/prometheus.js exposes the pool figures', async (t) => {
  const { stdout } = await run('prometheus.js')
  t.regex(stdout, /^extmem_live_buffers 10$/m)
  t.regex(stdout, /^extmem_in_use_bytes 40960$/m)
  t.regex(stdout, /^extmem_allocations_total 10$/m)
  t.regex(stdout, /^extmem_level 0$/m)
})
