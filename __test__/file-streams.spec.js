'use strict'
// Pooled file reading and pipelines: pool.chunks(source) (an async iterable that lends each chunk
// to one loop step), pool.createReadStream(source) (a Readable of pooled chunks) and
// pool.releasing(writable) (a Writable that releases what it writes), on real files, sockets,
// HTTP and zlib. Every test ends with the pool balanced and no test calls gc().

const test = require('ava')
const fs = require('node:fs')
const net = require('node:net')
const http = require('node:http')
const zlib = require('node:zlib')
const { Duplex, PassThrough } = require('node:stream')
const { pipeline } = require('node:stream/promises')
const { once } = require('node:events')
const { Pool } = require('..')
const { tempDir, patternFile, listen, until, openFds, sleep, vanishingClient } = require('./io-helpers')

const KiB = 1024
const MiB = 1024 * KiB

const { dir, cleanup } = tempDir()
test.after.always(cleanup)
// 5 MiB + 123 bytes: the last chunk of any power-of-two chunk size is short.
const { file: FILE, bytes: BYTES } = patternFile(dir, 'data.bin', 5 * MiB + 123, 5)

/** Asserts the pool has nothing out, every loan ended by an explicit release. */
function balanced(t, pool, message) {
  const s = pool.stats()
  t.is(s.liveBuffers, 0, `${message}: liveBuffers`)
  t.is(s.allocations, s.releases, `${message}: allocations = releases`)
  t.is(s.gcReclaims, 0, `${message}: nothing left to the GC`)
}

/**
 * Node 20's pipeline() may call back before all its stages have closed (when one fails while the
 * source has a file read in flight, say; Node 22 waits for them): there the chunks those stages
 * still hold go back a moment later, at their reads' or writes' callbacks. Waits for that (without
 * a GC) on Node 20 only.
 */
async function settledOnNode20(pool) {
  if (process.versions.node.split('.')[0] === '20') await until(() => pool.stats().liveBuffers === 0)
}

/** A loopback sink: resolves `{ port, received() (bytes so far), done (promise of all bytes) }`. */
async function sink({ pauseFirst = false } = {}) {
  let conn
  const parts = []
  let total = 0
  let resolveDone
  const done = new Promise((resolve) => (resolveDone = resolve))
  const server = net.createServer((sock) => {
    conn = sock
    sock.on('error', () => {})
    if (pauseFirst) sock.pause()
    sock.on('data', (d) => {
      parts.push(d)
      total += d.length
    })
    sock.on('close', () => {
      server.close()
      resolveDone(Buffer.concat(parts))
    })
  })
  const port = await listen(server)
  return { port, received: () => total, done, conn: () => conn }
}

test('chunks() reads a path, a FileHandle and an fd; each chunk is pooled, the last one too, at its exact length', async (t) => {
  const pool = new Pool({ maxBytes: 64 * MiB })
  const handle = await fs.promises.open(FILE, 'r')
  const fd = fs.openSync(FILE, 'r')
  for (const [name, source] of [
    ['path', FILE],
    ['FileHandle', handle],
    ['fd', fd],
  ]) {
    const parts = []
    let previous = null
    for await (const chunk of pool.chunks(source, { chunkSize: MiB, start: 0 })) {
      t.true(pool.isPooled(chunk), `${name}: a chunk is a pooled Buffer, not a view`)
      t.is(pool.refCount(chunk), 1)
      if (previous !== null) t.is(previous.length, 0, `${name}: the previous chunk was released`)
      parts.push(Buffer.from(chunk))
      previous = chunk
    }
    t.is(previous.length, 0, `${name}: the last chunk was released when the loop ended`)
    t.deepEqual(
      parts.map((p) => p.length),
      [MiB, MiB, MiB, MiB, MiB, 123],
    )
    t.true(Buffer.concat(parts).equals(BYTES), `${name}: the bytes`)
    balanced(t, pool, name)
  }
  t.is(handle.fd > 0, true, 'a FileHandle it was given stays open')
  await handle.close()
  fs.closeSync(fd)
  pool.close()
})

