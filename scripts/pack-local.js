'use strict'
// `npm run pack:local [-- --pack-destination <dir>]`: an installable tarball of extmem with a binary
// built on this machine, for a platform that has no prebuilt binary. Run it in a checkout (after
// `npm install`, which needs Rust); install the tarball it prints where no Rust is needed:
//
//   npm install /path/to/extmem-<version>-<platform>.tgz
//
// 1. builds the addon for this machine, as `npm install` in a checkout does (`napi build`);
// 2. stages exactly the files `npm pack` would publish, plus extmem.<platform>.node beside the
//    loader (binding.js), which looks there first;
// 3. drops the optional platform packages from its package.json (the binary is inside), checks
//    that the staged package loads, and packs it.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { platformArchABI } = require('../lib/platform.js')

const root = path.join(__dirname, '..')

function fail(message) {
  console.error(`pack:local: ${message}`)
  process.exitCode = 1
}

/** Runs `command args` in `cwd`; returns its stdout, or throws with its status. */
function run(command, args, cwd, inherit = false) {
  const result = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    stdio: inherit ? 'inherit' : ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  })
  if (result.error) throw result.error
  if (result.status !== 0) throw new Error(`${path.basename(command)} ${args.join(' ')} exited with ${result.status}`)
  return result.stdout
}

/** npm, the one that runs this script if any (npm_execpath), else from PATH. */
function npm(args, cwd) {
  const cli = process.env.npm_execpath
  if (cli && /\.[cm]?js$/.test(cli)) return run(process.execPath, [cli, ...args], cwd)
  return run(process.platform === 'win32' ? 'npm.cmd' : 'npm', args, cwd)
}

function main() {
  const args = process.argv.slice(2)
  const at = args.indexOf('--pack-destination')
  const destination = path.resolve(at >= 0 ? args[at + 1] : root)
  const platform = platformArchABI()
  const binary = `extmem.${platform}.node`

  let cli
  try {
    const manifest = require.resolve('@napi-rs/cli/package.json', { paths: [root] })
    cli = path.join(path.dirname(manifest), require(manifest).bin.napi)
  } catch {
    return fail('this needs a checkout with its dev dependencies: run `npm install` first (it needs Rust)')
  }
  console.error(`pack:local: building ${binary} (napi build --platform --release)`)
  run(
    process.execPath,
    [cli, 'build', '--platform', '--release', '--js', 'binding.js', '--dts', 'binding.d.ts'],
    root,
    true,
  )
  if (!fs.existsSync(path.join(root, binary))) return fail(`the build left no ${binary}`)

  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'extmem-pack-local-'))
  try {
    const [{ files }] = JSON.parse(npm(['pack', '--dry-run', '--json', '--ignore-scripts'], root))
    for (const { path: file } of files) {
      fs.mkdirSync(path.dirname(path.join(stage, file)), { recursive: true })
      fs.copyFileSync(path.join(root, file), path.join(stage, file))
    }
    fs.copyFileSync(path.join(root, binary), path.join(stage, binary))
    const manifest = path.join(stage, 'package.json')
    const pkg = JSON.parse(fs.readFileSync(manifest, 'utf8'))
    pkg.files = [...pkg.files, binary]
    delete pkg.optionalDependencies
    fs.writeFileSync(manifest, `${JSON.stringify(pkg, null, 2)}\n`)

    // The staged package must load its own binary before it is worth packing.
    const staged = require(stage)
    const pool = new staged.Pool({ maxBytes: 1024 * 1024 })
    pool.release(pool.allocUnsafe(100))
    pool.close()

    fs.mkdirSync(destination, { recursive: true })
    const [{ filename }] = JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', stage], stage))
    const tarball = path.join(destination, `extmem-${pkg.version}-${platform}.tgz`)
    fs.copyFileSync(path.join(stage, filename), tarball)
    console.log(tarball)
    console.error(`pack:local: install it with: npm install ${tarball}`)
  } finally {
    fs.rmSync(stage, { recursive: true, force: true })
  }
}

main()
