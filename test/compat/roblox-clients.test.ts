import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'
import { ISO_Z, json, send, type WireResponse } from './wire.js'

/*
 * Replays of what popular Roblox client libraries put on the wire, call by call, as their
 * public sources show, against a real presenced over real sockets. Each test names the client
 * and the files it mirrors, and asserts what that client reads back.
 */

const ALICE = '123' as UserId
const BOB = '456' as UserId
/** Real .ROBLOSECURITY values carry this banner; clients send it whole. */
const BANNER =
  '_|WARNING:-DO-NOT-SHARE-THIS.--Sharing-this-will-allow-someone-to-log-in-as-you-and-to-steal-your-ROBUX-and-items.|_'

interface Presences {
  userPresences: {
    userPresenceType: number
    lastLocation: string
    placeId: number | null
    rootPlaceId: number | null
    gameId: string | null
    universeId: number | null
    userId: number
    lastOnline: string
  }[]
}

/** Alice in a catalogued place (via the API a game client uses), Bob never seen. */
async function world(t: Parameters<typeof startApp>[0]): Promise<StartedApp & { cookie: string }> {
  const presenced = await startApp(t, { listen: true })
  await send(presenced.url, {
    method: 'PUT',
    path: '/admin/v1/places/1818',
    headers: [
      ['x-api-key', ADMIN_KEY],
      ['content-type', 'application/json'],
    ],
    body: JSON.stringify({ universeId: 13058, rootPlaceId: 1818, name: 'Crossroads' }),
  })
  const gameToken = await presenced.tokens.issue(ALICE)
  const beat = await send(presenced.url, {
    method: 'POST',
    path: '/v1/presence/register-app-presence',
    headers: [
      ['Authorization', `Bearer ${gameToken}`],
      ['Content-Type', 'application/json'],
    ],
    body: JSON.stringify({ location: 'Game', placeId: 1818, disconnect: false }),
  })
  assert.equal(beat.status, 200, beat.text)
  const cookie = BANNER + (await presenced.tokens.issue(ALICE, { name: 'alice' }))
  return { ...presenced, cookie }
}

/** The checks every client's presence parsing relies on. */
function assertPresences(response: WireResponse, ids: readonly number[]): Presences {
  assert.equal(response.status, 200, response.text)
  const body = json(response) as Presences
  assert.deepEqual(
    body.userPresences.map((p) => p.userId),
    ids,
  )
  for (const p of body.userPresences) {
    assert.ok(Number.isInteger(p.userPresenceType) && p.userPresenceType >= 0)
    assert.equal(typeof p.lastLocation, 'string')
    assert.match(p.lastOnline, ISO_Z)
    assert.ok(!Number.isNaN(Date.parse(p.lastOnline)))
  }
  return body
}

test('noblox.js: setCookie, then getPresences with the token from an empty POST /v2/logout, no retry', async (t) => {
  const { url, cookie } = await world(t)
  // lib/util/http.js (settings.session_only): the cookie header ends in ';'; postman-request
  // with gzip: true asks for gzip and deflate.
  const common = [
    ['cookie', `.ROBLOSECURITY=${cookie};`],
    ['accept-encoding', 'gzip, deflate'],
  ] as const

  // lib/client/setCookie.js -> lib/util/getCurrentUser.js: GET users/v1/users/authenticated,
  // status must be 200 and the body JSON.parse-able
  const me = await send(url, {
    method: 'GET',
    path: '/v1/users/authenticated',
    headers: [['host', 'users.roblox.com'], ...common],
  })
  assert.equal(me.status, 200, me.text)
  assert.deepEqual(json(me), { id: 123, name: 'alice', displayName: 'alice' })

  // lib/util/getGeneralToken.js: POST //auth.roblox.com/v2/logout, no body, no x-csrf-token;
  // it needs a 'x-csrf-token' response header, whatever the status
  const logout = await send(url, {
    method: 'POST',
    path: '/v2/logout',
    headers: [['host', 'auth.roblox.com'], ...common],
  })
  assert.equal(logout.status, 403)
  const xcsrf = logout.headers['x-csrf-token']
  assert.equal(typeof xcsrf, 'string')
  assert.deepEqual(json(logout), { errors: [{ code: 0, message: 'Token Validation Failed' }] })

  // lib/presence/getPresences.js: POST //presence.roblox.com/v1/presence/users with
  // X-CSRF-TOKEN and Content-Type: application/json, then JSON.parse(res.body). The http.js this
  // replay was written from read res.headers['X-CSRF-TOKEN'] in its retry (never set: Node
  // lowercases), so it never retried: the token from /v2/logout must work the first time.
  // (9.0.0, run by hand, lowercases header names and does retry: next test.)
  const presences = await send(url, {
    method: 'POST',
    path: '/v1/presence/users',
    headers: [
      ['host', 'presence.roblox.com'],
      ['X-CSRF-TOKEN', xcsrf as string],
      ['Content-Type', 'application/json'],
      ...common,
    ],
    body: JSON.stringify({ userIds: [123, 456] }),
  })
  const body = assertPresences(presences, [123, 456])
  assert.equal(body.userPresences[0]!.userPresenceType, 2)
  assert.equal(body.userPresences[0]!.placeId, 1818)
  assert.equal(body.userPresences[0]!.universeId, 13058)
  assert.equal(body.userPresences[0]!.lastLocation, 'Crossroads')
  assert.equal(body.userPresences[1]!.userPresenceType, 0)
})

