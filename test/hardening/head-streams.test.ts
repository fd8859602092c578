import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'

/**
 * HEAD of a GET route answers what the GET would, without a body. Fastify serves HEAD of every
 * GET route through the GET's handler; on the Server-Sent Events routes that handler opened a
 * stream whose writes a HEAD response drops, headers included: the client waited forever, and
 * its stream held one of the user's places.
 */
test('HEAD of the SSE and feed routes answers their headers at once and opens no stream', async (t) => {
  const app = await startApp(t, { listen: true, config: { realtimeStreamsPerUser: 1 } })
  const user = '3001' as UserId
  const token = await app.tokens.issue(user)
  const head = (path: string, headers: Record<string, string>) =>
    fetch(`${app.url}${path}`, { method: 'HEAD', headers, signal: AbortSignal.timeout(3000) })

  for (const [path, headers] of [
    ['/api/v1/realtime/sse?ids=1,2', { authorization: `Bearer ${token}` }],
    ['/api/v1/stats/feed', {}],
    ['/admin/v1/stats/feed', { 'x-api-key': ADMIN_KEY }],
  ] as const) {
    const response = await head(path, headers)
    assert.equal(response.status, 200, path)
    assert.match(String(response.headers.get('content-type')), /^text\/event-stream/, path)
    assert.equal(await response.text(), '', path)
  }
  // a HEAD is refused as its GET would be
  const anonymous = await head('/api/v1/realtime/sse?ids=1', {})
  assert.equal(anonymous.status, 401)
  assert.equal(
    (await head('/api/v1/realtime/sse?ids=abc', { authorization: `Bearer ${token}` })).status,
    400,
  )
  assert.equal((await head('/admin/v1/stats/feed', {})).status, 401)

  // the HEAD held no stream: the user's only place is free for a GET
  const controller = new AbortController()
  t.after(() => controller.abort())
  const stream = await fetch(`${app.url}/api/v1/realtime/sse?ids=1`, {
    headers: { authorization: `Bearer ${token}` },
    signal: controller.signal,
  })
  assert.equal(stream.status, 200)
  assert.match(String(stream.headers.get('content-type')), /^text\/event-stream/)
})
