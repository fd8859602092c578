import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import type { HeartbeatInput } from '../../src/service/presence-service.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'

const id = (value: string) => value as UserId

function beat(
  userId: string,
  key: string,
  activity: HeartbeatInput['activity'],
  source: HeartbeatInput['source'] = 'app',
): HeartbeatInput {
  return { userId: id(userId), key, source, deviceType: 'PC', activity }
}

/**
 * GET /api/v1/stats. The aggregate is reused for a second, so with `since` it asks again until
 * the answer was computed at or after that instant.
 */
async function stats(presenced: StartedApp, query = '', apiKey?: string, since?: number) {
  for (;;) {
    const response = await presenced.app.inject({
      url: `/api/v1/stats${query}`,
      headers: apiKey ? { 'x-api-key': apiKey } : {},
    })
    const body = response.json()
    if (since === undefined || response.statusCode !== 200 || body.at >= since) {
      return { status: response.statusCode, body }
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

test('stats: invisible users count nowhere, private locations count in no breakdown', async (t) => {
  const presenced = await startApp(t)
  const { service, stores } = presenced
  const game = { kind: 'inGame', placeId: '1818', universeId: '13058' } as const
  await service.putPlace({
    placeId: '1818',
    universeId: '13058',
    rootPlaceId: '1818',
    name: 'Crossroads',
  })
  await service.heartbeat(beat('1', 'app:PC', game))
  await service.heartbeat(beat('1', 'app:iOS', { kind: 'online' }))
  await service.heartbeat(beat('2', 'app:PC', game))
  await service.heartbeat(beat('3', 'app:PC', { kind: 'online' }))
  await service.heartbeat(
    beat('4', 'title:1:XboxOne', { kind: 'online', titleId: '1234' }, 'title'),
  )
  await service.heartbeat(beat('5', 'app:PC', { kind: 'inStudio' }))
  // 6 is invisible and plays too; 2's location is for friends only
  await service.putSettings(id('6'), { visibility: 'everyone', invisible: true })
  await service.heartbeat(beat('6', 'app:PC', game))
  await service.heartbeat(beat('6', 'app:iOS', { kind: 'online' }))
  await service.putSettings(id('2'), { visibility: 'friends', invisible: false })
  await stores.profiles.putTitle({ titleId: '1234', name: 'Forza', strings: {} })

  const { status, body } = await stats(presenced, '?top=5', undefined, Date.now())
  assert.equal(status, 200)
  assert.deepEqual(body.totals, {
    online: 5,
    inGame: 2,
    inStudio: 1,
    // 3 alone has no title, game or studio session
    away: 1,
    sessions: 6,
    locationHidden: 1,
  })
  assert.deepEqual(body.top, {
    universes: [{ id: '13058', name: 'Crossroads', users: 1 }],
    places: [{ id: '1818', name: 'Crossroads', users: 1 }],
    titles: [{ id: '1234', name: 'Forza', users: 1 }],
  })
  assert.equal(body.all, undefined, 'no admin numbers without the key')
  assert.equal(body.nodes, 1)
  assert.equal(body.mode, 'embedded')
  assert.equal(body.available, true)
  assert.ok(!JSON.stringify(body).includes('"6"'))

  const admin = await stats(presenced, '?top=5', ADMIN_KEY)
  assert.equal(admin.status, 200)
  assert.deepEqual(admin.body.totals, body.totals, 'the public numbers stay as they are')
  assert.equal(admin.body.all.invisibleUsers, 1)
  assert.equal(admin.body.all.invisibleSessions, 2)
  assert.equal(admin.body.all.totals.online, 6)
  assert.equal(admin.body.all.top.universes[0].users, 3)
})

test('stats: an invisible user moving changes no public number', async (t) => {
  const presenced = await startApp(t)
  const { service } = presenced
  await service.putSettings(id('9'), { visibility: 'everyone', invisible: true })
  await service.heartbeat(beat('10', 'app:PC', { kind: 'online' }))
  const before = (await stats(presenced, '', undefined, Date.now())).body
  assert.equal(before.totals.online, 1)
  await service.heartbeat(beat('9', 'app:PC', { kind: 'inGame', placeId: '5', universeId: '7' }))
  await service.heartbeat(beat('9', 'app:iOS', { kind: 'inStudio' }))
  const after = (await stats(presenced, '', undefined, Date.now())).body
  assert.deepEqual(after.totals, before.totals)
  assert.deepEqual(after.top, before.top)
})

test('stats: top is 0..100, bad keys are refused in the admin shape', async (t) => {
  const presenced = await startApp(t)
  for (const bad of ['?top=101', '?top=-1', '?top=abc', '?top=1.5']) {
    const { status, body } = await stats(presenced, bad)
    assert.equal(status, 400, bad)
    assert.equal(body.error.code, 'TOP_INVALID')
  }
  assert.equal((await stats(presenced, '?top=0')).status, 200)
  const wrong = await stats(presenced, '', 'not-the-key')
  assert.equal(wrong.status, 401)
  assert.equal(wrong.body.error.code, 'API_KEY_INVALID')
  const feed = await presenced.app.inject({ url: '/admin/v1/stats/feed' })
  assert.equal(feed.statusCode, 401)
  const file = await presenced.app.inject({ url: '/dashboard/..%2Fpackage.json' })
  assert.equal(file.statusCode, 404)
})

test('stats in fleet mode: two nodes on one Redis count each other and both nodes', async (t) => {
  const prefix = uniquePrefix('stats')
  t.after(() => deleteKeys({ url: LOCAL_REDIS_URL }, prefix))
  const config = { redisUrl: LOCAL_REDIS_URL, redisPrefix: prefix }
  const a = await startApp(t, { config })
  const b = await startApp(t, { config })
  await a.service.heartbeat(
    beat('9007199254740993', 'app:PC', { kind: 'inGame', universeId: '9007199254740995' }),
  )
  await b.service.heartbeat(beat('2', 'app:PC', { kind: 'online' }))
  await b.service.putSettings(id('3'), { visibility: 'everyone', invisible: true })
  await b.service.heartbeat(beat('3', 'app:PC', { kind: 'online' }))
  const { body } = await stats(b, '', undefined, Date.now())
  assert.equal(body.mode, 'redis')
  assert.equal(body.nodes, 2)
  assert.equal(body.totals.online, 2)
  assert.equal(body.totals.inGame, 1)
  assert.deepEqual(body.top.universes, [{ id: '9007199254740995', name: null, users: 1 }])
})
