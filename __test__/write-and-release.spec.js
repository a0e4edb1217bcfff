'use strict'
// pool.writeAndRelease(writable, buf[, callback]): writes a pooled Buffer and releases it exactly
// once, in the write's own callback, on real loopback sockets, TLS, HTTP/1, HTTP/2 and files;
// never while the stream may still read it, and without a GC. (No test here calls gc().)

const test = require('ava')
const fs = require('node:fs')
const net = require('node:net')
const tls = require('node:tls')
const http = require('node:http')
const http2 = require('node:http2')
const path = require('node:path')
const { PassThrough, Writable } = require('node:stream')
const { once } = require('node:events')
const { Pool } = require('..')
const { tempDir, pattern, listen, until, selfSignedCert, sleep, vanishingClient } = require('./io-helpers')

const MiB = 1024 * 1024

function newPool() {
  return new Pool({ maxBytes: 64 * MiB })
}

/** A pooled Buffer holding `pattern(size, seed)`. */
function pooledPattern(pool, size, seed) {
  const buf = pool.allocUnsafe(size)
  pattern(size, seed).copy(buf)
  return buf
}

/** Asserts the pool has nothing out and every allocation was released explicitly. */
function balanced(t, pool, message) {
  const s = pool.stats()
  t.is(s.liveBuffers, 0, `${message}: liveBuffers`)
  t.is(s.allocations, s.releases, `${message}: allocations = releases`)
  t.is(s.gcReclaims, 0, `${message}: nothing left to the GC`)
}

test('frames written to a net.Socket arrive intact, each released once in its callback', async (t) => {
  const pool = newPool()
  const sizes = [100, 8192, 65536, 300000, 17]
  const chunks = []
  const server = net.createServer((sock) => sock.on('data', (d) => chunks.push(d)))
  const port = await listen(server)
  const client = net.connect(port, '127.0.0.1')
  await once(client, 'connect')
  const results = []
  for (const [i, size] of sizes.entries()) {
    const buf = pooledPattern(pool, size, i)
    const ret = pool.writeAndRelease(client, buf, (err) => {
      // The callback runs after the release: the Buffer is detached already.
      results.push({ err, length: buf.length, refs: pool.refCount(buf) })
    })
    t.is(typeof ret, 'boolean', 'returns what write() returns')
  }
  client.end()
  await once(client, 'close')
  await until(() => chunks.reduce((n, c) => n + c.length, 0) === sizes.reduce((a, b) => a + b, 0))
  server.close()
  t.deepEqual(
    results,
    sizes.map(() => ({ err: null, length: 0, refs: 0 })),
  )
  const received = Buffer.concat(chunks)
  let offset = 0
  for (const [i, size] of sizes.entries()) {
    t.true(received.subarray(offset, offset + size).equals(pattern(size, i)), `frame ${i}`)
    offset += size
  }
  balanced(t, pool, 'after the socket closed')
  pool.close()
})

test('writeAndRelease returns false under backpressure, so drain works as usual', async (t) => {
  const pool = newPool()
  let serverSock
  const server = net.createServer((sock) => {
    serverSock = sock
    sock.pause()
  })
  const port = await listen(server)
  const client = net.connect(port, '127.0.0.1')
  await once(client, 'connect')
  let writes = 0
  let ret = true
  while (ret && writes < 1000) {
    ret = pool.writeAndRelease(client, pool.allocUnsafe(256 * 1024))
    writes++
  }
  t.false(ret, 'a write returned false before 1000 writes of 256 KiB')
  t.true(pool.stats().liveBuffers > 0, 'Buffers the socket has not written yet are live')
  serverSock.resume()
  await once(client, 'drain')
  await until(() => pool.stats().liveBuffers === 0)
  balanced(t, pool, 'after drain')
  client.destroy()
  server.close()
  pool.close()
})

