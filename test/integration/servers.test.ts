import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { PresenceType, deriveUserState, type OfflineReason } from '../../src/core/presence.js'
import type { UserId } from '../../src/core/user-id.js'
import type { Config } from '../../src/app/config.js'
import { ManualClock } from '../../src/service/clock.js'
import type { PresenceChange } from '../../src/store/presence-store.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'

const GAME = '6d7c1f0a-5b7e-4f3e-9a51-0c2d9e8b7a61'
const OTHER = '9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d'
const TTL_SECONDS = 30

async function start(t: TestContext, config: Partial<Config> = {}) {
  const clock = new ManualClock()
  const app = await startApp(t, { clock, config: { sessionTtlSeconds: TTL_SECONDS, ...config } })
  return { ...app, clock }
}

async function createKey(app: FastifyInstance, body: Record<string, unknown>) {
  const res = await app.inject({
    method: 'POST',
    url: '/admin/v1/keys',
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
    payload: JSON.stringify({ name: 'game server', ...body }),
  })
  assert.equal(res.statusCode, 201, res.body)
  return res.json() as { id: string; secret: string }
}

function put(app: FastifyInstance, key: string | undefined, body: unknown, gameId = GAME) {
  return app.inject({
    method: 'PUT',
    url: `/api/v1/servers/${gameId}`,
    headers: {
      'content-type': 'application/json',
      ...(key === undefined ? {} : { 'x-api-key': key }),
    },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  })
}

function del(app: FastifyInstance, key: string, gameId = GAME) {
  return app.inject({
    method: 'DELETE',
    url: `/api/v1/servers/${gameId}`,
    headers: { 'x-api-key': key },
  })
}

function get(app: FastifyInstance, key: string | undefined, gameId = GAME) {
  return app.inject({
    method: 'GET',
    url: `/api/v1/servers/${gameId}`,
    headers: key === undefined ? {} : { 'x-api-key': key },
  })
}

function players(...ids: unknown[]) {
  return { placeId: 1818, universeId: 13058, players: ids }
}

/** Every change published on the bus, as `user+`, `user~` (update) or `user-reason`. */
function recordBus(app: StartedApp): { events: string[]; changes: PresenceChange[] } {
  const out = { events: [] as string[], changes: [] as PresenceChange[] }
  app.stores.bus.subscribe((event) => {
    if (event.type !== 'presence') return
    const c = event.change
    out.changes.push(c)
    const was = c.before.sessions.length > 0
    const is = c.after.sessions.length > 0
    out.events.push(
      c.ended?.length ? `${c.userId}-${c.reason}` : `${c.userId}${was && is ? '~' : '+'}`,
    )
  })
  return out
}

async function stateOf(app: StartedApp & { clock: ManualClock }, ids: string[]) {
  const presences = await app.service.rawPresences(ids as UserId[])
  return presences.map((p) => deriveUserState(p.sessions, app.clock.now()))
}

