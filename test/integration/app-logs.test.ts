import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { get } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { Redis } from 'ioredis'
import { redactUrl, serializeError } from '../../src/app/observability.js'
import { parseUserId } from '../../src/core/user-id.js'
import { Tokens } from '../../src/service/tokens.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { spawnServer } from '../helpers/spawn-server.js'

test('redactUrl replaces credential query values and keeps the rest', () => {
  assert.equal(redactUrl('/v1/x'), '/v1/x')
  assert.equal(redactUrl('/v1/x?a=1'), '/v1/x?a=1')
  assert.equal(
    redactUrl('/ws?access_token=abc.def.ghi&ids=1,2'),
    '/ws?access_token=[redacted]&ids=1,2',
  )
  // the router reads `x#f` as the value (a query runs to the end of the URL)
  assert.equal(redactUrl('/s?ids=1&Access_Token=x#f'), '/s?ids=1&Access_Token=[redacted]')
  assert.equal(
    redactUrl('/s?token=x&api_key=y&key=z'),
    '/s?token=[redacted]&api_key=[redacted]&key=[redacted]',
  )
  assert.equal(redactUrl('/s?monkey=1'), '/s?monkey=1')
})

test('redactUrl finds a credential wherever the router does: encoded names, a # query', () => {
  // the router decodes query names and starts a query at the first `?` or `#`: each of these
  // reaches the route as access_token (or x-api-key), so each must be redacted too
  assert.equal(redactUrl('/sse?ids=1&%61ccess_token=abc'), '/sse?ids=1&%61ccess_token=[redacted]')
  assert.equal(redactUrl('/sse?access%5Ftoken=abc&ids=1'), '/sse?access%5Ftoken=[redacted]&ids=1')
  assert.equal(redactUrl('/sse#ids=1&access_token=abc'), '/sse#ids=1&access_token=[redacted]')
  assert.equal(
    redactUrl('/x?X-Api-Key=k&x_csrf_token=c'),
    '/x?X-Api-Key=[redacted]&x_csrf_token=[redacted]',
  )
  assert.equal(redactUrl('/x?access+token=1&%zz=2'), '/x?access+token=1&%zz=2')
})

test('a token under an encoded name or after a # is accepted, and still never logged', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'presenced-logs-'))
  t.after(() => rmSync(dataDir, { recursive: true, force: true }))
  const secret = 'log-test-token-secret-0123456789abcdef'
  const server = await spawnServer(t, {
    PRESENCED_DATA_DIR: dataDir,
    PRESENCED_TOKEN_SECRET: secret,
    LOG_LEVEL: 'info',
  })
  const tokens = new Tokens(secret)
  const paths = [
    '/api/v1/realtime/sse?ids=1&%61ccess_token=',
    '/api/v1/realtime/sse#ids=1&access_token=',
  ]
  const sent: string[] = []
  for (const path of paths) {
    const token = await tokens.issue(parseUserId('123')!)
    sent.push(token)
    // node:http sends the path as given (fetch would drop a #): the stream opens, so the
    // route took the token
    assert.equal(await openStatus(server.url, path + token), 200, path)
  }
  assert.equal(await server.stop(), 0)
  const text = server.logs.map((line) => JSON.stringify(line)).join('\n')
  for (const [i, token] of sent.entries()) {
    assert.equal(text.includes(token.split('.')[2]!), false, `logged: ${paths[i]}…`)
  }
})

/** The status of a GET of `path` sent verbatim; the response is not read further. */
function openStatus(base: string, path: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const request = get(base + '/', { path }, (response) => {
      resolve(response.statusCode)
      response.destroy()
    })
    request.on('error', reject)
  })
}