test('a client that disconnects mid-write: every frame is released, the callbacks get errors, nothing crashes', async (t) => {
  const pool = newPool()
  let issued = 0
  let calledBack = 0
  let errored = 0
  let serverSide
  const closed = new Promise((resolve) => {
    const server = net.createServer((sock) => {
      serverSide = sock
      sock.on('error', () => {})
      const pump = () => {
        // A frame echo that keeps writing 64 KiB frames until the peer is gone.
        for (let i = 0; i < 8 && !sock.destroyed; i++) {
          issued++
          pool.writeAndRelease(sock, pooledPattern(pool, 65536, issued), (err) => {
            calledBack++
            if (err) errored++
          })
        }
        if (!sock.destroyed) setImmediate(pump)
      }
      pump()
      sock.on('close', () => {
        server.close()
        resolve()
      })
    })
    listen(server).then((port) => {
      const client = net.connect(port, '127.0.0.1')
      client.on('error', () => {})
      let got = 0
      client.on('data', (d) => {
        got += d.length
        if (got > 512 * 1024) client.resetAndDestroy()
      })
    })
  })
  await closed
  t.true(serverSide.destroyed)
  // Node calls every write's callback by the socket's 'close'; wait a little in case it did not.
  await until(() => calledBack === issued, 2000)
  t.is(calledBack, issued, 'every write was called back')
  t.true(errored > 0, 'writes cut short by the reset got an error')
  balanced(t, pool, 'after the peer reset')
  pool.close()
})

test('a write to a destroyed socket still releases the Buffer (the callback gets the error)', async (t) => {
  const pool = newPool()
  const sock = new net.Socket()
  sock.destroy()
  const buf = pool.allocUnsafe(1000)
  const err = await new Promise((resolve) => pool.writeAndRelease(sock, buf, resolve))
  t.is(err.code, 'ERR_STREAM_DESTROYED')
  t.is(buf.length, 0)
  balanced(t, pool, 'after the refused write')
  pool.close()
})

test('tls.TLSSocket: frames arrive intact and are released; a peer gone mid-write leaves nothing live', async (t) => {
  const creds = selfSignedCert()
  if (creds === null) return t.log('openssl is not on PATH: no certificate, so no TLS test') || t.pass()
  const pool = newPool()
  const received = []
  let serverSock
  const server = tls.createServer(creds, (sock) => {
    serverSock = sock
    sock.on('data', (d) => received.push(d))
    sock.on('error', () => {})
  })
  const port = await listen(server)
  const client = tls.connect({ port, host: '127.0.0.1', ca: creds.cert })
  client.on('error', () => {})
  await once(client, 'secureConnect')
  const sizes = [1, 5000, 70000, 1 << 20]
  let calls = 0
  for (const [i, size] of sizes.entries()) pool.writeAndRelease(client, pooledPattern(pool, size, i), () => calls++)
  const total = sizes.reduce((a, b) => a + b, 0)
  await until(() => calls === sizes.length && received.reduce((n, c) => n + c.length, 0) === total)
  const all = Buffer.concat(received)
  let offset = 0
  for (const [i, size] of sizes.entries()) {
    t.true(all.subarray(offset, offset + size).equals(pattern(size, i)), `frame ${i}`)
    offset += size
  }
  balanced(t, pool, 'after the TLS writes')

  // Now the server stops reading and the connection is reset with writes queued.
  serverSock.pause()
  let issued = 0
  let back = 0
  while (pool.writeAndRelease(client, pool.allocUnsafe(256 * 1024), () => back++) && issued < 200) issued++
  issued++
  t.true(pool.stats().liveBuffers > 0, 'writes are queued behind the paused reader')
  serverSock.destroy()
  await until(() => back === issued)
  t.is(back, issued)
  balanced(t, pool, 'after the reset')
  client.destroy()
  server.close()
  pool.close()
})

