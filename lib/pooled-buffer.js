'use strict'
// The class of Buffers that are views over a pool's ArrayBuffers, built the way Node builds its
// own: Node's Buffers are instances of an internal `class FastBuffer extends Uint8Array` whose
// prototype is Buffer.prototype and whose `constructor` is Buffer. PooledBuffer is the same, one
// prototype link further: `Buffer.isBuffer()`, `instanceof Buffer`, `buf.constructor === Buffer`
// and every Buffer method hold, and `subarray()`/`slice()` give plain Buffers. Constructing one
// costs what `new Uint8Array(ab, offset, length)` costs, about half of `Buffer.from(ab, …)`.

class PooledBuffer extends Uint8Array {}

Object.setPrototypeOf(PooledBuffer.prototype, Buffer.prototype)
Object.defineProperty(PooledBuffer.prototype, 'constructor', { value: Buffer, writable: true, configurable: true })

module.exports = { PooledBuffer }
