// Compiled (not run) by lifetimes-types.spec.js with `tsc --noEmit --strict`: the types of the
// lifetime helpers (writeAndRelease, readAll, chunks, createReadStream, releasing, releaseOwner)
// and of the JSON-safe diagnostics describe the API as docs/lifetimes.md shows it.
import * as http from 'node:http'
import * as net from 'node:net'
import { open } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import type { Readable, Writable } from 'node:stream'
import extmem, { Pool, releaseOwner, isPooled, codes } from '../../index.js'
import type {
  PooledBuffer,
  TooLargeError,
  RefusedError,
  ReadAllOptions,
  ChunkOptions,
  ReadStreamOptions,
  FileSource,
  PoolSummary,
  LiveBuffer,
  LeakEvent,
  Jsonified,
} from '../../index.js'

const pool = new Pool({ maxBytes: 64 * 1024 * 1024 })

http.createServer(async (req, res) => {
  const options: ReadAllOptions = { limit: 1 << 20, sizeHint: 4096 }
  try {
    const body: PooledBuffer = await pool.readAll(req, options)
    const more: boolean = pool.writeAndRelease(res, body, (err?: Error | null) => console.log(err?.message))
    res.end(String(more))
  } catch (err) {
    const e = err as TooLargeError | RefusedError
    if (e.code === codes.ERR_EXTMEM_TOO_LARGE) console.log(e.limit, e.receivedBytes, e.declaredBytes)
    else console.log(e.requestedBytes)
  }
})

async function files(socket: net.Socket): Promise<void> {
  const range: ChunkOptions = { chunkSize: 1 << 20, start: 0, end: 99 }
  for await (const chunk of pool.chunks('data.bin', range)) pool.writeAndRelease(socket, chunk)
  const handle = await open('data.bin')
  const sources: FileSource[] = ['data.bin', Buffer.from('data.bin'), new URL('file:///data.bin'), 3, handle]
  const opts: ReadStreamOptions = { highWaterMark: 4, signal: AbortSignal.timeout(1000) }
  const stream: Readable = pool.createReadStream(sources[0], opts)
  const stage: Writable = pool.releasing(socket, { end: false })
  await pipeline(stream, stage)
  const left: number = pool.releaseOwner(pool.allocUnsafe(10).subarray(1)) + releaseOwner(extmem.allocUnsafe(1))
  const pooled: boolean = pool.isPooled(null) || isPooled('text') || extmem.isPooled(undefined)
  const summary: PoolSummary = pool.toJSON()
  const live: LiveBuffer[] = pool.live()
  const address: string | undefined = live[0]?.toJSON().address
  pool.on('leak', (e: LeakEvent) => {
    const json: Jsonified<Omit<LeakEvent, 'toJSON'>> = e.toJSON()
    console.log(json.address.length)
  })
  console.log(left, pooled, summary.level, address)
}
void files

// @ts-expect-error readAll's limit is a number
pool.readAll(process.stdin, { limit: '1M' })
// @ts-expect-error releasing's end is a boolean
pool.releasing(process.stdout, { end: 1 })
// @ts-expect-error a chunk range has no `length`
pool.chunks('data.bin', { length: 10 })
