'use strict'
// A thread's cache (Node 22+): per cache class, slots (and, for the large classes after the small
// ones, mappings) the core handed to this Pool object, each with the ArrayBuffer it already has.
// A hit lends one with no native call and no lock; a release puts one back the same way (detach
// with transfer(), push). The invariants are in crates/extmem-core/src/pool/cache.rs, what the
// shared words mean in pool/cache/block.rs beside it; this side keeps its part:
//
// - it serves and takes back only while the core's gate word is 1, and keeps its drift (the
//   block's bytes in use less its synced word, which the core sets at each sync and lowers when
//   it makes a loan ordinary) at most the core's up budget above 0 and its down budget below,
//   read at each call: where a move would leave that range it syncs first, and if the move does
//   not fit the new budget either, the caller takes the core's path, which judges the level;
// - it gives every slot back at its first lend or release after the core counted up the flush
//   word, whatever the gate says by then (another thread's call may have opened it again);
// - a slot is lent only from `ready`: its ArrayBuffer has a witness. In a worker, one put back
//   goes to `pending` (the ArrayBuffer transfer() made has none yet) until a sync witnesses a
//   batch; the main thread's loans need no witness (see markMainThread in src/escape.rs), so
//   there it goes straight back to `ready`;
// - the entry word of a slot holds its Buffer's length while lent, 0 while here, and a Buffer
//   carries its entry (`cacheRef`) only while its loan is still the cache's: the Pool forgets
//   it before any native call that names the Buffer's token (which makes the loan ordinary);
// - every ArrayBuffer it holds is in a prototype-less Array, worked with indexes only, so no
//   patched built-in sees one.

const { isMainThread } = require('node:worker_threads')
const {
  nativeCacheOpen: nativeOpen,
  nativeCacheFill: nativeFill,
  nativeCacheSync: nativeSync,
  nativeCacheFlush: nativeFlush,
  nativeCacheClose: nativeClose,
  nativeCacheDecay: nativeDecay,
  CACHE_LAYOUT: LAYOUT,
  scratch,
  SCRATCH,
} = require('./native')
const { F64, I32, SafeWeakRef, deref, transferOf, bufferOf, lengthOf, privateArray } = require('./intrinsics')

const {
  gate: GATE,
  gateLarge: GATE_LARGE,
  entryTracked: ENTRY_TRACKED,
  largeLentMax: LARGE_LENT_MAX,
  flush: FLUSH,
  inUse: IN_USE,
  requested: REQUESTED,
  live: LIVE,
  allocations: ALLOCATIONS,
  releases: RELEASES,
  synced: SYNCED,
  driftUp: DRIFT_UP,
  driftDown: DRIFT_DOWN,
  classes: CLASSES,
  entries: ENTRIES,
} = LAYOUT
/** Whether a slot put back needs a witness before it is lent again (native.js marks the main thread). */
const WITNESS = !isMainThread
/** Entries kept per cache class to begin with, and at most once demand grew the cache. */
const CAPACITY = Int32Array.from(LAYOUT.capacity)
const CAPACITY_MAX = Int32Array.from(LAYOUT.capacityMax)
/** Most entries one native fill hands over. */
const FILL_BATCH = LAYOUT.fillBatch
/** How often every cache of this thread gives back what it did not use (ms). */
const DECAY_TICK_MS = 1000
/** Counts of lends or releases past which a sync folds them (far below 2^31). */
const MAX_COUNT = 1 << 30
/** Most slots one native sync witnesses (its ArrayBuffers are arguments: see #witness). */
const SYNC_BATCH = LAYOUT.syncBatch
/** The ArrayBuffer arguments #witness passes; the core must expect exactly these. */
const WITNESS_ARGS = 32
if (SYNC_BATCH !== WITNESS_ARGS)
  throw new Error(`extmem: the native cache sync takes ${SYNC_BATCH} ArrayBuffers, this file passes ${WITNESS_ARGS}`)
/** What give() did: nothing, took the Buffer back, took back a Buffer leak detection sampled. */
const NOT_GIVEN = 0
const GIVEN = 1
const GIVEN_TRACKED = 2
/** A Buffer's cacheRef is `entry * CLASS_SPAN + class` (the core asserts every class fits). */
const CLASS_SPAN = LAYOUT.classSpan

