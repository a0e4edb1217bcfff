'use strict'
// pool.readAll(readable[, { limit, sizeHint }]): a whole stream (an HTTP request or response
// included) in one pooled Buffer of exactly its length; a rejection, never a throw from an event
// handler, with nothing left allocated, on the limit, a refusal, an abort or a stream error.

const test = require('ava')
const net = require('node:net')
const http = require('node:http')
const http2 = require('node:http2')
const { Readable } = require('node:stream')
const { once } = require('node:events')
const { Pool } = require('..')
const { pattern, listen, until, sleep } = require('./io-helpers')

const KiB = 1024
const MiB = 1024 * KiB

/** Asserts the pool has nothing out. */
function balanced(t, pool, message) {
  const s = pool.stats()
  t.is(s.liveBuffers, 0, `${message}: liveBuffers`)
  t.is(s.allocations, s.releases, `${message}: allocations = releases`)
}

/**
 * An HTTP server whose handler reads each request body with readAll(`options`) and hands the
 * outcome to `onBody(result)`: `{ body }` or `{ err }`. It answers 200, or 413/503/400.
 */
async function bodyServer(pool, options, onBody) {
  const server = http.createServer((req, res) => {
    pool.readAll(req, options).then(
      (body) => {
        onBody({ body, req })
        res.end(`${body.length}\n`)
      },
      (err) => {
        onBody({ err, req })
        const status =
          err.code === 'ERR_EXTMEM_TOO_LARGE'
            ? 413
            : err.code === 'ERR_EXTMEM_EXHAUSTED' || err.code === 'ERR_EXTMEM_THROTTLED'
              ? 503
              : 400
        if (!res.destroyed) res.writeHead(status, { connection: 'close' }).end(`${err.code}\n`)
      },
    )
  })
  const port = await listen(server)
  return { server, port }
}

/** POSTs `chunks` (with `headers`) and resolves with `{ status, text }`. */
function post(port, chunks, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ port, host: '127.0.0.1', method: 'POST', agent: false, headers }, (res) => {
      let text = ''
      res.on('data', (d) => (text += d))
      res.on('end', () => resolve({ status: res.statusCode, text }))
    })
    req.on('error', reject)
    for (const c of chunks) req.write(c)
    req.end()
  })
}

test('an upload with content-length is read into one pooled Buffer of its length, allocated once', async (t) => {
  const pool = new Pool({ maxBytes: 64 * MiB })
  const results = []
  const { server, port } = await bodyServer(pool, undefined, (r) => results.push(r))
  const data = pattern(300 * KiB, 7)
  const before = pool.stats().allocations
  const { status, text } = await post(port, [data.subarray(0, 1000), data.subarray(1000)], {
    'content-length': data.length,
  })
  t.is(status, 200)
  t.is(text, `${data.length}\n`)
  const [{ body }] = results
  t.true(pool.isPooled(body))
  t.true(body.equals(data))
  t.is(pool.stats().allocations - before, 1, 'sized from content-length: one allocation, no resize')
  pool.release(body)
  balanced(t, pool, 'after')
  server.close()
  pool.close()
})

test('a chunked upload (no content-length) is read whole, grown as it comes, and ends at its exact length', async (t) => {
  const pool = new Pool({ maxBytes: 64 * MiB })
  const results = []
  const { server, port } = await bodyServer(pool, { limit: 8 * MiB }, (r) => results.push(r))
  for (const size of [0, 1, 5000, 16 * KiB, 100 * KiB + 3, 3 * MiB + 1]) {
    const data = pattern(size, size)
    const parts = []
    for (let i = 0; i < size; i += 7000) parts.push(data.subarray(i, i + 7000))
    const { status, text } = await post(port, parts, size === 0 ? {} : { 'transfer-encoding': 'chunked' })
    t.is(status, 200, `${size} bytes`)
    t.is(text, `${size}\n`)
    const { req, body } = results.pop()
    t.is(req.headers['content-length'], size === 0 ? '0' : undefined)
    t.true(body.equals(data), `${size} bytes arrive intact`)
    t.is(body.length, size)
    pool.release(body)
    balanced(t, pool, `after ${size} bytes`)
  }
  server.close()
  pool.close()
})

