import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
// @ts-expect-error plain JavaScript, without types
import { lockAbandoned } from '../../scripts/build.js'

const abandoned = lockAbandoned as (path: string, now?: number) => boolean

function lockDir(t: { after: (fn: () => void) => void }, pid?: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'build-lock-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const lock = join(dir, '.build-lock')
  mkdirSync(lock)
  if (pid !== undefined) writeFileSync(join(lock, 'pid'), String(pid))
  return lock
}

test('a build lock whose owner process is gone is abandoned at once (a build killed by Ctrl-C)', (t) => {
  const gone = spawnSync(process.execPath, ['-e', '0']).pid
  assert.ok(gone > 0)
  assert.equal(abandoned(lockDir(t, gone)), true)
})

test('a build lock whose owner is alive is held, however old', (t) => {
  const lock = lockDir(t, process.pid)
  const hourAgo = new Date(Date.now() - 3_600_000)
  utimesSync(lock, hourAgo, hourAgo)
  assert.equal(abandoned(lock), false)
})

test('a build lock without a known owner is abandoned only once it is old', (t) => {
  const lock = lockDir(t)
  assert.equal(abandoned(lock), false)
  assert.equal(abandoned(lock, Date.now() + 6 * 60_000), true)
})

test('a full build (npm run build) waits for the lock of a build under way', async (t) => {
  // a copy of the script in a folder of its own: its lock is that folder's, held by this process
  const root = mkdtempSync(join(tmpdir(), 'build-lock-'))
  t.after(() => rmSync(root, { recursive: true, force: true }))
  mkdirSync(join(root, 'scripts'))
  copyFileSync(new URL('../../scripts/build.js', import.meta.url), join(root, 'scripts/build.js'))
  mkdirSync(join(root, '.build-lock'))
  writeFileSync(join(root, '.build-lock/pid'), String(process.pid))

  const child = spawn(process.execPath, [join(root, 'scripts/build.js')], { stdio: 'pipe' })
  t.after(() => child.kill('SIGKILL'))
  let stderr = ''
  const exited = new Promise<number | null>((done) => child.on('exit', done))
  const waiting = new Promise<void>((done) =>
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
      if (stderr.includes('waiting for another build')) done()
    }),
  )
  // before waiting, it built at once beside the other build (here: failed, no TypeScript there)
  const first = await Promise.race([waiting.then(() => 'waiting'), exited.then(() => 'exited')])
  assert.equal(first, 'waiting', stderr)
})
