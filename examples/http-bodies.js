'use strict'
// An HTTP server that reads each request body into one pooled Buffer with readAll(), with or
// without content-length: 413 past the limit, 503 when the pool refuses, and an aborted upload
// leaves nothing allocated. Run: node examples/http-bodies.js (it starts, loads itself, and exits).

const http = require('node:http')
const { Pool } = require('..')

const pool = new Pool({ maxBytes: 4 * 1024 * 1024, admission: 'cap' })
let settled = 0 // requests whose body was read or refused

const server = http.createServer(async (req, res) => {
  let body
  try {
    body = await pool.readAll(req, { limit: 1024 * 1024 })
  } catch (err) {
    settled++
    const status = { ERR_EXTMEM_TOO_LARGE: 413, ERR_EXTMEM_EXHAUSTED: 503 }[err.code] ?? 400
    if (!res.destroyed) res.writeHead(status, { connection: 'close' }).end(`${err.code}\n`)
    return
  }
  settled++
  setTimeout(() => {
    // Stands in for work that keeps the body a while: parse it, store it, forward it…
    res.end(`stored ${body.length} bytes\n`)
    pool.release(body)
  }, 100)
})

function upload(port, size, { chunked = false, abort = false } = {}) {
  return new Promise((resolve) => {
    const headers = chunked ? {} : { 'content-length': size }
    const req = http.request({ port, host: '127.0.0.1', method: 'POST', headers }, (res) => {
      res.resume().on('end', () => resolve(res.statusCode))
    })
    req.on('error', () => resolve('aborted'))
    for (let sent = 0; sent < (abort ? size / 2 : size); sent += 64 * 1024) req.write(Buffer.alloc(64 * 1024, 1))
    if (abort) setTimeout(() => req.destroy(), 50)
    else req.end()
  })
}

server.listen(0, '127.0.0.1', async () => {
  const { port } = server.address()
  const KiB = 1024
  const runs = {
    'with content-length': () => [upload(port, 64 * KiB)],
    chunked: () => [upload(port, 320 * KiB, { chunked: true })],
    'too large (announced, chunked)': () => [upload(port, 2048 * KiB), upload(port, 2048 * KiB, { chunked: true })],
    '6 at once, 896 KiB each': () => Array.from({ length: 6 }, () => upload(port, 896 * KiB)),
    'aborted half way': () => [upload(port, 512 * KiB, { abort: true })],
  }
  for (const [what, requests] of Object.entries(runs))
    console.log(`${what}: ${(await Promise.all(requests())).join(' ')}`)
  while (settled < 11) await new Promise((resolve) => setTimeout(resolve, 10))
  const s = pool.stats()
  console.log(`pool: ${s.allocations} allocations, ${s.releases} releases, ${s.liveBuffers} live`)
  server.close()
})