test('no key is 401, a key without the scope is 403 naming it, the right scope passes', async (t) => {
  const app = await start(t)
  const reader = await createKey(app.app, { scopes: ['presence:read'] })
  const writer = await createKey(app.app, { scopes: ['presence:write'] })
  const admin = await createKey(app.app, { scopes: ['admin'] })

  const none = await put(app.app, undefined, players(1))
  assert.equal(none.statusCode, 401)
  assert.equal(none.json().error.code, 'API_KEY_MISSING')
  const unknown = await put(app.app, 'pk_not-a-key', players(1))
  assert.equal(unknown.statusCode, 401)
  assert.equal(unknown.json().error.code, 'API_KEY_INVALID')
  // the admin key of the admin API is valid, for the admin API only: it writes nothing here
  const asAdmin = await put(app.app, ADMIN_KEY, players(1))
  assert.equal(asAdmin.statusCode, 403)
  assert.equal(asAdmin.json().error.code, 'SCOPE_MISSING')

  for (const key of [reader.secret, admin.secret]) {
    const refused = await put(app.app, key, players(1))
    assert.equal(refused.statusCode, 403)
    assert.equal(refused.json().error.code, 'SCOPE_MISSING')
    assert.match(refused.json().error.message, /required scope: presence:write/)
    assert.equal((await del(app.app, key)).statusCode, 403)
  }
  assert.deepEqual(await app.stores.presence.stats(app.clock.now()), { sessions: 0, users: 0 })

  const accepted = await put(app.app, writer.secret, players(1, 2))
  assert.equal(accepted.statusCode, 200, accepted.body)
  assert.deepEqual(accepted.json(), {
    gameId: GAME,
    universeId: '13058',
    players: 2,
    joined: 2,
    left: 0,
    expiresAt: new Date(app.clock.now() + TTL_SECONDS * 1000).toISOString(),
  })

  const noRead = await get(app.app, writer.secret)
  assert.equal(noRead.statusCode, 403)
  assert.match(noRead.json().error.message, /required scope: presence:read/)
  assert.equal((await get(app.app, undefined)).statusCode, 401)
  const roster = await get(app.app, reader.secret)
  assert.equal(roster.statusCode, 200)
  assert.deepEqual(roster.json(), {
    gameId: GAME,
    placeId: '1818',
    universeId: '13058',
    players: ['1', '2'],
    updatedAt: new Date(app.clock.now()).toISOString(),
    expiresAt: new Date(app.clock.now() + TTL_SECONDS * 1000).toISOString(),
  })
})

test('key expiry and revocation take effect at once', async (t) => {
  const app = await start(t)
  const expiring = await createKey(app.app, { scopes: ['presence:write'], expiresIn: 60 })
  const revoked = await createKey(app.app, { scopes: ['presence:write'] })
  assert.equal((await put(app.app, expiring.secret, players(1))).statusCode, 200)
  assert.equal((await put(app.app, revoked.secret, players(1))).statusCode, 200)

  const res = await app.app.inject({
    method: 'DELETE',
    url: `/admin/v1/keys/${revoked.id}`,
    headers: { 'x-api-key': ADMIN_KEY },
  })
  assert.equal(res.statusCode, 200, res.body)
  const afterRevoke = await put(app.app, revoked.secret, players(1))
  assert.equal(afterRevoke.statusCode, 401)
  assert.equal(afterRevoke.json().error.code, 'API_KEY_INVALID')
  assert.equal((await del(app.app, revoked.secret)).statusCode, 401)

  app.clock.advance(59_999)
  assert.equal((await put(app.app, expiring.secret, players(1))).statusCode, 200)
  app.clock.advance(1)
  assert.equal((await put(app.app, expiring.secret, players(1))).statusCode, 401)
})

test('a key limited to universes writes only servers of those universes', async (t) => {
  const app = await start(t)
  const limited = await createKey(app.app, { scopes: ['presence:write'], universes: ['100'] })
  const any = await createKey(app.app, { scopes: ['presence:write'] })
  await app.service.putPlace({
    placeId: '500',
    universeId: '100',
    rootPlaceId: '500',
    name: 'Arena',
  })
  await app.service.putPlace({
    placeId: '600',
    universeId: '200',
    rootPlaceId: '600',
    name: 'Other',
  })

  // a place of the catalogue in its universe, named with its universe
  assert.equal(
    (await put(app.app, limited.secret, { placeId: 500, universeId: 100, players: [1] }))
      .statusCode,
    200,
  )
  // the universe from the places catalogue
  const fromCatalogue = await put(app.app, limited.secret, { placeId: '500', players: [2] }, OTHER)
  assert.equal(fromCatalogue.statusCode, 200, fromCatalogue.body)
  const [session] = (await app.service.rawPresences(['2' as UserId]))[0]!.sessions
  assert.deepEqual(session!.activity, {
    kind: 'inGame',
    placeId: '500',
    rootPlaceId: '500',
    universeId: '100',
    gameId: OTHER,
    location: 'Arena',
  })

  const before = await app.stores.presence.stats(app.clock.now())
  for (const body of [
    { placeId: 1, universeId: 200, players: [3] },
    { placeId: '600', players: [3] },
    // no universe known at all: a limited key cannot be checked, so it is refused
    { placeId: 1, players: [3] },
    // a place the catalogue does not know, said to be of the key's universe: nothing checks that
    { placeId: 1, universeId: 100, players: [3] },
    { placeId: '700', universeId: '100', players: [3] },
  ]) {
    const refused = await put(app.app, limited.secret, body)
    assert.equal(refused.statusCode, 403, JSON.stringify(body))
    assert.equal(refused.json().error.code, 'UNIVERSE_FORBIDDEN')
  }
  assert.match(
    (await put(app.app, limited.secret, { placeId: 1, universeId: 100, players: [3] })).json().error
      .message,
    /place 1 is not in the places catalogue/,
  )
  assert.deepEqual(await app.stores.presence.stats(app.clock.now()), before)

  // the catalogue and the body must agree
  const mismatch = await put(app.app, any.secret, { placeId: '600', universeId: 100, players: [3] })
  assert.equal(mismatch.statusCode, 400)
  assert.equal(mismatch.json().error.code, 'UNIVERSE_MISMATCH')

  // a server of another universe cannot be shut down by the limited key
  assert.equal(
    (await put(app.app, any.secret, { placeId: '600', players: [4] }, OTHER)).statusCode,
    200,
  )
  const end = await del(app.app, limited.secret, OTHER)
  assert.equal(end.statusCode, 403)
  assert.deepEqual(await stateOf(app, ['4']), [PresenceType.InGame])
})

