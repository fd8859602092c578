import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'
import {
  REGISTER,
  USERS,
  assertRobloxError,
  bearer,
  post,
  presencesOf,
  register,
} from '../integration/roblox-helpers.js'

const ALICE = '9007199254740993' as UserId
const BOB = '20' as UserId

/** Alice in game where only friends may see it; a key reads her as a non-friend or in full. */
async function setup(t: Parameters<typeof startApp>[0]) {
  const clock = new ManualClock(Date.UTC(2026, 0, 1))
  const presenced = await startApp(t, { clock })
  const { app, service, tokens } = presenced
  await service.putSettings(ALICE, { visibility: 'friends', invisible: false })
  await register(app, await bearer(tokens, ALICE), { location: 'Game', placeId: 1818 })
  const keys = service.keys
  return { ...presenced, clock, keys }
}

test('x-api-key with presence:read reads as a trusted service, privacy applied', async (t) => {
  const { app, keys } = await setup(t)
  const { secret } = await keys.create({ name: 'matchmaker', scopes: ['presence:read'] })
  const response = await post(app, USERS, { userIds: [ALICE, BOB] }, { 'x-api-key': secret })
  assert.equal(response.statusCode, 200, response.body)
  const [alice, bob] = presencesOf(response)
  // in game, but where is for friends only: a service key without :private is no friend
  assert.equal(alice!.userPresenceType, 2)
  assert.equal(alice!.placeId, null)
  assert.equal(String(alice!.userId), ALICE, 'int64 id exact')
  assert.equal(bob!.userPresenceType, 0)
})

test('x-api-key with presence:read:private sees past visibility settings', async (t) => {
  const { app, keys } = await setup(t)
  const { secret } = await keys.create({ name: 'moderation', scopes: ['presence:read:private'] })
  const response = await post(app, USERS, { userIds: [ALICE] }, { 'x-api-key': secret })
  const [alice] = presencesOf(response)
  assert.equal(alice!.userPresenceType, 2)
  assert.equal(alice!.placeId, 1818)
})

test('a key lacking presence:read gets 403 naming the scope, in the Roblox shape', async (t) => {
  const { app, keys } = await setup(t)
  const { secret } = await keys.create({ name: 'writer', scopes: ['presence:write', 'admin'] })
  const response = await post(app, USERS, { userIds: [ALICE] }, { 'x-api-key': secret })
  assertRobloxError(response, 403, 0, /lacks the required scope: presence:read\b/)
})

test('the users lookups take a key with a read scope only, as the presence read does', async (t) => {
  const { app, keys } = await setup(t)
  const reader = (await keys.create({ name: 'reader', scopes: ['presence:read'] })).secret
  const writer = (await keys.create({ name: 'writer', scopes: ['presence:write', 'admin'] })).secret
  const lookups = [
    { method: 'GET' as const, url: `/v1/users/${ALICE}` },
    { method: 'POST' as const, url: '/v1/users', payload: { userIds: [ALICE] } },
    { method: 'POST' as const, url: '/v1/usernames/users', payload: { usernames: ['alice'] } },
  ]
  for (const lookup of lookups) {
    const read = await app.inject({ ...lookup, headers: { 'x-api-key': reader } })
    assert.equal(read.statusCode, 200, `${lookup.url}: ${read.body}`)
    // a game server's write key, or an admin key, reads no more here than on /v1/presence/users
    for (const key of [writer, ADMIN_KEY]) {
      const refused = await app.inject({ ...lookup, headers: { 'x-api-key': key } })
      assertRobloxError(refused, 403, 0, /lacks the required scope: presence:read\b/)
    }
  }
})

test('unknown, malformed, expired and revoked keys get 401; the admin key is no read key', async (t) => {
  const { app, keys, clock } = await setup(t)
  const expiring = await keys.create({
    name: 'short',
    scopes: ['presence:read'],
    expiresAt: clock.now() + 60_000,
  })
  const revoked = await keys.create({ name: 'gone', scopes: ['presence:read'] })

  const ok = await post(app, USERS, { userIds: [ALICE] }, { 'x-api-key': expiring.secret })
  assert.equal(ok.statusCode, 200)
  clock.advance(60_000)
  await keys.revoke(revoked.key.id)

  const refused = [
    expiring.secret,
    revoked.secret,
    'pk_unknown',
    'not-a-key',
    `pk_${'x'.repeat(500)}`,
  ]
  for (const key of refused) {
    const response = await post(app, USERS, { userIds: [ALICE] }, { 'x-api-key': key })
    assertRobloxError(response, 401, 0, /unknown, expired or revoked/)
  }
  // the operator's admin key is a valid key, for the admin API only: it reads nothing
  const admin = await post(app, USERS, { userIds: [ALICE] }, { 'x-api-key': ADMIN_KEY })
  assertRobloxError(admin, 403, 0, /lacks the required scope: presence:read/)
})

test('a user credential wins over x-api-key; a key cannot register presence', async (t) => {
  const { app, keys, tokens } = await setup(t)
  const { secret } = await keys.create({ name: 'rw', scopes: ['presence:read', 'presence:write'] })
  // a bad Bearer is refused even with a good key: the user credential is what counts
  const bad = await post(
    app,
    USERS,
    { userIds: [ALICE] },
    { authorization: 'Bearer nope', 'x-api-key': secret },
  )
  assertRobloxError(bad, 401)
  // Bob (a user) with a key beside it reads as Bob, a non-friend
  const asBob = await post(
    app,
    USERS,
    { userIds: [ALICE] },
    { ...(await bearer(tokens, BOB)), 'x-api-key': secret },
  )
  assert.equal(presencesOf(asBob)[0]!.placeId, null)

  const before = await app.inject({ method: 'POST', url: USERS, payload: { userIds: [ALICE] } })
  const write = await post(app, REGISTER, { location: 'Website' }, { 'x-api-key': secret })
  // valid, but no user: 403, not the 401 that tells a client to sign in again
  assertRobloxError(write, 403, 0, /an API key is not a user/)
  const after = await app.inject({ method: 'POST', url: USERS, payload: { userIds: [ALICE] } })
  assert.equal(after.body, before.body, 'nothing written')
})

test('a key has its own rate-limit budget, not its client address', async (t) => {
  // a clock that stands still: the window cannot roll over between the calls
  const presenced = await startApp(t, { clock: new ManualClock(), config: { rateLimitMax: 3 } })
  const keys = presenced.service.keys
  const a = await keys.create({ name: 'a', scopes: ['presence:read'] })
  const b = await keys.create({ name: 'b', scopes: ['presence:read'] })
  const call = (key: string) => post(presenced.app, USERS, { userIds: [1] }, { 'x-api-key': key })
  for (let i = 0; i < 3; i++) assert.equal((await call(a.secret)).statusCode, 200)
  assertRobloxError(await call(a.secret), 429)
  // same address, another key: its own budget
  assert.equal((await call(b.secret)).statusCode, 200)
})
