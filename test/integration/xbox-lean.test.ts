import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import type { Config } from '../../src/app/config.js'
import { BATCH_MIRRORED_HOOKS } from '../../src/protocols/xbox/lean-batch.js'
import { startApp, type StartedApp } from '../helpers/start-app.js'
import {
  assertSameReply,
  leanAndFastify,
  routeHooks,
  startFixedClockApp,
  type RawReply,
} from '../helpers/lean-vs-fastify.js'

/*
 * POST /users/batch is answered on node:http (protocols/xbox/lean-batch.ts) when the request is
 * ordinary, by Fastify otherwise. Each request here is sent as is (lean) and with a query string,
 * which only Fastify takes (same route), and the two replies must match byte for byte, headers
 * included (but Date).
 */

const BATCH = '/users/batch'

/** Sends the batch both ways (lean, then Fastify). */
function both(app: StartedApp, headers: Record<string, string>, body: string) {
  return leanAndFastify(app, BATCH, headers, body)
}

async function seeded(t: TestContext, config: Partial<Config> = {}) {
  const { app, clock } = await startFixedClockApp(t, config)
  const { service } = app
  await service.putPlace({
    placeId: '1818',
    universeId: '13058',
    rootPlaceId: '1818',
    name: 'Obby',
  })
  await service.putTitle({ titleId: '1234', name: 'Halo "Infinite"', strings: {} })
  await service.heartbeat({
    userId: '1' as UserId,
    key: 'app:PC',
    source: 'app',
    deviceType: 'PC',
    activity: { kind: 'inGame', placeId: '1818' },
  })
  await service.heartbeat({
    userId: '9223372036854775807' as UserId,
    key: 'title:1234:XboxOne',
    source: 'title',
    deviceType: 'XboxOne',
    activity: {
      kind: 'online',
      titleId: '1234',
      placement: 'full',
      titleState: 'active',
      richPresence: { id: 'playing', params: [] },
    },
  })
  await service.heartbeat({
    userId: '2' as UserId,
    key: 'app:Web',
    source: 'app',
    deviceType: 'Web',
    activity: { kind: 'online', location: 'Home' },
  })
  await service.putSettings('3' as UserId, { visibility: 'friends', invisible: false })
  await service.heartbeat({
    userId: '3' as UserId,
    key: 'app:PC',
    source: 'app',
    deviceType: 'PC',
    activity: { kind: 'inGame', placeId: '1818' },
  })
  clock.advance(1234)
  return app
}

test('lean and Fastify paths give the same bytes for good and bad batches', async (t) => {
  const app = await seeded(t)
  const token = await app.tokens.issue('1' as UserId)
  const xbl = {
    'content-type': 'application/json',
    authorization: `XBL3.0 x=1;${token}`,
    'x-xbl-contract-version': '3',
    accept: 'application/json',
  }
  const many = Array.from({ length: 1100 }, (_, i) => `"${i + 1}"`).join(',')
  const cases: Array<[string, Record<string, string>, string]> = [
    ['level all', xbl, '{"level":"all","users":["1","2","3","4","9223372036854775807"]}'],
    ['default level', xbl, '{"users":["1","2",3,"1"]}'],
    ['level user', xbl, '{"users":["1","2"],"level":"user"}'],
    ['level device', xbl, '{"users":["1","2"],"level":"device"}'],
    ['1100 users', xbl, `{"users":[${many}],"level":"all"}`],
    ['onlineOnly', xbl, '{"users":["1","4"],"onlineOnly":true}'],
    ['deviceTypes', xbl, '{"users":["1","9223372036854775807"],"deviceTypes":["XboxOne"]}'],
    ['accept-language', { ...xbl, 'accept-language': 'fr-FR' }, '{"users":["1"],"level":"all"}'],
    ['invalid JSON', xbl, '{"users":["1",'],
    ['empty body', xbl, ''],
    ['no users', xbl, '{}'],
    ['users empty', xbl, '{"users":[]}'],
    ['1101 users', xbl, `{"users":[${many},"1101"]}`],
    ['a bad XUID', xbl, '{"users":["0"]}'],
    ['beyond int64', xbl, '{"users":["9223372036854775808"]}'],
    ['a bad level', xbl, '{"users":["1"],"level":"everything"}'],
    ['a prohibited member', xbl, '{"users":["1"],"x":1}'],
    ['no contract version', { ...xbl, 'x-xbl-contract-version': '' }, '{"users":["1"]}'],
    ['contract version 2', { ...xbl, 'x-xbl-contract-version': '2' }, '{"users":["1"]}'],
    ['Accept text/html', { ...xbl, accept: 'text/html' }, '{"users":["1"]}'],
    ['a bad token', { ...xbl, authorization: 'XBL3.0 x=1;nope' }, '{"users":["1"]}'],
    ['a malformed Authorization', { ...xbl, authorization: 'Bearer x' }, '{"users":["1"]}'],
    ['no Authorization', { ...xbl, authorization: '' }, '{"users":["1"]}'],
  ]
  for (const [name, headers, body] of cases) {
    const { lean, fastify } = await both(app, headers, body)
    assertSameReply(lean, fastify, name)
  }
  // the cases reached the states they name
  const { lean } = await both(app, xbl, '{"level":"all","users":["1","9223372036854775807","4"]}')
  const records = JSON.parse(lean.body.toString()) as Array<{ xuid: string; state: string }>
  assert.deepEqual(
    records.map((r) => [r.xuid, r.state]),
    [
      ['1', 'Online'],
      ['9223372036854775807', 'Online'],
      ['4', 'Offline'],
    ],
  )
  assert.match(lean.body.toString(), /"name":"Halo \\"Infinite\\""/)
  assert.match(lean.body.toString(), /"richPresence":"Obby"/)
})

