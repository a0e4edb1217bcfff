'use strict'
// The example programs in examples/ (which the README links to) run, and print what they promise.
// The README's own code blocks are run by readme.spec.js.

const test = require('ava')
const fs = require('node:fs')
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

test('examples/prometheus.js exposes the figures of each pool, by label', async (t) => {
  const { stdout } = await run('prometheus.js')
  t.regex(stdout, /^extmem_live_buffers\{pool="default",service="example"\} 10$/m)
  t.regex(stdout, /^extmem_in_use_bytes\{pool="default",service="example"\} 40960$/m)
  t.regex(stdout, /^extmem_allocations_total\{pool="default",service="example"\} 10$/m)
  t.regex(stdout, /^extmem_level\{pool="default",service="example",level="normal"\} 1$/m)
  t.regex(stdout, /^extmem_live_buffers\{pool="uploads",service="example"\} 3$/m)
  t.regex(stdout, /^extmem_allocations_total\{pool="uploads",service="example"\} 3$/m)
  t.regex(stdout, /^# TYPE extmem_allocations_total counter$/m)
})

/** The pool's last line: every allocation released, nothing live (and no GC was asked for). */
function balanced(t, stdout, pattern) {
  const [, allocated, released, live] = pattern.exec(stdout) ?? []
  t.truthy(allocated, `the pool's line is printed:\n${stdout}`)
  t.is(released, allocated)
  t.is(live, '0')
}

test('examples/http-bodies.js reads bodies with and without content-length, answers 413 and 503, and leaves nothing from an aborted upload', async (t) => {
  const { stdout } = await run('http-bodies.js')
  t.regex(stdout, /^with content-length: 200$/m)
  t.regex(stdout, /^chunked: 200$/m)
  t.regex(stdout, /^too large \(announced, chunked\): 413 413$/m)
  const statuses = /^6 at once, 896 KiB each: (.*)$/m.exec(stdout)[1].split(' ')
  t.true(statuses.includes('200') && statuses.includes('503'), statuses.join(' '))
  t.regex(stdout, /^aborted half way: aborted$/m)
  balanced(t, stdout, /^pool: (\d+) allocations, (\d+) releases, (\d+) live$/m)
})

test('examples/frame-echo.js echoes frames intact and survives a client vanishing mid-write', async (t) => {
  const { stdout } = await run('frame-echo.js')
  t.regex(stdout, /^echoed 100 frames intact: true$/m)
  balanced(t, stdout, /^(\d+) frames allocated, (\d+) released, (\d+) live$/m)
})

test('examples/file-pipeline.js serves a file through pipeline(), in full and cut half way, every chunk released', async (t) => {
  const { stdout } = await run('file-pipeline.js')
  t.regex(stdout, /^downloads: 33554432 bytes, then half before leaving$/m)
  t.regex(stdout, /^pipelines: sent in full, cut short \(ERR_STREAM_PREMATURE_CLOSE\)$/m)
  balanced(t, stdout, /^pool: (\d+) chunks read, (\d+) released, (\d+) live$/m)
})

test('the examples of Buffer lifetimes are under 60 lines each', (t) => {
  for (const file of ['http-bodies.js', 'frame-echo.js', 'file-pipeline.js']) {
    const lines = fs
      .readFileSync(path.join(__dirname, '..', 'examples', file), 'utf8')
      .trimEnd()
      .split('\n').length
    t.true(lines < 60, `${file}: ${lines} lines`)
  }
})
