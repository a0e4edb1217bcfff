'use strict'
// index.d.ts describes the lifetime helpers as the code has them: types/lifetimes.ts, which uses
// each as docs/lifetimes.md does, compiles under --strict, and its marked misuses are type errors.

const test = require('ava')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

test('the declarations of the lifetime helpers type-check their documented use', (t) => {
  const tsc = require.resolve('typescript/bin/tsc')
  const file = path.join(__dirname, 'types', 'lifetimes.ts')
  const args = [tsc, '--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext']
  args.push('--moduleResolution', 'nodenext', '--types', 'node', file)
  try {
    execFileSync(process.execPath, args, { encoding: 'utf8', stdio: 'pipe' })
    t.pass()
  } catch (err) {
    t.fail(`tsc reported:\n${err.stdout}${err.stderr}`)
  }
})