test('lean and Fastify paths refuse alike once the Xbox read budget is spent', async (t) => {
  const app = await seeded(t, { xboxReadBurstMax: 2 })
  const token = await app.tokens.issue('1' as UserId)
  const xbl = {
    'content-type': 'application/json',
    authorization: `XBL3.0 x=1;${token}`,
    'x-xbl-contract-version': '3',
  }
  const first = await both(app, xbl, '{"users":["1"]}')
  assert.equal(first.lean.status, 200)
  assert.equal(first.fastify.status, 200)
  const { lean, fastify } = await both(app, xbl, '{"users":["1"]}')
  assert.equal(lean.status, 429)
  assert.deepEqual(lean.headers, fastify.headers)
  // the same rule, Fastify's request counted one after the lean one
  const count = (raw: RawReply) => JSON.parse(raw.body.toString()) as { currentRequests: number }
  assert.equal(count(fastify).currentRequests, count(lean).currentRequests + 1)
  assert.equal(
    lean.body.toString().replace(/"currentRequests":\d+/, ''),
    fastify.body.toString().replace(/"currentRequests":\d+/, ''),
  )
  assert.ok(lean.headers['retry-after'])
})

test('every hook Fastify runs on POST /users/batch is one the lean path mirrors', async (t) => {
  const { app } = await startApp(t)
  await app.ready()
  assert.deepEqual(
    routeHooks(app, '/batch (POST)'),
    BATCH_MIRRORED_HOOKS,
    'a hook was added to POST /users/batch; mirror it in its lean route and list it there',
  )
})

test('a title seen on more device types than the writer caches keeps each device its own type', async (t) => {
  const app = await seeded(t)
  const { service } = app
  // device types are free text: 100 of them, one user each, the same title and activity
  const types = Array.from({ length: 100 }, (_, i) => `Console${i}`)
  for (const [i, deviceType] of types.entries()) {
    await service.heartbeat({
      userId: String(1000 + i) as UserId,
      key: `title:1234:${deviceType}`,
      source: 'title',
      deviceType,
      activity: { kind: 'online', titleId: '1234', placement: 'full', titleState: 'active' },
    })
  }
  const token = await app.tokens.issue('1' as UserId)
  const xbl = {
    'content-type': 'application/json',
    authorization: `XBL3.0 x=1;${token}`,
    'x-xbl-contract-version': '3',
  }
  const users = types.map((_, i) => `"${1000 + i}"`).join(',')
  // twice: the second batch is written from whatever the first left cached
  for (const round of [1, 2]) {
    const { lean, fastify } = await both(app, xbl, `{"users":[${users}],"level":"all"}`)
    assertSameReply(lean, fastify, `round ${round}`)
    const records = JSON.parse(lean.body.toString()) as Array<{
      xuid: string
      devices: Array<{ type: string; titles: Array<{ id: string }> }>
    }>
    assert.deepEqual(
      records.map((r) => [r.xuid, r.devices.map((d) => d.type), r.devices[0]?.titles[0]?.id]),
      types.map((type, i) => [String(1000 + i), [type], '1234']),
    )
  }
})