test('a report adds, keeps and removes the right players; DELETE ends them all', async (t) => {
  const app = await start(t)
  const key = (await createKey(app.app, { scopes: ['presence:write', 'presence:read'] })).secret
  const bus = recordBus(app)

  assert.equal((await put(app.app, key, players(1, 2, 3))).json().joined, 3)
  assert.deepEqual(bus.events.sort(), ['1+', '2+', '3+'])
  const [one] = await app.service.rawPresences(['1' as UserId])
  assert.deepEqual(one!.sessions[0]!.key, `server:${GAME}`)
  assert.deepEqual(one!.sessions[0]!.source, 'server')
  assert.deepEqual(one!.sessions[0]!.activity.gameId, GAME)

  bus.events.length = 0
  app.clock.advance(10_000)
  // same set, another order: a heartbeat for all, nothing visible
  const same = await put(app.app, key, players(3, 1, 2))
  assert.deepEqual([same.json().joined, same.json().left], [0, 0])
  assert.deepEqual(bus.events, [])

  const next = await put(app.app, key, players(2, 3, 4))
  assert.deepEqual([next.json().joined, next.json().left], [1, 1])
  assert.deepEqual(bus.events.sort(), ['1-explicit', '4+'])
  assert.deepEqual(await stateOf(app, ['1', '2', '3', '4']), [0, 2, 2, 2])
  assert.deepEqual((await get(app.app, key)).json().players.sort(), ['2', '3', '4'])

  bus.events.length = 0
  const end = await del(app.app, key)
  assert.equal(end.statusCode, 200)
  assert.deepEqual(end.json(), { gameId: GAME, ended: 3 })
  assert.deepEqual(bus.events.sort(), ['2-explicit', '3-explicit', '4-explicit'])
  assert.deepEqual(await stateOf(app, ['2', '3', '4']), [0, 0, 0])
  assert.equal((await get(app.app, key)).statusCode, 404)
  // shutting down twice is fine
  assert.deepEqual((await del(app.app, key)).json(), { gameId: GAME, ended: 0 })
})