test('an aborted upload rejects, and nothing stays allocated', async (t) => {
  const pool = new Pool({ maxBytes: 64 * MiB })
  for (const headers of [{ 'content-length': '1000000' }, { 'transfer-encoding': 'chunked' }]) {
    let result
    const { server, port } = await bodyServer(pool, undefined, (r) => (result = r))
    const sock = net.connect(port, '127.0.0.1')
    await once(sock, 'connect')
    const head = Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')
    sock.write(`POST / HTTP/1.1\r\nhost: x\r\n${head}\r\n`)
    const part = Buffer.alloc(200 * KiB, 1)
    sock.write(
      headers['content-length']
        ? part
        : Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]),
    )
    await sleep(50)
    t.true(pool.stats().liveBuffers > 0, 'the body is being read into a pooled Buffer')
    sock.destroy()
    await until(() => result !== undefined)
    t.truthy(result.err, `${JSON.stringify(headers)}: rejected`)
    t.regex(result.err.code, /ECONNRESET|ERR_STREAM_PREMATURE_CLOSE/)
    balanced(t, pool, `after the abort (${JSON.stringify(headers)})`)
    server.close()
  }
  pool.close()
})

test('a body past the limit rejects with ERR_EXTMEM_TOO_LARGE (limit and bytes seen), answered 413, nothing allocated', async (t) => {
  const pool = new Pool({ maxBytes: 64 * MiB })
  const results = []
  const { server, port } = await bodyServer(pool, { limit: 100 * KiB }, (r) => results.push(r))
  const before = pool.stats().allocations
  // Announced too large: refused before a byte is read or a Buffer allocated.
  const announced = await post(port, [Buffer.alloc(200 * KiB)], { 'content-length': 200 * KiB })
  t.is(announced.status, 413)
  const e1 = results.pop().err
  t.like(e1, { code: 'ERR_EXTMEM_TOO_LARGE', limit: 100 * KiB, receivedBytes: 0, declaredBytes: 200 * KiB })
  t.true(e1 instanceof RangeError)
  t.is(pool.stats().allocations, before, 'nothing was allocated')
  // Chunked: refused when the bytes pass the limit.
  const parts = Array.from({ length: 30 }, () => Buffer.alloc(10 * KiB, 2))
  const streamed = await post(port, parts, { 'transfer-encoding': 'chunked' })
  t.is(streamed.status, 413)
  const e2 = results.pop().err
  t.is(e2.code, 'ERR_EXTMEM_TOO_LARGE')
  t.is(e2.limit, 100 * KiB)
  t.true(e2.receivedBytes > 100 * KiB && e2.receivedBytes <= 110 * KiB, `receivedBytes ${e2.receivedBytes}`)
  t.is(e2.declaredBytes, undefined)
  balanced(t, pool, 'after the refusals')
  server.close()
  pool.close()
})

test('the limit is 1 MiB unless given; limit: Infinity reads more', async (t) => {
  const pool = new Pool({ maxBytes: 64 * MiB })
  const limited = await pool.readAll(Readable.from([Buffer.alloc(MiB), Buffer.alloc(1)])).catch((err) => err)
  t.like(limited, { code: 'ERR_EXTMEM_TOO_LARGE', limit: MiB, receivedBytes: MiB + 1 })
  const exact = await pool.readAll(Readable.from([Buffer.alloc(MiB - 10), Buffer.alloc(10)]))
  t.is(exact.length, MiB)
  pool.release(exact)
  const big = await pool.readAll(Readable.from(Array.from({ length: 5 }, (_, i) => pattern(MiB, i))), {
    limit: Infinity,
  })
  t.true(big.equals(Buffer.concat(Array.from({ length: 5 }, (_, i) => pattern(MiB, i)))))
  pool.release(big)
  balanced(t, pool, 'after')
  pool.close()
})

test('a refusal inside the stream is a rejection with the pool’s own error, never a crash; nothing stays allocated', async (t) => {
  // The body outgrows a small pool while it streams: resize() is refused inside a 'data' event.
  const pool = new Pool({ maxBytes: 2 * MiB, admission: 'cap' })
  const results = []
  const { server, port } = await bodyServer(pool, { limit: 16 * MiB }, (r) => results.push(r))
  const parts = Array.from({ length: 40 }, () => Buffer.alloc(100 * KiB, 3))
  const r1 = await post(port, parts, { 'transfer-encoding': 'chunked' })
  t.is(r1.status, 503)
  t.like(results.pop().err, { code: 'ERR_EXTMEM_EXHAUSTED' })
  balanced(t, pool, 'after the refusal while growing')
  // Announced larger than the pool: refused up front.
  const r2 = await post(port, [Buffer.alloc(3 * MiB)], { 'content-length': 3 * MiB })
  t.is(r2.status, 503)
  t.like(results.pop().err, { code: 'ERR_EXTMEM_EXHAUSTED', requestedBytes: 3 * MiB })
  t.true(pool.stats().refused.cap >= 2)
  balanced(t, pool, 'after the refusal up front')
  server.close()
  pool.close()
})

