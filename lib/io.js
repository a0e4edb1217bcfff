'use strict'
// Buffer lifetimes in Node's I/O: helpers that release pooled Buffers exactly when a stream can no
// longer read their memory, built on the public Pool API (release, resize, refCount, …) and adding
// nothing to the allocation path. The design notes, as Node's streams make them necessary:
//
// - A write's own callback is the one moment a Writable says it is done with a chunk: Node calls
//   it (with an error) also when the stream is destroyed first, after native work on the chunk (a
//   socket write in flight, zlib's thread-pool work) has ended. 'close' and 'error' are not that
//   moment: an HTTP response, an HTTP/2 stream on Node 20 and 22, and zlib emit 'close' before
//   some callbacks. So every release here happens in a write's callback, with two exceptions
//   where Node drops the callback and never reads the chunk (see writeOutgoing): an
//   OutgoingMessage whose socket is already destroyed, and chunks an OutgoingMessage still
//   queues in JavaScript when it closes.
// - Ownership moves with a chunk. pool.chunks() lends each chunk to one step of its loop and takes
//   it back at the next, unless the step retained it or handed its reference to a write that
//   releases it (writeAndRelease, releasing): `claims` counts those references while the chunk is
//   lent, so a loop may write a chunk and move on. pool.createReadStream() owns the chunks in its own buffer and gives
//   each to whoever reads it; pool.releasing() takes over what it is written.

const fs = require('node:fs')
const { isUint8Array } = require('node:util/types')
const { OutgoingMessage, ServerResponse } = require('node:http')
const { Readable, Writable, finished } = require('node:stream')
const {
  constants: { MAX_LENGTH },
} = require('node:buffer')
const errors = require('./errors')
const { ownerOf, ownerFor, isBuffer } = require('./views')
const { PooledBuffer } = require('./pooled-buffer')
const { lengthOf } = require('./intrinsics')
const { validateOptions } = require('./validate')

const { call, bind } = Function.prototype
const uncurry = bind.bind(call)
/** `target.set(source, offset)` of typed arrays, as it was at load. */
const typedArraySet = uncurry(Object.getPrototypeOf(Uint8Array.prototype).set)

const KiB = 1024
const MiB = 1024 * KiB
/** readAll's default limit: bodies past it are refused (`limit: Infinity` lifts it). */
const DEFAULT_LIMIT = MiB
/** readAll's first Buffer for a stream that does not say how long it is. */
const FIRST_GUESS = 16 * KiB
/** Bytes per chunk of chunks() and createReadStream(), as fs.createReadStream reads. */
const DEFAULT_CHUNK = 64 * KiB
/** Chunks createReadStream() reads ahead of its reader. */
const DEFAULT_READ_AHEAD = 2

// ---------------------------------------------------------------------------------------------
// References handed to writes in flight

/** Chunks that chunks() has lent to a loop step still under way. */
const lent = new WeakSet()
/** Lent chunk -> references that writes in flight took over from its loop step and will release. */
const claims = new WeakMap()

/** Counts a write's reference on `owner` if it is a lent chunk (any other needs no count). */
function claim(owner) {
  if (lent.has(owner)) claims.set(owner, (claims.get(owner) ?? 0) + 1)
}

function unclaim(owner) {
  const n = claims.get(owner)
  if (n === undefined) return
  if (n <= 1) claims.delete(owner)
  else claims.set(owner, n - 1)
}

/**
 * Drops the reference a loop step had on `chunk` (see chunks()): nothing if the step released,
 * resized or shared it, or handed every reference it holds to writes that will release them.
 */
function dropLent(pool, chunk) {
  lent.delete(chunk)
  if (lengthOf(chunk) === 0) return
  const pending = claims.get(chunk)
  if (pending !== undefined && pool.refCount(chunk) <= pending) return
  pool.release(chunk)
}

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * Writes `buf` (a pooled Buffer or a view of one) to `writable` and releases its owner once the
 * stream can no longer read it; `onReleased()` runs right after that release, `callback(err)`
 * after it with the write's error (or the release's). The caller has claimed the owner's reference.
 * Returns what write() returns.
 */
