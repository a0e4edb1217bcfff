'use strict'
// The types match the API: a CommonJS TypeScript file using every export as the docs do
// (index.d.ts) and an ES module importing the package by name (index.d.mts, through the exports
// map) compile under --strict, and misuses marked @ts-expect-error are type errors; so do the
// subpaths extmem/prometheus and extmem/opentelemetry, from CommonJS and from an ES module.

const test = require('ava')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

test('the TypeScript declarations type-check the documented usage, from require and from import', (t) => {
  const tsc = require.resolve('typescript/bin/tsc')
  const files = ['usage.ts', 'usage.mts', 'observability.ts', 'observability.mts'].map((f) =>
    path.join(__dirname, 'types', f),
  )
  const args = [
    tsc,
    '--noEmit',
    '--strict',
    '--target',
    'es2022',
    '--module',
    'nodenext',
    '--moduleResolution',
    'nodenext',
    '--types',
    'node',
    ...files,
  ]
  try {
    execFileSync(process.execPath, args, { encoding: 'utf8', stdio: 'pipe' })
    t.pass()
  } catch (err) {
    t.fail(`tsc reported:\n${err.stdout}${err.stderr}`)
  }
})

test('the shipped binding.d.ts (generated from the Rust binding) type-checks on its own', (t) => {
  const tsc = require.resolve('typescript/bin/tsc')
  const file = path.join(__dirname, '..', 'binding.d.ts')
  const args = [tsc, '--noEmit', '--strict', '--target', 'es2022', '--types', 'node', file]
  try {
    execFileSync(process.execPath, args, { encoding: 'utf8', stdio: 'pipe' })
    t.pass()
  } catch (err) {
    t.fail(`tsc reported:\n${err.stdout}${err.stderr}`)
  }
})
