'use strict'
// The Rust modules depend on each other without a cycle (scripts/check-module-cycles.js, which CI
// runs too), and the check finds a cycle when there is one.

const test = require('ava')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { moduleGraph, findCycle, referencedModules } = require('../scripts/check-module-cycles')

const ROOT = path.join(__dirname, '..')

for (const dir of ['src', 'crates/extmem-core/src']) {
  test(`the modules of ${dir} form no cycle`, (t) => {
    const graph = moduleGraph(path.join(ROOT, dir))
    t.true(graph.size > 5, 'the crate has its modules')
    t.is(findCycle(graph), null)
  })
}

test('a crate path names a module, a comment or a string does not', (t) => {
  const source = [
    '//! See [`raw`](crate::raw).',
    'use crate::{call::{self, Call}, status};',
    'use crate::hint::Hint;',
    'fn f() { crate::escape::forget(); let s = "crate::events"; }',
    '/* crate::stats */',
  ].join('\n')
  t.deepEqual([...referencedModules(source)].sort(), ['call', 'escape', 'hint', 'status'])
})

test('a cycle between modules is found and named in order', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'extmem-cycles-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.writeFileSync(path.join(dir, 'lib.rs'), 'mod a; mod b; mod c;\n')
  fs.writeFileSync(path.join(dir, 'a.rs'), 'use crate::b;\n')
  fs.writeFileSync(path.join(dir, 'b.rs'), 'use crate::{c};\n')
  fs.mkdirSync(path.join(dir, 'c'))
  fs.writeFileSync(path.join(dir, 'c.rs'), 'mod inner;\n')
  fs.writeFileSync(path.join(dir, 'c', 'inner.rs'), 'use super::*;\nfn f() { crate::a::g() }\n')
  t.deepEqual(findCycle(moduleGraph(dir)), ['a', 'b', 'c', 'a'])
  fs.writeFileSync(path.join(dir, 'c', 'inner.rs'), 'use super::*;\n')
  t.is(findCycle(moduleGraph(dir)), null)
})