test('a crashed server: its players expire on time with reason server_lost', async (t) => {
  const app = await start(t)
  const key = (await createKey(app.app, { scopes: ['presence:write', 'presence:read'] })).secret
  await put(app.app, key, players(1, 2))
  app.clock.advance(20_000)
  await put(app.app, key, players(1, 2))
  const bus = recordBus(app)

  app.clock.advance(TTL_SECONDS * 1000 - 1)
  await app.service.sweepExpired()
  assert.deepEqual(bus.events, [])
  assert.deepEqual(await stateOf(app, ['1', '2']), [2, 2])

  app.clock.advance(1)
  // reads do not wait for the sweep
  assert.deepEqual(await stateOf(app, ['1', '2']), [0, 0])
  assert.equal((await get(app.app, key)).statusCode, 404)
  assert.equal(await app.service.sweepExpired(), 2)
  assert.deepEqual(bus.events.sort(), ['1-server_lost', '2-server_lost'])
  const reasons = new Set<OfflineReason | undefined>(bus.changes.map((c) => c.reason))
  assert.deepEqual([...reasons], ['server_lost'])
  const [presence] = await app.service.rawPresences(['1' as UserId])
  assert.equal(presence!.lastOnline, app.clock.now() - TTL_SECONDS * 1000)
})

test('server sessions combine with the players’ app sessions', async (t) => {
  const app = await start(t)
  const key = (await createKey(app.app, { scopes: ['presence:write'] })).secret
  const web = { userId: '1' as UserId, key: 'app:Web', source: 'app', deviceType: 'Web' } as const
  await app.service.heartbeat({ ...web, activity: { kind: 'online' } })
  assert.deepEqual(await stateOf(app, ['1']), [PresenceType.Online])

  await put(app.app, key, players(1, 2))
  assert.deepEqual(await stateOf(app, ['1', '2']), [PresenceType.InGame, PresenceType.InGame])
  // the Roblox view shows the game
  const roblox = await app.app.inject({
    method: 'POST',
    url: '/v1/presence/users',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ userIds: [1] }),
  })
  assert.equal(roblox.statusCode, 200, roblox.body)
  const [view] = roblox.json().userPresences
  assert.equal(view.userPresenceType, PresenceType.InGame)
  assert.equal(view.gameId, GAME)

  // the game ends, the app still beats: back to Online
  app.clock.advance(5_000)
  await app.service.heartbeat({ ...web, activity: { kind: 'online' } })
  await put(app.app, key, players(2))
  assert.deepEqual(await stateOf(app, ['1', '2']), [PresenceType.Online, PresenceType.InGame])
  await del(app.app, key)
  assert.deepEqual(await stateOf(app, ['1', '2']), [PresenceType.Online, PresenceType.Offline])
})

