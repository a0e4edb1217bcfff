'use strict'
// new Pool({ quarantine }): released memory is filled with a poison byte and not lent again before
// `releases` later releases of its size and `ms` have passed; native code that still uses it after
// its release reads the poison (never the next owner's bytes), and a write into it is reported as
// a 'misuse' with the allocation's and the release's stacks. On real sockets, pipes and files.

const test = require('ava')
const fs = require('node:fs')
const net = require('node:net')
const path = require('node:path')
const { once } = require('node:events')
const { execFileSync } = require('node:child_process')
const diagnostics = require('node:diagnostics_channel')
const { Pool, codes } = require('..')
const { tempDir, listen, until, sleep } = require('./io-helpers')

const KiB = 1024
const MiB = 1024 * KiB
const POISON = 0xdd

test('the option: true means 256 releases and 100 ms; an object sets either; bad values are refused', (t) => {
  t.is(new Pool().quarantine, null)
  t.deepEqual(new Pool({ quarantine: true }).quarantine, { releases: 256, ms: 100 })
  t.deepEqual(new Pool({ quarantine: { ms: 5 } }).quarantine, { releases: 256, ms: 5 })
  t.deepEqual(new Pool({ quarantine: { releases: 0, ms: 0 } }).quarantine, { releases: 0, ms: 0 })
  t.is(new Pool({ quarantine: false }).quarantine, null)
  t.throws(() => new Pool({ quarantine: 'yes' }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => new Pool({ quarantine: { releases: -1 } }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => new Pool({ quarantine: { ms: 1.5 } }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => new Pool({ quarantine: { ms: '1' } }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => new Pool({ quarantine: { delay: 1 } }), { code: 'ERR_INVALID_ARG_VALUE' })
})

test('allocFast() is refused with a coded error; alloc() works as ever', (t) => {
  const pool = new Pool({ quarantine: true })
  t.throws(() => pool.allocFast(64), { code: codes.ERR_EXTMEM_QUARANTINE })
  const buf = pool.alloc(64)
  t.is(buf.length, 64)
  t.true(buf.every((b) => b === 0))
  pool.release(buf)
  pool.close()
})

for (const size of [100, 8 * KiB, 100 * KiB]) {
  test(`${size} B: memory is held until both enough later releases and enough time have passed`, async (t) => {
    const pool = new Pool({ quarantine: { releases: 8, ms: 150 }, leakDetection: 'off' })
    const first = pool.allocUnsafe(size)
    const address = pool.addressOf(first)
    pool.release(first)
    let s = pool.stats()
    t.is(s.quarantinedBuffers, 1)
    t.true(s.quarantinedBytes >= size)
    t.is(s.inUseBytes, 0)
    t.true(s.reservedBytes >= s.quarantinedBytes, 'quarantined bytes stay reserved')
    // Many releases of the size, at once: none of them may hand the first memory out again
    // before 150 ms.
    const started = Date.now()
    const seen = new Set()
    for (let i = 0; i < 40; i++) {
      const held = []
      for (let k = 0; k < 4; k++) held.push(pool.allocUnsafe(size))
      for (const b of held) {
        seen.add(pool.addressOf(b))
        pool.release(b)
      }
    }
    if (Date.now() - started < 150) t.false(seen.has(address), 'lent again before its time')
    // Time alone is not enough either: another size's releases do not count.
    await sleep(200)
    const other = pool.allocUnsafe(size * 2 + 1)
    t.not(pool.addressOf(other), address)
    pool.release(other)
    s = pool.stats()
    t.true(s.quarantinedBuffers >= 1)
    // Now one release of the size lets everything old enough leave; the memory comes back.
    const last = pool.allocUnsafe(size)
    pool.release(last)
    await until(() => {
      const bufs = Array.from({ length: 40 }, () => pool.allocUnsafe(size))
      const back = bufs.some((b) => pool.addressOf(b) === address)
      for (const b of bufs) pool.release(b)
      return back
    })
    t.is(pool.stats().misuses, 0)
    pool.close()
    t.is(pool.stats().quarantinedBuffers, 0, 'close() empties the quarantine')
  })
}

test('the quarantine gives way at the cap: an allocation that fits once it is emptied succeeds', (t) => {
  const pool = new Pool({ maxBytes: 8 * MiB, admission: 'cap', quarantine: { releases: 1000, ms: 60_000 } })
  for (let i = 0; i < 6; i++) pool.release(pool.allocUnsafe(MiB))
  t.true(pool.stats().quarantinedBytes >= 6 * MiB)
  const big = pool.allocUnsafe(6 * MiB)
  t.is(big.length, 6 * MiB)
  t.true(pool.stats().quarantinedBytes < 6 * MiB)
  t.is(pool.stats().refused.cap, 0)
  pool.release(big)
  pool.close()
})

test('a write queued before the release lands in quarantined memory and is reported with both stacks', async (t) => {
  if (process.platform === 'win32') return t.pass('no FIFOs')
  const { dir, cleanup } = tempDir()
  const fifo = path.join(dir, 'fifo')
  execFileSync('mkfifo', [fifo])
  const pool = new Pool({ quarantine: { releases: 1, ms: 0 }, leakDetection: 'off' })
  const misuses = []
  const published = []
  pool.on('misuse', (m) => misuses.push(m))
  const onPublish = (m) => published.push(m)
  diagnostics.subscribe('extmem:misuse', onPublish)
  try {
    const buf = allocateForTheRead(pool)
    // Both ends of the FIFO open (the read end in the thread pool, which waits for a writer).
    const opening = fs.promises.open(fifo, 'r')
    const writer = fs.openSync(fifo, 'w')
    const reader = await opening
    // The read waits in the thread pool for bytes, holding the Buffer's address.
    const read = new Promise((resolve, reject) => {
      fs.read(reader.fd, buf, 0, 64, null, (err, n) => (err ? reject(err) : resolve(n)))
    })
    await sleep(50)
    releaseTheBuffer(pool, buf)
    t.is(buf.length, 0, 'detached')
    fs.writeSync(writer, Buffer.from('late bytes from a native writer'))
    fs.closeSync(writer)
    t.true((await read) > 0)
    await reader.close()
    // The next release of its size lets it leave: the write is found.
    pool.release(pool.allocUnsafe(256))
    await until(() => misuses.length === 1)
    const [m] = misuses
    t.is(m.size, 256)
    t.is(m.label, pool.label)
    t.is(m.offset, 0)
    t.is(typeof m.address, 'bigint')
    t.regex(m.allocationStack, /allocateForTheRead/)
    t.regex(m.releaseStack, /releaseTheBuffer/)
    t.is(published.length, 1)
    t.is(published[0].pool, pool)
    t.is(pool.stats().misuses, 1)
  } finally {
    diagnostics.unsubscribe('extmem:misuse', onPublish)
    pool.close()
    cleanup()
  }
})

function allocateForTheRead(pool) {
  return pool.allocUnsafe(256)
}

function releaseTheBuffer(pool, buf) {
  pool.release(buf)
}

test('released while a socket write is in progress: the peer gets its bytes or the poison, never the next owner', async (t) => {
  const SIZE = 16 * MiB
  const pool = new Pool({ maxBytes: 512 * MiB, quarantine: true, leakDetection: 'off' })
  const server = net.createServer()
  const port = await listen(server)
  const accepted = once(server, 'connection')
  const client = net.connect(port, '127.0.0.1')
  await once(client, 'connect')
  const [peer] = await accepted
  peer.pause() // the peer reads nothing yet: the write stays in progress
  try {
    const buf = pool.allocUnsafe(SIZE)
    buf.fill(0x41)
    client.write(buf)
    t.true(client.writableLength > 0, 'the write is still in progress')
    pool.release(buf) // too early: the socket still reads the memory
    // The memory's next owners, if it were lent again.
    for (let i = 0; i < 8; i++) {
      const next = pool.allocUnsafe(SIZE)
      next.fill(0x42)
      pool.release(next)
    }
    client.end()
    const counts = new Map()
    let total = 0
    peer.on('data', (chunk) => {
      total += chunk.length
      for (const byte of new Set(chunk)) counts.set(byte, (counts.get(byte) ?? 0) + 1)
    })
    peer.resume()
    await once(peer, 'end')
    t.is(total, SIZE)
    t.false(counts.has(0x42), "another owner's bytes reached the peer")
    t.deepEqual(
      [...counts.keys()].filter((b) => b !== 0x41 && b !== POISON),
      [],
    )
    t.true(counts.has(POISON), 'the rest of the write read the poison')
  } finally {
    client.destroy()
    peer.destroy()
    server.close()
    pool.close()
  }
})

test('EXTMEM_QUARANTINE=1 gives the default pool a quarantine', (t) => {
  const out = execFileSync(
    process.execPath,
    ['-e', "const x = require('.'); console.log(JSON.stringify(x.defaultPool.quarantine))"],
    { cwd: path.join(__dirname, '..'), env: { ...process.env, EXTMEM_QUARANTINE: '1' } },
  )
  t.deepEqual(JSON.parse(out), { releases: 256, ms: 100 })
  t.throws(
    () =>
      execFileSync(process.execPath, ['-e', "require('.')"], {
        cwd: path.join(__dirname, '..'),
        env: { ...process.env, EXTMEM_QUARANTINE: 'maybe' },
        stdio: 'pipe',
      }),
    { message: /EXTMEM_QUARANTINE/ },
  )
})

test('a named pool keeps its quarantine for every Pool object of its name, and a mismatch is refused', (t) => {
  const name = `quarantine-${process.pid}-${Date.now()}`
  const a = new Pool({ name, quarantine: true })
  const b = new Pool({ name })
  t.deepEqual(b.quarantine, { releases: 256, ms: 100 })
  t.throws(() => b.allocFast(8), { code: codes.ERR_EXTMEM_QUARANTINE })
  t.throws(() => new Pool({ name, quarantine: false }), { code: 'ERR_EXTMEM_OPTIONS_MISMATCH' })
  const buf = b.allocUnsafe(64)
  b.release(buf)
  t.is(a.stats().quarantinedBuffers, 1)
})
