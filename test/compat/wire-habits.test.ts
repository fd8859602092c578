import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'
import { assertRobloxError, ISO_Z, json, send, type WireRequest } from './wire.js'

/*
 * The habits of client libraries and of the fronts they go through: one port for every host,
 * forwarded headers, cookie spellings, JSON error bodies everywhere, compression, and the small
 * response guarantees clients lean on.
 */

const ALICE = '123' as UserId
const xboxHeaders = (token: string): [string, string][] => [
  ['Authorization', `XBL3.0 x=userhash;${token}`],
  ['x-xbl-contract-version', '3'],
  ['Accept', 'application/json'],
  ['Accept-Language', 'en-US'],
]

test('one port, every host: routes go by path, never by Host', async (t) => {
  const { url, tokens } = await startApp(t, { listen: true })
  const token = await tokens.issue(ALICE, { name: 'alice' })
  const requests: WireRequest[] = [
    {
      method: 'POST',
      path: '/v1/presence/users',
      headers: [['Content-Type', 'application/json']],
      body: '{"userIds":[123]}',
    },
    {
      method: 'GET',
      path: '/v1/users/authenticated',
      headers: [['Cookie', `.ROBLOSECURITY=${token}`]],
    },
    { method: 'POST', path: '/v2/logout' },
    {
      method: 'POST',
      path: '/users/batch',
      headers: [...xboxHeaders(token), ['Content-Type', 'application/json']],
      body: '{"users":["123"]}',
    },
  ]
  const hosts = [
    'presence.roblox.com',
    'auth.roblox.com',
    'users.roblox.com',
    'userpresence.xboxlive.com',
    'presence.roblox.com:443',
    'anything.example',
  ]
  for (const request of requests) {
    const seen = new Set<string>()
    for (const host of hosts) {
      const response = await send(url, {
        ...request,
        headers: [['Host', host], ...(request.headers ?? [])],
      })
      assert.ok(response.status < 500)
      json(response)
      // the CSRF token differs by nothing but time; everything else must be identical
      seen.add(`${response.status} ${response.text}`)
    }
    assert.equal(seen.size, 1, `${request.method} ${request.path}: ${[...seen].join(' | ')}`)
  }
})

/** Logout as seen through a front that says the client came over https to auth.example.org. */
async function forwardedLogout(url: string, cookie: string, csrfHeaders: [string, string][]) {
  const forwarded: [string, string][] = [
    ['Host', 'auth.roblox.com'],
    ['X-Forwarded-Proto', 'https'],
    ['X-Forwarded-Host', 'auth.example.org'],
    ['X-Forwarded-For', '203.0.113.7'],
    ['Cookie', `.ROBLOSECURITY=${cookie}`],
  ]
  const first = await send(url, { method: 'POST', path: '/v2/logout', headers: forwarded })
  const token = first.headers['x-csrf-token'] as string
  const done = await send(url, {
    method: 'POST',
    path: '/v2/logout',
    headers: [...forwarded, ...csrfHeaders, ['X-CSRF-TOKEN', token]],
  })
  assert.equal(done.status, 200, done.text)
  return String(done.headers['set-cookie'])
}

/**
 * An anonymous CSRF token fetched as one forwarded address, used as another: 401 when the token
 * was accepted (the same client: logout then finds no user), 403 when refused (another client).
 */
async function crossAddress(url: string, from: string, to: string) {
  const fetched = await send(url, {
    method: 'POST',
    path: '/v2/logout',
    headers: [['X-Forwarded-For', from]],
  })
  const used = await send(url, {
    method: 'POST',
    path: '/v2/logout',
    headers: [
      ['X-Forwarded-For', to],
      ['X-CSRF-TOKEN', fetched.headers['x-csrf-token'] as string],
    ],
  })
  return used.status
}

