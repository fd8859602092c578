/**
 * `presenced keys`, `import` and `webhooks` find the server as every client command does:
 * --url, else $PRESENCED_URL, else http://127.0.0.1:8080.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { test, type TestContext } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

const ROOT = resolve(import.meta.dirname, '../..')

function cli(args: string[], env: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((done, fail) => {
    const child = spawn(process.execPath, ['bin/presenced.js', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.on('error', fail)
    child.on('close', (code) => done({ code, stdout, stderr }))
  })
}

/** A URL nothing listens on (bound, then released). */
async function deadUrl(): Promise<string> {
  const server = createServer()
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  const { port } = server.address() as { port: number }
  await new Promise((done) => server.close(done))
  return `http://127.0.0.1:${port}`
}

function ndjson(t: TestContext, lines: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'presenced-cli-url-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'data.ndjson')
  writeFileSync(file, lines.join('\n') + '\n')
  return file
}

test('keys and import use $PRESENCED_URL when --url is not given', async (t) => {
  const server = await startApp(t, { listen: true })
  const env = { PRESENCED_URL: server.url, PRESENCED_ADMIN_KEY: ADMIN_KEY }

  const created = await cli(['keys', 'create', '--name', 'lobby', '--scope', 'presence:read'], env)
  assert.equal(created.code, 0, created.stderr)
  const listed = await cli(['keys', 'list', '--json'], env)
  assert.equal(listed.code, 0, listed.stderr)
  assert.deepEqual(
    (JSON.parse(listed.stdout) as Array<{ name: string }>).map((key) => key.name),
    ['lobby'],
  )

  const file = ndjson(t, ['{"type":"friends","a":"1","b":"2"}'])
  const imported = await cli(['import', file], env)
  assert.equal(imported.code, 0, imported.stderr)
  assert.deepEqual(await server.service.listFriends('1' as UserId), ['2'])
})

test('an empty $PRESENCED_URL counts as unset for keys and webhooks', async () => {
  // the default server may or may not run here: either way, not a refused --url
  const env = { PRESENCED_URL: '', PRESENCED_ADMIN_KEY: ADMIN_KEY }
  const runs = await Promise.all([
    cli(['keys', 'list', '--timeout', '5'], env),
    cli(['webhooks', 'list', '--timeout', '5'], env),
  ])
  for (const run of runs) {
    assert.doesNotMatch(run.stderr, /--url must be/)
    assert.notEqual(run.code, 2, run.stderr)
  }
})

test('--url wins over $PRESENCED_URL; a bad $PRESENCED_URL is a usage error', async (t) => {
  const server = await startApp(t, { listen: true })
  const elsewhere = await deadUrl()

  const flag = await cli(['keys', 'list', '--url', server.url], {
    PRESENCED_URL: elsewhere,
    PRESENCED_ADMIN_KEY: ADMIN_KEY,
  })
  assert.equal(flag.code, 0, flag.stderr)
  assert.equal(flag.stdout.trim(), 'no API keys')

  const unreachable = await cli(['keys', 'list'], {
    PRESENCED_URL: elsewhere,
    PRESENCED_ADMIN_KEY: ADMIN_KEY,
  })
  assert.equal(unreachable.code, 1)
  assert.ok(unreachable.stderr.includes(`cannot reach ${elsewhere}`), unreachable.stderr)

  const file = ndjson(t, ['{"type":"friends","a":"1","b":"2"}'])
  const bad = await cli(['import', file], {
    PRESENCED_URL: 'ftp://example.test',
    PRESENCED_ADMIN_KEY: ADMIN_KEY,
  })
  assert.equal(bad.code, 2)
  assert.match(bad.stderr, /--url must be an http\(s\) URL, got "ftp:\/\/example.test"/)
})
