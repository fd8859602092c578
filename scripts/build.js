/**
 * Builds presenced into dist/ (tsc with tsconfig.build.json, tests left out, Lua scripts copied)
 * after building @presenced/client into sdk/dist/, which the CLI imports.
 *
 * Usage: node scripts/build.js [--if-stale]
 *   --if-stale  build only when dist/ is missing or older than a source: what `npm start`,
 *               `npx presenced` in a checkout and `npm test` do, so none runs an old build.
 *
 * Plain JavaScript on purpose: it must run before anything is compiled, without tsx.
 */
import { spawnSync } from 'node:child_process'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import { join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const dist = join(root, 'dist')
/** Written last: its age is the age of the whole build. */
const stamp = join(dist, '.build-stamp')
const lock = join(root, '.build-lock')
/** A lock this old was left by a build that died; builds take well under a minute here. */
const STALE_LOCK_MS = 5 * 60_000

/**
 * Whether the build lock at `path` was left by a build that died: its owner's process is gone (a
 * build interrupted by Ctrl-C or a kill never runs its `finally`), or, where the owner is not
 * known (a lock just made, or made on another host), the lock is older than STALE_LOCK_MS.
 */
export function lockAbandoned(path, now = Date.now()) {
  let owner
  try {
    owner = Number(readFileSync(join(path, 'pid'), 'utf8'))
  } catch {
    owner = undefined
  }
  if (Number.isInteger(owner) && owner > 0) {
    try {
      process.kill(owner, 0)
      return false
    } catch (error) {
      // EPERM: alive, another user's
      if (error.code === 'ESRCH') return true
      return false
    }
  }
  return now - statSync(path).mtimeMs > STALE_LOCK_MS
}

/** Files whose change makes the build stale; tests are not built, so they do not count. */
function sources() {
  const files = [
    'tsconfig.json',
    'tsconfig.build.json',
    'scripts/build.js',
    'sdk/tsconfig.build.json',
    'sdk/scripts/build.js',
  ].map((file) => join(root, file))
  for (const dir of ['src', 'sdk/src']) walk(join(root, dir), files)
  return files.filter((file) => !/\.(test|contract)\.ts$/.test(file))
}

function walk(dir, out) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) walk(path, out)
    else out.push(path)
  }
  return out
}

/** Why a build is needed, or undefined when dist/ is up to date. */
export function staleReason() {
  if (!existsSync(stamp) || !existsSync(join(root, 'sdk/dist/index.js'))) return 'no build yet'
  const builtAt = statSync(stamp).mtimeMs
  const newer = sources().find((file) => statSync(file).mtimeMs > builtAt)
  return newer && `${relative(root, newer)} changed since the last build`
}

/** Runs a build step with its output on stderr, so that `$(npx presenced token)` stays clean. */
function run(args, cwd = root) {
  const result = spawnSync(process.execPath, args, { cwd, stdio: ['ignore', 2, 2] })
  if (result.status !== 0) throw new Error(`build failed: node ${args.join(' ')}`)
}

function copyAssets(from, to) {
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = join(from, entry.name)
    if (entry.isDirectory()) copyAssets(source, join(to, entry.name))
    else if (!entry.name.endsWith('.ts')) {
      mkdirSync(to, { recursive: true })
      copyFileSync(source, join(to, entry.name))
    }
  }
}

function typescriptCompiler() {
  try {
    return createRequire(import.meta.url).resolve('typescript/bin/tsc')
  } catch {
    return undefined
  }
}

/** A full build: the SDK, then the server into a clean dist/. */
export function build() {
  const tsc = typescriptCompiler()
  if (!tsc) {
    throw new Error(
      'cannot build: TypeScript is not installed (run `npm ci` with dev dependencies)',
    )
  }
  run([join(root, 'sdk/scripts/build.js')])
  rmSync(dist, { recursive: true, force: true })
  run([tsc, '-p', 'tsconfig.build.json'])
  copyAssets(join(root, 'src'), dist)
  writeFileSync(stamp, '')
}

/**
 * Takes the build lock, waiting while another live build holds it (a lock its dead owner left is
 * taken over), and returns its release.
 */
function takeLock(log) {
  let waiting = false
  for (;;) {
    try {
      mkdirSync(lock)
      writeFileSync(join(lock, 'pid'), String(process.pid))
      return () => rmSync(lock, { force: true, recursive: true })
    } catch (error) {
      if (error.code !== 'EEXIST') throw error
    }
    let abandoned
    try {
      abandoned = lockAbandoned(lock)
    } catch {
      continue // released meanwhile
    }
    if (abandoned) rmSync(lock, { force: true, recursive: true })
    else {
      if (!waiting) log(`presenced: waiting for another build (${lock}) ...`)
      waiting = true
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200)
    }
  }
}

/**
 * Builds when stale. Several processes may ask at once (`npm start` beside `npx presenced`):
 * one builds while the others wait for its lock, then find the build fresh.
 */
export function buildIfStale(log = (line) => console.error(line)) {
  const reason = staleReason()
  if (reason === undefined) return
  if (!typescriptCompiler() && existsSync(stamp)) {
    // a deployment that copied a built checkout and left dev dependencies out
    log(`presenced: ${reason}, but TypeScript is not installed: running the existing build`)
    return
  }
  const release = takeLock(log)
  try {
    const reason = staleReason()
    if (reason === undefined) return
    log(`presenced: building (${reason}) ...`)
    build()
  } finally {
    release()
  }
}

/**
 * A full build (`npm run build`) under the same lock, so that it never runs beside the build of
 * an `npm start` or `npx presenced` (each empties the other's sdk/dist/ and dist/).
 */
export function buildLocked(log = (line) => console.error(line)) {
  const release = takeLock(log)
  try {
    build()
  } finally {
    release()
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    if (process.argv.includes('--if-stale')) buildIfStale()
    else buildLocked()
  } catch (error) {
    console.error(error.message)
    process.exit(1)
  }
}