test('http.ServerResponse: a body written in pooled Buffers arrives, and a client gone mid-response leaves nothing live', async (t) => {
  const pool = newPool()
  let issued = 0
  let back = 0
  let mode = 'whole'
  let responseClosed
  const server = http.createServer((req, res) => {
    req.resume()
    if (mode === 'whole') {
      for (let i = 0; i < 4; i++) pool.writeAndRelease(res, pooledPattern(pool, 50000, i), () => back++)
      issued += 4
      res.end()
      return
    }
    responseClosed = once(res, 'close')
    const pump = () => {
      for (let i = 0; i < 8 && !res.destroyed; i++) {
        issued++
        pool.writeAndRelease(res, pool.allocUnsafe(64 * 1024), () => back++)
      }
      if (!res.destroyed) setImmediate(pump)
    }
    pump()
  })
  const port = await listen(server)
  const body = await new Promise((resolve, reject) => {
    http.get({ port, host: '127.0.0.1', agent: false }, (res) => {
      const parts = []
      res.on('data', (d) => parts.push(d))
      res.on('end', () => resolve(Buffer.concat(parts)))
      res.on('error', reject)
    })
  })
  t.true(body.equals(Buffer.concat([0, 1, 2, 3].map((i) => pattern(50000, i)))))
  await until(() => back === issued)
  balanced(t, pool, 'after a whole response')

  mode = 'abort'
  await vanishingClient(port, 200 * 1024)
  await until(() => responseClosed !== undefined)
  await responseClosed
  await until(() => back === issued)
  t.is(back, issued, 'every write was called back')
  balanced(t, pool, 'after the client vanished')
  server.close()
  pool.close()
})

test('http.ServerResponse whose socket is already destroyed: the Buffer is released (Node 20 and 22 would drop the callback)', async (t) => {
  const pool = newPool()
  const result = new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      res.writeHead(200)
      res.flushHeaders()
      req.socket.destroy()
      const buf = pool.allocUnsafe(4096)
      pool.writeAndRelease(res, buf, (err) => resolve({ err, length: buf.length }))
      server.close()
    })
    listen(server).then((port) => {
      const c = net.connect(port, '127.0.0.1', () => c.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'))
      c.on('error', () => {})
      c.resume()
    })
  })
  const { err, length } = await result
  t.is(err.code, 'ERR_STREAM_DESTROYED')
  t.is(length, 0)
  balanced(t, pool, 'after the write')
  pool.close()
})

test('http.ClientRequest: an upload in pooled Buffers arrives intact', async (t) => {
  const pool = newPool()
  const server = http.createServer((req, res) => {
    const parts = []
    req.on('data', (d) => parts.push(d))
    req.on('end', () =>
      res.end(String(Buffer.concat(parts).equals(Buffer.concat([pattern(9000, 1), pattern(200000, 2)])))),
    )
  })
  const port = await listen(server)
  const answer = await new Promise((resolve, reject) => {
    const req = http.request({ port, host: '127.0.0.1', method: 'POST', agent: false }, (res) => {
      let s = ''
      res.on('data', (d) => (s += d))
      res.on('end', () => resolve(s))
    })
    req.on('error', reject)
    // Written before the request has a socket: they wait in the request, then go out.
    pool.writeAndRelease(req, pooledPattern(pool, 9000, 1))
    pool.writeAndRelease(req, pooledPattern(pool, 200000, 2))
    req.end()
  })
  t.is(answer, 'true')
  await until(() => pool.stats().liveBuffers === 0)
  balanced(t, pool, 'after the upload')
  server.close()
  pool.close()
})

test('http.ClientRequest destroyed while its writes wait for a socket: they are released at its close (Node drops their callbacks)', async (t) => {
  const pool = newPool()
  const server = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => setTimeout(() => res.end('ok'), 50))
  })
  const port = await listen(server)
  const agent = new http.Agent({ maxSockets: 1 })
  const first = http.request({ port, host: '127.0.0.1', method: 'POST', agent }, (res) => res.resume())
  first.end('x')
  // This one waits for the agent's only socket.
  const second = http.request({ port, host: '127.0.0.1', method: 'POST', agent })
  second.on('error', () => {})
  const results = []
  for (let i = 0; i < 3; i++) {
    const buf = pool.allocUnsafe(10000)
    pool.writeAndRelease(second, buf, (err) => results.push(err?.code))
  }
  t.is(second.socket, null, 'still waiting for a socket')
  t.is(pool.stats().liveBuffers, 3)
  second.destroy()
  await new Promise((resolve) => second.on('close', resolve))
  t.deepEqual(results, ['ERR_STREAM_DESTROYED', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_DESTROYED'])
  balanced(t, pool, 'at the close of the destroyed request')
  await new Promise((resolve) => (first.closed ? resolve() : first.on('close', resolve)))
  agent.destroy()
  server.close()
  pool.close()
})