test('bad input is refused whole: 400 and the store unchanged', async (t) => {
  const app = await start(t)
  const key = (await createKey(app.app, { scopes: ['presence:write', 'presence:read'] })).secret
  await put(app.app, key, players(1, 2, 3))
  const snapshot = async () =>
    JSON.stringify([
      await app.service.rawPresences(['1', '2', '3', '4', '5'] as UserId[]),
      await app.stores.presence.stats(app.clock.now()),
      (await get(app.app, key)).json(),
    ])
  const before = await snapshot()
  const tooMany = Array.from({ length: 10_001 }, (_, i) => i + 1)
  const cases: Array<[string, unknown, string, string?]> = [
    ['an invalid id among valid ones', players(4, 5, 0), 'USER_ID_INVALID'],
    ['a negative id', players(4, -5), 'USER_ID_INVALID'],
    ['a non-canonical id', players(4, '05'), 'USER_ID_INVALID'],
    ['an id beyond int64', players(4, '9223372036854775808'), 'USER_ID_INVALID'],
    ['a fractional id', players(4, 1.5), 'USER_ID_INVALID'],
    ['an object id', players(4, { id: 5 }), 'USER_ID_INVALID'],
    ['a duplicate', players(4, 5, 4), 'PLAYER_DUPLICATE'],
    ['10,001 players', { placeId: 1, players: tooMany }, 'TOO_MANY_PLAYERS'],
    ['a malformed gameId', players(4), 'GAME_ID_INVALID', 'not-a-uuid'],
    ['a uuid with a trailing character', players(4), 'GAME_ID_INVALID', `${GAME}0`],
    // the schema drives validation, and nothing is coerced: a scalar is no one-element array
    ['players not an array', { placeId: 1, players: '4,5' }, 'INVALID_REQUEST'],
    ['players an object', { placeId: 1, players: { 0: 4 } }, 'INVALID_REQUEST'],
    ['no players', { placeId: 1 }, 'INVALID_REQUEST'],
    ['no placeId', { players: [4] }, 'INVALID_REQUEST'],
    ['a bad placeId', { placeId: 'x', players: [4] }, 'PLACE_ID_INVALID'],
    ['a bad universeId', { placeId: 1, universeId: 0, players: [4] }, 'UNIVERSE_ID_INVALID'],
    ['an unknown field', { placeId: 1, players: [4], extra: true }, 'INVALID_REQUEST'],
    ['an array body', [4, 5], 'INVALID_REQUEST'],
    ['broken JSON', '{"placeId":1,"players":[4,', 'INVALID_JSON'],
  ]
  for (const [what, body, code, gameId] of cases) {
    const res = await put(app.app, key, body, gameId)
    assert.equal(res.statusCode, 400, `${what}: ${res.body}`)
    assert.equal(res.json().error.code, code, what)
    assert.ok(res.json().error.message.length > 0)
  }
  const text = await app.app.inject({
    method: 'PUT',
    url: `/api/v1/servers/${GAME}`,
    headers: { 'content-type': 'text/plain', 'x-api-key': key },
    payload: '4,5',
  })
  assert.equal(text.statusCode, 415)
  assert.equal((await get(app.app, key, 'nope')).statusCode, 400)
  assert.equal((await del(app.app, key, 'nope')).statusCode, 400)
  assert.equal(await snapshot(), before)

  // 10,000 exactly is fine, and int64 ids beyond 2^53 stay exact
  const full = Array.from({ length: 9_999 }, (_, i) => String(i + 1))
  const body = `{"placeId":1,"players":[${full.join(',')},9223372036854775807]}`
  const res = await put(app.app, key, body)
  assert.equal(res.statusCode, 200, res.body)
  assert.deepEqual([res.json().players, res.json().joined], [10_000, 9_997])
  const [max] = await app.service.rawPresences(['9223372036854775807' as UserId])
  assert.equal(max!.sessions[0]!.userId, '9223372036854775807')
})

test('a gameId in upper case names the same server', async (t) => {
  const app = await start(t)
  const key = (await createKey(app.app, { scopes: ['presence:write', 'presence:read'] })).secret
  await put(app.app, key, players(1), GAME.toUpperCase())
  const roster = await get(app.app, key, GAME)
  assert.equal(roster.statusCode, 200)
  assert.deepEqual(roster.json().players, ['1'])
})

/** The value of a Prometheus sample with these labels, or undefined. */
function metric(text: string, name: string, labels: Record<string, string> = {}) {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) {
      return Number(line.slice(line.lastIndexOf(' ') + 1))
    }
  }
  return undefined
}