test('noblox.js 9.0.0 (npm), as run by hand: setCookie, getPresences, and its retry after a refused cached x-csrf-token', async (t) => {
  const { url, cookie } = await world(t)
  // Recorded at the TLS front (docs/guides/real-clients.md): lib/util/http.js lowercases every
  // header name and puts its user-agent first; settings.session_only writes the cookie itself,
  // with a trailing ';'; postman-request adds host, accept-encoding (gzip: true), the body's
  // content-length and Connection, in this order.
  const agent = ['user-agent', 'noblox-9.0.0'] as const
  const jar = ['cookie', `.ROBLOSECURITY=${cookie};`] as const
  const tail = ['accept-encoding', 'gzip, deflate'] as const
  const keepAlive = ['Connection', 'keep-alive'] as const

  // setCookie -> getAuthenticatedUser: json: true adds accept
  const me = await send(url, {
    method: 'GET',
    path: '/v1/users/authenticated',
    headers: [
      agent,
      jar,
      ['host', 'users.roblox.com'],
      tail,
      ['accept', 'application/json'],
      keepAlive,
    ],
  })
  assert.equal(me.status, 200, me.text)
  assert.deepEqual(json(me), { id: 123, name: 'alice', displayName: 'alice' })

  // getGeneralToken: an empty POST /v2/logout; the token is read from the lowercase header
  const logout = await send(url, {
    method: 'POST',
    path: '/v2/logout',
    headers: [agent, jar, ['host', 'auth.roblox.com'], tail, ['content-length', '0'], keepAlive],
  })
  assert.equal(logout.status, 403)
  const xcsrf = logout.headers['x-csrf-token'] as string
  assert.equal(typeof xcsrf, 'string')

  const presences = (token: string, body: string) =>
    send(url, {
      method: 'POST',
      path: '/v1/presence/users',
      headers: [
        agent,
        ['x-csrf-token', token],
        ['content-type', 'application/json'],
        jar,
        ['host', 'presence.roblox.com'],
        tail,
        ['content-length', String(body.length)],
        keepAlive,
      ],
      body,
    })
  assertPresences(await presences(xcsrf, '{"userIds":[123,456]}'), [123, 456])

  // A cached token the server no longer takes (noblox caches it for 30 minutes): http.js sees a
  // 403 with an x-csrf-token header on a request that sent one, and sends the same request again
  // with the new token (at most twice), then caches it.
  const refused = await presences('stale-token', '{"userIds":[456]}')
  assert.equal(refused.status, 403)
  assert.deepEqual(json(refused), { errors: [{ code: 0, message: 'Token Validation Failed' }] })
  const fresh = refused.headers['x-csrf-token']
  assert.equal(typeof fresh, 'string')
  assertPresences(await presences(fresh as string, '{"userIds":[456]}'), [456])
})