test('chunks() and createReadStream() read the same range as fs.createReadStream({ start, end })', async (t) => {
  const pool = new Pool({ maxBytes: 64 * MiB })
  for (const range of [{}, { start: 10 }, { end: 0 }, { start: 5000, end: 70000 }, { start: 5 * MiB + 200 }]) {
    const expected = []
    for await (const c of fs.createReadStream(FILE, range)) expected.push(c)
    const fromChunks = []
    for await (const c of pool.chunks(FILE, { ...range, chunkSize: 64 * KiB })) fromChunks.push(Buffer.from(c))
    const fromStream = []
    for await (const c of pool.createReadStream(FILE, { ...range, chunkSize: 64 * KiB })) {
      fromStream.push(Buffer.from(c))
      pool.release(c) // a chunk read from the stream is the reader's
    }
    const want = Buffer.concat(expected)
    t.true(Buffer.concat(fromChunks).equals(want), `chunks ${JSON.stringify(range)}`)
    t.true(Buffer.concat(fromStream).equals(want), `createReadStream ${JSON.stringify(range)}`)
  }
  balanced(t, pool, 'after')
  pool.close()
})

test('a chunk the loop retained outlives its step; the loop only drops its own reference', async (t) => {
  const pool = new Pool({ maxBytes: 64 * MiB })
  const kept = []
  for await (const chunk of pool.chunks(FILE, { chunkSize: 2 * MiB })) {
    pool.retain(chunk)
    kept.push(chunk)
  }
  t.is(kept.length, 3)
  t.true(Buffer.concat(kept).equals(BYTES))
  for (const c of kept) t.is(pool.release(c), 0)
  balanced(t, pool, 'after')
  pool.close()
})

test('a loop that hands each chunk to writeAndRelease() moves on at once: every frame arrives, each released once', async (t) => {
  const pool = new Pool({ maxBytes: 64 * MiB })
  const warnings = []
  const onWarning = (w) => warnings.push(w)
  process.on('warning', onWarning)
  // The reader starts late, so the writes queue in the socket with the chunks' memory: a chunk
  // released early would be lent to the next one, and its bytes sent twice.
  const { port, done, conn } = await sink({ pauseFirst: true })
  setTimeout(() => conn().resume(), 100)
  const sock = net.connect(port, '127.0.0.1')
  await once(sock, 'connect')
  const errors = []
  let sent = 0
  for await (const chunk of pool.chunks(FILE, { chunkSize: 256 * KiB })) {
    sent++
    if (!pool.writeAndRelease(sock, chunk, (err) => errors.push(err))) await once(sock, 'drain')
  }
  sock.end()
  const received = await done
  await until(() => errors.length === sent)
  process.off('warning', onWarning)
  t.true(received.equals(BYTES))
  t.deepEqual(
    errors.filter((e) => e != null),
    [],
    'no write or release failed',
  )
  t.deepEqual(warnings, [])
  balanced(t, pool, 'after')
  pool.close()
})

test.serial('break, throw and return end the loop with the current chunk released and the file closed', async (t) => {
  const pool = new Pool({ maxBytes: 64 * MiB })
  const fds = openFds()
  let held
  for await (const chunk of pool.chunks(FILE, { chunkSize: MiB })) {
    held = chunk
    break
  }
  t.is(held.length, 0)
  await t.throwsAsync(
    (async () => {
      for await (const chunk of pool.chunks(FILE)) {
        held = chunk
        throw new Error('stop')
      }
    })(),
    { message: 'stop' },
  )
  t.is(held.length, 0)
  const first = await (async () => {
    for await (const chunk of pool.chunks(FILE)) return chunk.length
  })()
  t.is(first, 64 * KiB)
  if (fds >= 0) t.is(openFds(), fds, 'the files it opened are closed')
  balanced(t, pool, 'after')
  pool.close()
})

test.serial(
  'a refusal while reading chunks rejects the loop with the pool’s error, and the file is closed',
  async (t) => {
    const pool = new Pool({ maxBytes: 2 * MiB, admission: 'cap' })
    const fds = openFds()
    const err = await (async () => {
      for await (const chunk of pool.chunks(FILE, { chunkSize: 4 * MiB })) t.fail(`got ${chunk.length}`)
    })().catch((e) => e)
    t.is(err.code, 'ERR_EXTMEM_EXHAUSTED')
    if (fds >= 0) t.is(openFds(), fds)
    balanced(t, pool, 'after')
    pool.close()
  },
)

