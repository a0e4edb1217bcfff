'use strict'
// Every ```js block of docs/lifetimes.md runs as printed, in a process of its own, with only
// `require('extmem')` resolving to this package: no harness defines anything a block uses. A block
// must exit with code 0 (each checks its own outcome with node:assert) and print nothing on stderr.

const test = require('ava')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { runNode } = require('./helpers')

const root = path.join(__dirname, '..')
const DOC = path.join(root, 'docs', 'lifetimes.md')
const TIMEOUT_MS = 30_000

/** The ```js blocks of `markdown`: { heading, line, code }. */
function jsBlocks(markdown) {
  const lines = markdown.split('\n')
  const blocks = []
  let heading = '(before any heading)'
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```\s*(\S*)/.exec(lines[i])
    if (fence) {
      let end = i + 1
      while (end < lines.length && !/^```\s*$/.test(lines[end])) end++
      if (fence[1] === 'js') blocks.push({ heading, line: i + 1, code: `${lines.slice(i + 1, end).join('\n')}\n` })
      i = end
      continue
    }
    const title = /^#{1,6}\s+(.+?)\s*$/.exec(lines[i])
    if (title) heading = title[1]
  }
  return blocks
}

const BLOCKS = jsBlocks(fs.readFileSync(DOC, 'utf8'))

// A directory for the blocks, with node_modules/extmem -> the package root, and nothing else.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'extmem-lifetimes-doc-'))
fs.mkdirSync(path.join(dir, 'node_modules'))
fs.symlinkSync(root, path.join(dir, 'node_modules', 'extmem'), 'dir')
test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }))

test('docs/lifetimes.md has a ```js block for each helper', (t) => {
  const code = BLOCKS.map((b) => b.code).join('\n')
  for (const name of [
    'writeAndRelease',
    'readAll',
    'chunks',
    'createReadStream',
    'releasing',
    'releaseOwner',
    'isPooled',
  ]) {
    t.true(code.includes(`.${name}(`) || code.includes(`${name}(`), `${name} is shown`)
  }
})

for (const block of BLOCKS) {
  test(`${block.heading} (docs/lifetimes.md line ${block.line}) runs as printed`, async (t) => {
    const file = path.join(dir, `block-${block.line}.js`)
    fs.writeFileSync(file, block.code)
    const { code, signal, stdout, stderr } = await runNode([file], { NODE_PATH: undefined }, TIMEOUT_MS)
    const where = `docs/lifetimes.md line ${block.line}:\n${block.code}\nstdout:\n${stdout}\nstderr:\n${stderr}`
    t.is(signal, null, `killed (after ${TIMEOUT_MS} ms?) — ${where}`)
    t.is(stderr, '', `nothing on stderr — ${where}`)
    t.is(code, 0, `exit code 0 — ${where}`)
    t.log(stdout.trim())
  })
}