test('ro.py: get_authenticated_user (expanded), get_user_presences, and the 403 retry of its Requests wrapper', async (t) => {
  const { url, cookie } = await world(t)
  // roblox/utilities/requests.py: httpx defaults plus User-Agent Roblox/WinInet and Referer
  // www.roblox.com; roblox/client.py set_token puts the token in the cookie jar (no ';').
  const session: [string, string][] = [
    ['accept', '*/*'],
    ['accept-encoding', 'gzip, deflate'],
    ['connection', 'keep-alive'],
    ['user-agent', 'Roblox/WinInet'],
    ['referer', 'www.roblox.com'],
    ['cookie', `.ROBLOSECURITY=${cookie}`],
  ]

  // roblox/client.py get_authenticated_user(expand=True): GET users v1/users/authenticated,
  // then GET v1/users/{id}; users.py User reads id, name, displayName, externalAppDisplayName,
  // isBanned, description and dateutil-parses created.
  const me = await send(url, {
    method: 'GET',
    path: '/v1/users/authenticated',
    headers: [['host', 'users.roblox.com'], ...session],
  })
  const partial = json(me) as { id: number }
  assert.equal(partial.id, 123)
  const user = await send(url, {
    method: 'GET',
    path: `/v1/users/${partial.id}`,
    headers: [['host', 'users.roblox.com'], ...session],
  })
  assert.equal(user.status, 200, user.text)
  const full = json(user) as Record<string, unknown>
  for (const key of [
    'id',
    'name',
    'displayName',
    'externalAppDisplayName',
    'isBanned',
    'description',
    'created',
  ]) {
    assert.ok(key in full, `User field ${key}`)
  }
  assert.equal(full.name, 'alice')
  assert.match(full.created as string, ISO_Z)

  // roblox/presence.py get_user_presences: POST json={"userIds": [...]} (Python's json.dumps
  // puts a space after ':' and ','). The read needs no CSRF token: 200 at once.
  const payload = '{"userIds": [123, 456]}'
  const read = await send(url, {
    method: 'POST',
    path: '/v1/presence/users',
    headers: [['host', 'presence.roblox.com'], ...session, ['content-type', 'application/json']],
    body: payload,
  })
  const body = assertPresences(read, [123, 456])
  // PresenceType(IntEnum 0..3) and BasePlace(placeId) if data.get("placeId")
  for (const p of body.userPresences) assert.ok(p.userPresenceType <= 3)
  assert.equal(body.userPresences[0]!.rootPlaceId, 1818)

  // client.get_users([123]) (POST users v1/users) wants a token from a cookie caller: 403 with
  // X-CSRF-Token, which Requests.request stores on the session and retries with once
  const usersBody = '{"userIds": [123], "excludeBannedUsers": false}'
  const first = await send(url, {
    method: 'POST',
    path: '/v1/users',
    headers: [['host', 'users.roblox.com'], ...session, ['content-type', 'application/json']],
    body: usersBody,
  })
  assert.equal(first.status, 403)
  const token = first.headers['x-csrf-token']
  assert.equal(typeof token, 'string')
  // the error is parsed only when Content-Type starts with application/json
  assert.match(String(first.headers['content-type']), /^application\/json/)
  session.push(['X-CSRF-Token', token as string])
  const users = await send(url, {
    method: 'POST',
    path: '/v1/users',
    headers: [['host', 'users.roblox.com'], ...session, ['content-type', 'application/json']],
    body: usersBody,
  })
  assert.equal(users.status, 200, users.text)
  // the stored token goes on every later POST of the session, the presence read's too: 200
  const again = await send(url, {
    method: 'POST',
    path: '/v1/presence/users',
    headers: [['host', 'presence.roblox.com'], ...session, ['content-type', 'application/json']],
    body: '{"userIds": [456]}',
  })
  assertPresences(again, [456])
})

