'use strict'
// An HTTP server that sheds load when pooled memory runs short: while the pool is at 'critical'
// or above, new uploads get 503 + Retry-After instead of a buffer, and the server says so when the
// level changes. Run: node examples/http-shedding.js (it starts, loads itself, and exits).

const http = require('node:http')
const { Pool } = require('..')

// admission: 'cap' leaves the policy to this server (shed at critical); with the default graded
// admission the pool itself would already refuse uploads above 8 KiB from 'warning' on.
const pool = new Pool({ maxBytes: 8 * 1024 * 1024, admission: 'cap' })
let shedding = false
pool.on('watermark', ({ level, previous, utilization }) => {
  shedding = level === 'critical' || level === 'shedding'
  console.log(
    `pool ${previous} -> ${level} at ${(utilization * 100).toFixed(0)} %${shedding ? ': shedding new uploads' : ''}`,
  )
})

// Each upload is read whole into one pooled Buffer (with or without content-length; an aborted
// upload leaves nothing allocated) and held until the (slow) processing step is done.
const server = http.createServer(async (req, res) => {
  if (shedding) {
    res.writeHead(503, { 'retry-after': '1', connection: 'close' }).end('busy\n')
    return
  }
  let body
  try {
    body = await pool.readAll(req, { limit: 1024 * 1024 })
  } catch (err) {
    // ERR_EXTMEM_TOO_LARGE past the limit; ERR_EXTMEM_EXHAUSTED at the cap (ERR_EXTMEM_THROTTLED
    // under graded admission); or the client went away (then there is no one to answer).
    const status = err.code === 'ERR_EXTMEM_TOO_LARGE' ? 413 : 503
    if (!res.destroyed) res.writeHead(status, { 'retry-after': '1', connection: 'close' }).end(`${err.code}\n`)
    return
  }
  setTimeout(() => {
    // stands in for slow processing that keeps the memory busy
    res.end(`stored ${body.length} bytes\n`)
    pool.release(body)
  }, 300)
})

server.listen(0, '127.0.0.1', async () => {
  const { port } = server.address()
  const upload = () =>
    new Promise((resolve, reject) => {
      const req = http.request(
        { port, host: '127.0.0.1', method: 'POST', headers: { 'content-length': 256 * 1024 } },
        (res) => {
          res.resume()
          res.on('end', () => resolve(res.statusCode))
        },
      )
      req.on('error', reject)
      req.end(Buffer.alloc(256 * 1024, 1))
    })
  const statuses = await Promise.all(Array.from({ length: 40 }, upload))
  const count = (code) => statuses.filter((s) => s === code).length
  console.log(`40 uploads: ${count(200)} stored, ${count(503)} shed`)
  await new Promise((resolve) => setTimeout(resolve, 400))
  console.log(`after processing: level ${pool.level}, ${pool.stats().liveBuffers} Buffers live`)
  server.close()
})