test('bad sources and options throw at the call', (t) => {
  const pool = new Pool({ maxBytes: MiB })
  for (const method of ['chunks', 'createReadStream']) {
    t.throws(() => pool[method]({}), { code: 'ERR_INVALID_ARG_TYPE' })
    t.throws(() => pool[method](-1), { code: 'ERR_OUT_OF_RANGE' })
    t.throws(() => pool[method](FILE, { chunkSize: 0 }), { code: 'ERR_OUT_OF_RANGE' })
    t.throws(() => pool[method](FILE, { start: 10, end: 5 }), { code: 'ERR_OUT_OF_RANGE' })
    t.throws(() => pool[method](FILE, { begin: 1 }), { code: 'ERR_INVALID_ARG_VALUE' })
  }
  t.throws(() => pool.releasing(null), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => pool.releasing({ write() {} }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => pool.releasing(new PassThrough(), { end: 'yes' }), { code: 'ERR_INVALID_ARG_TYPE' })
  pool.close()
})

test('pipeline(createReadStream(file), releasing(socket)) sends the file and releases every chunk', async (t) => {
  const pool = new Pool({ maxBytes: 64 * MiB })
  const { port, done } = await sink()
  const sock = net.connect(port, '127.0.0.1')
  await once(sock, 'connect')
  await pipeline(pool.createReadStream(FILE), pool.releasing(sock))
  balanced(t, pool, 'when the pipeline resolves')
  t.true((await done).equals(BYTES))
  pool.close()
})

test('a pipeline aborted half way leaves no chunk live after its callback, without a GC', async (t) => {
  const { file: big, bytes } = patternFile(dir, 'abort.bin', 24 * MiB, 3)
  for (const how of ['peer reset', 'AbortSignal', 'source error']) {
    const pool = new Pool({ maxBytes: 64 * MiB })
    const { port, received, conn } = await sink({ pauseFirst: true })
    const sock = net.connect(port, '127.0.0.1')
    sock.on('error', () => {})
    await once(sock, 'connect')
    const ac = new AbortController()
    const source = pool.createReadStream(big, { chunkSize: 256 * KiB, highWaterMark: 4 })
    const running = pipeline(source, pool.releasing(sock), { signal: ac.signal })
    // Chunks pile up everywhere: in the source's buffer, in flight on the socket, queued behind it.
    await until(() => pool.stats().liveBuffers >= 4)
    conn().resume()
    await until(() => received() > 2 * MiB)
    conn().pause()
    await sleep(20)
    t.true(pool.stats().liveBuffers > 0, `${how}: chunks are out when it is cut`)
    if (how === 'peer reset') conn().resetAndDestroy()
    else if (how === 'AbortSignal') ac.abort()
    else source.destroy(new Error('disk gone'))
    const err = await running.catch((e) => e)
    t.truthy(err, `${how}: the pipeline failed`)
    await settledOnNode20(pool)
    balanced(t, pool, `${how}: at the pipeline's callback`)
    t.true(received() < bytes.length, `${how}: cut half way`)
    conn().destroy()
    pool.close()
  }
})

test('a refusal inside a pooled stream fails its pipeline with the pool’s error: no crash, nothing live', async (t) => {
  const pool = new Pool({ maxBytes: 3 * MiB, admission: 'cap' })
  const { port, conn } = await sink()
  const sock = net.connect(port, '127.0.0.1')
  sock.on('error', () => {})
  await once(sock, 'connect')
  // Two 1 MiB chunks fit, a third, read ahead while the others are out, does not.
  conn().pause()
  const err = await pipeline(
    pool.createReadStream(FILE, { chunkSize: MiB, highWaterMark: 4 }),
    pool.releasing(sock),
  ).catch((e) => e)
  t.is(err?.code, 'ERR_EXTMEM_EXHAUSTED')
  await settledOnNode20(pool)
  balanced(t, pool, 'at the callback')
  conn().destroy() // paused, it would not see its peer go
  pool.close()
})

test('an HTTP server sends a file with pipeline(…, releasing(res)); a client gone half way leaves nothing live', async (t) => {
  const pool = new Pool({ maxBytes: 64 * MiB })
  const outcomes = []
  const server = http.createServer((req, res) => {
    pipeline(pool.createReadStream(FILE, { chunkSize: 128 * KiB }), pool.releasing(res))
      .then(
        () => ({ ok: true }),
        (err) => ({ err }),
      )
      .then(async (outcome) => {
        await settledOnNode20(pool)
        outcomes.push({ ...outcome, stats: pool.stats() })
      })
  })
  const port = await listen(server)
  const whole = await new Promise((resolve) =>
    http.get({ port, host: '127.0.0.1', agent: false }, (res) => {
      const parts = []
      res.on('data', (d) => parts.push(d))
      res.on('end', () => resolve(Buffer.concat(parts)))
    }),
  )
  t.true(whole.equals(BYTES))
  await until(() => outcomes.length === 1)
  t.true(outcomes[0].ok)
  t.is(outcomes[0].stats.liveBuffers, 0, 'nothing live when the pipeline resolved')

  await vanishingClient(port, MiB)
  await until(() => outcomes.length === 2)
  t.truthy(outcomes[1].err)
  t.is(outcomes[1].stats.liveBuffers, 0, 'nothing live when the pipeline failed')
  balanced(t, pool, 'after')
  server.close()
  pool.close()
})

test('releasing(fs.WriteStream) copies a file; other chunks pass through unreleased; views release their Buffer', async (t) => {
  const pool = new Pool({ maxBytes: 64 * MiB })
  const out = `${FILE}.copy`
  await pipeline(pool.createReadStream(FILE, { chunkSize: 300 * KiB }), pool.releasing(fs.createWriteStream(out)))
  t.true(fs.readFileSync(out).equals(BYTES))
  balanced(t, pool, 'after the copy')

  const target = new PassThrough()
  const parts = []
  target.on('data', (d) => parts.push(Buffer.from(d)))
  const stage = pool.releasing(target)
  const own = pool.allocUnsafe(100).fill(1)
  stage.write(Buffer.from('node'))
  stage.write(own.subarray(0, 10))
  stage.end()
  await once(stage, 'close')
  t.is(own.length, 0, 'the Buffer the view lay in was released')
  t.deepEqual(parts[0], Buffer.from('node'))
  t.deepEqual(parts[1], Buffer.alloc(10, 1), 'its flowing reader had the bytes before the release')
  balanced(t, pool, 'after')
  pool.close()
})

test('releasing(writable, { end: false }) leaves the writable open', async (t) => {
  const pool = new Pool({ maxBytes: 64 * MiB })
  const { port, done } = await sink()
  const sock = net.connect(port, '127.0.0.1')
  await once(sock, 'connect')
  await pipeline(pool.createReadStream(FILE, { end: MiB - 1 }), pool.releasing(sock, { end: false }))
  t.false(sock.writableEnded)
  await pipeline(pool.createReadStream(FILE, { start: MiB }), pool.releasing(sock))
  t.true((await done).equals(BYTES))
  balanced(t, pool, 'after')
  pool.close()
})

test('compression: a chunk is released when zlib calls its write back, after its thread-pool work, also when aborted', async (t) => {
  const pool = new Pool({ maxBytes: 64 * MiB })
  const gzipStage = () => {
    const gzip = zlib.createGzip({ level: 1 })
    return Duplex.from({ writable: pool.releasing(gzip), readable: gzip })
  }
  const parts = []
  await pipeline(pool.createReadStream(FILE), gzipStage(), async function (source) {
    for await (const c of source) parts.push(c)
  })
  t.true(zlib.gunzipSync(Buffer.concat(parts)).equals(BYTES))
  balanced(t, pool, 'after a whole file')

  // Aborted while zlib works on an 8 MiB chunk in the thread pool: zlib emits 'close' first, and
  // the chunk stays live until zlib's work on it ends.
  const { file: big } = patternFile(dir, 'big.bin', 8 * MiB, 9)
  const gzip = zlib.createGzip({ level: 9 })
  let liveAtClose = -1
  gzip.on('close', () => (liveAtClose = pool.stats().liveBuffers))
  const ac = new AbortController()
  const running = pipeline(
    pool.createReadStream(big, { chunkSize: 8 * MiB }),
    Duplex.from({ writable: pool.releasing(gzip), readable: gzip }),
    async function* (source) {
      for await (const c of source) yield c
    },
    { signal: ac.signal },
  ).catch((e) => e)
  await until(() => pool.stats().liveBuffers === 1 && gzip.bytesWritten === 0)
  await sleep(5)
  ac.abort()
  t.is((await running).name, 'AbortError')
  t.true(liveAtClose >= 0, 'zlib closed')
  await until(() => pool.stats().liveBuffers === 0, 10000)
  balanced(t, pool, 'once zlib called back')
  t.log(`live chunks at zlib's 'close': ${liveAtClose}`)
  pool.close()
})

test('a chunk a reader takes from createReadStream() is the reader’s; those still in its buffer go back when it is destroyed', async (t) => {
  const pool = new Pool({ maxBytes: 64 * MiB })
  const stream = pool.createReadStream(FILE, { chunkSize: 256 * KiB, highWaterMark: 8 })
  stream.read(0) // starts reading ahead
  await until(() => stream.readableLength === 8)
  t.is(pool.stats().liveBuffers, 8)
  const taken = stream.read()
  t.is(taken.length, 256 * KiB)
  stream.destroy()
  await once(stream, 'close')
  t.is(pool.stats().liveBuffers, 1, 'only the chunk the reader took is out')
  t.true(taken.equals(BYTES.subarray(0, 256 * KiB)))
  pool.release(taken)
  balanced(t, pool, 'after')
  pool.close()
})