test('roboat (Rust): fetch_users_presence sends the cookie and no x-csrf-token, and does not retry a 403', async (t) => {
  const { url, cookie } = await world(t)
  // src/presence/mod.rs: fetch_users_presence_internal posts {"userIds": [...]} with the Cookie
  // (`.ROBLOSECURITY=<value>`, src/client.rs) when one is set, and no x-csrf-token ("Doesnt need
  // xcsrf token"); it hands any 403 to the caller as RoboatError::InvalidXcsrf, unretried.
  // reqwest's default client: its json() Content-Type, then the Cookie, Accept: */*
  const users = await send(url, {
    method: 'POST',
    path: '/v1/presence/users',
    headers: [
      ['content-type', 'application/json'],
      ['cookie', `.ROBLOSECURITY=${cookie}`],
      ['accept', '*/*'],
      ['host', 'presence.roblox.com'],
    ],
    body: '{"userIds":[123,456]}',
  })
  const body = assertPresences(users, [123, 456])
  // UserPresence (src/presence/request_types.rs): user_presence_type a u8, place_id,
  // root_place_id and universe_id Option<u64>, game_id and last_online Option<String>
  assert.equal(body.userPresences[0]!.userPresenceType, 2)
  assert.equal(body.userPresences[0]!.placeId, 1818)
  // the same read as a form, and with a query string, which only the Fastify route serves (the
  // JSON one above is the lean path's)
  const viaFastify = await send(url, {
    method: 'POST',
    path: '/v1/presence/users?from=roboat',
    headers: [
      ['content-type', 'application/json'],
      ['cookie', `.ROBLOSECURITY=${cookie}`],
    ],
    body: '{"userIds":[123]}',
  })
  assertPresences(viaFastify, [123])
  const form = await send(url, {
    method: 'POST',
    path: '/v1/presence/users',
    headers: [
      ['content-type', 'application/x-www-form-urlencoded'],
      ['cookie', `.ROBLOSECURITY=${cookie}`],
    ],
    body: 'userIds=123',
  })
  assertPresences(form, [123])
  // a token that is sent is still checked: a wrong one gets the 403 and a fresh token
  const wrong = await send(url, {
    method: 'POST',
    path: '/v1/presence/users',
    headers: [
      ['content-type', 'application/json'],
      ['cookie', `.ROBLOSECURITY=${cookie}`],
      ['x-csrf-token', 'not-a-token'],
    ],
    body: '{"userIds":[123]}',
  })
  assert.equal(wrong.status, 403, wrong.text)
  assert.ok(wrong.headers['x-csrf-token'])

  // register_presence: {"location":"Home"} with the Cookie and x-csrf-token (empty until a 403
  // gave one); process_403 (src/validation.rs) reads code 0 as InvalidXcsrf and it retries once
  const register = (token: string) =>
    send(url, {
      method: 'POST',
      path: '/v1/presence/register-app-presence',
      headers: [
        ['content-type', 'application/json'],
        ['cookie', `.ROBLOSECURITY=${cookie}`],
        ['x-csrf-token', token],
        ['accept', '*/*'],
      ],
      body: '{"location":"Home"}',
    })
  const first = await register('')
  assert.equal(first.status, 403, first.text)
  assert.deepEqual(json(first), { errors: [{ code: 0, message: 'Token Validation Failed' }] })
  const again = await register(first.headers['x-csrf-token'] as string)
  assert.equal(again.status, 200, again.text)
  // the heartbeat still needs its token: a write by a cookie without one is refused
  const none = await send(url, {
    method: 'POST',
    path: '/v1/presence/register-app-presence',
    headers: [
      ['content-type', 'application/json'],
      ['cookie', `.ROBLOSECURITY=${cookie}`],
    ],
    body: '{"location":"Home"}',
  })
  assert.equal(none.status, 403, none.text)
})

