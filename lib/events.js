'use strict'
// Delivery of pool events on this thread. The native side calls one callback per thread with
// every event of every pool this thread listens to, in the order the events happened; this file
// routes each to its Pool object, and emits it there and publishes it on diagnostics_channel.

const diagnostics = require('node:diagnostics_channel')
const { bindEvents } = require('./native')
const { formatTrace, warnOnce } = require('./leaks')
const { jsonSafe } = require('./json')
const { warnMisuse } = require('./quarantine')
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

bindEvents(function deliverPoolEvent(event) {
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

const watermarkChannel = diagnostics.channel('extmem:watermark')
const leakChannel = diagnostics.channel('extmem:leak')
const misuseChannel = diagnostics.channel('extmem:misuse')

/**
 * Emits `event` on `pool` (labelled `label`; what it lends, `lender`; `shared` by several
 * threads) and publishes it on its diagnostics_channel.
 */
function deliver(pool, event, label, lender, shared) {
  if (event.kind === 'watermark') {
    const message = {
      level: event.level,
      previous: event.previous,
      utilization: event.utilization,
      inUseBytes: event.inUseBytes,
      maxBytes: event.maxBytes,
      label,
    }
    if (watermarkChannel.hasSubscribers) watermarkChannel.publish({ pool, ...message })
    pool.emit('watermark', message)
  } else if (event.kind === 'leak') {
    // Only the thread that allocated the Buffer holds its trace, and so reports the leak.
    const trace = mapGet(lender.traces, event.token)
    if (trace === undefined) return
    mapDelete(lender.traces, event.token)
    const leak = jsonSafe({
      size: event.size,
      ageMs: event.ageMs,
      address: BigInt(event.address),
      stack: formatTrace(trace),
      label,
    })
    warnOnce(leak)
    if (leakChannel.hasSubscribers) leakChannel.publish(jsonSafe({ pool, ...leak }))
    pool.emit('leak', leak)
  } else if (event.kind === 'misuse') {
    // The thread that released the Buffer holds its stacks; a pool of one thread reports
    // all the same when it has forgotten them.
    const found = lender.quarantine?.misuse(event, !shared)
    if (found === undefined) return
    const misuse = { ...found, label }
    if (misuseChannel.hasSubscribers) misuseChannel.publish({ pool, ...misuse })
    if (!pool.emit('misuse', misuse) && !lender.warnedMisuse) {
      lender.warnedMisuse = true
      warnMisuse(misuse)
    }
  }
}

module.exports = { subscribe, deliver, kDeliver }