test('X-Forwarded-* are ignored unless PRESENCED_TRUST_PROXY', async (t) => {
  const direct = await startApp(t, { listen: true })
  const cookie = await direct.tokens.issue(ALICE)
  const plain = await forwardedLogout(direct.url, cookie, [])
  // request.protocol and request.hostname come from the socket and the Host header
  assert.doesNotMatch(plain, /Secure/)
  assert.match(plain, /Domain=\.roblox\.com/)
  // the client address is the socket's: a forged X-Forwarded-For changes nothing
  assert.equal(await crossAddress(direct.url, '198.51.100.1', '198.51.100.2'), 401)

  const proxied = await startApp(t, { listen: true, config: { trustProxy: { hops: 1 } } })
  const trustedCookie = await proxied.tokens.issue(ALICE)
  const secure = await forwardedLogout(proxied.url, trustedCookie, [])
  assert.match(secure, /; Secure/)
  assert.match(secure, /Domain=\.example\.org/)
  // behind a trusted front each client has its own address: an anonymous token is theirs only
  assert.equal(await crossAddress(proxied.url, '198.51.100.1', '198.51.100.2'), 403)
  assert.equal(await crossAddress(proxied.url, '198.51.100.1', '198.51.100.1'), 401)
})

test('cookie spellings: trailing ";", an empty Cookie header, other cookies around it', async (t) => {
  const { url, tokens } = await startApp(t, { listen: true })
  const token = await tokens.issue(ALICE, { name: 'alice' })
  for (const cookie of [
    `.ROBLOSECURITY=${token};`,
    `.ROBLOSECURITY=${token}; `,
    `RBXEventTrackerV2=CreateDate=1/1/2026&browserid=1; .ROBLOSECURITY=${token}; RBXSessionTracker=sessionid=x`,
  ]) {
    const me = await send(url, {
      method: 'GET',
      path: '/v1/users/authenticated',
      headers: [['Cookie', cookie]],
    })
    assert.equal(me.status, 200, `${cookie}: ${me.text}`)
  }
  // an empty Cookie header is anonymous: reads work, /authenticated says 401
  const empty: [string, string] = ['Cookie', '']
  const read = await send(url, {
    method: 'POST',
    path: '/v1/presence/users',
    headers: [empty, ['Content-Type', 'application/json']],
    body: '{"userIds":[123]}',
  })
  assert.equal(read.status, 200, read.text)
  assertRobloxError(
    await send(url, { method: 'GET', path: '/v1/users/authenticated', headers: [empty] }),
    401,
  )
  assertRobloxError(await send(url, { method: 'POST', path: '/v2/logout', headers: [empty] }), 403)
})

