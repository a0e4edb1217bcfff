// The package loads as ESM and CommonJS alike (its subpaths extmem/prometheus and
// extmem/opentelemetry too), and EXTMEM_MAX_BYTES sets the default pool's cap.

import test from 'ava'
import { execFileSync, spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import extmem, { Pool, Scope, defaultPool, alloc, release, stats, codes, pools } from '../index.mjs'
import prometheus, { collectMetrics } from 'extmem/prometheus'
import opentelemetry, { observe } from 'extmem/opentelemetry'

const require = createRequire(import.meta.url)
const root = fileURLToPath(new URL('..', import.meta.url))

test('ESM named and default exports are the CommonJS ones', (t) => {
  const cjs = require('..')
  t.is(Pool, cjs.Pool)
  t.is(Scope, cjs.Scope)
  t.is(defaultPool, cjs.defaultPool)
  t.is(extmem, cjs)
  t.is(pools, cjs.pools)
  t.true(pools().includes(defaultPool))
  t.is(codes.ERR_EXTMEM_EXHAUSTED, 'ERR_EXTMEM_EXHAUSTED')
  const b = alloc(32)
  t.is(stats().liveBuffers >= 1, true)
  t.is(release(b), 0)
})

test('every CommonJS export is an ESM export, the same value, and there is no other', async (t) => {
  for (const [specifier, file] of [
    ['../index.mjs', '..'],
    ['extmem/prometheus', 'extmem/prometheus'],
    ['extmem/opentelemetry', 'extmem/opentelemetry'],
  ]) {
    const esm = await import(specifier)
    const cjs = require(file)
    const names = Object.keys(esm).filter((name) => name !== 'default')
    t.deepEqual(names.sort(), Object.keys(cjs).sort(), specifier)
    for (const name of names) t.is(esm[name], cjs[name], `${specifier}: ${name}`)
    t.is(esm.default, cjs, specifier)
  }
})

test('extmem/prometheus and extmem/opentelemetry import as ES modules, the same modules as require gives', (t) => {
  t.is(collectMetrics, require('extmem/prometheus').collectMetrics)
  t.is(prometheus, require('extmem/prometheus'))
  t.is(typeof collectMetrics, 'function')
  t.is(observe, require('extmem/opentelemetry').observe)
  t.is(opentelemetry, require('extmem/opentelemetry'))
  t.is(typeof observe, 'function')
  t.is(require('extmem/prometheus'), require('../prometheus.js'), 'by the exports map, the files in the package')
})

test('EXTMEM_MAX_BYTES sets the default pool cap', (t) => {
  const out = execFileSync(process.execPath, ['-p', "require('.').defaultPool.maxBytes"], {
    cwd: root,
    env: { ...process.env, EXTMEM_MAX_BYTES: '64M' },
  })
  t.is(Number(out), 64 * 1024 * 1024)
})

test('a bad EXTMEM_MAX_BYTES is refused with ERR_INVALID_ARG_VALUE at load', (t) => {
  const r = spawnSync(
    process.execPath,
    ['-e', "try { require('.') } catch (e) { console.log(e.code); process.exitCode = 3 }"],
    {
      cwd: root,
      env: { ...process.env, EXTMEM_MAX_BYTES: 'lots' },
      encoding: 'utf8',
    },
  )
  t.is(r.status, 3)
  t.is(r.stdout.trim(), 'ERR_INVALID_ARG_VALUE')
})

test('the default cap is half of physical memory or less', async (t) => {
  const os = await import('node:os')
  const cap = extmem.defaultMaxBytes()
  t.true(cap > 0 && cap <= os.totalmem() / 2)
  t.is(new Pool().maxBytes, cap)
})
