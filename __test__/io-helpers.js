'use strict'
// Helpers for the I/O lifetime tests: temporary files with a known pattern, loopback servers, a
// self-signed certificate made at test time, and waiting for a condition without a GC.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const net = require('node:net')
const { once } = require('node:events')
const { execFileSync } = require('node:child_process')
const { setTimeout: sleep } = require('node:timers/promises')

/** A new temporary directory, removed by `cleanup()`. */
function tempDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'extmem-io-'))
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

/** `size` bytes of a pattern that differs at every offset of a 251-byte cycle, seeded by `seed`. */
function pattern(size, seed = 1) {
  const buf = Buffer.allocUnsafe(size)
  for (let i = 0; i < size; i++) buf[i] = (i * 31 + seed * 17 + (i >> 8)) % 251
  return buf
}

/** Writes `pattern(size, seed)` to a new file in `dir`; returns its path and bytes. */
function patternFile(dir, name, size, seed = 1) {
  const bytes = pattern(size, seed)
  const file = path.join(dir, name)
  fs.writeFileSync(file, bytes)
  return { file, bytes }
}

/** Starts `server` on a free loopback port; resolves with the port. */
async function listen(server) {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return server.address().port
}

/** Polls `done()` every few ms (no GC) until it is true or `ms` pass; returns done(). */
async function until(done, ms = 5000) {
  const end = Date.now() + ms
  while (!done() && Date.now() < end) await sleep(5)
  return done()
}

/**
 * A self-signed certificate for 127.0.0.1 (`{ key, cert }`), made with openssl at test time; null
 * where openssl is not on PATH.
 */
function selfSignedCert() {
  const { dir, cleanup } = tempDir()
  try {
    const key = path.join(dir, 'key.pem')
    const cert = path.join(dir, 'cert.pem')
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'pipe' },
    )
    return { key: fs.readFileSync(key), cert: fs.readFileSync(cert) }
  } catch (err) {
    if (err.code === 'ENOENT') return null
    throw err
  } finally {
    cleanup()
  }
}

/** The number of file descriptors this process has open (Linux), or -1 where it cannot tell. */
function openFds() {
  try {
    return fs.readdirSync('/proc/self/fd').length
  } catch {
    return -1
  }
}

/**
 * A client on loopback `port` that asks for `/` and vanishes (TCP reset) once it has read more
 * than `bytes` of the response: a peer gone mid-write.
 */
async function vanishingClient(port, bytes) {
  const sock = net.connect(port, '127.0.0.1')
  sock.on('error', () => {})
  await once(sock, 'connect')
  sock.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n')
  let got = 0
  sock.on('data', (d) => {
    got += d.length
    if (got > bytes) sock.resetAndDestroy()
  })
  return sock
}

module.exports = { tempDir, pattern, patternFile, listen, until, selfSignedCert, openFds, sleep, vanishingClient }
