'use strict'
// Pooled Buffers are ordinary Buffers to Node's I/O: files and sockets read and write them.

const test = require('ava')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const { Pool } = require('..')
const { stamp, holds } = require('./helpers')

test('fs.writeSync and fs.readSync move bytes between pooled Buffers and a file', (t) => {
  const pool = new Pool({ maxBytes: 16 * 1024 * 1024 })
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'extmem-'))
  const file = path.join(dir, 'data.bin')
  for (const size of [3000, 8192, 200000]) {
    const out = pool.allocUnsafe(size)
    stamp(out, size)
    const fd = fs.openSync(file, 'w+')
    t.is(fs.writeSync(fd, out), size)
    const back = pool.alloc(size)
    t.is(fs.readSync(fd, back, 0, size, 0), size)
    fs.closeSync(fd)
    t.true(holds(back, size))
    t.true(back.equals(out))
    pool.release(out)
    pool.release(back)
  }
  fs.rmSync(dir, { recursive: true })
  t.is(pool.stats().liveBuffers, 0)
  pool.close()
})

test('a pooled Buffer written to a socket arrives intact and is released in the write callback', async (t) => {
  const pool = new Pool({ maxBytes: 16 * 1024 * 1024 })
  const sizes = [100, 8192, 65536, 300000]
  const total = sizes.reduce((a, b) => a + b, 0)
  const received = await new Promise((resolve, reject) => {
    const chunks = []
    const server = net.createServer((sock) => {
      sock.on('data', (d) => chunks.push(d))
      sock.on('end', () => {
        server.close()
        resolve(Buffer.concat(chunks))
      })
    })
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const client = net.connect(server.address().port, '127.0.0.1', () => {
        for (const size of sizes) {
          const buf = pool.allocUnsafe(size)
          stamp(buf, size)
          client.write(buf, (err) => {
            if (err) reject(err)
            else pool.release(buf)
          })
        }
        client.end()
      })
      client.on('error', reject)
    })
  })
  t.is(received.length, total)
  let offset = 0
  for (const size of sizes) {
    t.true(holds(received.subarray(offset, offset + size), size), `frame of ${size} bytes`)
    offset += size
  }
  t.like(pool.stats(), { liveBuffers: 0, releases: sizes.length })
  pool.close()
})
