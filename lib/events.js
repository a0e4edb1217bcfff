'use strict'
// Delivery of pool events on this thread. The native side calls one callback per thread with
// every event of every pool this thread listens to, in the order the events happened; this file
// routes each to its Pool object, which emits it and publishes it on diagnostics_channel.

const native = require('../binding.js')

/** Subscriber id -> WeakRef of the Pool object that listens (a dropped Pool is never kept alive). */
const subscribers = new Map()
let nextSubscriber = 1

native.bindEvents(function deliverPoolEvent(event) {
  const ref = subscribers.get(event.subscriber)
  const pool = ref?.deref()
  if (pool === undefined) {
    subscribers.delete(event.subscriber)
    return
  }
  pool[kDeliver](event)
})

/** The method a Pool provides to receive its events. */
const kDeliver = Symbol('extmem.deliver')

/** Registers `pool` for `nativePool`'s events; returns a function that stops them. */
function subscribe(pool, nativePool) {
  const id = nextSubscriber++
  subscribers.set(id, new WeakRef(pool))
  const listener = nativePool.listen(id)
  return function unsubscribe() {
    subscribers.delete(id)
    if (listener >= 0) nativePool.unlisten(listener)
  }
}

module.exports = { subscribe, kDeliver }
