'use strict'
// The native surface lib/ uses is the one the binding exports. The hot-path functions
// (`hot_<name>`) are registered by name at load and appear in no generated declaration, so the
// binding declares them once more, from the same table as their registration
// (`constants().functions`: name -> number of arguments read). This spec scans every file of lib/
// (whatever its layout) for what it takes from the binding, directly or through the seam that
// loads it (lib/native.js, which names each native function once), and checks that:
// - every `hot_<name>` it mentions is declared, and every call it makes of one (by its own name, or
//   by the name the seam gives it) passes exactly the declared number of arguments (a missing one
//   would reach Rust as `undefined`);
// - every other member it reads from the binding (`native.constants`, `{ NativePool }`, …), and
//   every static member of a class it takes from it (`NativePool.named`), exists; and every name
//   it takes from the seam, the seam exports.

const test = require('ava')
const fs = require('node:fs')
const path = require('node:path')
const native = require('../binding.js')

const LIB = path.join(__dirname, '..', 'lib')

/** Every .js file under `dir`, recursively, as `{ file, source }`. */
function sources(dir) {
  const out = []
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) out.push(...sources(full))
    else if (/\.[cm]?js$/.test(entry.name))
      out.push({ file: path.relative(LIB, full), source: fs.readFileSync(full, 'utf8') })
  }
  return out
}

/** `source` without comments, and without the contents of strings and templates unless `keepStrings`. */
function code(source, keepStrings = false) {
  let out = ''
  for (let i = 0; i < source.length;) {
    const c = source[i]
    if (c === '/' && source[i + 1] === '/') {
      while (i < source.length && source[i] !== '\n') i++
    } else if (c === '/' && source[i + 1] === '*') {
      const end = source.indexOf('*/', i + 2) < 0 ? source.length : source.indexOf('*/', i + 2) + 2
      out += source.slice(i, end).replace(/[^\n]/g, ' ') // lines kept, for the line numbers reported
      i = end
    } else if (c === "'" || c === '"' || c === '`') {
      let j = i + 1
      while (j < source.length && source[j] !== c) j += source[j] === '\\' ? 2 : 1
      out += keepStrings ? source.slice(i, j + 1) : c + source.slice(i + 1, j).replace(/[^\n]/g, ' ') + c
      i = j + 1
    } else {
      out += c
      i++
    }
  }
  return out
}

/** The arguments of the call whose `(` is at `open`: their count, or null if one is spread. */
function argumentCount(text, open) {
  let depth = 0
  let count = 0
  let sawToken = false
  for (let i = open + 1; i < text.length; i++) {
    const c = text[i]
    if (c === "'" || c === '"' || c === '`') {
      let j = i + 1
      while (j < text.length && text[j] !== c) j += text[j] === '\\' ? 2 : 1
      i = j
      sawToken = true
    } else if (c === '(' || c === '[' || c === '{') {
      depth++
      sawToken = true
    } else if (c === ')' || c === ']' || c === '}') {
      if (depth === 0) return sawToken ? count + 1 : count
      depth--
    } else if (c === ',' && depth === 0) {
      count++
      sawToken = false
    } else if (c === '.' && depth === 0 && text.startsWith('...', i) && !sawToken) {
      return null
    } else if (!/\s/.test(c)) {
      sawToken = true
    }
  }
  return null
}

