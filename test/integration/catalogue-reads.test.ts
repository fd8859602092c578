import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { Config } from '../../src/app/config.js'
import type { UserId } from '../../src/core/user-id.js'
import { json, send } from '../compat/wire.js'
import { LOCAL_REDIS_URL, deleteKeys, uniquePrefix } from '../helpers/redis.js'
import { ADMIN_KEY, startApp, type StartedApp } from '../helpers/start-app.js'

/*
 * Issue 16 item 2: naming a place reaches the sessions already in it, on the next read, in both
 * stores and on every node; not at their next heartbeat.
 */

const PLAYER = '31' as UserId
const XUID = '2535428504476914' as UserId

interface RobloxRecord {
  userPresenceType: number
  lastLocation: string
  placeId: number | null
  rootPlaceId: number | null
  universeId: number | null
}

async function putPlace(url: string, placeId: number, body: Record<string, unknown>) {
  const response = await send(url, {
    method: 'PUT',
    path: `/admin/v1/places/${placeId}`,
    headers: [
      ['x-api-key', ADMIN_KEY],
      ['content-type', 'application/json'],
    ],
    body: JSON.stringify(body),
  })
  assert.ok(response.status < 300, response.text)
}

async function robloxRead(url: string): Promise<RobloxRecord> {
  const response = await send(url, {
    method: 'POST',
    path: '/v1/presence/users',
    headers: [['content-type', 'application/json']],
    body: JSON.stringify({ userIds: [Number(PLAYER)] }),
  })
  assert.equal(response.status, 200, response.text)
  return (json(response) as { userPresences: RobloxRecord[] }).userPresences[0]!
}

async function xboxRichPresence(app: StartedApp): Promise<string | undefined> {
  const response = await send(app.url, {
    method: 'GET',
    path: `/users/xuid(${XUID})?level=all`,
    headers: [
      ['authorization', `XBL3.0 x=1;${await app.tokens.issue(XUID)}`],
      ['x-xbl-contract-version', '3'],
    ],
  })
  assert.equal(response.status, 200, response.text)
  const record = json(response) as {
    devices?: { titles: { activity?: { richPresence: string } }[] }[]
  }
  return record.devices?.[0]?.titles[0]?.activity?.richPresence
}

/** Both players in place 1818, which the catalogue does not know yet. */
async function playersInGame(app: StartedApp): Promise<void> {
  for (const id of [PLAYER, XUID]) {
    const beat = await send(app.url, {
      method: 'POST',
      path: '/v1/presence/register-app-presence',
      headers: [
        ['authorization', `Bearer ${await app.tokens.issue(id)}`],
        ['content-type', 'application/json'],
      ],
      body: '{"location":"Game","placeId":1818,"disconnect":false}',
    })
    assert.equal(beat.status, 200, beat.text)
  }
}

async function namingReachesLiveSessions(t: TestContext, config: Partial<Config>) {
  const app = await startApp(t, { listen: true, config })
  await playersInGame(app)
  const unnamed = await robloxRead(app.url)
  assert.deepEqual(
    [unnamed.userPresenceType, unnamed.lastLocation, unnamed.rootPlaceId, unnamed.universeId],
    [2, 'Game', null, null],
  )
  assert.equal(await xboxRichPresence(app), 'Game')

  await putPlace(app.url, 1818, { universeId: 13058, rootPlaceId: 1800, name: 'Crossroads' })
  const named = await robloxRead(app.url)
  assert.deepEqual(
    [
      named.userPresenceType,
      named.lastLocation,
      named.placeId,
      named.rootPlaceId,
      named.universeId,
    ],
    [2, 'Crossroads', 1818, 1800, 13058],
  )
  assert.equal(await xboxRichPresence(app), 'Crossroads')

  // a rename and a move to another universe show at once too
  await putPlace(app.url, 1818, { universeId: 99, rootPlaceId: 1818, name: 'Crossroads 2' })
  const renamed = await robloxRead(app.url)
  assert.deepEqual(
    [renamed.lastLocation, renamed.rootPlaceId, renamed.universeId],
    ['Crossroads 2', 1818, 99],
  )
  assert.equal(await xboxRichPresence(app), 'Crossroads 2')
}

test('embedded store: a place named after its players arrived shows on their next read', async (t) => {
  await namingReachesLiveSessions(t, {})
})

test('Redis store: a place named after its players arrived shows on their next read', async (t) => {
  const prefix = uniquePrefix('catalogue')
  t.after(() => deleteKeys({ url: LOCAL_REDIS_URL }, prefix))
  await namingReachesLiveSessions(t, { redisUrl: LOCAL_REDIS_URL, redisPrefix: prefix })
})

test('fleet: a place named on node A shows on node B, which had read it before', async (t) => {
  const prefix = uniquePrefix('catalogue-fleet')
  t.after(() => deleteKeys({ url: LOCAL_REDIS_URL }, prefix))
  const config = { redisUrl: LOCAL_REDIS_URL, redisPrefix: prefix }
  const a = await startApp(t, { listen: true, config })
  const b = await startApp(t, { listen: true, config })
  await putPlace(a.url, 1818, { universeId: 13058, rootPlaceId: 1818, name: 'Crossroads' })
  await playersInGame(a)
  // B reads the place once, so it holds it in memory
  assert.equal((await robloxRead(b.url)).lastLocation, 'Crossroads')

  // the change reaches B over the bus; B's service hears it before this later subscriber
  const heard = new Promise<void>((resolve) => {
    const stop = b.stores.bus.subscribe((event) => {
      if (event.type === 'place' && event.placeId === '1818') {
        stop()
        resolve()
      }
    })
  })
  await putPlace(a.url, 1818, { universeId: 13058, rootPlaceId: 1818, name: 'The Crossroads' })
  await heard
  assert.equal((await robloxRead(b.url)).lastLocation, 'The Crossroads')
})

test('an import of places reaches live sessions at once too', async (t) => {
  const app = await startApp(t, { listen: true })
  await playersInGame(app)
  assert.equal((await robloxRead(app.url)).lastLocation, 'Game')
  const imported = await send(app.url, {
    method: 'POST',
    path: '/admin/v1/import',
    headers: [
      ['x-api-key', ADMIN_KEY],
      ['content-type', 'application/x-ndjson'],
    ],
    body: '{"type":"place","placeId":1818,"universeId":7,"rootPlaceId":1818,"name":"Imported"}\n',
  })
  assert.ok(imported.status < 300, imported.text)
  const read = await robloxRead(app.url)
  assert.deepEqual([read.lastLocation, read.universeId], ['Imported', 7])
})