class ThreadCache {
  #poolRef
  #id
  /** The block, shared with the core. */
  #words
  /** Bytes of an entry per cache class (small classes, then large ones from `#largeFrom`). */
  #classSizes
  #largeFrom
  /** Per class: triples `ab, entry, token` below `#readyTop[class]`, witnessed and lendable. */
  #ready
  #readyTop
  /** Per class: triples put back since the last sync, not yet lendable. */
  #pending
  #pendingTop
  #pendingCount = 0
  /** Number of classes (read once: a typed array's `length` getter can be replaced). */
  #classCount
  /** Per class: slots kept at most now (between CAPACITY and CAPACITY_MAX). */
  #limit
  /** Per class: the fewest slots kept since the last decay tick (those were never used). */
  #low
  /** The Pool's own part of a decay tick (its kept mapping ArrayBuffers). */
  #onDecay
  /** The flush word last acted on. */
  #flushSeen
  /** Scratch list for native calls. */
  #list = privateArray()
  /** The ArrayBuffers and entries of one sync batch. */
  #abs = privateArray()
  #entries = new F64(SYNC_BATCH)
  #closed = false
  /** The token and cacheRef of the Buffer `lend` just lent. */
  token = 0
  ref = -1

  /**
   * A cache for the pool of `poolRef`, or null where the runtime has none. `onDecay` runs at each
   * decay tick, before the pool gives back what stayed unused.
   */
  static open(poolRef, classSizes, largeFrom, onDecay) {
    const ab = nativeOpen(poolRef)
    if (typeof ab !== 'object') return null
    return new ThreadCache(poolRef, scratch[SCRATCH.cacheId], new I32(ab), classSizes, largeFrom, onDecay)
  }

  constructor(poolRef, id, words, classSizes, largeFrom, onDecay) {
    this.#onDecay = onDecay
    this.#largeFrom = largeFrom
    this.#poolRef = poolRef
    this.#id = id
    this.#words = words
    this.#classSizes = classSizes
    this.#flushSeen = words[FLUSH]
    const n = lengthOf(classSizes)
    this.#classCount = n
    this.#ready = privateArray()
    this.#pending = privateArray()
    for (let c = 0; c < n; c++) {
      this.#ready[c] = privateArray()
      this.#pending[c] = privateArray()
    }
    this.#readyTop = new I32(n)
    this.#pendingTop = new I32(n)
    this.#limit = new I32(n)
    this.#low = new I32(n)
    for (let c = 0; c < n; c++) this.#limit[c] = CAPACITY[c]
    ticker.add(this)
  }

