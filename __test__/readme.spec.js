'use strict'
// Every ```js block of the README runs as printed: each in a process of its own, with
// `require('extmem')` resolving to this package, after fixtures/readme-harness.js has provided what
// the snippets use without defining it (`pool`, `buf`, `socket`, `log`, …) and with the servers they
// start moved to a free loopback port, probed and closed. A block must exit with code 0 and print
// nothing on stderr. A block preceded by `<!-- not run: reason -->` is skipped, with that reason.

const test = require('ava')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { runNode } = require('./helpers')

const root = path.join(__dirname, '..')
const HARNESS = path.join(__dirname, 'fixtures', 'readme-harness.js')
const TIMEOUT_MS = 30_000

/** The ```js blocks of `markdown`: { heading, index (within the heading, from 1), line, code, skip }. */
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
      if (fence[1] === 'js' || fence[1] === 'javascript') {
        let before = i - 1
        while (before >= 0 && lines[before].trim() === '') before--
        const marker = /^<!--\s*not run:\s*(.*?)\s*-->$/.exec(lines[before]?.trim() ?? '')
        const index = (perHeading.get(heading) ?? 0) + 1
        perHeading.set(heading, index)
        blocks.push({ heading, index, line: i + 1, code: `${lines.slice(i + 1, end).join('\n')}\n`, skip: marker?.[1] })
      }
      i = end
      continue
    }
    const title = /^#{1,6}\s+(.+?)\s*$/.exec(lines[i])
    if (title) heading = title[1]
  }
  return blocks
}

const BLOCKS = codeBlocks(fs.readFileSync(path.join(root, 'README.md'), 'utf8'))

// A directory for the snippets, with node_modules/extmem -> the package root.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'extmem-readme-'))
fs.mkdirSync(path.join(dir, 'node_modules'))
fs.symlinkSync(root, path.join(dir, 'node_modules', 'extmem'), 'dir')
fs.writeFileSync(path.join(dir, 'package.json'), '{ "type": "commonjs" }\n')
// prom-client and the like come from the package's own node_modules.
const NODE_PATH = [path.join(dir, 'node_modules'), path.join(root, 'node_modules')].join(path.delimiter)

test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }))

test('the README has ```js blocks, and the harness recognizes a skip marker', (t) => {
  t.true(BLOCKS.length >= 10, `found ${BLOCKS.length}`)
  const [plain, skipped] = codeBlocks(
    '# A\n\n```js\nx()\n```\n\n## B\n<!-- not run: needs a database -->\n\n```js\ny()\n```\n```sh\nz\n```\n',
  )
  t.like(plain, { heading: 'A', index: 1, line: 3, code: 'x()\n', skip: undefined })
  t.like(skipped, { heading: 'B', index: 1, code: 'y()\n', skip: 'needs a database' })
})

for (const block of BLOCKS) {
  const title = `${block.heading} #${block.index}`
  if (block.skip !== undefined) {
    test.skip(`${title} (not run: ${block.skip})`, () => {})
    continue
  }
  test(title, async (t) => {
    const file = path.join(dir, `readme-line-${block.line}.js`)
    fs.writeFileSync(file, block.code)
    const { code, signal, stdout, stderr } = await runNode([HARNESS, file], { NODE_PATH }, TIMEOUT_MS)
    const where = `README.md line ${block.line}:\n${block.code}\nstdout:\n${stdout}\nstderr:\n${stderr}`
    t.is(signal, null, `killed (after ${TIMEOUT_MS} ms?) — ${where}`)
    t.is(stderr, '', `nothing on stderr — ${where}`)
    t.is(code, 0, `exit code 0 — ${where}`)
  })
}
