import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { redactUrl } from '../../src/app/observability.js'
import { parseUserId } from '../../src/core/user-id.js'
import { Tokens } from '../../src/service/tokens.js'
import { spawnServer } from '../helpers/spawn-server.js'

test('redactUrl replaces credential query values and keeps the rest', () => {
  assert.equal(redactUrl('/v1/x'), '/v1/x')
  assert.equal(redactUrl('/v1/x?a=1'), '/v1/x?a=1')
  assert.equal(
    redactUrl('/ws?access_token=abc.def.ghi&ids=1,2'),
    '/ws?access_token=[redacted]&ids=1,2',
  )
  assert.equal(redactUrl('/s?ids=1&Access_Token=x#f'), '/s?ids=1&Access_Token=[redacted]#f')
  assert.equal(
    redactUrl('/s?token=x&api_key=y&key=z'),
    '/s?token=[redacted]&api_key=[redacted]&key=[redacted]',
  )
  assert.equal(redactUrl('/s?monkey=1'), '/s?monkey=1')
})

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
