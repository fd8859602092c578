import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { createClient, PresencedError } from '@presenced/client'
import { fakeServer, json, robloxRecord } from './fake-server.js'

const usersReply = (ids: string[]) =>
  `{"userPresences":[${ids.map((id) => robloxRecord(id)).join(',')}]}`

function recordingSleep() {
  const waits: number[] = []
  return { waits, sleep: async (ms: number) => void waits.push(ms) }
}

test('a cookie-authenticated write answers the x-csrf-token challenge once and remembers it', async (t) => {
  const { url, requests } = await fakeServer(t, (req, res) => {
    if (req.headers['x-csrf-token'] !== 'fresh-token') {
      return json(
        res,
        403,
        { errors: [{ code: 0, message: 'Token Validation Failed' }] },
        {
          'x-csrf-token': 'fresh-token',
        },
      )
    }
    json(res, 200, {}, { 'x-heartbeat-after': '30' })
  })
  const client = createClient({ baseUrl: url, cookie: 'secret-cookie' })
  const first = await client.registerAppPresence({ location: 'Home' })
  assert.equal(first.heartbeatAfterMs, 30_000)
  assert.equal(requests.length, 2)
  assert.equal(requests[0]!.headers.cookie, '.ROBLOSECURITY=secret-cookie')
  assert.equal(requests[1]!.body, requests[0]!.body, 'the same request is retried')

  await client.registerAppPresence({ location: 'Home' })
  assert.equal(requests.length, 3, 'the remembered token passes at the first try')
  assert.equal(requests[2]!.headers['x-csrf-token'], 'fresh-token')
})

test('a second CSRF refusal is not retried in a loop', async (t) => {
  let n = 0
  const { url, requests } = await fakeServer(t, (_req, res) =>
    json(
      res,
      403,
      { errors: [{ code: 0, message: 'Token Validation Failed' }] },
      {
        'x-csrf-token': `token-${n++}`,
      },
    ),
  )
  const client = createClient({ baseUrl: url, cookie: '.ROBLOSECURITY=abc; other=1' })
  const error = await client.registerAppPresence().catch((e: unknown) => e)
  assert.ok(error instanceof PresencedError)
  assert.equal(error.status, 403)
  assert.equal(error.code, 0)
  assert.equal(error.message, 'Token Validation Failed')
  assert.equal(requests.length, 2)
  assert.equal(requests[0]!.headers.cookie, '.ROBLOSECURITY=abc; other=1')
})

test('429 is retried with exponential backoff from 1 s, honouring Retry-After', async (t) => {
  const { url, requests } = await fakeServer(t, (_req, res, i) => {
    if (i === 0) return json(res, 429, { errors: [{ code: 0, message: 'Too many' }] })
    if (i === 1)
      return json(res, 429, { errors: [{ code: 0, message: 'Too many' }] }, { 'retry-after': '7' })
    if (i === 2) return json(res, 429, { errors: [{ code: 0, message: 'Too many' }] })
    res.writeHead(200, { 'content-type': 'application/json' }).end(usersReply(['5']))
  })
  const { waits, sleep } = recordingSleep()
  const client = createClient({ baseUrl: url, sleep, retry: { jitter: 0 } })
  const [presence] = await client.getUserPresences([5])
  assert.equal(presence?.userId, '5')
  assert.equal(requests.length, 4)
  assert.deepEqual(waits, [1000, 7000, 4000])
})

test('429 backoff is capped, jittered within the cap, and gives up after maxAttempts', async (t) => {
  const { url, requests } = await fakeServer(t, (_req, res) =>
    json(res, 429, { errors: [{ code: 0, message: 'Too many requests' }] }, { 'retry-after': '1' }),
  )
  const { waits, sleep } = recordingSleep()
  // the jitter's random number, fixed: near the most it can take off, then none
  const draws = [0.9, 0.9, 0.9, 0.9, 0]
  const client = createClient({
    baseUrl: url,
    sleep,
    random: () => draws.shift()!,
    retry: { maxAttempts: 6, maxDelayMs: 5000, jitter: 0.5 },
  })
  const error = await client.getUserPresences([1]).catch((e: unknown) => e)
  assert.ok(error instanceof PresencedError)
  assert.equal(error.status, 429)
  assert.equal(error.retryAfterMs, 1000)
  assert.equal(requests.length, 6)
  // 1 s, 2 s, 4 s, then the 5 s cap; each less up to half of itself, never under Retry-After
  assert.deepEqual(waits, [1000, 1100, 2200, 2750, 5000])
})

test('a Retry-After beyond the cap fails at once; retry: false never retries', async (t) => {
  const { url, requests } = await fakeServer(t, (_req, res) =>
    json(res, 429, { errors: [{ code: 0, message: 'slow down' }] }, { 'retry-after': '3600' }),
  )
  const { waits, sleep } = recordingSleep()
  const capped = createClient({ baseUrl: url, sleep })
  // the error says why it was not retried: the server's wait, beyond the cap
  await assert.rejects(capped.getUserPresences([1]), {
    status: 429,
    code: 0,
    retryAfterMs: 3_600_000,
    message:
      'slow down (not retried: Retry-After asks for 3600 s, more than retry.maxDelayMs, 30 s)',
  })
  const never = createClient({ baseUrl: url, sleep, retry: false })
  await assert.rejects(never.getUserPresences([1]), { status: 429, message: 'slow down' })
  assert.equal(requests.length, 2)
  assert.deepEqual(waits, [])
})

