'use strict'
// The platform name napi-rs gives the running process (linux-x64-gnu, linux-arm64-musl, darwin-arm64,
// win32-x64-msvc, ...): the suffix of the platform packages and of extmem.<platform>.node. It decides
// glibc or musl the way the generated loader (binding.js) does.

const fs = require('node:fs')

function isMusl() {
  if (process.platform !== 'linux') return false
  try {
    return fs.readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
  } catch {
    // no ldd script to read: ask the process which C library it runs on
  }
  const report = process.report?.getReport?.()
  if (!report) return false
  if (report.header?.glibcVersionRuntime) return false
  return (report.sharedObjects ?? []).some((f) => f.includes('libc.musl-') || f.includes('ld-musl-'))
}

function platformArchABI() {
  const { platform, arch } = process
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

module.exports = { platformArchABI }