test('every error body is JSON with Content-Type application/json, on every protocol', async (t) => {
  const { url, tokens } = await startApp(t, { listen: true, config: { bodyLimit: 2048 } })
  const token = await tokens.issue(ALICE)
  const xbox = xboxHeaders(token)
  const big = JSON.stringify({ userIds: [1], pad: 'x'.repeat(4096) })
  // the CSRF check runs before the body is read: only a request passing it gets to a 413
  const csrf = (await send(url, { method: 'POST', path: '/v2/logout' })).headers['x-csrf-token']
  const cases: { name: string; status: number; request: WireRequest }[] = [
    { name: 'unknown path', status: 404, request: { method: 'GET', path: '/v3/nothing' } },
    {
      name: 'Roblox wrong method',
      status: 405,
      request: { method: 'GET', path: '/v1/presence/users' },
    },
    { name: 'companion wrong method', status: 405, request: { method: 'GET', path: '/v2/logout' } },
    {
      name: 'companion wrong method (users)',
      status: 405,
      request: { method: 'DELETE', path: '/v1/users/authenticated' },
    },
    {
      name: 'Xbox wrong method',
      status: 405,
      request: { method: 'GET', path: '/users/batch', headers: xbox },
    },
    {
      name: 'Roblox too large',
      status: 413,
      request: {
        method: 'POST',
        path: '/v1/presence/users',
        headers: [['Content-Type', 'application/json']],
        body: big,
      },
    },
    {
      name: 'Xbox too large',
      status: 413,
      request: {
        method: 'POST',
        path: '/users/batch',
        headers: [...xbox, ['Content-Type', 'application/json']],
        body: big,
      },
    },
    {
      name: 'companion too large',
      status: 413,
      request: {
        method: 'POST',
        path: '/v2/logout',
        headers: [
          ['Content-Type', 'application/json'],
          ['X-CSRF-TOKEN', csrf as string],
        ],
        body: big,
      },
    },
    {
      name: 'Roblox unsupported media type',
      status: 415,
      request: {
        method: 'POST',
        path: '/v1/presence/users',
        headers: [['Content-Type', 'application/xml']],
        body: '<userIds/>',
      },
    },
    {
      name: 'Xbox unsupported media type',
      status: 415,
      request: {
        method: 'POST',
        path: '/users/batch',
        headers: [...xbox, ['Content-Type', 'application/xml']],
        body: '<users/>',
      },
    },
    {
      name: 'Roblox malformed JSON',
      status: 400,
      request: {
        method: 'POST',
        path: '/v1/presence/users',
        headers: [['Content-Type', 'application/json']],
        body: '{"userIds":[1,',
      },
    },
    {
      name: 'Xbox malformed JSON',
      status: 400,
      request: {
        method: 'POST',
        path: '/users/batch',
        headers: [...xbox, ['Content-Type', 'application/json']],
        body: '{"users":["1",',
      },
    },
    {
      name: 'companion bad user id',
      status: 404,
      request: { method: 'GET', path: '/v1/users/abc' },
    },
    {
      name: 'companion anonymous /authenticated',
      status: 401,
      request: { method: 'GET', path: '/v1/users/authenticated' },
    },
    {
      name: 'Xbox without Authorization',
      status: 403,
      request: { method: 'GET', path: '/users/me', headers: [['x-xbl-contract-version', '3']] },
    },
    {
      name: 'Xbox with an invalid token',
      status: 401,
      request: {
        method: 'GET',
        path: '/users/me',
        headers: [
          ['authorization', 'XBL3.0 x=1;not-a-token'],
          ['x-xbl-contract-version', '3'],
        ],
      },
    },
  ]
  for (const { name, status, request } of cases) {
    const response = await send(url, request)
    assert.equal(response.status, status, `${name}: ${response.text}`)
    const body = json(response) as Record<string, unknown>
    assert.ok(body !== null && typeof body === 'object', name)
  }
})

test('gzip and deflate when asked, above 1 KiB; the Roblox bytes are the same once decoded', async (t) => {
  const { url, tokens } = await startApp(t, { listen: true })
  const ids = Array.from({ length: 50 }, (_, i) => 1000 + i)
  const request = (encoding?: string): WireRequest => ({
    method: 'POST',
    path: '/v1/presence/users',
    headers: [
      ['Content-Type', 'application/json'],
      ...(encoding ? [['Accept-Encoding', encoding] as [string, string]] : []),
    ],
    body: JSON.stringify({ userIds: ids }),
  })
  const identity = await send(url, request())
  assert.equal(identity.headers['content-encoding'], undefined)
  for (const encoding of ['gzip', 'deflate']) {
    const compressed = await send(url, request(`${encoding}`))
    assert.equal(compressed.headers['content-encoding'], encoding)
    assert.match(String(compressed.headers.vary), /accept-encoding/i)
    assert.ok(compressed.raw.length < identity.raw.length / 3, `${encoding} shrinks the body`)
    assert.equal(compressed.text, identity.text)
  }
  // a one-record body is below the threshold: sent as is
  const small = await send(url, { ...request('gzip, deflate'), body: '{"userIds":[5]}' })
  assert.equal(small.headers['content-encoding'], undefined)
  json(small)

  // an Xbox batch of 1100 at level all, as clients ask for it
  const token = await tokens.issue(ALICE)
  const users = Array.from({ length: 1100 }, (_, i) => String(2_535_000_000_000_000 + i))
  const batch = (encoding?: string): WireRequest => ({
    method: 'POST',
    path: '/users/batch',
    headers: [
      ...xboxHeaders(token),
      ['Content-Type', 'application/json'],
      ...(encoding ? [['Accept-Encoding', encoding] as [string, string]] : []),
    ],
    body: JSON.stringify({ users, level: 'all' }),
  })
  const plainBatch = await send(url, batch())
  const gzBatch = await send(url, batch('gzip, deflate'))
  assert.equal(gzBatch.headers['content-encoding'], 'gzip')
  const records = json(gzBatch) as { xuid: string }[]
  assert.ok(Array.isArray(records))
  assert.equal(records.length, 1100)
  assert.equal(gzBatch.text, plainBatch.text)
  t.diagnostic(
    `Xbox batch of 1100: ${plainBatch.raw.length} bytes, gzip ${gzBatch.raw.length} bytes`,
  )
})

