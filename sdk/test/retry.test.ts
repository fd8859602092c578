import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createClient, PresencedError } from '@presenced/client'
import { fakeServer, json, robloxRecord } from './fake-server.js'

/*
 * What is retried, and how long the client waits: the waits are recorded through an injected
 * sleep and the jitter's randomness is injected, so nothing here depends on timing.
 */

const unavailable = { errors: [{ code: 0, message: 'The presence store is unavailable.' }] }

function recordingSleep() {
  const waits: number[] = []
  return { waits, sleep: async (ms: number) => void waits.push(ms) }
}

const usersReply = (id: string) => `{"userPresences":[${robloxRecord(id, 1)}]}`

test('503, 502 and 504 are retried for a read with the same backoff, honouring Retry-After', async (t) => {
  const { url, requests } = await fakeServer(t, (_req, res, i) => {
    if (i === 0) return json(res, 503, unavailable, { 'retry-after': '3' })
    if (i === 1) return json(res, 502, 'Bad Gateway')
    if (i === 2) return json(res, 504, 'Gateway Timeout')
    res.writeHead(200, { 'content-type': 'application/json' }).end(usersReply('7'))
  })
  const { waits, sleep } = recordingSleep()
  const client = createClient({ baseUrl: url, sleep, retry: { jitter: 0 } })
  const [presence] = await client.getUserPresences([7])
  assert.equal(presence?.type, 1)
  assert.equal(requests.length, 4)
  assert.deepEqual(waits, [3000, 2000, 4000])
})

test('a 503 that lasts gives up after maxAttempts with the error and its Retry-After', async (t) => {
  const { url, requests } = await fakeServer(t, (_req, res) =>
    json(res, 503, unavailable, { 'retry-after': '1' }),
  )
  const { waits, sleep } = recordingSleep()
  const client = createClient({ baseUrl: url, sleep, retry: { maxAttempts: 3, jitter: 0 } })
  const error = await client.getUserPresences([1]).catch((e: unknown) => e)
  assert.ok(error instanceof PresencedError)
  assert.deepEqual([error.status, error.retryAfterMs], [503, 1000])
  assert.equal(error.message, 'The presence store is unavailable.')
  assert.equal(requests.length, 3)
  assert.deepEqual(waits, [1000, 2000])
})

test('a 503 whose Retry-After is beyond the cap fails at once; 500 is never retried', async (t) => {
  let status = 503
  const { url, requests } = await fakeServer(t, (_req, res) =>
    json(res, status, unavailable, { 'retry-after': '120' }),
  )
  const { waits, sleep } = recordingSleep()
  const client = createClient({ baseUrl: url, sleep })
  await assert.rejects(client.getUserPresences([1]), {
    status: 503,
    retryAfterMs: 120_000,
    message:
      'The presence store is unavailable. (not retried: Retry-After asks for 120 s, more than retry.maxDelayMs, 30 s)',
  })
  status = 500
  await assert.rejects(client.getUserPresences([1]), {
    status: 500,
    message: 'The presence store is unavailable.',
  })
  assert.equal(requests.length, 2)
  assert.deepEqual(waits, [])
})

test('heartbeats and every Xbox call are retried on 503 (each is safe to repeat)', async (t) => {
  const { url, requests } = await fakeServer(t, (req, res) => {
    // every distinct request fails once, then succeeds
    const tries = requests.filter((r) => r.method === req.method && r.url === req.url).length
    if (tries === 1) return json(res, 503, unavailable)
    if (req.url.startsWith('/users/batch')) return json(res, 200, [])
    if (req.url.startsWith('/users/me')) return json(res, 200, { xuid: '5', state: 'Online' })
    json(res, 200, {})
  })
  const { waits, sleep } = recordingSleep()
  const client = createClient({ baseUrl: url, token: 'tok', sleep, retry: { jitter: 0 } })
  await client.registerAppPresence({ location: 'Home' })
  await client.xbox.batch({ users: [5] })
  await client.xbox.me()
  await client.xbox.cloak(true, 5)
  await client.xbox.clearTitlePresence({ xuid: 5 })
  assert.deepEqual(
    requests.map((r) => `${r.method} ${r.url}`),
    [
      'POST /v1/presence/register-app-presence',
      'POST /v1/presence/register-app-presence',
      'POST /users/batch',
      'POST /users/batch',
      'GET /users/me',
      'GET /users/me',
      'PUT /users/xuid(5)/state',
      'PUT /users/xuid(5)/state',
      'DELETE /users/xuid(5)/devices/current/titles/current',
      'DELETE /users/xuid(5)/devices/current/titles/current',
    ],
  )
  assert.deepEqual(waits, [1000, 1000, 1000, 1000, 1000])
})

test('a connection reset is retried for an idempotent call; connectionErrors: false fails at once', async (t) => {
  const { url, requests } = await fakeServer(t, (_req, res, i) => {
    // the server drops the connection without an answer, then recovers
    if (i === 0 || i === 2) return void res.socket?.destroy()
    res.writeHead(200, { 'content-type': 'application/json' }).end(usersReply('9'))
  })
  const { waits, sleep } = recordingSleep()
  const client = createClient({ baseUrl: url, sleep, retry: { jitter: 0 } })
  const [presence] = await client.getUserPresences([9])
  assert.equal(presence?.userId, '9')
  assert.equal(requests.length, 2)
  assert.deepEqual(waits, [1000])

  const strict = createClient({ baseUrl: url, sleep, retry: { connectionErrors: false } })
  const error = await strict.getUserPresences([9]).catch((e: unknown) => e)
  assert.ok(error instanceof PresencedError)
  assert.deepEqual([error.status, error.protocol], [0, 'network'])
  assert.equal(requests.length, 3)
  assert.deepEqual(waits, [1000])
})

test('aborting during a retry wait ends the call with the signal reason', async (t) => {
  const { url, requests } = await fakeServer(t, (_req, res) => json(res, 503, unavailable))
  const controller = new AbortController()
  const reason = new Error('caller gave up')
  const client = createClient({
    baseUrl: url,
    sleep: async (_ms, signal) => {
      controller.abort(reason)
      signal?.throwIfAborted()
    },
  })
  await assert.rejects(client.getUserPresences([1], { signal: controller.signal }), reason)
  assert.equal(requests.length, 1)
})

test('reconnect waits double up to maxDelayMs and the jitter never takes them above it', async (t) => {
  const { url, requests } = await fakeServer(t, (_req, res) => json(res, 503, unavailable))
  const client = createClient({ baseUrl: url, token: 'tok', random: () => 0.6 })
  const sub = client.subscribe([1], {
    transport: 'sse',
    reconnect: { minDelayMs: 10, maxDelayMs: 40 },
  })
  t.after(() => sub.close())
  const delays: number[] = []
  await new Promise<void>((resolve) =>
    sub.on('reconnecting', ({ delayMs }) => {
      delays.push(delayMs)
      if (delays.length === 5) resolve()
    }),
  )
  sub.close()
  // 10, 20, 40, 40, 40 ms each shortened by 0.5 * 0.6 of itself: at the cap, still below it
  assert.deepEqual(delays, [7, 14, 28, 28, 28])
  assert.ok(requests.length >= 5)
})
