'use strict'
// The package as users meet it: the README's first screen, links that resolve inside the published
// package, types that list the runtime's codes, and the error a platform with no binary gets.

const test = require('ava')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFile } = require('node:child_process')
const { promisify } = require('node:util')
const { codes, ExtmemError, RefusedError, OsError } = require('..')
const { platformArchABI } = require('../lib/platform.js')
const { publishedManifest } = require('../scripts/pack.js')

const root = path.join(__dirname, '..')
const run = promisify(execFile)
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8')
const DOCUMENTS = ['README.md', ...fs.readdirSync(path.join(root, 'docs')).map((f) => `docs/${f}`)].filter((f) =>
  f.endsWith('.md'),
)

/** The files `npm pack` would publish (no scripts run: the checkout is built already). */
let packed
function packList() {
  packed ??= (async () => {
    const npm = process.env.npm_execpath
    const [command, args] =
      npm && /\.[cm]?js$/.test(npm) ? [process.execPath, [npm]] : [process.platform === 'win32' ? 'npm.cmd' : 'npm', []]
    const { stdout } = await run(command, [...args, 'pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: root,
      maxBuffer: 16 * 1024 * 1024,
    })
    return new Set(JSON.parse(stdout)[0].files.map((f) => f.path))
  })()
  return packed
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading) {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-')
}

/** The anchors of a Markdown file's headings (a repeated one gets -1, -2, … as on GitHub). */
function anchors(markdown) {
  const seen = new Map()
  const out = new Set()
  let fenced = false
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced
    const m = !fenced && /^#{1,6}\s+(.+?)\s*$/.exec(line)
    if (!m) continue
    const base = slug(m[1])
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    out.add(n === 0 ? base : `${base}-${n}`)
  }
  return out
}

/** Relative links of a Markdown file outside code: { target, anchor, line }. */
function relativeLinks(markdown) {
  const links = []
  let fenced = false
  markdown.split('\n').forEach((line, i) => {
    if (line.startsWith('```')) fenced = !fenced
    if (fenced) return
    for (const m of line.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s]*)\)/g)) {
      const href = m[1]
      if (/^[a-z][a-z0-9+.-]*:/i.test(href)) continue // https:, mailto:
      const [target, anchor] = href.split('#')
      links.push({ target, anchor, line: i + 1 })
    }
  })
  return links
}

test('README.md opens with what extmem is, how to install it and how to develop it', (t) => {
  // Line 2 ends with two spaces, Markdown's line break, so that the two lines render as two.
  const [title, install, develop] = readme.split('\n').map((line) => line.trimEnd())
  t.is(title, '# extmem — pooled, zero-copy external memory for Node.js, released when you say')
  t.regex(
    install,
    /^Install: {2}npm install extmem {8}# prebuilt for Linux x64\/arm64 \(glibc ≥ 2\.17, musl\), .*; no Rust$/,
  )
  t.is(
    develop,
    'Develop:  npm install && npm test   # in this repository: builds from source (Rust stable, Node ≥ 20.17)',
  )
})

test('the first 40 lines of README.md have an example, when to use it and when not, and the three sharp edges', (t) => {
  const head = readme.split('\n').slice(0, 40).join('\n')
  t.regex(head, /```js\n[\s\S]*require\('extmem'\)[\s\S]*```/, 'a runnable example (readme.spec.js runs it)')
  t.regex(head, /\*\*Use it\*\*[\s\S]*\d+(–\d+)?× faster/, 'when to use it, in numbers')
  t.regex(head, /\*\*Not\*\*[\s\S]*64 B/, 'when not, in numbers')
  t.regex(head, /Release only after native code is done with the memory/, 'sharp edge 1: release after native code')
  t.regex(head, /refused under pressure[\s\S]*handle the error where you allocate/, 'sharp edge 2: refusals')
  t.regex(head, /from 70 % of `maxBytes` Buffers above\s+8 KiB, from 85 % every normal-priority/, 'sharp edge 3: what')
  t.regex(head, /\{ priority: 'essential' \}/, 'sharp edge 3: essential priority')
  t.regex(head, /admission: 'cap'/, "sharp edge 3: admission: 'cap'")
})

test('README.md stays short: at most 350 lines, the long material in docs/', (t) => {
  const lines = readme.split('\n').length
  t.true(lines <= 350, `${lines} lines`)
  for (const doc of [
    'docs/guarantees.md',
    'docs/benchmarks.md',
    'docs/design.md',
    'docs/platforms.md',
    'docs/api.md',
  ]) {
    t.true(readme.includes(`](${doc})`), `README.md links to ${doc}`)
  }
})

test('every relative link in README.md and docs/ resolves to a file in the package, and every anchor to a heading', async (t) => {
  const files = await packList()
  const problems = []
  let count = 0
  for (const doc of DOCUMENTS) {
    for (const { target, anchor, line } of relativeLinks(fs.readFileSync(path.join(root, doc), 'utf8'))) {
      count++
      const file = target === '' ? doc : path.posix.normalize(path.posix.join(path.posix.dirname(doc), target))
      if (!files.has(file)) {
        problems.push(`${doc}:${line}: ${target} (${file}) is not in the package`)
        continue
      }
      if (anchor !== undefined && file.endsWith('.md')) {
        if (!anchors(fs.readFileSync(path.join(root, file), 'utf8')).has(anchor)) {
          problems.push(`${doc}:${line}: ${file} has no heading #${anchor}`)
        }
      }
    }
  }
  t.true(count >= 20, `${count} links checked`)
  t.deepEqual(problems, [])
})