test('scripts using fetch/axios: the CSRF fetch variants seen in the wild all get 403 with a token', async (t) => {
  const { url, cookie } = await world(t)
  const variants: { name: string; headers: [string, string][]; body?: string }[] = [
    // fetch(url, {method: 'POST', headers: {cookie}, body: '{}'}): fetch labels it text/plain
    {
      name: 'fetch with body "{}"',
      headers: [
        ['cookie', `.ROBLOSECURITY=${cookie};`],
        ['content-type', 'text/plain;charset=UTF-8'],
      ],
      body: '{}',
    },
    // axios.post(url, {}, {headers: {Cookie}}): a JSON body
    {
      name: 'axios with {}',
      headers: [
        ['Cookie', `.ROBLOSECURITY=${cookie}`],
        ['Content-Type', 'application/json'],
        ['Accept', 'application/json, text/plain, */*'],
      ],
      body: '{}',
    },
    // extensions send a placeholder token to be refused with the real one
    {
      name: 'X-CSRF-TOKEN: fetch',
      headers: [
        ['cookie', `.ROBLOSECURITY=${cookie}`],
        ['X-CSRF-TOKEN', 'fetch'],
      ],
    },
    // requests.post(url, data=None, cookies=...): nothing but the cookie, Content-Length: 0
    { name: 'python requests, no body', headers: [['Cookie', `.ROBLOSECURITY=${cookie}`]] },
    // anonymous: no cookie at all
    { name: 'anonymous', headers: [] },
  ]
  for (const variant of variants) {
    for (const path of ['/v2/logout', '/v2/login']) {
      const response = await send(url, {
        method: 'POST',
        path,
        headers: variant.headers,
        ...(variant.body !== undefined && { body: variant.body }),
      })
      assert.equal(response.status, 403, `${variant.name} ${path}: ${response.text}`)
      assert.equal(typeof response.headers['x-csrf-token'], 'string', variant.name)
      assert.deepEqual(json(response), {
        errors: [{ code: 0, message: 'Token Validation Failed' }],
      })
    }
  }
})

test('a CSRF token fetched anonymously does not authorize a cookie user; the 403 hands a user-bound one', async (t) => {
  const { url, cookie } = await world(t)
  // the token comes from an anonymous POST /v2/logout ...
  const logout = await send(url, { method: 'POST', path: '/v2/logout' })
  assert.equal(logout.status, 403)
  const anonymousToken = logout.headers['x-csrf-token'] as string
  // ... and is refused once the cookie is set: it was bound to no user (issue 15, item 14)
  const request = (token: string) =>
    send(url, {
      method: 'POST',
      path: '/v1/presence/register-app-presence',
      headers: [
        ['Cookie', `.ROBLOSECURITY=${cookie}`],
        ['X-CSRF-TOKEN', token],
        ['Content-Type', 'application/json'],
      ],
      body: JSON.stringify({ location: 'Home', placeId: null, disconnect: false }),
    })
  const refused = await request(anonymousToken)
  assert.equal(refused.status, 403, refused.text)
  assert.deepEqual(json(refused), { errors: [{ code: 0, message: 'Token Validation Failed' }] })
  const userToken = refused.headers['x-csrf-token'] as string
  assert.ok(userToken && userToken !== anonymousToken)
  // every Roblox client retries once with the token of the 403: that one is the user's
  const beat = await request(userToken)
  assert.equal(beat.status, 200, beat.text)
  assert.deepEqual(json(beat), {})
  const presences = await send(url, {
    method: 'POST',
    path: '/v1/presence/users',
    headers: [
      ['Cookie', `.ROBLOSECURITY=${cookie};`],
      ['X-CSRF-TOKEN', userToken],
      ['Content-Type', 'application/json'],
    ],
    body: JSON.stringify({ userIds: [123] }),
  })
  assertPresences(presences, [123])
})

test('a token issued to one user is refused for another user', async (t) => {
  const { url, cookie, tokens } = await world(t)
  const bobCookie = await tokens.issue(BOB)
  const aliceToken = (
    await send(url, {
      method: 'POST',
      path: '/v2/logout',
      headers: [['Cookie', `.ROBLOSECURITY=${cookie}`]],
    })
  ).headers['x-csrf-token'] as string
  const asBob = await send(url, {
    method: 'POST',
    path: '/v1/presence/users',
    headers: [
      ['Cookie', `.ROBLOSECURITY=${bobCookie}`],
      ['X-CSRF-TOKEN', aliceToken],
      ['Content-Type', 'application/json'],
    ],
    body: JSON.stringify({ userIds: [123] }),
  })
  assert.equal(asBob.status, 403)
  assert.notEqual(asBob.headers['x-csrf-token'], aliceToken)
})
