'use strict'
// A length-prefixed frame echo over TCP: each frame is read into a pooled Buffer and echoed with
// writeAndRelease(), which releases it when the socket is done with it, also when the client is
// gone mid-write. Run: node examples/frame-echo.js (it starts, loads itself, and exits).

const net = require('node:net')
const { Pool } = require('..')

const pool = new Pool({ maxBytes: 64 * 1024 * 1024 })
const closed = [] // the server's connections, until they close

const server = net.createServer((socket) => {
  closed.push(new Promise((resolve) => socket.on('close', resolve)))
  socket.on('error', () => {}) // a client that vanished: its frames are released all the same
  let pending = Buffer.alloc(0) // the start of a frame until its 4-byte length prefix is complete
  let frame = null // the frame being read (prefix included), and how much of it is there
  let filled = 0
  socket.on('data', (data) => {
    while (data.length > 0) {
      if (frame === null) {
        pending = Buffer.concat([pending, data])
        if (pending.length < 4) return
        try {
          frame = pool.allocUnsafe(4 + pending.readUInt32BE(0))
        } catch {
          return socket.destroy() // refused: the pool is full
        }
        ;[data, pending, filled] = [pending, Buffer.alloc(0), 0]
      }
      const n = data.copy(frame, filled)
      ;[filled, data] = [filled + n, data.subarray(n)]
      if (filled < frame.length) return
      const more = pool.writeAndRelease(socket, frame) // released in the write's callback
      frame = null
      if (!more) socket.pause().once('drain', () => socket.resume()) // backpressure as usual
    }
  })
  socket.on('close', () => frame !== null && pool.release(frame))
})

async function client(port, frames, vanish) {
  const socket = net.connect(port, '127.0.0.1').on('error', () => {})
  const sent = Buffer.concat(frames.map((f) => Buffer.concat([Buffer.from([0, 0, f.length >> 8, f.length & 255]), f])))
  socket.write(sent)
  if (vanish) return setTimeout(() => socket.resetAndDestroy(), 50) // reads nothing, then goes
  const echoed = []
  for await (const d of socket) if (echoed.push(d) && Buffer.concat(echoed).length === sent.length) break
  console.log(`echoed ${frames.length} frames intact: ${Buffer.concat(echoed).equals(sent)}`)
}

server.listen(0, '127.0.0.1', async () => {
  const { port } = server.address()
  const frames = (n, size) => Array.from({ length: n }, (_, i) => Buffer.alloc(size, i))
  await Promise.all([client(port, frames(100, 1000)), client(port, frames(400, 60000), true)])
  await Promise.all(closed)
  const s = pool.stats()
  console.log(`${s.allocations} frames allocated, ${s.releases} released, ${s.liveBuffers} live`)
  server.close()
})