const ID = '[A-Za-z_$][\\w$]*'
const BINDING = /require\(\s*['"]([^'"]*?binding(?:\.js)?)['"]\s*\)/
const SEAM = /require\(\s*['"](\.\/native(?:\.js)?)['"]\s*\)/

/** Names bound to the module `required` loads, and names destructured from it (local -> exported). */
function takenFrom(text, required) {
  const modules = new Set()
  const taken = new Map()
  for (const m of text.matchAll(new RegExp(`(?<![\\w$.#])(${ID})\\s*=\\s*${required.source}`, 'g'))) {
    modules.add(m[1])
  }
  const from = `(?:${required.source}|(${[...modules].join('|') || '$^'})\\b)`
  for (const m of text.matchAll(new RegExp(`(?:const|let|var)\\s*\\{([^}]*)\\}\\s*=\\s*${from}`, 'g'))) {
    for (const item of m[1].split(',')) {
      const [exported, local] = item.split(':').map((x) => x.trim())
      if (exported) taken.set(local || exported, exported)
    }
  }
  return { modules, taken }
}

/**
 * What is wrong in the way `files` use `binding`, whose hot-path functions are declared in
 * `declared` (name -> arity), directly or through the seam whose exports are `seam` (null: none):
 * a list of sentences, empty if nothing. `checked` counts the calls whose arguments were counted.
 */
function surfaceProblems(files, binding, declared, seam = null) {
  const problems = []
  let checked = 0
  // The names under which the files that load the binding (the seam) export its hot functions.
  const hotAliases = new Map()
  for (const { source } of files) {
    for (const [local, exported] of takenFrom(code(source, true), BINDING).taken) {
      if (exported.startsWith('hot_')) hotAliases.set(local, exported)
    }
  }
  for (const { file, source } of files) {
    const text = code(source, true) // for the requires
    const bare = code(source) // for names and calls
    const { modules, taken } = takenFrom(text, BINDING)
    // What this file takes from the seam: its names for hot functions are checked as those.
    const fromSeam = takenFrom(text, SEAM)
    const seamCallees = []
    for (const [local, exported] of fromSeam.taken) {
      if (hotAliases.has(exported)) seamCallees.push([local, hotAliases.get(exported)])
      else if (seam !== null && !(exported in seam)) problems.push(`${file}: the seam has no ${exported}`)
    }
    for (const mod of fromSeam.modules) {
      for (const m of bare.matchAll(new RegExp(`(?<![\\w$.#])${mod.replace(/\$/g, '\\$')}\\.(${ID})`, 'g'))) {
        if (hotAliases.has(m[1])) seamCallees.push([`${mod}.${m[1]}`, hotAliases.get(m[1])])
        else if (seam !== null && !(m[1] in seam)) problems.push(`${file}: the seam has no ${m[1]}`)
      }
    }
    // Every hot_<name> mentioned anywhere must be declared.
    for (const m of bare.matchAll(/\bhot_\w+/g)) {
      if (!(m[0] in declared)) problems.push(`${file}: ${m[0]} is not a declared native function`)
    }
    // Every member read from the binding must exist.
    for (const exported of taken.values()) {
      if (!(exported in binding)) problems.push(`${file}: the binding has no ${exported}`)
    }
    for (const mod of modules) {
      for (const m of bare.matchAll(new RegExp(`(?<![\\w$.#])${mod.replace(/\$/g, '\\$')}\\.(${ID})`, 'g'))) {
        if (!(m[1] in binding)) problems.push(`${file}: the binding has no ${m[1]}`)
      }
    }
    // Static members of the binding's classes (NativePool.named, …).
    for (const [local, exported] of taken) {
      if (typeof binding[exported] !== 'function' || exported.startsWith('hot_')) continue
      for (const m of bare.matchAll(new RegExp(`(?<![\\w$.#])${local}\\.(${ID})`, 'g'))) {
        if (!(m[1] in binding[exported])) problems.push(`${file}: ${exported} has no static member ${m[1]}`)
      }
    }
    // Members of a NativePool object, held in a private field `#native`.
    if (typeof binding.NativePool === 'function') {
      for (const m of bare.matchAll(new RegExp(`\\.#native\\.(${ID})`, 'g'))) {
        if (!(m[1] in binding.NativePool.prototype)) problems.push(`${file}: NativePool has no member ${m[1]}`)
      }
    }
    // Every call of a hot-path function passes its declared number of arguments: through a
    // destructured name, or as a member of the binding module.
    const callees = [...seamCallees]
    for (const [local, exported] of taken) if (exported.startsWith('hot_')) callees.push([local, exported])
    for (const mod of modules) for (const name of Object.keys(declared)) callees.push([`${mod}.${name}`, name])
    for (const [callee, exported] of callees) {
      const pattern = new RegExp(`(?<![\\w$.#])${callee.replace(/[.$]/g, '\\$&')}\\s*\\(`, 'g')
      for (const m of bare.matchAll(pattern)) {
        const count = argumentCount(bare, m.index + m[0].length - 1)
        if (count === null) continue
        checked++
        const line = bare.slice(0, m.index).split('\n').length
        if (count !== declared[exported] && exported in declared) {
          problems.push(
            `${file}:${line}: ${exported} called with ${count} arguments, declared with ${declared[exported]}`,
          )
        }
      }
    }
  }
  return { problems, checked }
}

const declared = native.constants().functions

test('every hot-path function the binding exports is declared with its number of arguments, and only those', (t) => {
  const exported = Object.keys(native).filter((k) => k.startsWith('hot_'))
  t.true(exported.length > 0)
  t.deepEqual(exported.slice().sort(), Object.keys(declared).sort())
  for (const name of exported) {
    t.is(typeof native[name], 'function', name)
    t.true(Number.isInteger(declared[name]) && declared[name] >= 1, name)
  }
})

test('lib/ uses only native functions and members the binding has, with the arguments they read', (t) => {
  const files = sources(LIB)
  const mentioned = new Set(files.flatMap(({ source }) => [...code(source).matchAll(/\bhot_\w+/g)].map((m) => m[0])))
  t.true(mentioned.size > 0, 'lib/ calls hot-path functions')
  const { problems, checked } = surfaceProblems(files, native, declared, require('../lib/native'))
  t.true(
    checked >= Object.keys(declared).length - 2,
    `the calls of (nearly) every hot function were counted: ${checked}`,
  )
  t.log(`${mentioned.size} hot-path functions mentioned, ${checked} calls counted`)
  t.deepEqual(problems, [])
})

test('a misspelled, missing or miscounted native name in lib/ is found', (t) => {
  const binding = {
    constants() {},
    NativePool: class {
      poolRef() {}
    },
    hot_alloc() {},
    hot_release() {},
  }
  const files = [
    {
      file: 'a.js',
      source: [
        "const native = require('../binding.js')",
        'const { NativePool, hot_alloc: nativeAlloc, hot_relase: nativeRelease } = native',
        '// native.hot_comment(1) and native.nope are comments, /* and so is',
        '/* native.hot_block(1)',
        ' */ "native.hot_string(1)"',
        'nativeAlloc(poolRef, size, zero, flags, tracked)',
        'nativeAlloc(poolRef, size, zero)',
        'nativeAlloc(...args)',
        "native.hot_release(poolRef, f(a, b), [c, d], { e, g }, 'h,i')",
        'native.constants()',
        'native.missing()',
        'NativePool.named()',
        'this.#native.poolRef() + this.#native.stats()',
      ].join('\n'),
    },
    {
      // A file that takes the hot functions from the seam (a.js here) by the names it gives them.
      file: 'b.js',
      source: [
        "const { nativeAlloc: alloc, nothingHere } = require('./native')",
        "const seam = require('./native')",
        'alloc(1, 2)',
        'seam.nativeAlloc(1, 2, 3, 4, 5) + seam.gone',
      ].join('\n'),
    },
  ]
  const seam = { nativeAlloc() {} }
  const { problems } = surfaceProblems(files, binding, { hot_alloc: 5, hot_release: 3 }, seam)
  t.deepEqual(problems, [
    'a.js: hot_relase is not a declared native function',
    'a.js: the binding has no hot_relase',
    'a.js: the binding has no missing',
    'a.js: NativePool has no static member named',
    'a.js: NativePool has no member stats',
    'a.js:7: hot_alloc called with 3 arguments, declared with 5',
    'a.js:9: hot_release called with 5 arguments, declared with 3',
    'b.js: the seam has no nothingHere',
    'b.js: the seam has no gone',
    'b.js:3: hot_alloc called with 2 arguments, declared with 5',
  ])
})

test('the binding refuses an admission it does not know rather than taking it for graded', (t) => {
  const config = { maxBytes: 1 << 20, warning: 0.7, critical: 0.85, shedding: 0.95, hysteresis: 0.02 }
  t.notThrows(() => new native.NativePool({ ...config, admission: 'cap' }))
  t.notThrows(() => new native.NativePool({ ...config, admission: 'graded' }))
  t.throws(() => new native.NativePool({ ...config, admission: 'Cap' }), { message: /admission/ })
})

test("ARCHITECTURE.md's call-protocol table names every hot-path function, and only those", (t) => {
  const doc = fs.readFileSync(path.join(__dirname, '..', 'ARCHITECTURE.md'), 'utf8')
  const section = doc.slice(doc.indexOf('## How JavaScript and Rust call each other'))
  const table = section.slice(section.indexOf('| function |'), section.indexOf('\n\n', section.indexOf('| function |')))
  const named = []
  for (const row of table.split('\n').slice(2)) {
    const first = row.split('|')[1] ?? ''
    for (const [, name] of first.matchAll(/`(\w+)`/g)) named.push(`hot_${name}`)
  }
  t.true(named.length > 0, 'the table is found')
  t.deepEqual(named.slice().sort(), Object.keys(declared).sort())
})
