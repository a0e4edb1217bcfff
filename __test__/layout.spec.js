'use strict'
// The seams of the JavaScript layer (see lib/native.js): one module loads the native side and
// names its functions; every other file goes through it, so that a second backend plugs in there.

const test = require('ava')
const fs = require('node:fs')
const path = require('node:path')

const lib = path.join(__dirname, '..', 'lib')
const FILES = fs.readdirSync(lib).filter((f) => f.endsWith('.js'))

test('lib/native.js is the only lib file that loads the binding or names a native function', (t) => {
  t.true(FILES.includes('native.js'))
  for (const file of FILES) {
    const src = fs.readFileSync(path.join(lib, file), 'utf8')
    const loads = /require\(\s*['"`][^'"`]*(binding(\.js)?|\.node)['"`]\s*\)/.test(src)
    const names = /\bhot_\w+/.test(src)
    if (file === 'native.js') {
      t.true(loads, 'native.js loads the binding')
    } else {
      t.false(loads, `${file} requires the binding`)
      t.false(names, `${file} names a hot_* function of the binding`)
    }
  }
})