function sendReleasing(pool, writable, buf, owner, callback, onReleased) {
  let done = false
  /** Releases `owner` (once); then, unless `silent`, calls `callback(err)`. */
  function release(err, silent = false) {
    if (done) return
    done = true
    unclaim(owner)
    let failure = null
    try {
      pool.release(owner)
    } catch (e) {
      failure = e
    }
    if (onReleased !== undefined) onReleased()
    if (silent) return
    if (failure !== null && err == null) err = failure
    if (callback !== undefined) callback(err)
    else if (failure !== null) process.emitWarning(failure)
  }
  if (writable instanceof OutgoingMessage) return writeOutgoing(writable, buf, release, callback)
  try {
    return writable.write(buf, release)
  } catch (err) {
    // Refused before it was taken (a type the stream does not accept): no callback will come.
    release(null, true)
    throw err
  }
}

/** OutgoingMessage (ServerResponse, ClientRequest) -> its writes still queued in JavaScript. */
const queuedWrites = new WeakMap()

/**
 * An HTTP/1 message's write. Node calls a write's callback when the socket has the bytes, but in
 * three cases it never calls it, and never passes the chunk to the socket either:
 * - the socket is already destroyed and the message not yet (Node 20 and 22): nothing is written
 *   here, the callback gets ERR_STREAM_DESTROYED;
 * - a response queued behind another on its connection (HTTP pipelining) keeps its writes in
 *   JavaScript and drops them, with no 'close', if the connection dies first: it gets a copy, and
 *   the pooled Buffer is released at once;
 * - a message destroyed while its writes wait in JavaScript for a socket (a request waiting for
 *   one of its agent's sockets, or written before it had one): writes still queued when it emits
 *   'close' were never handed to a socket, and are released then.
 */
function writeOutgoing(msg, buf, release, callback) {
  const socket = msg.socket
  if (msg.destroyed || socket?.destroyed === true) {
    process.nextTick(release, errors.streamDestroyed('write'))
    return false
  }
  if (socket == null && msg instanceof ServerResponse && !msg.writableEnded) {
    const copy = Buffer.allocUnsafe(lengthOf(buf))
    typedArraySet(copy, buf, 0)
    release(null)
    return msg.write(copy, callback)
  }
  let ret
  try {
    ret = msg.write(buf, release)
  } catch (err) {
    release(null, true)
    throw err
  }
  if (isQueued(msg, buf, 4)) {
    let queued = queuedWrites.get(msg)
    if (queued === undefined) {
      queued = new Map()
      queuedWrites.set(msg, queued)
      msg.once('close', () => {
        queuedWrites.delete(msg)
        for (const [chunk, releaseIt] of queued) {
          if (isQueued(msg, chunk, Infinity)) releaseIt(errors.streamDestroyed('write'))
        }
      })
    }
    queued.set(buf, release)
  }
  return ret
}

/** Whether `buf` is among the last `depth` writes `msg` keeps in JavaScript (its `outputData`). */
function isQueued(msg, buf, depth) {
  const queue = msg.outputData
  if (!Array.isArray(queue)) return false
  for (let i = queue.length - 1; i >= 0 && i >= queue.length - depth; i--) {
    if (queue[i]?.data === buf) return true
  }
  return false
}

/** `pool.writeAndRelease(writable, buf[, callback])`. */
function writeAndRelease(writable, buf, callback) {
  validateWritable(writable, 'writable', writeAndRelease)
  if (callback !== undefined && typeof callback !== 'function')
    throw errors.invalidArgType('callback', 'of type function', callback, writeAndRelease)
  const owner = liveOwner(this, buf, writeAndRelease)
  claim(owner)
  return sendReleasing(this, writable, buf, owner, callback, undefined)
}

