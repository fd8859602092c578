import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { test } from 'node:test'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'
import { startReceiver } from '../helpers/webhook-receiver.js'
import { REGISTER, bearer, post } from './roblox-helpers.js'

const ROOT = resolve(import.meta.dirname, '../..')

function runCli(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('close', (code) => done({ code, stdout, stderr }))
  })
}

test('CLI webhooks: create, list, get, update, deliveries, replay, delete', async (t) => {
  const presenced = await startApp(t, {
    listen: true,
    config: { webhookAttempts: 1, webhookPollMs: 20, webhookBackoffMs: 10 },
  })
  const receiver = await startReceiver(t)
  const keyResponse = await presenced.app.inject({
    method: 'POST',
    url: '/admin/v1/keys',
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
    payload: JSON.stringify({ name: 'cli', scopes: ['presence:read'] }),
  })
  const keyId = keyResponse.json().id as string
  // the server from $PRESENCED_URL and the admin key from $PRESENCED_ADMIN_KEY, as keys does
  const env = { PRESENCED_URL: presenced.url, PRESENCED_ADMIN_KEY: ADMIN_KEY }

  const created = await runCli(
    ['webhooks', 'create', receiver.url, '--key', keyId, '--event', 'online', '--user', '77'],
    env,
  )
  assert.equal(created.code, 0, created.stderr)
  const secret = created.stdout.trim()
  assert.match(secret, /^whsec_[A-Za-z0-9_-]{43}$/)
  const id = /created webhook ([0-9a-f]{16})/.exec(created.stderr)![1]!
  assert.match(created.stderr, /shown once/)
  receiver.secret = secret

  const list = await runCli(['webhooks', 'list'], env)
  assert.equal(list.code, 0, list.stderr)
  assert.match(list.stdout, /^ID\s+URL\s+EVENTS\s+SCOPE\s+STATUS\s+FILTER/)
  assert.match(
    list.stdout,
    new RegExp(`${id}\\s+${receiver.url}\\s+online\\s+presence:read\\s+enabled\\s+users 77`),
  )
  assert.ok(!list.stdout.includes(secret))
  const json = await runCli(['webhooks', 'list', '--json'], env)
  assert.deepEqual(
    (JSON.parse(json.stdout) as Array<{ id: string }>).map((w) => w.id),
    [id],
  )

  receiver.answer = () => 500
  const response = await post(
    presenced.app,
    REGISTER,
    { location: 'x' },
    await bearer(presenced.tokens, '77'),
  )
  assert.equal(response.statusCode, 200)
  await receiver.until(() => receiver.requests.length === 1, 10_000, 'the failing try')
  let deliveries = ''
  for (let i = 0; i < 100 && !deliveries.includes('HTTP 500'); i++) {
    await new Promise((r) => setTimeout(r, 50))
    deliveries = (await runCli(['webhooks', 'deliveries', id], env)).stdout
  }
  assert.match(deliveries, /^EVENT\s+TYPE\s+USER\s+TRIES\s+LAST ERROR\s+PARKED/)
  assert.match(deliveries, /evt_[0-9a-f]{32}\s+online\s+77\s+1\s+HTTP 500/)

  const got = await runCli(['webhooks', 'get', id], env)
  assert.match(got.stdout, /parked\s+1/)
  assert.match(got.stdout, /queued\s+0/)

  receiver.answer = () => 200
  const replayed = await runCli(['webhooks', 'replay', id], env)
  assert.equal(replayed.code, 0, replayed.stderr)
  assert.equal(replayed.stdout.trim(), 'replayed 1 parked delivery')
  await receiver.until(() => receiver.accepted.length === 1, 10_000, 'the replay')
  assert.ok(receiver.accepted[0]!.signatureOk)

  const rotated = await runCli(['webhooks', 'update', id, '--disable', '--rotate-secret'], env)
  assert.equal(rotated.code, 0, rotated.stderr)
  assert.match(rotated.stdout.trim(), /^whsec_/)
  assert.notEqual(rotated.stdout.trim(), secret)
  assert.match(rotated.stderr, /disabled/)

  const deleted = await runCli(['webhooks', 'delete', id], env)
  assert.equal(deleted.code, 0, deleted.stderr)
  assert.equal((await runCli(['webhooks', 'list'], env)).stdout.trim(), 'no webhooks')
})

test('CLI webhooks: refused input exits 2 with the reason, a server away exits 1', async (t) => {
  const { url } = await startApp(t, { listen: true })
  const env = { PRESENCED_ADMIN_KEY: ADMIN_KEY }
  const badUrl = await runCli(
    ['webhooks', 'create', 'ftp://example.com/x', '--key', '0123456789abcdef', '--url', url],
    env,
  )
  assert.equal(badUrl.code, 2)
  assert.match(badUrl.stderr, /400 INVALID_REQUEST: url must use http or https/)
  const noKey = await runCli(['webhooks', 'create', 'https://example.com/x', '--url', url], env)
  assert.equal(noKey.code, 2)
  assert.match(noKey.stderr, /create needs --key/)
  const badId = await runCli(['webhooks', 'get', 'nothex', '--url', url], env)
  assert.equal(badId.code, 2)
  assert.match(badId.stderr, /not a webhook id/)
  const unknown = await runCli(['webhooks', 'get', '0123456789abcdef', '--url', url], env)
  assert.equal(unknown.code, 1)
  assert.match(unknown.stderr, /404 NOT_FOUND/)
  const nothing = await runCli(['webhooks', 'update', '0123456789abcdef', '--url', url], env)
  assert.equal(nothing.code, 2)
  assert.match(nothing.stderr, /at least one change/)
  const badState = await runCli(['webhooks', 'deliveries', '0123456789abcdef', '--state', 'x'], env)
  assert.equal(badState.code, 2)
  const noAdmin = await runCli(['webhooks', 'list', '--url', url])
  assert.equal(noAdmin.code, 2)
  assert.match(noAdmin.stderr, /no admin key/)
  const away = await runCli(['webhooks', 'list', '--url', 'http://127.0.0.1:9'], env)
  assert.equal(away.code, 1)
  assert.match(away.stderr, /cannot reach/)
  const action = await runCli(['webhooks', 'frobnicate'], env)
  assert.equal(action.code, 2)
  assert.match(action.stderr, /unknown action "frobnicate"/)
  const help = await runCli(['webhooks', '--help'])
  assert.equal(help.code, 0)
  assert.match(help.stdout, /presenced webhooks create <endpoint url>/)
})
