import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { startApp } from '../helpers/start-app.js'
import { refusedUpgrade } from './native-client.js'

const A = '1001' as UserId
const B = '1002' as UserId

/**
 * One credential per request on the native streams: a second one (another user's token, a wrong
 * token, a key) is refused with 400, not silently ignored for the one that wins (RFC 6750 §2:
 * a client must not send its token more than one way).
 */
test('native streams refuse a request that carries more than one credential', async (t) => {
  const app = await startApp(t, { listen: true, config: { flapGraceMs: 0 } })
  const mine = await app.tokens.issue(A)
  const theirs = await app.tokens.issue(B)
  const sse = `${app.url}/api/v1/realtime/sse?ids=${B}`
  const ws = `${app.url}/api/v1/realtime`
  const cases: { name: string; query: string; headers: Record<string, string> }[] = [
    {
      name: 'Bearer and another user in the query',
      query: `access_token=${theirs}`,
      headers: { authorization: `Bearer ${mine}` },
    },
    {
      name: 'Bearer and a wrong query token',
      query: 'access_token=nope',
      headers: { authorization: `Bearer ${mine}` },
    },
    {
      name: 'the query token twice',
      query: `access_token=${mine}&access_token=${theirs}`,
      headers: {},
    },
    {
      name: 'a query token and a key',
      query: `access_token=${mine}`,
      headers: { 'x-api-key': 'pk_guess' },
    },
    {
      name: 'Bearer and a key',
      query: '',
      headers: { authorization: `Bearer ${mine}`, 'x-api-key': 'pk_guess' },
    },
  ]
  for (const { name, query, headers } of cases) {
    const response = await fetch(`${sse}&${query}`, { headers })
    assert.equal(response.status, 400, `SSE: ${name}`)
    const { error } = (await response.json()) as { error: { code: string; message: string } }
    assert.equal(error.code, 'INVALID_REQUEST', `SSE: ${name}`)
    assert.match(error.message, /one credential/, `SSE: ${name}`)
    const upgrade = await refusedUpgrade(query === '' ? ws : `${ws}?${query}`, headers)
    assert.equal(upgrade.status, 400, `WebSocket: ${name}`)
    assert.equal(JSON.parse(upgrade.body).error.code, 'INVALID_REQUEST', `WebSocket: ${name}`)
  }
  // one credential, either way, still opens the stream
  const single: [query: string, headers: Record<string, string>][] = [
    [`&access_token=${mine}`, {}],
    ['', { authorization: `Bearer ${mine}` }],
  ]
  for (const [query, headers] of single) {
    const response = await fetch(`${sse}${query}`, { headers })
    assert.equal(response.status, 200)
    await response.body?.cancel()
  }
})
