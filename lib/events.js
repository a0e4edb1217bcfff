'use strict'
// Delivery of pool events on this thread. The native side calls one callback per thread with
// every event of every pool this thread listens to, in the order the events happened; this file
// routes each to its Pool object, which emits it and publishes it on diagnostics_channel.

const native = require('../binding.js')
const {
  SafeMap,
  SafeWeakRef,
  SafeFinalizationRegistry,
  mapGet,
  mapSet,
  mapDelete,
  deref,
  registryRegister,
  registryUnregister,
} = require('./intrinsics')

/** Subscriber id -> WeakRef of the Pool object that listens (a dropped Pool is never kept alive). */
const subscribers = new SafeMap()
let nextSubscriber = 1

native.bindEvents(function deliverPoolEvent(event) {
  const ref = mapGet(subscribers, event.subscriber)
  const pool = ref === undefined ? undefined : deref(ref)
  if (pool === undefined) {
    mapDelete(subscribers, event.subscriber)
    return
  }
  pool[kDeliver](event)
})

/** The method a Pool provides to receive its events. */
const kDeliver = Symbol('extmem.deliver')

/**
 * Stops the events of a Pool object that was collected without close() (allowed: a named pool
 * cannot be closed, and Buffers may outlive their Pool object), so that neither the native
 * listener nor this thread's records of it outlive the object. The held value never names the
 * Pool object.
 */
const stopOnCollect = new SafeFinalizationRegistry(stop)

function stop(subscription) {
  mapDelete(subscribers, subscription.id)
  if (subscription.listener >= 0) subscription.nativePool.unlisten(subscription.listener)
}

/** Registers `pool` for `nativePool`'s events; returns a function that stops them. */
function subscribe(pool, nativePool) {
  const id = nextSubscriber++
  mapSet(subscribers, id, new SafeWeakRef(pool))
  const subscription = { id, nativePool, listener: nativePool.listen(id) }
  registryRegister(stopOnCollect, pool, subscription, subscription)
  return function unsubscribe() {
    registryUnregister(stopOnCollect, subscription)
    stop(subscription)
  }
}

module.exports = { subscribe, kDeliver }