test('other errors are not retried and carry status, protocol code and message', async (t) => {
  const { url, requests } = await fakeServer(t, (_req, res) =>
    json(res, 400, {
      errors: [{ code: 2, message: 'Too many User Ids being sent in the request.' }],
    }),
  )
  const client = createClient({ baseUrl: url, sleep: async () => {} })
  const error = await client.getUserPresences([1]).catch((e: unknown) => e)
  assert.ok(error instanceof PresencedError)
  assert.deepEqual([error.status, error.code, error.protocol], [400, 2, 'roblox'])
  assert.equal(error.message, 'Too many User Ids being sent in the request.')
  assert.equal(requests.length, 1)
})

test('an unreachable server is a PresencedError with status 0, not a raw fetch failure', async () => {
  // a port that was just free: nothing listens there, so the connection is refused
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise((resolve) => probe.close(resolve))
  const { waits, sleep } = recordingSleep()
  const baseUrl = `http://127.0.0.1:${port}`
  const client = createClient({ baseUrl, sleep, retry: { jitter: 0 } })
  const error = await client.getUserPresences([1]).catch((e: unknown) => e)
  assert.ok(error instanceof PresencedError)
  assert.equal(error.status, 0)
  assert.equal(error.protocol, 'network')
  assert.equal(error.message, `Cannot reach presenced at ${baseUrl}: ECONNREFUSED`)
  assert.deepEqual(waits, [1000, 2000, 4000, 8000], 'a refused connection is retried first')
  // a port fetch refuses to use is no outage: not retried
  const bad = createClient({ baseUrl: 'http://127.0.0.1:1', sleep })
  await assert.rejects(bad.getUserPresences([1]), {
    status: 0,
    message: /127\.0\.0\.1:1: bad port/,
  })
  assert.equal(waits.length, 4)
})

test('a connection lost while the answer is read is a network PresencedError, retried when idempotent', async (t) => {
  // the status line and headers arrive, then the socket closes half way through the body
  const { url, requests } = await fakeServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' })
    res.write('{"userPresences":[')
    setImmediate(() => res.socket?.destroy())
  })
  const { waits, sleep } = recordingSleep()
  const client = createClient({ baseUrl: url, sleep, retry: { jitter: 0 } })
  const error = await client.getUserPresences([1]).catch((e: unknown) => e)
  assert.ok(error instanceof PresencedError, `a PresencedError, not ${String(error)}`)
  assert.equal(error.status, 0)
  assert.equal(error.protocol, 'network')
  assert.match(
    error.message,
    new RegExp(`^Lost the connection to presenced at ${url} while reading its answer: `),
  )
  assert.equal(requests.length, 5, 'an idempotent read is tried again, as for a refused connection')
  assert.deepEqual(waits, [1000, 2000, 4000, 8000])
  // without retries for broken connections, one try
  const once = createClient({ baseUrl: url, sleep, retry: { connectionErrors: false } })
  const write = await once.registerAppPresence({ location: 'Home' }).catch((e: unknown) => e)
  assert.ok(write instanceof PresencedError)
  assert.equal(write.protocol, 'network')
  assert.equal(requests.length, 6)
})

test('a token is sent as Bearer; baseUrl must be an http(s) URL', async (t) => {
  const { url, requests } = await fakeServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(usersReply(['1']))
  })
  await createClient({ baseUrl: url + '/', token: 'tok' }).getUserPresences([1])
  assert.equal(requests[0]!.headers.authorization, 'Bearer tok')
  assert.equal(requests[0]!.url, '/v1/presence/users')
  assert.throws(() => createClient({ baseUrl: 'localhost:8080' }), TypeError)
})

test(
  'SSE against a presenced without the POST form falls back to GET with the ids',
  { timeout: 10_000 },
  async (t) => {
    const presence = {
      userId: '9007199254740993',
      state: 'offline',
      lastOnline: null,
      locationHidden: false,
      sessions: [],
    }
    const { url, requests } = await fakeServer(t, (request, response) => {
      if (request.method === 'POST') {
        return json(response, 404, {
          message: 'Route POST:/api/v1/realtime/sse not found',
          error: 'Not Found',
          statusCode: 404,
        })
      }
      response.writeHead(200, { 'content-type': 'text/event-stream' })
      const frame = { type: 'snapshot', seq: 1, resume: 'tok', presences: [presence] }
      response.write(`id: tok.1\ndata: ${JSON.stringify(frame)}\n\n`)
    })
    const client = createClient({ baseUrl: url, token: 'a-token' })
    const sub = client.subscribe(['9007199254740993'], { transport: 'sse' })
    t.after(() => sub.close())
    const snapshot = await new Promise<unknown>((resolve) => sub.on('snapshot', resolve))
    assert.equal(
      (snapshot as { presences: { userId: string }[] }).presences[0]!.userId,
      '9007199254740993',
    )
    assert.deepEqual(
      requests.map((r) => r.method),
      ['POST', 'GET'],
    )
    const get = new URL(requests[1]!.url, url)
    assert.equal(get.pathname, '/api/v1/realtime/sse')
    assert.equal(get.searchParams.get('ids'), '9007199254740993')
    assert.equal(requests[1]!.headers.authorization, 'Bearer a-token')
  },
)
