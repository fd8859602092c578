import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { test, type TestContext } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { MAX_IMPORT_LINE_BYTES } from '../../src/protocols/admin/import-lines.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

const ROOT = resolve(import.meta.dirname, '../..')
/** Just above the longest string V8 makes (0x1fffffe8), and within the 512 MiB import limit. */
const HUGE = 0x1fffffe8 + 8

test('import: a line longer than one string can hold is a bad line (400 naming it), not a 500', async (t) => {
  const { app } = await startApp(t)
  const body = Buffer.alloc(HUGE + 1, 0x61)
  body[0] = 0x0a // line 1 is blank, the huge one is line 2
  const res = await app.inject({
    method: 'POST',
    url: '/admin/v1/import',
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/x-ndjson' },
    payload: body,
  })
  assert.equal(res.statusCode, 400, res.body)
  assert.equal(res.json().error.code, 'IMPORT_LINE_INVALID')
  assert.equal(res.json().error.line, 2)
  assert.match(res.json().error.message, /^line 2: longer than 67108864 bytes/)
})

test('import: a line over the line limit refuses the body; the lines before it are not written', async (t) => {
  const { app, stores } = await startApp(t)
  const first = Buffer.from('{"type":"settings","userId":"77","invisible":true}\n')
  const body = Buffer.concat([first, Buffer.alloc(MAX_IMPORT_LINE_BYTES + 1, 0x61)])
  const res = await app.inject({
    method: 'POST',
    url: '/admin/v1/import',
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/x-ndjson' },
    payload: body,
  })
  assert.equal(res.statusCode, 400, res.body)
  assert.equal(res.json().error.line, 2)
  assert.match(res.json().error.message, /^line 2: longer than 67108864 bytes/)
  const [settings] = await stores.profiles.getSettings(['77' as UserId])
  assert.equal(settings?.invisible, false)
})

test('CLI import: a line longer than the limit exits 2 naming it, no crash, nothing sent', async (t) => {
  const { url, stores } = await startApp(t, { listen: true })
  const dir = mkdtempSync(join(tmpdir(), 'presenced-import-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'data.ndjson')
  const fd = openSync(file, 'w')
  writeSync(fd, '{"type":"settings","userId":"77","invisible":true}\n')
  const block = Buffer.alloc(64 * 1024 * 1024, 0x61)
  for (let written = 0; written < HUGE; written += block.length) writeSync(fd, block)
  closeSync(fd)
  const run = await runCli(t, ['import', file, '--url', url, '--admin-key', ADMIN_KEY])
  assert.doesNotMatch(run.stderr, /RangeError|at /)
  assert.equal(run.code, 2, run.stderr)
  assert.match(run.stderr, /data\.ndjson:2: longer than 67108864 bytes; nothing was imported/)
  const [settings] = await stores.profiles.getSettings(['77' as UserId])
  assert.equal(settings?.invisible, false)
})

function runCli(t: TestContext, args: string[]) {
  return new Promise<{ code: number | null; stderr: string }>((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '' },
    })
    t.after(() => child.kill())
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('close', (code) => done({ code, stderr }))
  })
}
