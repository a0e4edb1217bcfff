'use strict'
// Built-ins captured when this module loads, before user code that runs later can patch them, as
// Node's own lib/ does with its primordials.
//
// The rule they keep: code that touches pool memory, private records, tokens, slot or index
// arrays or a thread cache's shared block calls no built-in that user code can replace after
// load (constructors, Object.freeze, Map/Set/WeakMap/WeakRef/FinalizationRegistry methods,
// typed-array getters, Array methods, iteration, Math) except through a reference captured
// here. On the hot path plain indexed loops and arithmetic take the place of methods, so the
// rule costs nothing per Buffer. __test__/fixtures/soundness/replaced-builtins.js replaces each
// of them after load and checks that none is reached. The safe path's release detaches a Buffer with these,
// so a patched built-in never sees a pool's ArrayBuffer; and every check that decides which
// memory a call acts on reads a Buffer's real state through these getters, never a property
// (an own property, a replaced prototype getter or a Proxy could say anything). (Each costs a bound call; the rest of the
// path runs only where the memory is already out of reach, and uses built-ins as they are.)

const { call, bind } = Function.prototype
const uncurry = bind.bind(call)

/** `ab.transfer()`, or null where the runtime has none (Node 20). */
const transferOf = typeof ArrayBuffer.prototype.transfer === 'function' ? uncurry(ArrayBuffer.prototype.transfer) : null
const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype)
/** `view.buffer` of a typed array. */
const bufferOf = uncurry(Object.getOwnPropertyDescriptor(TypedArrayPrototype, 'buffer').get)
/** `view.length` of a typed array. */
const lengthOf = uncurry(Object.getOwnPropertyDescriptor(TypedArrayPrototype, 'length').get)
/** `view.byteOffset` of a typed array. */
const byteOffsetOf = uncurry(Object.getOwnPropertyDescriptor(TypedArrayPrototype, 'byteOffset').get)
/** `ab.byteLength` of an ArrayBuffer (0 once detached). */
const arrayBufferLengthOf = uncurry(Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'byteLength').get)

const U8 = Uint8Array
const typedArrayFill = uncurry(TypedArrayPrototype.fill)
/** Zero-fills all of an ArrayBuffer. */
const zeroFill = (ab) => typedArrayFill(new U8(ab), 0)
/** Zero-fills a view. */
const zeroView = (view) => typedArrayFill(view, 0)

const { setPrototypeOf, freeze } = Object

/** Constructors, for private records and typed arrays made at call time. */
const F64 = Float64Array
const I32 = Int32Array
const SafeMap = Map
const SafeSet = Set
const SafeWeakMap = WeakMap
const SafeWeakRef = WeakRef
const SafeFinalizationRegistry = FinalizationRegistry

/** Map methods, for records keyed by tokens or ids (a patched Map method never sees the Map). */
const mapGet = uncurry(Map.prototype.get)
const mapSet = uncurry(Map.prototype.set)
const mapDelete = uncurry(Map.prototype.delete)
const mapClear = uncurry(Map.prototype.clear)
const mapSize = uncurry(Object.getOwnPropertyDescriptor(Map.prototype, 'size').get)
/** WeakMap methods, for the fast path's arenas by ArrayBuffer. */
const weakMapGet = uncurry(WeakMap.prototype.get)
const weakMapSet = uncurry(WeakMap.prototype.set)
const weakMapDelete = uncurry(WeakMap.prototype.delete)
const weakMapHas = uncurry(WeakMap.prototype.has)
/** `ref.deref()` of a WeakRef. */
const deref = uncurry(WeakRef.prototype.deref)
/** FinalizationRegistry methods. */
const registryRegister = uncurry(FinalizationRegistry.prototype.register)
const registryUnregister = uncurry(FinalizationRegistry.prototype.unregister)

/** Set methods, for the Buffers a scope owns (a patched Set method never sees the Set). */
const setAdd = uncurry(Set.prototype.add)
const setDelete = uncurry(Set.prototype.delete)
const setClear = uncurry(Set.prototype.clear)
const setValues = uncurry(Set.prototype.values)
const setIteratorNext = uncurry(Object.getPrototypeOf(new Set().values()).next)

/**
 * A new empty Array with no prototype, for holding ArrayBuffers the pool may lend again: writing
 * `a[i]` on it defines an own element, where on a plain Array a getter or setter someone defined
 * on `Array.prototype[i]` would see the value.
 */
function privateArray() {
  return setPrototypeOf([], null)
}

/** Calls `fn(value)` for each value of the Set `set`, with the Set methods above. */
function forEachOfSet(set, fn) {
  const it = setValues(set)
  for (let r = setIteratorNext(it); !r.done; r = setIteratorNext(it)) fn(r.value)
}

module.exports = {
  F64,
  I32,
  SafeMap,
  SafeSet,
  SafeWeakMap,
  SafeWeakRef,
  SafeFinalizationRegistry,
  freeze,
  mapGet,
  mapSet,
  mapDelete,
  mapClear,
  mapSize,
  weakMapGet,
  weakMapSet,
  weakMapDelete,
  weakMapHas,
  deref,
  uncurry,
  registryRegister,
  registryUnregister,
  transferOf,
  bufferOf,
  lengthOf,
  byteOffsetOf,
  arrayBufferLengthOf,
  zeroFill,
  zeroView,
  privateArray,
  setAdd,
  setDelete,
  setClear,
  forEachOfSet,
}