test('HTTP/2: a stream written in pooled Buffers arrives, and a stream cancelled mid-write leaves nothing live', async (t) => {
  const pool = newPool()
  let issued = 0
  let back = 0
  let streamClosed
  const server = http2.createServer()
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {})
    stream.respond({ ':status': 200 })
    if (headers[':path'] === '/whole') {
      for (let i = 0; i < 3; i++) {
        issued++
        pool.writeAndRelease(stream, pooledPattern(pool, 40000, i), () => back++)
      }
      stream.end()
      return
    }
    streamClosed = once(stream, 'close')
    const pump = () => {
      for (let i = 0; i < 8 && !stream.destroyed; i++) {
        issued++
        pool.writeAndRelease(stream, pool.allocUnsafe(64 * 1024), () => back++)
      }
      if (!stream.destroyed) setImmediate(pump)
    }
    pump()
  })
  const port = await listen(server)
  const client = http2.connect(`http://127.0.0.1:${port}`)
  client.on('error', () => {})
  const whole = await new Promise((resolve, reject) => {
    const req = client.request({ ':path': '/whole' })
    const parts = []
    req.on('data', (d) => parts.push(d))
    req.on('end', () => resolve(Buffer.concat(parts)))
    req.on('error', reject)
  })
  t.true(whole.equals(Buffer.concat([0, 1, 2].map((i) => pattern(40000, i)))))
  await until(() => back === issued)
  balanced(t, pool, 'after a whole stream')

  const req = client.request({ ':path': '/cancel' })
  req.on('error', () => {})
  let got = 0
  req.on('data', (d) => {
    got += d.length
    if (got > 100 * 1024) req.close(http2.constants.NGHTTP2_CANCEL)
  })
  await until(() => streamClosed !== undefined)
  await streamClosed
  await until(() => back === issued)
  t.is(back, issued, 'every write was called back')
  balanced(t, pool, 'after the cancelled stream')
  client.close()
  server.close()
  pool.close()
})

test('fs.WriteStream: a file written in pooled Buffers has their bytes; destroyed mid-way, every Buffer is released', async (t) => {
  const pool = newPool()
  const { dir, cleanup } = tempDir()
  t.teardown(cleanup)
  const file = path.join(dir, 'out.bin')
  const ws = fs.createWriteStream(file)
  for (let i = 0; i < 5; i++) pool.writeAndRelease(ws, pooledPattern(pool, 100000, i))
  ws.end()
  await once(ws, 'close')
  t.true(fs.readFileSync(file).equals(Buffer.concat([0, 1, 2, 3, 4].map((i) => pattern(100000, i)))))
  balanced(t, pool, 'after the file was written')

  const ws2 = fs.createWriteStream(path.join(dir, 'cut.bin'))
  ws2.on('error', () => {})
  let back = 0
  for (let i = 0; i < 20; i++) pool.writeAndRelease(ws2, pool.allocUnsafe(MiB), () => back++)
  ws2.destroy()
  await once(ws2, 'close')
  await until(() => back === 20)
  t.is(back, 20)
  balanced(t, pool, 'after the stream was destroyed')
  pool.close()
})

