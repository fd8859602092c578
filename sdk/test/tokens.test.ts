import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createClient, PresencedError, type TokenRequest } from '@presenced/client'
import { fakeServer, json, robloxRecord } from './fake-server.js'

/*
 * A token provider and the server's stream limit against a scripted server: what a real
 * presenced cannot be made to do on cue (answer several calls 401 at once, tell another limit).
 */

test('calls refused 401 together share one refresh of the provider, and each is sent once more', async (t) => {
  const { url, requests } = await fakeServer(t, (req, res) => {
    if (req.headers.authorization !== 'Bearer fresh') {
      return json(res, 401, {
        errors: [{ code: 0, message: 'Authorization has been denied for this request.' }],
      })
    }
    const ids = (JSON.parse(req.body) as { userIds: number[] }).userIds
    json(res, 200, `{"userPresences":[${ids.map((id) => robloxRecord(String(id))).join(',')}]}`)
  })
  const asked: TokenRequest[] = []
  const client = createClient({
    baseUrl: url,
    token: async (request) => {
      asked.push(request)
      // slow enough that the three 401s arrive before the refresh ends
      if (request.forceRefresh) await new Promise((resolve) => setTimeout(resolve, 100))
      return request.forceRefresh ? 'fresh' : 'stale'
    },
    retry: false,
  })
  const answers = await Promise.all([1, 2, 3].map((id) => client.getUserPresence(id)))
  assert.deepEqual(
    answers.map((p) => p.userId),
    ['1', '2', '3'],
  )
  assert.equal(asked.filter((r) => r.forceRefresh).length, 1, 'one refresh for the three')
  assert.equal(requests.length, 6)
})

test('a provider that throws fails the call with a PresencedError; nothing is sent', async (t) => {
  const { url, requests } = await fakeServer(t, (_req, res) => json(res, 200, {}))
  const client = createClient({
    baseUrl: url,
    token: () => {
      throw new Error('the identity provider is down')
    },
  })
  await assert.rejects(client.registerAppPresence(), (e: unknown) => {
    assert.ok(e instanceof PresencedError)
    assert.equal(e.status, 0)
    assert.match(e.message, /token provider failed: the identity provider is down/)
    return true
  })
  assert.equal(requests.length, 0)
})

for (const [told, limit] of [
  ['250', 250],
  [undefined, 1000],
  ['lots', 1000],
] as const) {
  test(`a stream told x-presenced-max-ids: ${told ?? '(none)'} holds to ${limit} ids`, async (t) => {
    const { url } = await fakeServer(t, (_req, res) => {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        ...(told !== undefined && { 'x-presenced-max-ids': told }),
      })
      const presence = { userId: '42', state: 'offline', lastOnline: null, sessions: [] }
      res.write(
        `data: ${JSON.stringify({ type: 'snapshot', seq: 1, resume: 'r', presences: [presence] })}\n\n`,
      )
    })
    const sub = createClient({ baseUrl: url, token: 'tok' }).subscribe([42], { transport: 'sse' })
    t.after(() => sub.close())
    assert.equal(sub.maxIds, 1000, 'before the server told')
    await sub.ready
    assert.equal(sub.maxIds, limit)
  })
}
