'use strict'
// Packs extmem as it is published, from a checkout (after `npm install`, which needs Rust):
//
//   npm run pack:release [-- --pack-destination <dir>]  -> extmem-<version>.tgz, the package to publish
//   npm run pack:local   [-- --pack-destination <dir>]  -> extmem-<version>-<platform>.tgz, with a binary
//                                                          built here, for a platform with no prebuilt one
//
// Both build the addon and the loader (`napi build`, which does nothing more once `npm install`
// built it), stage exactly the files `npm pack` would pack, and write the published package.json
// into the stage: without the checkout's scripts, so that installing the tarball never meets an
// install-time script (npm 11 lists `prepare` of a package installed from a tarball among the
// scripts to allow, although it runs it only for a folder). pack:local adds
// extmem.<platform>.node beside the loader, which looks there first, drops the optional platform
// packages (the binary is inside) and checks that the staged package loads. Each prints the
// tarball's path on stdout; everything else goes to stderr.
//
// `node scripts/pack.js --refuse-publish` is the checkout's prepublishOnly: `npm publish` in the
// checkout would publish its scripts, so it stops and names the way that does not.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { platformArchABI } = require('../lib/platform.js')

const root = path.join(__dirname, '..')

/** The package.json users get: the checkout's, less its scripts (with `local`, its binary in, its platform packages out). */
function publishedManifest(pkg, binary) {
  const published = { ...pkg }
  delete published.scripts
  if (binary !== undefined) {
    published.files = [...pkg.files, binary]
    delete published.optionalDependencies
  }
  return published
}

/** Runs `command args` in `cwd`; returns its stdout, or throws with its status. */
function run(command, args, cwd, toStderr = false) {
  const result = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    // A build's output goes to stderr: stdout carries only the tarball's path.
    stdio: ['ignore', toStderr ? process.stderr : 'pipe', 'inherit'],
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

function pack({ local, destination }) {
  let cli
  try {
    const manifest = require.resolve('@napi-rs/cli/package.json', { paths: [root] })
    cli = path.join(path.dirname(manifest), require(manifest).bin.napi)
  } catch {
    throw new Error('this needs a checkout with its dev dependencies: run `npm install` first (it needs Rust)')
  }
  const platform = platformArchABI()
  const binary = local ? `extmem.${platform}.node` : undefined
  console.error('pack: napi build --platform --release (the addon and its loader)')
  run(
    process.execPath,
    [cli, 'build', '--platform', '--release', '--js', 'binding.js', '--dts', 'binding.d.ts'],
    root,
    true,
  )
  if (local && !fs.existsSync(path.join(root, binary))) throw new Error(`the build left no ${binary}`)

  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'extmem-pack-'))
  try {
    const [{ files }] = JSON.parse(npm(['pack', '--dry-run', '--json', '--ignore-scripts'], root))
    for (const { path: file } of files) {
      fs.mkdirSync(path.dirname(path.join(stage, file)), { recursive: true })
      fs.copyFileSync(path.join(root, file), path.join(stage, file))
    }
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
    fs.writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(publishedManifest(pkg, binary), null, 2)}\n`)
    if (local) {
      fs.copyFileSync(path.join(root, binary), path.join(stage, binary))
      // The staged package must load its own binary before it is worth packing.
      const staged = require(stage)
      const pool = new staged.Pool({ maxBytes: 1024 * 1024 })
      pool.release(pool.allocUnsafe(100))
      pool.close()
    }
    const [{ filename }] = JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', stage], stage))
    fs.mkdirSync(destination, { recursive: true })
    const tarball = path.join(destination, local ? `extmem-${pkg.version}-${platform}.tgz` : filename)
    fs.copyFileSync(path.join(stage, filename), tarball)
    return tarball
  } finally {
    fs.rmSync(stage, { recursive: true, force: true })
  }
}

function main(args) {
  if (args.includes('--refuse-publish')) {
    console.error(
      'extmem: publish the packed package, not this checkout (its package.json carries the scripts of a ' +
        'checkout): npm publish "$(npm run -s pack:release)". See docs/platforms.md, "A release".',
    )
    process.exitCode = 1
    return
  }
  const at = args.indexOf('--pack-destination')
  const destination = path.resolve(at >= 0 ? args[at + 1] : root)
  const local = args.includes('--local')
  try {
    const tarball = pack({ local, destination })
    console.log(tarball)
    console.error(`pack: install it with: npm install ${tarball}`)
  } catch (err) {
    console.error(`pack: ${err.message}`)
    process.exitCode = 1
  }
}

if (require.main === module) main(process.argv.slice(2))

module.exports = { publishedManifest }
