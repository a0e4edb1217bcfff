'use strict'
// Built-ins captured when this module loads, before any user code of this thread can patch them,
// as Node's own lib/ does with its primordials. Every step that touches a pool's ArrayBuffers
// (detaching, keeping, looking up) uses these, so a patched built-in never sees pool memory.

const { call, bind } = Function.prototype
const uncurry = bind.bind(call)

const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype)
const getter = (proto, name) => uncurry(Object.getOwnPropertyDescriptor(proto, name).get)

/** `ab.transfer()`, or null where the runtime has none (Node 20). */
const transferOf = typeof ArrayBuffer.prototype.transfer === 'function' ? uncurry(ArrayBuffer.prototype.transfer) : null
/** `view.buffer`, `view.byteOffset`, `view.byteLength` of a typed array. */
const bufferOf = getter(TypedArrayPrototype, 'buffer')
const byteOffsetOf = getter(TypedArrayPrototype, 'byteOffset')
const byteLengthOf = getter(TypedArrayPrototype, 'byteLength')
/** `ab.byteLength` of an ArrayBuffer: 0 once it is detached. */
const arrayBufferByteLengthOf = getter(ArrayBuffer.prototype, 'byteLength')
const WeakMapGet = uncurry(WeakMap.prototype.get)
const WeakMapSet = uncurry(WeakMap.prototype.set)
const WeakMapDelete = uncurry(WeakMap.prototype.delete)
const MapGet = uncurry(Map.prototype.get)
const MapSet = uncurry(Map.prototype.set)
const MapDelete = uncurry(Map.prototype.delete)
const MapSize = getter(Map.prototype, 'size')

module.exports = {
  transferOf,
  bufferOf,
  byteOffsetOf,
  byteLengthOf,
  arrayBufferByteLengthOf,
  WeakMapGet,
  WeakMapSet,
  WeakMapDelete,
  MapGet,
  MapSet,
  MapDelete,
  MapSize,
}