test('metrics see game server reports: one heartbeat per player, ended sessions by reason', async (t) => {
  const app = await start(t)
  const writer = await createKey(app.app, { scopes: ['presence:write'] })
  assert.equal((await put(app.app, writer.secret, players(1, 2, 3))).statusCode, 200)
  let text = (
    await app.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${ADMIN_KEY}` } })
  ).body
  assert.equal(metric(text, 'presenced_heartbeats_total', { source: 'server' }), 3)
  assert.equal(metric(text, 'presenced_live_sessions'), 3)
  // a steady report refreshes every player: three more heartbeats, though nothing changed
  assert.equal((await put(app.app, writer.secret, players(1, 2, 3))).statusCode, 200)
  // one leaves
  assert.equal((await put(app.app, writer.secret, players(1, 2))).statusCode, 200)
  text = (
    await app.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${ADMIN_KEY}` } })
  ).body
  assert.equal(metric(text, 'presenced_heartbeats_total', { source: 'server' }), 8)
  assert.equal(metric(text, 'presenced_sessions_ended_total', { reason: 'explicit' }), 1)
  assert.equal((await del(app.app, writer.secret)).statusCode, 200)
  text = (
    await app.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${ADMIN_KEY}` } })
  ).body
  assert.equal(metric(text, 'presenced_sessions_ended_total', { reason: 'explicit' }), 3)
  assert.equal(metric(text, 'presenced_live_sessions'), 0)
})

test('a game server belongs to its universe: a key of another universe cannot replace its roster', async (t) => {
  const app = await start(t)
  const ninetyNine = await createKey(app.app, { scopes: ['presence:write'], universes: ['99'] })
  const five = await createKey(app.app, { scopes: ['presence:write'], universes: ['5'] })
  const reader = await createKey(app.app, { scopes: ['presence:read:private'] })
  await app.service.putPlace({ placeId: '1818', universeId: '99', rootPlaceId: '1818', name: 'A' })
  await app.service.putPlace({ placeId: '555', universeId: '5', rootPlaceId: '555', name: 'B' })
  const first = await put(app.app, ninetyNine.secret, {
    placeId: 1818,
    universeId: 99,
    players: [41, 42, 43],
  })
  assert.equal(first.statusCode, 200, first.body)
  // the key of universe 5 names its own universe, for the server of universe 99
  const hijack = await put(app.app, five.secret, { placeId: 555, universeId: 5, players: [] })
  assert.equal(hijack.statusCode, 403, hijack.body)
  assert.equal(hijack.json().error.code, 'UNIVERSE_FORBIDDEN')
  // nothing changed: the three players are still there, and the owner still ends its server
  assert.deepEqual((await get(app.app, reader.secret)).json().players, ['41', '42', '43'])
  const end = await del(app.app, ninetyNine.secret)
  assert.equal(end.statusCode, 200, end.body)
  assert.equal(end.json().ended, 3)
})

test('GET roster applies privacy: invisible, location-hidden and blocked players are left out', async (t) => {
  const app = await start(t)
  const writer = await createKey(app.app, { scopes: ['presence:write'] })
  const reader = await createKey(app.app, { scopes: ['presence:read'] })
  const privateReader = await createKey(app.app, { scopes: ['presence:read:private'] })
  assert.equal((await put(app.app, writer.secret, players(1, 2, 3, 4))).statusCode, 200)
  const settings = (id: number, body: object) =>
    app.app.inject({
      method: 'PUT',
      url: `/admin/v1/users/${id}/settings`,
      headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    })
  assert.equal((await settings(2, { invisible: true })).statusCode, 200)
  assert.equal((await settings(3, { visibility: 'nobody' })).statusCode, 200)
  assert.equal((await settings(4, { visibility: 'friends' })).statusCode, 200)
  // what the same key sees on the presence API: 2 offline, 3 and 4 online but not where
  const seen = await app.app.inject({
    method: 'POST',
    url: '/v1/presence/users',
    headers: { 'x-api-key': reader.secret, 'content-type': 'application/json' },
    payload: '{"userIds":[1,2,3,4]}',
  })
  assert.deepEqual(
    seen
      .json()
      .userPresences.map((p: { userPresenceType: number; placeId: unknown }) => [
        p.userPresenceType,
        p.placeId,
      ]),
    [
      [2, 1818],
      [0, null],
      [2, null],
      [2, null],
    ],
  )
  assert.deepEqual((await get(app.app, reader.secret)).json().players, ['1'])
  assert.deepEqual((await get(app.app, privateReader.secret)).json().players, ['1', '2', '3', '4'])
})

test('each key and game server has a request budget: past it 429 with Retry-After, nothing written', async (t) => {
  const app = await start(t, { serverRateLimitMax: 3, serverRateLimitWindowSeconds: 60 })
  const writer = await createKey(app.app, { scopes: ['presence:write', 'presence:read'] })
  const other = await createKey(app.app, { scopes: ['presence:write', 'presence:read'] })
  app.clock.advance(20_000)
  // a report, a roster read and a report again: three requests of this server's budget
  assert.equal((await put(app.app, writer.secret, players(1))).statusCode, 200)
  assert.equal((await get(app.app, writer.secret)).statusCode, 200)
  assert.equal((await put(app.app, writer.secret, players(1, 2))).statusCode, 200)

  const refused = await put(app.app, writer.secret, players(3))
  assert.equal(refused.statusCode, 429, refused.body)
  assert.equal(refused.headers['retry-after'], '40')
  assert.deepEqual(refused.json(), {
    error: { code: 'RATE_LIMITED', message: 'Too many requests' },
  })
  // not even parsed: a body that would be a 400 is the same 429
  assert.equal((await put(app.app, writer.secret, '{"players":')).statusCode, 429)
  assert.equal((await del(app.app, writer.secret)).statusCode, 429)
  assert.equal((await get(app.app, writer.secret)).statusCode, 429)
  assert.deepEqual(await stateOf(app, ['1', '2', '3']), [
    PresenceType.InGame,
    PresenceType.InGame,
    PresenceType.Offline,
  ])

  // another server of the same key, and the same server with another key, have budgets of their own
  assert.equal((await put(app.app, writer.secret, players(4), OTHER)).statusCode, 200)
  const roster = await get(app.app, other.secret)
  assert.equal(roster.statusCode, 200)
  assert.deepEqual(roster.json().players, ['1', '2'])
  // the same server in capitals is the same server, and a gameId that is no uuid is a 400
  assert.equal((await get(app.app, writer.secret, GAME.toUpperCase())).statusCode, 429)
  assert.equal((await get(app.app, writer.secret, 'not-a-uuid')).statusCode, 400)

  app.clock.advance(40_000)
  assert.equal((await put(app.app, writer.secret, players(3))).statusCode, 200)
})

/** A uuid of its own for game server `i`. */
function gameIdOf(i: number): string {
  return `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`
}

test('a key has a budget over all its game servers: many gameIds do not make many budgets', async (t) => {
  const app = await start(t, {
    serverRateLimitMax: 3,
    serverKeyRateLimitMax: 5,
    serverRateLimitWindowSeconds: 60,
  })
  const writer = await createKey(app.app, { scopes: ['presence:write', 'presence:read'] })
  const other = await createKey(app.app, { scopes: ['presence:write', 'presence:read'] })
  app.clock.advance(20_000)
  // five servers, one request each: each well within its own budget of 3, the key's 5 spent
  for (let i = 0; i < 5; i++) {
    const res = await put(app.app, writer.secret, players(String(i + 1)), gameIdOf(i))
    assert.equal(res.statusCode, 200, res.body)
  }
  // a sixth server, never seen: refused for the key, in this route's format, nothing written
  const refused = await put(app.app, writer.secret, players('6'), gameIdOf(5))
  assert.equal(refused.statusCode, 429, refused.body)
  assert.equal(refused.headers['retry-after'], '40')
  assert.deepEqual(refused.json(), {
    error: { code: 'RATE_LIMITED', message: 'Too many requests' },
  })
  assert.equal((await get(app.app, writer.secret, gameIdOf(0))).statusCode, 429)
  assert.equal((await del(app.app, writer.secret, gameIdOf(1))).statusCode, 429)
  assert.deepEqual(await stateOf(app, ['1', '2', '6']), [
    PresenceType.InGame,
    PresenceType.InGame,
    PresenceType.Offline,
  ])
  // another key has its own
  assert.equal((await put(app.app, other.secret, players('7'), gameIdOf(5))).statusCode, 200)
  // the window ends for every server of the key at once
  app.clock.advance(40_000)
  assert.equal((await put(app.app, writer.secret, players('6'), gameIdOf(5))).statusCode, 200)
})

test('the key budget over all servers defaults to 50 times the per-server one', async (t) => {
  const app = await start(t, { serverRateLimitMax: 2, serverRateLimitWindowSeconds: 60 })
  const writer = await createKey(app.app, { scopes: ['presence:write', 'presence:read'] })
  app.clock.advance(20_000)
  for (let i = 0; i < 100; i++) {
    const res = await get(app.app, writer.secret, gameIdOf(i % 50))
    assert.equal(res.statusCode, 404, `request ${i}: ${res.body}`)
  }
  const refused = await get(app.app, writer.secret, gameIdOf(50))
  assert.equal(refused.statusCode, 429, refused.body)
  assert.equal(refused.json().error.code, 'RATE_LIMITED')
})