test('a response body (a client-side IncomingMessage) is read the same way', async (t) => {
  const pool = new Pool({ maxBytes: 64 * MiB })
  const data = pattern(200 * KiB, 9)
  const server = http.createServer((req, res) => res.end(data))
  const port = await listen(server)
  const res = await new Promise((resolve) => http.get({ port, host: '127.0.0.1', agent: false }, resolve))
  const body = await pool.readAll(res)
  t.true(body.equals(data))
  pool.release(body)
  balanced(t, pool, 'after')
  server.close()
  pool.close()
})

test('a stream error rejects with that error, and nothing stays allocated', async (t) => {
  const pool = new Pool({ maxBytes: 64 * MiB })
  const boom = new Error('boom')
  const source = new Readable({ read() {} })
  const reading = pool.readAll(source, { sizeHint: 64 * KiB })
  source.push(Buffer.alloc(50 * KiB, 1))
  await sleep(10)
  t.is(pool.stats().liveBuffers, 1)
  source.destroy(boom)
  t.is(await reading.catch((err) => err), boom)
  balanced(t, pool, 'after')
  pool.close()
})

test('bad arguments reject rather than throw, and so does a pool that is closed', async (t) => {
  const pool = new Pool({ maxBytes: MiB })
  const source = () => Readable.from([Buffer.from('x')])
  for (const [args, code] of [
    [[null], 'ERR_INVALID_ARG_TYPE'],
    [[{}], 'ERR_INVALID_ARG_TYPE'],
    [[source(), { limit: '1' }], 'ERR_INVALID_ARG_TYPE'],
    [[source(), { limit: -1 }], 'ERR_OUT_OF_RANGE'],
    [[source(), { limit: 1.5 }], 'ERR_OUT_OF_RANGE'],
    [[source(), { sizeHint: 0 }], 'ERR_OUT_OF_RANGE'],
    [[source(), { maxBytes: 1 }], 'ERR_INVALID_ARG_VALUE'],
    [[Readable.from(['text'])], 'ERR_INVALID_ARG_TYPE'],
    [[source().setEncoding('utf8')], 'ERR_INVALID_ARG_VALUE'],
  ]) {
    let promise
    t.notThrows(() => (promise = pool.readAll(...args)))
    await t.throwsAsync(promise, { code })
  }
  pool.close()
  await t.throwsAsync(pool.readAll(source()), { code: 'ERR_EXTMEM_CLOSED' })
})

test('an empty stream gives an empty Buffer that needs no release', async (t) => {
  const pool = new Pool({ maxBytes: MiB })
  const body = await pool.readAll(Readable.from([]))
  t.is(body.length, 0)
  t.is(pool.release(body), 0)
  t.is(pool.stats().allocations, 0)
  pool.close()
})

test('an HTTP/2 request body (an Http2Stream) is read the same way', async (t) => {
  const pool = new Pool({ maxBytes: 64 * MiB })
  const data = pattern(700 * KiB, 4)
  const bodies = []
  const server = http2.createServer()
  server.on('stream', (stream) => {
    pool.readAll(stream).then((body) => {
      bodies.push(body)
      stream.respond({ ':status': 200 })
      stream.end(`${body.length}`)
    })
  })
  const port = await listen(server)
  const client = http2.connect(`http://127.0.0.1:${port}`)
  const answer = await new Promise((resolve, reject) => {
    const req = client.request({ ':method': 'POST', ':path': '/' })
    let text = ''
    req.on('data', (d) => (text += d))
    req.on('end', () => resolve(text))
    req.on('error', reject)
    req.write(data.subarray(0, 100000))
    req.end(data.subarray(100000))
  })
  t.is(answer, `${data.length}`)
  t.true(bodies[0].equals(data))
  pool.release(bodies[0])
  balanced(t, pool, 'after')
  client.close()
  server.close()
  pool.close()
})