test('no credential reaches the logs, at trace level, whatever the request', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'presenced-logs-'))
  t.after(() => rmSync(dataDir, { recursive: true, force: true }))
  const secret = 'log-test-token-secret-0123456789abcdef'
  const adminKey = 'ADMIN-KEY-SHOULD-NOT-BE-LOGGED'
  const server = await spawnServer(t, {
    PRESENCED_DATA_DIR: dataDir,
    PRESENCED_TOKEN_SECRET: secret,
    PRESENCED_ADMIN_KEY: adminKey,
    LOG_LEVEL: 'trace',
  })
  const token = await new Tokens(secret).issue(parseUserId('123')!)
  const forged = token.slice(0, -6) + 'AAAAAA'
  const csrf = 'CSRF-SHOULD-NOT-BE-LOGGED'
  const json = { 'content-type': 'application/json' }
  const body = JSON.stringify({ userIds: [123] })

  const requests: Array<[string, RequestInit]> = [
    [
      '/v1/presence/users',
      { method: 'POST', headers: { ...json, authorization: `Bearer ${token}` }, body },
    ],
    [
      '/v1/presence/users',
      { method: 'POST', headers: { ...json, authorization: `Bearer ${forged}` }, body },
    ],
    [
      '/v1/presence/users',
      {
        method: 'POST',
        headers: { ...json, cookie: `.ROBLOSECURITY=${token}`, 'x-csrf-token': csrf },
        body,
      },
    ],
    [`/v1/presence/users?access_token=${token}`, { method: 'POST', headers: json, body }],
    [`/no/such/route?access_token=${token}&token=${forged}`, {}],
    ['/admin/v1/places/1', { headers: { 'x-api-key': adminKey } }],
    ['/admin/v1/places/1', { headers: { 'x-api-key': `wrong-${adminKey}` } }],
  ]
  for (const [path, init] of requests) {
    const response = await fetch(server.url + path, init)
    assert.ok(response.status < 500, `${path}: ${response.status}`)
    await response.arrayBuffer()
  }
  assert.equal(await server.stop(), 0)

  const text = server.logs.map((line) => JSON.stringify(line)).join('\n')
  assert.ok(server.logs.filter((l) => l.msg === 'incoming request').length >= requests.length)
  for (const value of [token, forged, token.split('.')[2]!, adminKey, csrf, secret]) {
    assert.equal(text.includes(value), false, `a credential was logged: ${value.slice(0, 12)}…`)
  }
  assert.match(text, /"url":"\/no\/such\/route\?access_token=\[redacted\]&token=\[redacted\]"/)
})

test('a Redis refusal logged with its command never logs the command arguments (a webhook secret)', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'presenced-logs-'))
  t.after(() => rmSync(dataDir, { recursive: true, force: true }))
  const prefix = uniquePrefix('logs')
  const redis = new Redis(LOCAL_REDIS_URL)
  t.after(async () => {
    await deleteKeys({ url: LOCAL_REDIS_URL }, prefix)
    redis.disconnect()
  })
  // a key of another kind where the webhooks hash goes (another app's, a prefix shared by
  // mistake): every write of a webhook is refused with WRONGTYPE, no outage, so it is logged
  await redis.set(`${prefix}:webhooks`, 'not a hash')
  const adminKey = 'admin-key-for-the-redis-log-test'
  const server = await spawnServer(t, {
    PRESENCED_DATA_DIR: dataDir,
    PRESENCED_REDIS_URL: LOCAL_REDIS_URL,
    PRESENCED_REDIS_PREFIX: prefix,
    PRESENCED_TOKEN_SECRET: 'log-test-token-secret-0123456789abcdef',
    PRESENCED_ADMIN_KEY: adminKey,
    LOG_LEVEL: 'info',
  })
  const admin = { 'x-api-key': adminKey, 'content-type': 'application/json' }
  const key = await fetch(`${server.url}/admin/v1/keys`, {
    method: 'POST',
    headers: admin,
    body: JSON.stringify({ name: 'hook', scopes: ['presence:read'] }),
  })
  assert.equal(key.status, 201)
  const { id: keyId } = (await key.json()) as { id: string }
  const webhookSecret = 'whsec_SHOULD-NOT-BE-LOGGED-0123456789'
  const created = await fetch(`${server.url}/admin/v1/webhooks`, {
    method: 'POST',
    headers: admin,
    body: JSON.stringify({ url: 'http://127.0.0.1:9/hook', keyId, secret: webhookSecret }),
  })
  assert.equal(created.status, 500, 'refused by Redis (no webhook is stored)')
  await created.arrayBuffer()
  assert.equal(await server.stop(), 0)

  const refusals = server.logs.filter((line) => JSON.stringify(line).includes('WRONGTYPE'))
  assert.ok(refusals.length > 0, 'the refusal is logged')
  const text = server.logs.map((line) => JSON.stringify(line)).join('\n')
  assert.equal(text.includes(webhookSecret), false, 'the webhook secret was logged')
  // what the command was stays in the log: its name
  assert.match(text, /"command":\{"name":"eval/)
})

test("serializeError keeps a Redis command's name, never its arguments, nested errors too", () => {
  const withCommand = (message: string) =>
    Object.assign(new Error(message), { command: { name: 'evalsha', args: ['k', 'SECRET'] } })
  const error = Object.assign(withCommand('EXECABORT'), {
    previousErrors: [withCommand('NOPERM')],
    lastNodeError: withCommand('WRONGTYPE'),
  })
  const text = JSON.stringify(serializeError(error))
  assert.equal(text.includes('SECRET'), false, text)
  assert.match(text, /"command":\{"name":"evalsha"\}/)
  assert.match(text, /NOPERM/)
  assert.deepEqual(error.command.args, ['k', 'SECRET'], 'the error itself is left as it is')
  assert.equal(serializeError('not an error' as unknown as Error), 'not an error')
})