  /**
   * Lends an entry of class `cls` for a Buffer of `size` bytes: its ArrayBuffer (over the whole
   * slot or mapping, contents unspecified), with `token` and `ref` set; or null when the caller
   * must take the native path (the gate is shut, the core gives nothing, or none is here and
   * `mayFill` is false). `tracked`: leak detection sampled this allocation (the entry word says so,
   * for the core's leak report if the Buffer is collected).
   */
  lend(cls, size, flags, tracked, mayFill = true) {
    const w = this.#words
    if (w[GATE] !== 1 || w[FLUSH] !== this.#flushSeen) return this.#shut()
    const cap = this.#classSizes[cls]
    // A large class only while admission admits large Buffers, and within what the block counts.
    if (cls >= this.#largeFrom && (w[GATE_LARGE] !== 1 || w[IN_USE] + cap > LARGE_LENT_MAX)) return null
    // Within the budget up first (before a fill takes memory this call would not lend).
    if (w[IN_USE] + cap - w[SYNCED] > w[DRIFT_UP] || w[ALLOCATIONS] > MAX_COUNT) {
      if (w[IN_USE] !== w[SYNCED] || w[ALLOCATIONS] > MAX_COUNT) this.#sync()
      if (w[GATE] !== 1 || cap > w[DRIFT_UP]) return null
    }
    let top = this.#readyTop[cls]
    if (top === 0) {
      if (this.#pendingCount !== 0) this.#sync()
      top = this.#readyTop[cls]
      if (top === 0 && mayFill) top = this.#fill(cls, flags)
      if (top === 0 || w[GATE] !== 1) return null
      // A fill judged the level and the budgets again (a fill of a large class widens the slack).
      if (w[IN_USE] + cap - w[SYNCED] > w[DRIFT_UP]) {
        if (w[IN_USE] !== w[SYNCED]) this.#sync()
        if (w[GATE] !== 1 || w[IN_USE] + cap - w[SYNCED] > w[DRIFT_UP]) return null
        top = this.#readyTop[cls]
      }
    }
    const ready = this.#ready[cls]
    const ab = ready[top - 3]
    const entry = ready[top - 2]
    this.token = ready[top - 1]
    ready[top - 3] = undefined
    this.#readyTop[cls] = top - 3
    const kept = (top - 3 + this.#pendingTop[cls]) / 3
    if (kept < this.#low[cls]) this.#low[cls] = kept
    w[IN_USE] += cap
    w[REQUESTED] += size
    w[LIVE] += 1
    w[ALLOCATIONS] += 1
    w[CLASSES + cls] += 1
    w[ENTRIES + entry] = tracked ? size | ENTRY_TRACKED : size
    this.ref = entry * CLASS_SPAN + cls
    return ab
  }

  /**
   * Takes back `buf`, a Buffer of `length` bytes lent by `lend` with `ref` and `token`, as its
   * last release: detaches it and keeps its slot. NOT_GIVEN (nothing done) when the caller must
   * release it natively: the gate is shut, the cache is full, or `buf` is not what was lent;
   * else GIVEN, or GIVEN_TRACKED if leak detection had sampled it (its trace can go).
   */
  give(buf, length, ref, token) {
    const w = this.#words
    if (w[GATE] !== 1 || w[FLUSH] !== this.#flushSeen || this.#closed) {
      this.#shut()
      return NOT_GIVEN
    }
    const cls = ref % CLASS_SPAN
    const entry = (ref - cls) / CLASS_SPAN
    const word = w[ENTRIES + entry]
    if (length === 0 || (word & ~ENTRY_TRACKED) !== length) return NOT_GIVEN
    const cap = this.#classSizes[cls]
    if (w[IN_USE] - cap - w[SYNCED] < -w[DRIFT_DOWN] || w[RELEASES] > MAX_COUNT) {
      if (w[IN_USE] !== w[SYNCED] || w[RELEASES] > MAX_COUNT) this.#sync()
      if (w[GATE] !== 1 || cap > w[DRIFT_DOWN]) return NOT_GIVEN
    }
    const top = this.#pendingTop[cls]
    const readyTop = this.#readyTop[cls]
    const given = (word & ENTRY_TRACKED) === 0 ? GIVEN : GIVEN_TRACKED
    if (readyTop + top >= 3 * this.#limit[cls]) {
      // Full: the thread's working set of this class is larger than the cache. Grow it.
      if (this.#limit[cls] >= CAPACITY_MAX[cls]) return NOT_GIVEN
      const grown = 2 * this.#limit[cls]
      this.#limit[cls] = grown < CAPACITY_MAX[cls] ? grown : CAPACITY_MAX[cls]
    }
    // Detach first: from here on only this cache reaches the slot.
    const ab = transferOf(bufferOf(buf))
    w[IN_USE] -= cap
    w[REQUESTED] -= length
    w[LIVE] -= 1
    w[RELEASES] += 1
    w[CLASSES + cls] -= 1
    w[ENTRIES + entry] = 0
    if (!WITNESS) {
      const ready = this.#ready[cls]
      ready[readyTop] = ab
      ready[readyTop + 1] = entry
      ready[readyTop + 2] = token
      this.#readyTop[cls] = readyTop + 3
      return given
    }
    const pending = this.#pending[cls]
    pending[top] = ab
    pending[top + 1] = entry
    pending[top + 2] = token
    this.#pendingTop[cls] = top + 3
    // Witness a batch once a native call's worth waits (or when the ready ones run out: see lend).
    if (++this.#pendingCount >= SYNC_BATCH) this.#sync()
    return given
  }

  /** Gives every entry kept here back to the pool. Returns the bytes the pool gave back to the OS meanwhile. */
  flush() {
    const n = this.#gather(this.#pending, this.#pendingTop, this.#gather(this.#ready, this.#readyTop, 0))
    this.#pendingCount = 0
    this.#flushSeen = this.#words[FLUSH]
    if (n === 0) return 0
    const flushed = nativeFlush(this.#poolRef, this.#id, this.#list, n)
    this.#clearList(3 * n)
    return flushed
  }

  /** Moves the triples of `stacks` (below `tops`) to `#list` after its first `n`; returns the new count. */
  #gather(stacks, tops, n) {
    const list = this.#list
    for (let c = 0; c < this.#classCount; c++) {
      const s = stacks[c]
      for (let i = 0; i < tops[c]; i++) {
        list[3 * n + (i % 3)] = s[i]
        if (i % 3 === 2) n++
        s[i] = undefined
      }
      tops[c] = 0
    }
    return n
  }

  /** Flushes, and serves nothing more (the pool closed). */
  close() {
    if (this.#closed) return
    this.flush()
    this.#closed = true
    nativeClose(this.#poolRef, this.#id)
  }

  /**
   * The decay tick: per class, gives back three quarters of the slots that stayed unused since
   * the last tick (the coldest first), and halves the limit of a class that was not used at all;
   * then lets the pool give back what stayed unused (see Pool::decay in the core). So what a
   * thread keeps while it makes no call comes back within a few ticks, and its cache shrinks to
   * what it uses.
   */
  decay() {
    if (this.#closed) return
    let n = 0
    for (let c = 0; c < this.#classCount; c++) {
      const kept = (this.#readyTop[c] + this.#pendingTop[c]) / 3
      const unused = this.#low[c] < kept ? this.#low[c] : kept
      if (unused === kept && this.#limit[c] > CAPACITY[c]) {
        const halved = this.#limit[c] >> 1
        this.#limit[c] = halved > CAPACITY[c] ? halved : CAPACITY[c]
      }
      if (unused !== 0) n = this.#listColdest(c, unused - (unused >> 2), n)
      this.#low[c] = (this.#readyTop[c] + this.#pendingTop[c]) / 3
    }
    if (n !== 0) {
      nativeFlush(this.#poolRef, this.#id, this.#list, n)
      this.#clearList(3 * n)
    }
    this.#onDecay?.()
    nativeDecay(this.#poolRef)
  }

  /** Moves the `k` oldest triples of class `c` (ready ones first) to `#list` after its first `n`; returns the new count. */
  #listColdest(c, k, n) {
    let listed = this.#listBottom(this.#ready[c], this.#readyTop, c, k, n)
    if (listed < k) {
      const more = this.#listBottom(this.#pending[c], this.#pendingTop, c, k - listed, n + listed)
      this.#pendingCount -= more
      listed += more
    }
    return n + listed
  }

  /**
   * Moves up to `k` triples from the bottom of `stack` (class `c`, its top in `tops`) to `#list`
   * after its first `n`, and the rest down; returns how many.
   */
  #listBottom(stack, tops, c, k, n) {
    const top = tops[c]
    const m = k < top / 3 ? k : top / 3
    const list = this.#list
    for (let i = 0; i < 3 * m; i++) list[3 * n + i] = stack[i]
    for (let i = 3 * m; i < top; i++) stack[i - 3 * m] = stack[i]
    for (let i = top - 3 * m; i < top; i++) stack[i] = undefined
    tops[c] = top - 3 * m
    return m
  }

  /** Whether any slot is kept here. */
  holds() {
    for (let c = 0; c < this.#classCount; c++) if (this.#readyTop[c] + this.#pendingTop[c] !== 0) return true
    return false
  }

  /** Gives every slot back if the core asked since the last flush (any call of this thread may). */
  poll() {
    if (this.#words[FLUSH] !== this.#flushSeen) this.flush()
  }

  /** The gate is shut or a flush was asked: flush if asked, and have the caller go native. */
  #shut() {
    if (this.#words[FLUSH] !== this.#flushSeen) this.flush()
    return null
  }

  /** Takes up to half a class's capacity of slots from the core; returns the new ready top. */
  #fill(cls, flags) {
    if (this.#closed) return 0
    const room = this.#limit[cls] - (this.#readyTop[cls] + this.#pendingTop[cls]) / 3
    const half = this.#limit[cls] >> 1
    const most = half < 1 ? 1 : half > FILL_BATCH ? FILL_BATCH : half
    const want = room < most ? room : most
    if (want <= 0) return 0
    const list = this.#list
    const got = nativeFill(this.#poolRef, this.#id, cls, want, flags, list)
    if (!(got > 0)) return 0
    const ready = this.#ready[cls]
    let top = this.#readyTop[cls]
    // The core gave the most recently freed slot first: it goes on top, to be lent first.
    for (let i = 0; i < got; i++) {
      const from = 3 * (got - 1 - i)
      ready[top + 3 * i] = list[from]
      ready[top + 3 * i + 1] = list[from + 1]
      ready[top + 3 * i + 2] = list[from + 2]
    }
    this.#clearList(3 * got)
    top += 3 * got
    this.#readyTop[cls] = top
    return top
  }

  /**
   * Witnesses every pending slot (one native call per SYNC_BATCH) and makes them lendable; folds
   * the counts, and the core takes this cache's bytes in use as synced.
   */
  #sync() {
    const abs = this.#abs
    const entries = this.#entries
    let n = 0
    let ok = true
    for (let c = 0; c < this.#classCount; c++) {
      const top = this.#pendingTop[c]
      if (top === 0) continue
      const pending = this.#pending[c]
      const ready = this.#ready[c]
      let base = this.#readyTop[c]
      for (let i = 0; i < top; i += 3) {
        abs[n] = pending[i]
        entries[n] = pending[i + 1]
        n++
        if (n === SYNC_BATCH) {
          ok = this.#witness(n) && ok
          n = 0
        }
      }
      // The batch below is witnessed before anything here is lent again (this call returns first).
      for (let i = 0; i < top; i++) {
        ready[base + i] = pending[i]
        pending[i] = undefined
      }
      base += top
      this.#readyTop[c] = base
      this.#pendingTop[c] = 0
    }
    if (n !== 0 || this.#pendingCount === 0) ok = this.#witness(n) && ok
    this.#pendingCount = 0
    if (!ok) this.flush()
  }

  /** One native sync of the first `n` of `#abs` (entries in `#entries`). */
  #witness(n) {
    const a = this.#abs
    const status = nativeSync(
      this.#poolRef,
      this.#id,
      this.#entries,
      n,
      a[0],
      a[1],
      a[2],
      a[3],
      a[4],
      a[5],
      a[6],
      a[7],
      a[8],
      a[9],
      a[10],
      a[11],
      a[12],
      a[13],
      a[14],
      a[15],
      a[16],
      a[17],
      a[18],
      a[19],
      a[20],
      a[21],
      a[22],
      a[23],
      a[24],
      a[25],
      a[26],
      a[27],
      a[28],
      a[29],
      a[30],
      a[31],
    )
    for (let i = 0; i < n; i++) a[i] = undefined
    return status === 0
  }

  #clearList(n) {
    const list = this.#list
    for (let i = 0; i < n; i++) list[i] = undefined
  }
}

/**
 * This thread's decay timer: every DECAY_TICK_MS, each live cache gives back what it did not use.
 * It holds the caches weakly (a cache goes with its Pool object) and never keeps the event loop
 * alive; it stops when no cache is left.
 */
const ticker = {
  caches: privateArray(),
  timer: null,
  add(cache) {
    this.caches[this.caches.length] = new SafeWeakRef(cache)
    if (this.timer === null) {
      this.timer = setInterval(() => this.tick(), DECAY_TICK_MS)
      this.timer.unref()
    }
  },
  tick() {
    let live = 0
    for (let i = 0; i < this.caches.length; i++) {
      const cache = deref(this.caches[i])
      if (cache === undefined) continue
      this.caches[live++] = this.caches[i]
      cache.decay()
    }
    this.caches.length = live
    if (live === 0) {
      clearInterval(this.timer)
      this.timer = null
    }
  },
}

module.exports = { ThreadCache, GIVEN_TRACKED }