test('lastOnline ends in Z, a one-id request returns that user first, Xbox reads are arrays', async (t) => {
  const { url, tokens } = await startApp(t, { listen: true })
  const token = await tokens.issue(ALICE)
  const bearer: [string, string] = ['Authorization', `Bearer ${token}`]
  const json_: [string, string] = ['Content-Type', 'application/json']
  for (const disconnect of [false, true]) {
    const beat = await send(url, {
      method: 'POST',
      path: '/v1/presence/register-app-presence',
      headers: [bearer, json_],
      body: JSON.stringify({ location: 'Home', placeId: null, disconnect }),
    })
    assert.equal(beat.status, 200)
  }
  for (const ids of [[123], [999_999], ['123']]) {
    const response = await send(url, {
      method: 'POST',
      path: '/v1/presence/users',
      headers: [json_],
      body: JSON.stringify({ userIds: ids }),
    })
    const body = json(response) as { userPresences: { userId: number; lastOnline: string }[] }
    assert.equal(body.userPresences.length, 1)
    assert.equal(String(body.userPresences[0]!.userId), String(ids[0]))
    assert.match(body.userPresences[0]!.lastOnline, ISO_Z)
  }
  // Alice was online a moment ago: her lastOnline is recent, not the epoch
  const alice = json(
    await send(url, {
      method: 'POST',
      path: '/v1/presence/users',
      headers: [json_],
      body: '{"userIds":[123]}',
    }),
  ) as { userPresences: { lastOnline: string }[] }
  assert.ok(Date.now() - Date.parse(alice.userPresences[0]!.lastOnline) < 60_000)

  // Xbox: batch and People are JSON arrays, even with nothing to show
  const xbox = xboxHeaders(token)
  const one = await send(url, {
    method: 'POST',
    path: '/users/batch',
    headers: [...xbox, json_],
    body: '{"users":["123"]}',
  })
  assert.ok(Array.isArray(json(one)))
  const none = await send(url, {
    method: 'POST',
    path: '/users/batch',
    headers: [...xbox, json_],
    body: '{"users":["123"],"onlineOnly":true}',
  })
  assert.deepEqual(json(none), [])
  const lonely = await send(url, { method: 'GET', path: '/users/me/groups/People', headers: xbox })
  assert.deepEqual(json(lonely), [])
  const friend = await send(url, {
    method: 'PUT',
    path: '/admin/v1/users/123/friends/456',
    headers: [['x-api-key', ADMIN_KEY]],
  })
  assert.equal(friend.status, 204)
  const people = await send(url, { method: 'GET', path: '/users/me/groups/People', headers: xbox })
  const list = json(people) as { xuid: string }[]
  assert.ok(Array.isArray(list))
  assert.deepEqual(
    list.map((r) => r.xuid),
    ['456'],
  )
})
