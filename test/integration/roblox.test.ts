import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { ManualClock } from '../../src/service/clock.js'
import { startApp } from '../helpers/start-app.js'
import { REGISTER, USERS, bearer, lookup, post, presencesOf, register } from './roblox-helpers.js'

const GAME = '6f1e0c0e-8c5e-4a55-9d8c-0e7e3b1f3f11'
const EPOCH = '1970-01-01T00:00:00.000Z'
const id = (s: string) => s as UserId

test('register in a game: self and others see InGame with the place from the catalogue', async (t) => {
  const { app, tokens, service } = await startApp(t)
  await service.putPlace({
    placeId: '1818',
    universeId: '13058',
    rootPlaceId: '1800',
    name: 'Classic Crossroads',
  })
  const me = await bearer(tokens, '123')
  const before = Date.now()
  const response = await register(app, me, {
    location: 'Game',
    placeId: 1818,
    disconnect: false,
    gameId: GAME,
  })
  assert.equal(response.headers['x-presence-heartbeat-after'], '30')

  const expected = {
    userPresenceType: 2,
    lastLocation: 'Classic Crossroads',
    placeId: 1818,
    rootPlaceId: 1800,
    gameId: GAME,
    universeId: 13058,
    userId: 123,
  }
  const [self] = await lookup(app, [123], me)
  const { lastOnline, ...rest } = self!
  assert.deepEqual(rest, expected)
  // the heartbeat's instant (compared with the clock around the calls, not with the seconds of
  // now: a loaded machine crossed a second between the two once)
  const at = Date.parse(lastOnline)
  assert.ok(at >= before && at <= Date.now(), `${lastOnline} within the calls`)
  assert.notEqual(lastOnline, EPOCH)

  const [anon] = await lookup(app, [123])
  assert.equal(anon!.userPresenceType, 2)
  assert.equal(anon!.placeId, 1818)
})

test('an uncatalogued place keeps its id and the client location text', async (t) => {
  const { app, tokens } = await startApp(t)
  const me = await bearer(tokens, '7')
  await register(app, me, { location: 'My Obby', placeId: 4242, disconnect: false })
  const [p] = await lookup(app, [7])
  assert.equal(p!.userPresenceType, 2)
  assert.equal(p!.lastLocation, 'My Obby')
  assert.equal(p!.placeId, 4242)
  assert.equal(p!.rootPlaceId, null)
  assert.equal(p!.universeId, null)
  assert.equal(p!.gameId, null)
})

test('location Studio (any case) is InStudio; anything else without a place is Online', async (t) => {
  const { app, tokens } = await startApp(t)
  await register(app, await bearer(tokens, '1'), {
    location: 'sTuDiO',
    placeId: null,
    disconnect: false,
  })
  await register(app, await bearer(tokens, '2'), {
    location: 'Home',
    placeId: 0,
    disconnect: false,
  })
  await register(app, await bearer(tokens, '3'), {})
  const [studio, home, bare] = await lookup(app, [1, 2, 3])
  assert.equal(studio!.userPresenceType, 3)
  assert.equal(home!.userPresenceType, 1)
  assert.equal(home!.lastLocation, 'Home')
  assert.equal(home!.placeId, null)
  assert.equal(bare!.userPresenceType, 1)
  assert.equal(bare!.lastLocation, 'Website')
})

test('each device is its own session and the highest wins; disconnect ends only that one', async (t) => {
  const { app, tokens, service } = await startApp(t)
  const me = await bearer(tokens, '55')
  const phone = { ...me, 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)' }
  await register(app, phone, { location: 'Home', disconnect: false })
  await register(app, me, { location: 'Studio', disconnect: false })
  assert.equal((await lookup(app, [55]))[0]!.userPresenceType, 3)

  const raw = await service.rawPresences([id('55')])
  const keys = raw[0]!.sessions.map((s) => `${s.key}/${s.deviceType}`).sort()
  assert.deepEqual(keys, ['app:Studio/PC', 'app:iOS/iOS'])

  // the studio ends explicitly: the phone is still online
  await register(app, me, { location: 'Studio', disconnect: true })
  const [after] = await lookup(app, [55])
  assert.equal(after!.userPresenceType, 1)
  assert.equal(after!.lastLocation, 'Home')

  // a game on an explicit platform outranks the phone
  await register(app, me, { placeId: 99, platform: 'XboxOne', disconnect: false })
  assert.equal((await lookup(app, [55]))[0]!.userPresenceType, 2)
  const sessions = (await service.rawPresences([id('55')]))[0]!.sessions
  assert.ok(sessions.some((s) => s.key === 'app:XboxOne' && s.deviceType === 'XboxOne'))
})

