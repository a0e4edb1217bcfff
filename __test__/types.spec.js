'use strict'
// index.d.ts matches the API: a TypeScript file using every export as the README does compiles
// under --strict, and misuses marked @ts-expect-error are type errors.

const test = require('ava')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

test('the TypeScript declarations type-check the documented usage', (t) => {
  const tsc = require.resolve('typescript/bin/tsc')
  const file = path.join(__dirname, 'types', 'usage.ts')
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
    file,
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