/** The owner of `buf` in `pool`, which must hold a reference; or the error release() gives. */
function liveOwner(pool, buf, caller) {
  const owner = ownerFor(pool, buf, caller)
  // A live Buffer of this Pool object, or alloc(0)'s, needs no native call: refCount() would make
  // a loan of the thread cache an ordinary one, and its release slower.
  if (isOwnLive(pool, owner) || PooledBuffer.tokenOf(owner) === null) return owner
  let refs
  try {
    refs = pool.refCount(owner)
  } catch (err) {
    Error.captureStackTrace(err, caller)
    throw err
  }
  if (!(refs > 0)) throw errors.released(caller)
  return owner
}

/** Whether `owner` (a PooledBuffer) is attached and was made by the Pool object `pool`. */
function isOwnLive(pool, owner) {
  return lengthOf(owner) !== 0 && PooledBuffer.originOf(owner).pool.deref() === pool
}

function validateWritable(writable, name, caller) {
  if (writable === null || typeof writable !== 'object' || typeof writable.write !== 'function')
    throw errors.invalidArgType(name, 'a writable stream', writable, caller)
}

/**
 * `pool.releasing(writable[, { end }])`: a Writable that writes each chunk to `writable` and
 * releases the pool's Buffers (and views of them) in that write's callback; other chunks are
 * written as they are. With `end` (default true) it ends `writable` when it finishes and destroys
 * it when it is destroyed before that, as pipeline() would do to `writable` itself.
 */
class ReleasingWritable extends Writable {
  #pool
  #target
  #end
  /** Chunk -> owners of the pool's chunks accepted by write() and not yet handed to the target. */
  #held = new Map()
  /** Writes handed to the target and not yet called back. */
  #inFlight = 0
  /** Runs when #inFlight drops to 0 (while _final or _destroy waits). */
  #onIdle = null
  #targetClosed = false
  #stopWatching
  /** Undoes the wait for 'drain' of the write in progress. */
  #unwaitDrain = null