test('disconnect: true ends the session at once; lastOnline stays the last alive instant', async (t) => {
  const clock = new ManualClock()
  const { app, tokens } = await startApp(t, { clock })
  const me = await bearer(tokens, '9')
  await register(app, me, { location: 'Home', disconnect: false })
  clock.advance(5_000)
  await register(app, me, { location: 'Home', disconnect: true })
  const [p] = await lookup(app, [9])
  assert.equal(p!.userPresenceType, 0)
  assert.equal(p!.lastLocation, 'Offline')
  assert.equal(p!.lastOnline, new Date(clock.now()).toISOString())
  // disconnecting a session that does not exist is fine too
  await register(app, me, { disconnect: true })
})

test('a session past its TTL reads Offline before any sweep', async (t) => {
  const clock = new ManualClock()
  const { app, tokens, service } = await startApp(t, { clock, config: { sessionTtlSeconds: 10 } })
  await service.stop()
  const me = await bearer(tokens, '10')
  const response = await register(app, me, { placeId: 5, disconnect: false })
  assert.equal(response.headers['x-presence-heartbeat-after'], '5')
  clock.advance(9_999)
  assert.equal((await lookup(app, [10]))[0]!.userPresenceType, 2)
  clock.advance(1)
  const [p] = await lookup(app, [10], me)
  assert.equal(p!.userPresenceType, 0)
  assert.equal(p!.placeId, null)
  assert.equal(p!.lastOnline, new Date(clock.now() - 10_000).toISOString())

  // a heartbeat keeps it alive: beat at 9 s, still there at 18 s
  await register(app, me, { placeId: 5, disconnect: false })
  clock.advance(9_000)
  await register(app, me, { placeId: 5, disconnect: false })
  clock.advance(9_000)
  assert.equal((await lookup(app, [10]))[0]!.userPresenceType, 2)
})

test('records come in the order asked, one per distinct id; unknown users are Offline', async (t) => {
  const { app, tokens } = await startApp(t)
  await register(app, await bearer(tokens, '123'), { location: 'Home', disconnect: false })
  const records = await lookup(app, [5, 123, '5', 7, 123])
  assert.deepEqual(
    records.map((r) => r.userId),
    [5, 123, 7],
  )
  assert.deepEqual(records[0], {
    userPresenceType: 0,
    lastLocation: 'Offline',
    placeId: null,
    rootPlaceId: null,
    gameId: null,
    universeId: null,
    userId: 5,
    lastOnline: EPOCH,
  })
  assert.equal(records[1]!.userPresenceType, 1)
  // a one-id request answers that user
  assert.deepEqual(
    (await lookup(app, [7])).map((r) => r.userId),
    [7],
  )
})

test('int64 ids above 2^53 are kept exact, in requests and responses', async (t) => {
  const { app, tokens, service } = await startApp(t)
  const big = '9007199254740993' // 2^53 + 1: a double would round it to ...992
  const max = '9223372036854775807'
  await service.putPlace({
    placeId: max,
    universeId: '9007199254740995',
    rootPlaceId: max,
    name: 'Far',
  })
  await register(app, await bearer(tokens, big), { placeId: max, disconnect: false })

  const response = await post(app, USERS, `{"userIds":[${big}, "${max}", 9007199254740992]}`, {
    'content-type': 'application/json',
  })
  assert.equal(response.statusCode, 200, response.body)
  assert.ok(response.body.includes(`"userId":${big},`))
  assert.ok(response.body.includes(`"placeId":${max},`))
  assert.ok(response.body.includes(`"universeId":9007199254740995,`))
  const [a, b, c] = presencesOf(response)
  assert.equal(a!.userId, big)
  assert.equal(a!.userPresenceType, 2)
  assert.equal(a!.rootPlaceId, max)
  assert.equal(b!.userId, max)
  assert.equal(String(c!.userId), '9007199254740992')
  assert.ok(response.body.includes('"userId":9007199254740992,'))
})

