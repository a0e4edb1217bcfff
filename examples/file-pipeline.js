'use strict'
// A file served in pooled chunks through stream.pipeline(): createReadStream() reads it into
// pooled Buffers, releasing() writes each to the response and releases it in that write's
// callback. One client downloads it all, another is gone half way: both pipelines end with every
// chunk released. Run: node examples/file-pipeline.js (it starts, loads itself, and exits).

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const http = require('node:http')
const { pipeline } = require('node:stream/promises')
const { Pool } = require('..')

const pool = new Pool({ maxBytes: 64 * 1024 * 1024 })
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'extmem-example-'))
const file = path.join(dir, 'video.bin')
fs.writeFileSync(file, Buffer.alloc(32 * 1024 * 1024, 7)) // 32 MiB to serve
const served = [] // how each response's pipeline ended

const server = http.createServer(async (req, res) => {
  res.setHeader('content-length', fs.statSync(file).size)
  try {
    await pipeline(pool.createReadStream(file, { chunkSize: 1024 * 1024 }), pool.releasing(res))
    served.push('sent in full')
  } catch (err) {
    served.push(`cut short (${err.code})`)
  }
})

function download(port, stopAfter) {
  return new Promise((resolve) => {
    http.get({ port, host: '127.0.0.1' }, (res) => {
      let got = 0
      res.on('data', (chunk) => {
        got += chunk.length
        if (got >= stopAfter) res.destroy() // gone half way
      })
      res.on('close', () => resolve(got))
    })
  })
}

server.listen(0, '127.0.0.1', async () => {
  const { port } = server.address()
  const full = await download(port, Infinity)
  const half = await download(port, 16 * 1024 * 1024)
  console.log(`downloads: ${full} bytes, then ${half >= 16 * 1024 * 1024 ? 'half' : half} before leaving`)
  while (served.length < 2) await new Promise((resolve) => setTimeout(resolve, 10))
  const s = pool.stats()
  console.log(`pipelines: ${served.join(', ')}`)
  console.log(`pool: ${s.allocations} chunks read, ${s.releases} released, ${s.liveBuffers} live`)
  server.close()
  fs.rmSync(dir, { recursive: true })
})