  constructor(pool, target, end) {
    super({ objectMode: true, highWaterMark: 1 })
    this.#pool = pool
    this.#target = target
    this.#end = end
    this.#targetClosed = target.closed === true
    const onClose = () => {
      this.#targetClosed = true
    }
    target.once('close', onClose)
    // The target ending early or failing ends this stage too, as a pipeline stage would.
    const stopEos = finished(target, { readable: false }, (err) => {
      if (err && !this.destroyed) this.destroy(err)
    })
    this.#stopWatching = () => {
      stopEos()
      target.off('close', onClose)
    }
  }

  write(chunk, encoding, cb) {
    const owner = this.#ownerOf(chunk)
    if (owner === undefined) return super.write(chunk, encoding, cb)
    if (this.destroyed || this.writableEnded) {
      // Refused (its callback gets the error): this stage was given the reference all the same.
      const ret = super.write(chunk, encoding, cb)
      this.#pool.release(owner)
      return ret
    }
    claim(owner)
    const owners = this.#held.get(chunk)
    if (owners === undefined) this.#held.set(chunk, [owner])
    else owners.push(owner)
    return super.write(chunk, encoding, cb)
  }

  /** The owner of `chunk` if it is a live Buffer (or view of one) of this pool, else undefined. */
  #ownerOf(chunk) {
    if (!isBuffer(chunk)) return undefined
    const owner = ownerOf(chunk)
    if (owner === undefined) return undefined
    // (isPooled() is the answer for another Pool object over the same named pool.)
    return isOwnLive(this.#pool, owner) || this.#pool.isPooled(owner) ? owner : undefined
  }

  _write(chunk, encoding, cb) {
    const target = this.#target
    const owners = this.#held.get(chunk)
    let ok
    try {
      if (owners === undefined) {
        ok = target.write(chunk, encoding)
      } else {
        const owner = owners.shift()
        if (owners.length === 0) this.#held.delete(chunk)
        this.#inFlight++
        ok = sendReleasing(this.#pool, target, chunk, owner, undefined, () => {
          if (--this.#inFlight === 0 && this.#onIdle !== null) this.#onIdle()
        })
      }
    } catch (err) {
      // A target whose write() throws (the chunk is released already): this stage fails with it.
      return cb(err)
    }
    if (ok !== false || target.destroyed) cb()
    else this.#waitDrain(cb)
  }

  #waitDrain(cb) {
    const target = this.#target
    let waiting = true
    const unwait = () => {
      waiting = false
      if (this.#unwaitDrain === unwait) this.#unwaitDrain = null
      target.off('drain', go)
      target.off('close', go)
    }
    // (An emit that is under way still calls a listener removed meanwhile: hence `waiting`.)
    const go = () => {
      if (!waiting) return
      unwait()
      cb()
    }
    target.on('drain', go)
    target.on('close', go)
    this.#unwaitDrain = unwait
  }

  _final(cb) {
    const whenIdle = () => this.#whenIdle(() => cb())
    if (!this.#end) return whenIdle()
    const target = this.#target
    // Its 'finish' comes after every write's callback; a failure destroys this stage (see the
    // constructor).
    if (target.writableFinished === true) return whenIdle()
    finished(target, { readable: false }, (err) => {
      if (!err) whenIdle()
    })
    if (!target.writableEnded) target.end()
  }

  _destroy(err, cb) {
    this.#unwaitDrain?.()
    // What was never handed to the target goes back at once.
    for (const owners of this.#held.values()) {
      for (const owner of owners) {
        unclaim(owner)
        if (lengthOf(owner) !== 0) this.#pool.release(owner)
      }
    }
    this.#held.clear()
    const target = this.#target
    if (this.#end && !this.writableFinished && !target.destroyed) target.destroy(err ?? undefined)
    this.#whenIdle(() => {
      this.#stopWatching()
      cb(err)
    })
  }

  /**
   * Runs `fn` once every write handed to the target has been called back; or, when the target
   * has closed with writes still out, one event-loop turn after its 'close': those chunks are
   * released by their callbacks when these come, never earlier.
   */
  #whenIdle(fn) {
    if (this.#inFlight === 0) return fn()
    let timer = null
    const done = () => {
      if (this.#onIdle === null) return
      this.#onIdle = null
      this.#target.off('close', onClose)
      if (timer !== null) clearImmediate(timer)
      fn()
    }
    const onClose = () => {
      timer = setImmediate(done)
    }
    this.#onIdle = done
    if (this.#targetClosed) onClose()
    else this.#target.once('close', onClose)
  }
}

/** `pool.releasing(writable[, { end }])`. */
function releasing(writable, options) {
  validateWritable(writable, 'writable', releasing)
  if (typeof writable.once !== 'function' || typeof writable.end !== 'function')
    throw errors.invalidArgType('writable', 'a writable stream', writable, releasing)
  const opts = validateOptions(options, 'options', ['end'], releasing)
  if (opts.end !== undefined && typeof opts.end !== 'boolean')
    throw errors.invalidArgType('options.end', 'of type boolean', opts.end, releasing)
  return new ReleasingWritable(this, writable, opts.end !== false)
}

// ---------------------------------------------------------------------------------------------
// Reading a whole stream

/**
 * `pool.readAll(readable[, { limit, sizeHint }])` -> Promise<Buffer>: the whole stream in one
 * pooled Buffer of exactly its length. Rejects (never throws) on bad arguments, a pool refusal,
 * the limit, an abort or a stream error, with nothing left allocated; then the stream is paused
 * and left to the caller (an HTTP server can still answer; `resume()` drains the rest).
 */
function readAll(readable, options) {
  return new Promise((resolve, reject) => {
    try {
      collect(this, readable, options, resolve, reject)
    } catch (err) {
      reject(err)
    }
  })
}

function collect(pool, readable, options, resolve, reject) {
  if (
    readable === null ||
    typeof readable !== 'object' ||
    typeof readable.on !== 'function' ||
    typeof readable.pipe !== 'function'
  )
    throw errors.invalidArgType('readable', 'a readable stream', readable, readAll)
  const opts = validateOptions(options, 'options', ['limit', 'sizeHint'], readAll)
  const limit = opts.limit ?? DEFAULT_LIMIT
  if (typeof limit !== 'number') throw errors.invalidArgType('options.limit', 'of type number', limit, readAll)
  if (limit !== Infinity && !(Number.isSafeInteger(limit) && limit >= 0))
    throw errors.outOfRange('options.limit', 'an integer >= 0, or Infinity', limit, readAll)
  const sizeHint = opts.sizeHint
  if (sizeHint !== undefined) {
    if (typeof sizeHint !== 'number')
      throw errors.invalidArgType('options.sizeHint', 'of type number', sizeHint, readAll)
    if (!Number.isSafeInteger(sizeHint) || sizeHint < 1 || sizeHint > MAX_LENGTH)
      throw errors.outOfRange('options.sizeHint', `an integer >= 1 && <= ${MAX_LENGTH}`, sizeHint, readAll)
  }
  const encoding = readable.readableEncoding ?? null
  if (encoding !== null)
    throw errors.invalidArgValue('readable.readableEncoding', encoding, 'must be null: readAll() reads bytes', readAll)

  const max = Math.min(limit, MAX_LENGTH)
  const declared = declaredLength(readable)
  if (declared !== undefined && declared > limit) {
    readable.pause?.()
    throw errors.tooLarge(limit, 0, declared, readAll)
  }
  // Sized up front when the length is known: a refusal comes before any of the body is read.
  let buf = null
  if (declared !== undefined && declared > 0) {
    try {
      buf = pool.allocUnsafe(declared)
    } catch (err) {
      readable.pause?.()
      throw err
    }
  }
  let received = 0
  let settled = false

  const onData = (chunk) => {
    if (settled) return
    try {
      if (!isUint8Array(chunk)) throw errors.invalidArgType('chunk', 'a Buffer or Uint8Array', chunk, readAll)
      const need = received + chunk.byteLength
      if (need > limit) throw errors.tooLarge(limit, need, declared, readAll)
      if (buf === null) {
        buf = pool.allocUnsafe(Math.max(need, Math.min(max, declared ?? sizeHint ?? FIRST_GUESS)))
      } else if (need > lengthOf(buf)) {
        // A large Buffer grows by moving its pages (nothing copied on Linux); a slot with room
        // keeps its memory.
        buf = pool.resize(buf, Math.max(need, Math.min(max, 2 * lengthOf(buf))))
      }
      typedArraySet(buf, chunk, received)
      received = need
    } catch (err) {
      fail(err)
    }
  }
  const stopEos = finished(readable, { writable: false }, (err) => {
    if (err) return fail(err)
    if (settled) return
    try {
      let body = buf ?? pool.alloc(0)
      if (lengthOf(body) !== received) body = pool.resize(body, received)
      buf = null
      done()
      resolve(body)
    } catch (e) {
      fail(e)
    }
  })
  function done() {
    settled = true
    readable.off('data', onData)
    stopEos()
  }
  function fail(err) {
    if (settled) return
    done()
    if (buf !== null) {
      try {
        pool.release(buf)
      } catch {
        // The error to report is `err`.
      }
      buf = null
    }
    if (!readable.destroyed) readable.pause?.()
    reject(err)
  }
  readable.on('data', onData)
  // A stream that someone paused stays paused on 'data' listeners: read it.
  if (readable.isPaused?.()) readable.resume()
}

/** The length an HTTP message declares (content-length, without transfer-encoding), if any. */
function declaredLength(readable) {
  const headers = readable.headers
  if (headers === null || typeof headers !== 'object' || headers['transfer-encoding'] !== undefined) return undefined
  const value = headers['content-length']
  if (typeof value !== 'string' || !/^\d{1,15}$/.test(value)) return undefined
  return Number(value)
}

// ---------------------------------------------------------------------------------------------
// Reading files in pooled chunks

/** What chunks() and createReadStream() read: `{ path }`, `{ handle }` (a FileHandle) or `{ fd }`. */
function fileSource(source, caller) {
  if (typeof source === 'string' || source instanceof URL || Buffer.isBuffer(source)) return { path: source }
  if (typeof source === 'number') {
    if (!Number.isInteger(source) || source < 0 || source > 0x7fffffff)
      throw errors.outOfRange('source', 'a file descriptor (an integer >= 0 && <= 2147483647)', source, caller)
    return { fd: source }
  }
  if (
    source !== null &&
    typeof source === 'object' &&
    typeof source.fd === 'number' &&
    typeof source.read === 'function' &&
    typeof source.close === 'function'
  )
    return { handle: source }
  throw errors.invalidArgType(
    'source',
    'a path (string, Buffer or URL), a FileHandle or a file descriptor',
    source,
    caller,
  )
}

/** The byte range and chunk size of `{ chunkSize, start, end }` (`end` inclusive, as in fs). */
function readRange(opts, caller) {
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK
  checkInteger(chunkSize, 'options.chunkSize', 1, MAX_LENGTH, caller)
  const start = opts.start
  if (start !== undefined) checkInteger(start, 'options.start', 0, Number.MAX_SAFE_INTEGER, caller)
  const end = opts.end ?? Infinity
  if (end !== Infinity) checkInteger(end, 'options.end', 0, Number.MAX_SAFE_INTEGER, caller)
  if (start !== undefined && end < start)
    throw errors.outOfRange('options.start', `<= "end" (here: ${end})`, start, caller)
  return { chunkSize, start, end }
}

function checkInteger(value, name, min, max, caller) {
  if (typeof value !== 'number') throw errors.invalidArgType(name, 'of type number', value, caller)
  if (!Number.isSafeInteger(value) || value < min || value > max)
    throw errors.outOfRange(name, `an integer >= ${min} && <= ${max}`, value, caller)
}

/** Reads a file into pooled chunks, one at a time. */
class ChunkReader {
  #pool
  #source
  #chunkSize
  /** Where the next read starts; null: at the file's current position. */
  #position
  /** Bytes still to read. */
  #remaining
  #handle = null
  /** Whether #handle was opened here (and so is closed here). */
  #opened = false

  constructor(pool, source, { chunkSize, start, end }) {
    this.#pool = pool
    this.#source = source
    this.#chunkSize = chunkSize
    this.#position = start ?? (source.path !== undefined ? 0 : null)
    this.#remaining = end === Infinity ? Infinity : end - (start ?? 0) + 1
  }

  async open() {
    const { path, handle } = this.#source
    if (path !== undefined) {
      this.#handle = await fs.promises.open(path, 'r')
      this.#opened = true
    } else if (handle !== undefined) {
      this.#handle = handle
    }
  }

  /** The next chunk (a pooled Buffer of exactly the bytes read), or null at the end. */
  async next() {
    const want = Math.min(this.#chunkSize, this.#remaining)
    if (want === 0) return null
    const pool = this.#pool
    let buf = pool.allocUnsafe(want)
    let n
    try {
      n = await this.#read(buf, want)
    } catch (err) {
      pool.release(buf)
      throw err
    }
    if (n === 0) {
      pool.release(buf)
      return null
    }
    if (this.#position !== null) this.#position += n
    this.#remaining -= n
    // The last chunk of a file is shorter: the Buffer is resized (in place, or copied where it
    // crosses 8 KiB) rather than viewed, so it is released like any other.
    if (n < want) {
      try {
        buf = pool.resize(buf, n)
      } catch (err) {
        // Refused (a copy into a slot needs one): buf is as it was.
        pool.release(buf)
        throw err
      }
    }
    return buf
  }

  #read(buf, length) {
    if (this.#handle !== null) return this.#handle.read(buf, 0, length, this.#position).then((r) => r.bytesRead)
    return new Promise((resolve, reject) => {
      fs.read(this.#source.fd, buf, 0, length, this.#position, (err, n) => (err ? reject(err) : resolve(n)))
    })
  }

  /** Closes the file if it was opened here. */
  async close() {
    const handle = this.#handle
    this.#handle = null
    if (this.#opened && handle !== null) await handle.close()
  }
}

/**
 * `pool.chunks(source[, { chunkSize, start, end }])`: an async iterable of pooled chunks of a
 * file. Each chunk is the loop step's: it is released when the loop asks for the next one (or
 * ends by break, throw or return) unless the step retained it or handed it to writeAndRelease()
 * or releasing(); a file opened here is closed when the loop ends.
 */
function chunks(source, options) {
  const src = fileSource(source, chunks)
  const range = readRange(validateOptions(options, 'options', ['chunkSize', 'start', 'end'], chunks), chunks)
  return lendChunks(this, new ChunkReader(this, src, range))
}

async function* lendChunks(pool, reader) {
  let chunk = null
  try {
    await reader.open()
    for (;;) {
      chunk = await reader.next()
      if (chunk === null) return
      lent.add(chunk)
      yield chunk
      const done = chunk
      chunk = null
      dropLent(pool, done)
    }
  } finally {
    if (chunk !== null) dropLent(pool, chunk)
    await reader.close()
  }
}

/**
 * `pool.createReadStream(source[, options])`: a Readable (object mode: one pooled Buffer per
 * chunk) over a file. It owns the chunks it holds: those still in its buffer are released when it
 * is destroyed, and a read in flight is awaited first. A chunk it hands to a reader ('data', read(),
 * pipe(), async iteration) is the reader's to release: pool.releasing() does it for pipelines.
 */
class PooledReadStream extends Readable {
  #pool
  #reader
  /** Chunks pushed and not yet handed to a reader. */
  #own = new Set()
  /** Every chunk this stream made (so that unshift() of one makes it this stream's again). */
  #made = new WeakSet()
  /** The read in flight, if any. */
  #reading = null

  constructor(pool, reader, { highWaterMark, signal }) {
    super({ objectMode: true, highWaterMark, signal })
    this.#pool = pool
    this.#reader = reader
  }

  _construct(cb) {
    callbackOf(this.#reader.open(), cb)
  }

  _read() {
    const reading = this.#reader.next()
    this.#reading = reading
    reading.then(
      (chunk) => {
        this.#reading = null
        if (this.destroyed) {
          if (chunk !== null) this.#pool.release(chunk)
        } else if (chunk === null) {
          this.push(null)
        } else {
          this.#made.add(chunk)
          this.#own.add(chunk)
          this.push(chunk)
        }
      },
      (err) => {
        this.#reading = null
        this.destroy(err)
      },
    )
  }

  // Every chunk a Readable hands out goes through a 'data' event (read() emits one too).
  emit(event, ...args) {
    if (event === 'data') this.#own.delete(args[0])
    return super.emit(event, ...args)
  }

  unshift(chunk, encoding) {
    if (this.#made.has(chunk)) this.#own.add(chunk)
    return super.unshift(chunk, encoding)
  }

  _destroy(err, cb) {
    for (const chunk of this.#own) if (lengthOf(chunk) !== 0) this.#pool.release(chunk)
    this.#own.clear()
    const close = () => callbackOf(this.#reader.close(), (e) => cb(err ?? e))
    // A read in flight writes into its chunk: it ends (and releases the chunk, see _read) first.
    if (this.#reading !== null) this.#reading.then(close, close)
    else close()
  }
}

/** Calls `cb(err)` once `promise` settles, outside its chain (so what `cb` throws is not a rejection). */
function callbackOf(promise, cb) {
  promise.then(
    () => process.nextTick(cb, null),
    (err) => process.nextTick(cb, err),
  )
}

/** `pool.createReadStream(source[, { chunkSize, start, end, highWaterMark, signal }])`. */
function createReadStream(source, options) {
  const src = fileSource(source, createReadStream)
  const opts = validateOptions(
    options,
    'options',
    ['chunkSize', 'start', 'end', 'highWaterMark', 'signal'],
    createReadStream,
  )
  const range = readRange(opts, createReadStream)
  const highWaterMark = opts.highWaterMark ?? DEFAULT_READ_AHEAD
  checkInteger(highWaterMark, 'options.highWaterMark', 0, 1024, createReadStream)
  return new PooledReadStream(this, new ChunkReader(this, src, range), { highWaterMark, signal: opts.signal })
}

/** Installs the helpers as methods of `Pool`. */
function install(Pool) {
  for (const fn of [writeAndRelease, readAll, chunks, createReadStream, releasing]) {
    Object.defineProperty(Pool.prototype, fn.name, { value: fn, writable: true, configurable: true })
  }
}

module.exports = { install }