test('50 ids are fine; 51 are refused with code 2', async (t) => {
  const { app } = await startApp(t)
  const fifty = Array.from({ length: 50 }, (_, i) => i + 1)
  assert.equal((await lookup(app, fifty)).length, 50)
  const response = await post(app, USERS, { userIds: [...fifty, 51] })
  assert.equal(response.statusCode, 400)
  assert.deepEqual(JSON.parse(response.body), {
    errors: [{ code: 2, message: 'Too many User Ids being sent in the request.' }],
  })
})

test('text/json and form bodies work like JSON', async (t) => {
  const { app, tokens } = await startApp(t)
  const me = await bearer(tokens, '31')
  const form = { ...me, 'content-type': 'application/x-www-form-urlencoded' }
  const registered = await post(app, REGISTER, 'location=Home&placeId=77&disconnect=false', form)
  assert.equal(registered.statusCode, 200, registered.body)

  const asText = await post(app, USERS, '{"userIds":[31]}', { 'content-type': 'text/json' })
  assert.equal(presencesOf(asText)[0]!.userPresenceType, 2)

  const plain = { 'content-type': 'application/x-www-form-urlencoded' }
  for (const body of [
    'userIds=31&userIds=32',
    'userIds[]=31&userIds[]=32',
    'userIds[0]=31&userIds[1]=32',
  ]) {
    const response = await post(app, USERS, body, plain)
    assert.deepEqual(
      presencesOf(response).map((r) => [r.userId, r.userPresenceType]),
      [
        [31, 2],
        [32, 0],
      ],
      body,
    )
  }
  const single = await post(app, USERS, 'userIds=31', plain)
  assert.equal(presencesOf(single).length, 1)

  const ended = await post(app, REGISTER, 'placeId=77&disconnect=true', form)
  assert.equal(ended.statusCode, 200)
  assert.equal((await lookup(app, [31]))[0]!.userPresenceType, 0)
})

test('privacy: invisible shows 4 to self only where the operator opts in; friends-only hides where', async (t) => {
  const { app, tokens, service } = await startApp(t, { config: { invisibleSelfView: 'invisible' } })
  const me = await bearer(tokens, '40')
  await service.putPlace({ placeId: '1818', universeId: '13058', rootPlaceId: '1818', name: 'X' })
  await register(app, me, { placeId: 1818, gameId: GAME, disconnect: false })
  await service.putSettings(id('40'), { visibility: 'everyone', invisible: true })

  const [self] = await lookup(app, [40], me)
  assert.equal(self!.userPresenceType, 4)
  assert.equal(self!.placeId, 1818)
  const [other] = await lookup(app, [40], await bearer(tokens, '41'))
  assert.equal(other!.userPresenceType, 0)
  assert.equal(other!.lastLocation, 'Offline')
  assert.equal(other!.placeId, null)

  await service.putSettings(id('40'), { visibility: 'friends', invisible: false })
  await service.setFriends(id('40'), id('42'), true)
  const [stranger] = await lookup(app, [40])
  assert.deepEqual(
    [
      stranger!.userPresenceType,
      stranger!.lastLocation,
      stranger!.placeId,
      stranger!.gameId,
      stranger!.universeId,
    ],
    [2, 'Playing', null, null, null],
  )
  const [friend] = await lookup(app, [40], await bearer(tokens, '42'))
  assert.equal(friend!.placeId, 1818)
  assert.equal(friend!.gameId, GAME)
})

test("invisibleSelfView 'offline' shows an invisible user 0 even to themself", async (t) => {
  const { app, tokens, service } = await startApp(t, { config: { invisibleSelfView: 'offline' } })
  const me = await bearer(tokens, '50')
  await register(app, me, { location: 'Home', disconnect: false })
  await service.putSettings(id('50'), { visibility: 'everyone', invisible: true })
  const [self] = await lookup(app, [50], me)
  assert.equal(self!.userPresenceType, 0)
  assert.equal(self!.lastLocation, 'Offline')
})
