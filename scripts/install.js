'use strict'
// The package's install script. It decides where the native addon comes from:
//
// 1. A development checkout (the directory has __test__/, which `files` in package.json never
//    ships) builds from source with `napi build`, which also writes binding.js and binding.d.ts.
// 2. An installed package whose platform package (extmem-<platform>, an optional dependency)
//    resolved and loads needs nothing: the loader, binding.js, requires it.
// 3. Otherwise the addon is built from the shipped Rust sources with plain `cargo build` and
//    copied to extmem.<platform>.node beside binding.js, the first file the loader looks for.
//    That needs Rust (cargo) but not @napi-rs/cli.

const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { platformArchABI } = require('./platform.js')

const root = path.join(__dirname, '..')

function log(message) {
  console.error(`extmem: ${message}`)
}

function buildCheckout() {
  let cli
  try {
    const manifest = require.resolve('@napi-rs/cli/package.json', { paths: [root] })
    cli = path.join(path.dirname(manifest), require(manifest).bin.napi)
  } catch {
    log('this is a development checkout, which is built with @napi-rs/cli: run `npm install` with dev dependencies')
    return 1
  }
  const args = [cli, 'build', '--platform', '--release', '--js', 'binding.js', '--dts', 'binding.d.ts']
  const run = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' })
  if (run.error) throw run.error
  return run.status ?? 1
}

function prebuilt(abi) {
  const name = `extmem-${abi}`
  let file
  try {
    file = require.resolve(name, { paths: [root] })
  } catch {
    return false
  }
  try {
    require(file)
    log(`using the prebuilt binary from ${name}`)
    return true
  } catch (err) {
    log(`${name} is installed but does not load (${err.message}); building from source`)
    return false
  }
}

function buildFromSource(abi) {
  const version = spawnSync('cargo', ['--version'], { encoding: 'utf8' })
  if (version.error || version.status !== 0) {
    log(
      `no prebuilt binary for ${abi} (package extmem-${abi}) and no Rust toolchain to build one: ` +
        '`cargo` was not found on PATH. Install Rust (https://rustup.rs) and reinstall, ' +
        'or use a platform with a prebuilt binary (see "Platforms and runtimes" in the README).',
    )
    return 1
  }
  log(`no prebuilt binary for ${abi}: building from source with ${version.stdout.trim()}`)
  const targetDir = path.join(root, 'target')
  const ownTarget = !process.env.CARGO_TARGET_DIR && !fs.existsSync(targetDir)
  const build = spawnSync('cargo', ['build', '--release', '-p', 'extmem', '--message-format=json-render-diagnostics'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  })
  if (build.error) throw build.error
  if (build.status !== 0) {
    log(`cargo build failed (exit status ${build.status})`)
    return build.status ?? 1
  }
  const library = cdylibOf(build.stdout)
  if (!library) {
    log('cargo build succeeded but reported no cdylib for the extmem crate')
    return 1
  }
  const dest = path.join(root, `extmem.${abi}.node`)
  fs.copyFileSync(library, dest)
  // What cargo left (tens of MB) is of no use once the addon is in place.
  if (ownTarget) fs.rmSync(targetDir, { recursive: true, force: true })
  log(`built ${path.relative(root, dest)}`)
  return 0
}

// The shared library cargo built for the extmem crate: libextmem.so, libextmem.dylib or extmem.dll.
function cdylibOf(messages) {
  let found = null
  for (const line of messages.split('\n')) {
    if (!line.startsWith('{')) continue
    const msg = JSON.parse(line)
    if (msg.reason !== 'compiler-artifact' || msg.target.name !== 'extmem' || !msg.target.kind.includes('cdylib')) {
      continue
    }
    found = msg.filenames.find((f) => /\.(so|dylib|dll)$/.test(f)) ?? found
  }
  return found
}

function main() {
  if (fs.existsSync(path.join(root, '__test__'))) return buildCheckout()
  const abi = platformArchABI()
  if (prebuilt(abi)) return 0
  return buildFromSource(abi)
}

process.exitCode = main()