test('a PassThrough keeps the chunk after calling back: its reader sees an empty Buffer, never another owner’s bytes', async (t) => {
  const pool = newPool()
  const pt = new PassThrough()
  const mine = pool.allocUnsafe(512)
  mine.fill(0x41) // 'A'
  let released = false
  pool.writeAndRelease(pt, mine, () => (released = true))
  await sleep(0)
  t.true(released, 'the PassThrough called back at once, so the Buffer was released')
  // The slot goes to a new owner with other bytes…
  const next = pool.allocUnsafe(512)
  next.fill(0x42) // 'B'
  // …and the PassThrough's reader gets the released Buffer, empty (Node 20–24), or nothing at all
  // (Node 26); either way the stream still counts the chunk's 512 bytes, so it stalls.
  const read = pt.read()
  t.true(read === null || read.length === 0, `read() gave ${read?.length} bytes`)
  const seen = []
  pt.on('data', (d) => seen.push(Buffer.from(d)))
  await sleep(20)
  t.true(
    seen.every((d) => d.length === 0),
    'flowing, it emits no bytes',
  )
  t.is(next[0], 0x42)
  pool.release(next)
  balanced(t, pool, 'after')
  pool.close()
})

test('a retained Buffer is released once: the write drops one reference', async (t) => {
  const pool = newPool()
  const buf = pool.allocUnsafe(100)
  pool.retain(buf)
  await new Promise((resolve) => pool.writeAndRelease(new PassThrough().resume(), buf, resolve))
  t.is(pool.refCount(buf), 1)
  t.is(buf.length, 100)
  pool.release(buf)
  balanced(t, pool, 'after the last release')
  pool.close()
})

test('a view is written and the Buffer it lies in is released', async (t) => {
  const pool = newPool()
  const buf = pooledPattern(pool, 1000, 3)
  const parts = []
  const sink = new Writable({
    write(chunk, _enc, cb) {
      parts.push(Buffer.from(chunk))
      cb()
    },
  })
  await new Promise((resolve) => pool.writeAndRelease(sink, buf.subarray(10, 20), resolve))
  t.true(parts[0].equals(pattern(1000, 3).subarray(10, 20)))
  t.is(buf.length, 0)
  balanced(t, pool, 'after')
  pool.close()
})

test('a Writable whose write() throws: the Buffer is released and the error thrown, with no callback', (t) => {
  const pool = newPool()
  const bad = {
    write() {
      throw new TypeError('no')
    },
  }
  let called = false
  t.throws(() => pool.writeAndRelease(bad, pool.allocUnsafe(10), () => (called = true)), { message: 'no' })
  t.false(called)
  balanced(t, pool, 'after')
  pool.close()
})

test('bad calls throw before anything is written, and leave the Buffer as it was', (t) => {
  const pool = newPool()
  const other = newPool()
  const sink = new PassThrough()
  const buf = pool.allocUnsafe(64)
  t.throws(() => pool.writeAndRelease(null, buf), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => pool.writeAndRelease({}, buf), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => pool.writeAndRelease(sink, buf, 'cb'), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => pool.writeAndRelease(sink, Buffer.alloc(4)), { code: 'ERR_EXTMEM_NOT_POOLED' })
  t.throws(() => pool.writeAndRelease(sink, 'text'), { code: 'ERR_INVALID_ARG_TYPE' })
  const foreign = other.allocUnsafe(10)
  t.throws(() => pool.writeAndRelease(sink, foreign), { code: 'ERR_EXTMEM_NOT_POOLED' })
  t.throws(() => pool.writeAndRelease(sink, Buffer.from(buf.buffer, buf.byteOffset, 4)), {
    code: 'ERR_EXTMEM_VIEW_OWNERSHIP',
  })
  const gone = pool.allocUnsafe(10)
  pool.release(gone)
  t.throws(() => pool.writeAndRelease(sink, gone), { code: 'ERR_EXTMEM_RELEASED' })
  t.is(sink.writableLength, 0, 'nothing was written')
  t.is(pool.refCount(buf), 1)
  pool.release(buf)
  other.release(foreign)
  balanced(t, pool, 'after')
  pool.close()
  other.close()
})
