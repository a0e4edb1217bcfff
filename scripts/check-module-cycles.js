#!/usr/bin/env node
'use strict'
// Fails if the modules of a Rust crate depend on each other in a cycle, and prints the cycle.
// A module depends on another when one of its files names it by a `crate::` path (`use
// crate::raw;`, `use crate::{raw, status};`, `crate::raw::detach(…)`); comments do not count,
// so a doc link is no dependency. A module is a file of the crate's src/ (`raw.rs`), or a
// top-level folder with all its files (`pool.rs` with `pool/*.rs`, or `os/mod.rs` with `os/*.rs`):
// `super::` between a module's own files is inside it. The crate root (`lib.rs`) is not a module.
//
// Usage: node scripts/check-module-cycles.js [crate src dir …]   (default: src crates/extmem-core/src)
// No dependencies: run with Node alone.

const fs = require('node:fs')
const path = require('node:path')

const DEFAULT_DIRS = ['src', 'crates/extmem-core/src']

/** Every .rs file under `dir`, as paths relative to it, sorted. */
function rustFiles(dir, rel = '') {
  const out = []
  for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const name = path.posix.join(rel, entry.name)
    if (entry.isDirectory()) out.push(...rustFiles(dir, name))
    else if (entry.name.endsWith('.rs')) out.push(name)
  }
  return out.sort()
}

/** The top-level module a file of the crate belongs to; null for the crate root. */
function moduleOf(file) {
  const first = file.split('/')[0]
  if (first === 'lib.rs' || first === 'main.rs') return null
  return first.replace(/\.rs$/, '')
}

/** `source` without comments, strings and char literals (so that only code names modules). */
function stripComments(source) {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/\/\/.*$/gm, '')
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
}

/** The modules a file's code names through `crate::` paths. */
function referencedModules(source) {
  const code = stripComments(source)
  const names = new Set()
  for (const m of code.matchAll(/\bcrate::([A-Za-z_][A-Za-z0-9_]*)/g)) names.add(m[1])
  // `use crate::{a, b::{c, d}, e as f};`: the first segment of each top-level item of the group.
  for (const m of code.matchAll(/\bcrate::\{/g)) {
    const items = ['']
    for (let i = m.index + m[0].length, depth = 0; i < code.length; i++) {
      const c = code[i]
      if (c === '}' && depth === 0) break
      if (c === ',' && depth === 0) items.push('')
      else items[items.length - 1] += c
      if (c === '{') depth++
      if (c === '}') depth--
    }
    for (const item of items) {
      const first = item.trim().split(/::|\s/)[0]
      if (first) names.add(first)
    }
  }
  return names
}

/** The module graph of the crate whose sources are in `dir`: Map module -> Set of modules. */
function moduleGraph(dir) {
  const graph = new Map()
  const files = rustFiles(dir)
  for (const file of files) {
    const mod = moduleOf(file)
    if (mod !== null && !graph.has(mod)) graph.set(mod, new Set())
  }
  for (const file of files) {
    const mod = moduleOf(file)
    if (mod === null) continue
    for (const used of referencedModules(fs.readFileSync(path.join(dir, file), 'utf8'))) {
      if (used !== mod && graph.has(used)) graph.get(mod).add(used)
    }
  }
  return graph
}

/** A cycle of `graph` as a list of modules (the first repeated at the end), or null if none. */
function findCycle(graph) {
  const state = new Map() // module -> 1 on the current path, 2 done
  const stack = []
  const visit = (mod) => {
    state.set(mod, 1)
    stack.push(mod)
    for (const next of [...graph.get(mod)].sort()) {
      if (state.get(next) === 1) return [...stack.slice(stack.indexOf(next)), next]
      if (!state.has(next)) {
        const found = visit(next)
        if (found) return found
      }
    }
    stack.pop()
    state.set(mod, 2)
    return null
  }
  for (const mod of [...graph.keys()].sort()) {
    if (!state.has(mod)) {
      const found = visit(mod)
      if (found) return found
    }
  }
  return null
}

function main(dirs) {
  let failed = false
  for (const dir of dirs) {
    const graph = moduleGraph(dir)
    const cycle = findCycle(graph)
    if (cycle) {
      failed = true
      console.error(`${path.relative(process.cwd(), dir) || '.'}: the modules form a cycle: ${cycle.join(' -> ')}`)
    } else {
      console.log(`${path.relative(process.cwd(), dir) || '.'}: ${graph.size} modules, no cycle`)
    }
  }
  return failed ? 1 : 0
}

if (require.main === module) {
  const root = path.join(__dirname, '..')
  const args = process.argv.slice(2)
  process.exitCode = main(args.length > 0 ? args : DEFAULT_DIRS.map((d) => path.join(root, d)))
}

module.exports = { moduleGraph, findCycle, referencedModules }
