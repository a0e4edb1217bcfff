'use strict'
// Every ```js and ```ts block of README.md and docs/*.md runs as printed: each in a process of its
// own, as the main module of a file of its own, with `require('extmem')` (and `import`) resolving to
// this package. A ```ts block is compiled as TypeScript compiles it for Node 20 (`using` down-levelled)
// and then run. A block must exit with code 0 and print nothing on stderr. Nothing is defined for
// the snippets: each makes what it uses. The only help is for servers that listen on a fixed port
// and would run for ever (fixtures/readme-harness.js): they listen on a free loopback port instead,
// are sent a request or two and are closed. A block preceded by `<!-- not run: reason -->` is
// skipped, with that reason (none is, today).

const test = require('ava')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const ts = require('typescript')
const { runNode } = require('./helpers')

const root = path.join(__dirname, '..')
const HARNESS = path.join(__dirname, 'fixtures', 'readme-harness.js')
const TIMEOUT_MS = 30_000
const LANGUAGES = { js: 'js', javascript: 'js', ts: 'ts', typescript: 'ts' }

/** The ```js and ```ts blocks of `markdown`: { heading, index (within the heading, from 1), line, lang, code, skip }. */
function codeBlocks(markdown) {
  const lines = markdown.split('\n')
  const blocks = []
  const perHeading = new Map()
  let heading = '(before any heading)'
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```\s*(\S*)/.exec(lines[i])
    if (fence) {
      let end = i + 1
      while (end < lines.length && !/^```\s*$/.test(lines[end])) end++
      const lang = LANGUAGES[fence[1]]
      if (lang !== undefined) {
        let before = i - 1
        while (before >= 0 && lines[before].trim() === '') before--
        const marker = /^<!--\s*not run:\s*(.*?)\s*-->$/.exec(lines[before]?.trim() ?? '')
        const index = (perHeading.get(heading) ?? 0) + 1
        perHeading.set(heading, index)
        const code = `${lines.slice(i + 1, end).join('\n')}\n`
        blocks.push({ heading, index, line: i + 1, lang, code, skip: marker?.[1] })
      }
      i = end
      continue
    }
    const title = /^#{1,6}\s+(.+?)\s*$/.exec(lines[i])
    if (title) heading = title[1]
  }
  return blocks
}

const DOCUMENTS = ['README.md', ...fs.readdirSync(path.join(root, 'docs')).map((f) => `docs/${f}`)].filter((f) =>
  f.endsWith('.md'),
)
const BLOCKS = DOCUMENTS.flatMap((file) =>
  codeBlocks(fs.readFileSync(path.join(root, file), 'utf8')).map((block) => ({ file, ...block })),
)

// A directory for the snippets, with node_modules/extmem -> the package root.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'extmem-readme-'))
fs.mkdirSync(path.join(dir, 'node_modules'))
fs.symlinkSync(root, path.join(dir, 'node_modules', 'extmem'), 'dir')
fs.writeFileSync(path.join(dir, 'package.json'), '{ "type": "commonjs" }\n')
// prom-client and the like come from the package's own node_modules.
const NODE_PATH = [path.join(dir, 'node_modules'), path.join(root, 'node_modules')].join(path.delimiter)

test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }))

/** What TypeScript makes of a ```ts block for Node 20 and later, as CommonJS. */
function compile(code, fileName) {
  const { outputText, diagnostics } = ts.transpileModule(code, {
    fileName,
    reportDiagnostics: true,
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, esModuleInterop: true },
  })
  if (diagnostics.length > 0) throw new Error(ts.formatDiagnostics(diagnostics, ts.createCompilerHost({})))
  return outputText
}

test('README.md and docs/ have ```js blocks, and the runner recognizes a skip marker and ```ts', (t) => {
  t.true(
    BLOCKS.filter((b) => b.file === 'README.md').length >= 3,
    `README.md: ${BLOCKS.filter((b) => b.file === 'README.md').length}`,
  )
  t.true(BLOCKS.length >= 20, `found ${BLOCKS.length}`)
  const [plain, skipped, typed] = codeBlocks(
    '# A\n\n```js\nx()\n```\n\n## B\n<!-- not run: needs a database -->\n\n```js\ny()\n```\n```sh\nz\n```\n```ts\nw()\n```\n',
  )
  t.like(plain, { heading: 'A', index: 1, line: 3, lang: 'js', code: 'x()\n', skip: undefined })
  t.like(skipped, { heading: 'B', index: 1, code: 'y()\n', skip: 'needs a database' })
  t.like(typed, { heading: 'B', index: 2, lang: 'ts', code: 'w()\n' })
})

for (const block of BLOCKS) {
  const title = `${block.file}: ${block.heading} #${block.index}`
  if (block.skip !== undefined) {
    test.skip(`${title} (not run: ${block.skip})`, () => {})
    continue
  }
  test(title, async (t) => {
    const base = `${block.file.replace(/[/.]/g, '-')}-line-${block.line}`
    const file = path.join(dir, `${base}.js`)
    fs.writeFileSync(file, block.lang === 'ts' ? compile(block.code, `${base}.ts`) : block.code)
    const { code, signal, stdout, stderr } = await runNode(['--require', HARNESS, file], { NODE_PATH }, TIMEOUT_MS)
    const where = `${block.file} line ${block.line}:\n${block.code}\nstdout:\n${stdout}\nstderr:\n${stderr}`
    t.is(signal, null, `killed (after ${TIMEOUT_MS} ms?) — ${where}`)
    t.is(stderr, '', `nothing on stderr — ${where}`)
    t.is(code, 0, `exit code 0 — ${where}`)
  })
}