test('the package ships docs/, examples/, LICENSE, CHANGELOG.md and both type files, and no Rust sources', async (t) => {
  const files = await packList()
  for (const f of ['LICENSE', 'CHANGELOG.md', 'README.md', 'index.d.ts', 'index.d.mts', 'binding.js', 'binding.d.ts']) {
    t.true(files.has(f), f)
  }
  for (const subpath of ['prometheus', 'opentelemetry']) {
    for (const f of [`${subpath}.js`, `${subpath}.mjs`, `${subpath}.d.ts`, `${subpath}.d.mts`, `lib/${subpath}.js`]) {
      t.true(files.has(f), f)
    }
  }
  for (const doc of DOCUMENTS) t.true(files.has(doc), doc)
  for (const example of fs.readdirSync(path.join(root, 'examples'))) t.true(files.has(`examples/${example}`), example)
  const rust = [...files].filter((f) => /\.rs$|^Cargo\.|^\.cargo\/|^src\/|^crates\/|^build\.rs$/.test(f))
  t.deepEqual(rust, [], 'no Rust sources')
  t.deepEqual(
    [...files].filter((f) => f.endsWith('.node')),
    [],
    'no binary',
  )
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
  t.deepEqual(
    Object.keys(pkg.scripts).filter((s) => /^(pre|post)?install$/.test(s)),
    [],
    'no install script, even in the checkout',
  )
  t.is(pkg.scripts.prepack, undefined, 'packing builds once, through prepare')
  t.regex(pkg.scripts.prepare, /^napi build /, 'a checkout builds on npm install')
  const published = publishedManifest(pkg)
  t.is(published.scripts, undefined, 'the published package.json has no scripts, not even prepare')
  t.deepEqual({ ...published, scripts: pkg.scripts }, pkg, 'and is otherwise the checkout’s')
  const local = publishedManifest(pkg, 'extmem.linux-x64-gnu.node')
  t.is(local.optionalDependencies, undefined, 'pack:local carries its binary instead of platform packages')
  t.deepEqual(local.files, [...pkg.files, 'extmem.linux-x64-gnu.node'])
})

test('codes in index.d.ts are exactly the codes of the runtime registry', (t) => {
  const types = fs.readFileSync(path.join(root, 'index.d.ts'), 'utf8')
  const block = /export declare const codes: Readonly<\{([^}]*)\}>/.exec(types)
  t.truthy(block, 'index.d.ts declares codes')
  const declared = [...block[1].matchAll(/^\s*(\w+): '(\w+)'$/gm)]
  for (const [, key, value] of declared) t.is(key, value, `${key} is typed as itself`)
  t.deepEqual(declared.map(([, key]) => key).sort(), Object.keys(codes).sort())
})

test('the error classes are exported, from require and import alike, and declared in the types', async (t) => {
  t.true(RefusedError.prototype instanceof ExtmemError && OsError.prototype instanceof ExtmemError)
  t.true(ExtmemError.prototype instanceof Error)
  const esm = await import('extmem')
  t.is(esm.ExtmemError, ExtmemError)
  t.is(esm.RefusedError, RefusedError)
  t.is(esm.OsError, OsError)
  const types = fs.readFileSync(path.join(root, 'index.d.ts'), 'utf8')
  for (const name of ['ExtmemError', 'RefusedError', 'OsError']) {
    t.regex(types, new RegExp(`export declare class ${name} extends`), `index.d.ts declares ${name}`)
  }
})

test('where no native binary loads, require and import throw ERR_EXTMEM_NO_BINARY naming the platform and npm run pack:local', async (t) => {
  const files = await packList()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'extmem-nobinary-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const pkg = path.join(dir, 'node_modules', 'extmem')
  for (const file of files) {
    fs.mkdirSync(path.dirname(path.join(pkg, file)), { recursive: true })
    fs.copyFileSync(path.join(root, file), path.join(pkg, file))
  }
  const env = { ...process.env, NODE_PATH: '' }
  delete env.NAPI_RS_NATIVE_LIBRARY_PATH
  const report =
    'const report = (err) => console.log(JSON.stringify({ code: err.code, platform: err.platform, message: err.message, ' +
    'cause: err.cause?.message, className: err.constructor.name }))\n'
  const viaRequire = await run(
    process.execPath,
    ['-e', `${report}try { require('extmem') } catch (err) { report(err) }`],
    {
      cwd: dir,
      env,
    },
  )
  t.is(viaRequire.stderr, '')
  // Node 20 also reports a CommonJS module that throws under import() as uncaught, though the
  // import is caught (Node 22 and later do not): there only stdout is read.
  const viaImport = await run(process.execPath, ['-e', `${report}import('extmem').catch(report)`], {
    cwd: dir,
    env,
  }).catch((err) => {
    if (Number(process.versions.node.split('.')[0]) > 20) throw err
    return err
  })
  const platform = platformArchABI()
  for (const output of [viaRequire.stdout, viaImport.stdout]) {
    const err = JSON.parse(output.trim().split('\n')[0])
    t.is(err.code, 'ERR_EXTMEM_NO_BINARY')
    t.is(err.platform, platform)
    t.is(err.className, 'ExtmemError')
    t.true(err.message.includes(platform), err.message)
    t.true(err.message.includes(`@extmem/binding-${platform}`), err.message)
    t.true(err.message.includes('npm run pack:local'), err.message)
    t.regex(err.cause, /Cannot find native binding/)
  }
})
