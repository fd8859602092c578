import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { parseUserId } from '../../src/core/user-id.js'
import { Tokens } from '../../src/service/tokens.js'
import { spawnServer } from '../helpers/spawn-server.js'

const ADMIN_KEY = 'durability-admin-key'

interface RobloxPresence {
  userPresenceType: number
  lastLocation: string
  placeId: number | null
  rootPlaceId: number | null
  universeId: number | null
  userId: number
  lastOnline: string
}

/** A client of one running presenced: Roblox v1 and admin calls over real HTTP. */
function client(url: string) {
  const call = async (method: string, path: string, body?: unknown, headers = {}) => {
    const response = await fetch(url + path, {
      method,
      headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await response.text()
    return { status: response.status, body: text ? (JSON.parse(text) as unknown) : undefined }
  }
  const admin = async (method: string, path: string, body?: unknown) => {
    const response = await call(method, '/admin/v1' + path, body, { 'x-api-key': ADMIN_KEY })
    assert.ok(response.status < 300, `${method} ${path}: ${response.status}`)
    return response.body
  }
  return {
    admin,
    register: async (token: string, body: Record<string, unknown>) => {
      const response = await call('POST', '/v1/presence/register-app-presence', body, {
        authorization: `Bearer ${token}`,
      })
      assert.equal(response.status, 200, JSON.stringify(response.body))
    },
    presences: async (ids: number[], token?: string) => {
      const response = await call(
        'POST',
        '/v1/presence/users',
        { userIds: ids },
        token ? { authorization: `Bearer ${token}` } : {},
      )
      assert.equal(response.status, 200)
      return (response.body as { userPresences: RobloxPresence[] }).userPresences
    },
  }
}

test('SIGTERM then restart on the same data dir loses nothing durable', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'presenced-durability-'))
  t.after(() => rmSync(dataDir, { recursive: true, force: true }))
  const env = { PRESENCED_DATA_DIR: dataDir, PRESENCED_ADMIN_KEY: ADMIN_KEY }

  // --- first life -------------------------------------------------------------------------
  const first = await spawnServer(t, env)
  const a = client(first.url)
  // the token secret was generated into the data dir; sign as the CLI does
  const tokens = new Tokens(readFileSync(join(dataDir, 'token-secret'), 'utf8').trim())
  const alice = await tokens.issue(parseUserId('123')!)
  const bob = await tokens.issue(parseUserId('456')!)

  const place = { placeId: '1818', universeId: '99', rootPlaceId: '1818', name: 'Crossroads' }
  await a.admin('PUT', '/places/1818', {
    universeId: 99,
    rootPlaceId: 1818,
    name: 'Crossroads',
  })
  await a.admin('PUT', '/users/123/settings', { visibility: 'friends' })
  await a.admin('PUT', '/users/456/settings', { visibility: 'nobody', invisible: false })
  await a.admin('PUT', '/users/123/friends/456')
  await a.admin('PUT', '/users/789/blocks/123')
  await a.admin('PUT', '/users/123', { name: 'alice', displayName: 'Alice' })

  await a.register(alice, { location: 'Game', placeId: 1818, disconnect: false })
  const [inGame] = await a.presences([123], alice)
  assert.equal(inGame!.userPresenceType, 2)
  assert.equal(inGame!.lastLocation, 'Crossroads')
  assert.equal(inGame!.universeId, 99)
  await a.register(alice, { location: 'Game', placeId: 1818, disconnect: true })
  // bob's heartbeat is the last write before SIGTERM: no time for a periodic flush
  await a.register(bob, { location: 'Website', disconnect: false })

  const before = await a.presences([123, 456], alice)
  assert.equal(before[0]!.userPresenceType, 0)
  assert.equal(before[1]!.userPresenceType, 1)
  const rawBefore = await Promise.all([
    a.admin('GET', '/users/123/presence'),
    a.admin('GET', '/users/456/presence'),
  ])
  const settingsBefore = await Promise.all([
    a.admin('GET', '/users/123/settings'),
    a.admin('GET', '/users/456/settings'),
  ])
  const friendsBefore = await a.admin('GET', '/users/123/friends')
  assert.deepEqual(await a.admin('GET', '/places/1818'), place)

  assert.equal(await first.stop(), 0, 'SIGTERM exits 0')
  await first.logged('shut down cleanly')

  // --- second life on the same data dir ---------------------------------------------------
  const second = await spawnServer(t, env)
  t.after(() => second.stop())
  const b = client(second.url)

  const after = await b.presences([123, 456], alice)
  // lastOnline is exactly as before, to the millisecond, for an ended and for a live session
  assert.equal(after[0]!.lastOnline, before[0]!.lastOnline)
  assert.equal(after[1]!.lastOnline, before[1]!.lastOnline)
  assert.notEqual(after[1]!.lastOnline, new Date(0).toISOString())
  // sessions are not durable: bob's live session did not survive the process
  assert.equal(after[1]!.userPresenceType, 0)
  const rawAfter = await Promise.all([
    b.admin('GET', '/users/123/presence'),
    b.admin('GET', '/users/456/presence'),
  ])
  for (const [i, raw] of rawAfter.entries()) {
    const was = rawBefore[i] as { lastOnline: string; settings: unknown }
    const is = raw as { lastOnline: string; settings: unknown; sessions: unknown[] }
    assert.equal(is.lastOnline, was.lastOnline)
    assert.deepEqual(is.settings, was.settings)
    assert.deepEqual(is.sessions, [])
  }

  assert.deepEqual(await b.admin('GET', '/places/1818'), place)
  assert.deepEqual(
    await Promise.all([
      b.admin('GET', '/users/123/settings'),
      b.admin('GET', '/users/456/settings'),
    ]),
    settingsBefore,
  )
  assert.deepEqual(await b.admin('GET', '/users/123/friends'), friendsBefore)
  assert.deepEqual((friendsBefore as { friends: string[] }).friends, ['456'])
  assert.deepEqual(await b.admin('GET', '/users/123'), {
    userId: '123',
    name: 'alice',
    displayName: 'Alice',
  })

  // the block survived: the blocked viewer sees alice offline while she is in game
  const blocked = await tokens.issue(parseUserId('789')!)
  // the token secret survived too: a token issued in the first life still works
  await b.register(alice, { location: 'Game', placeId: 1818, disconnect: false })
  const [asBlocked] = await b.presences([123], blocked)
  assert.equal(asBlocked!.userPresenceType, 0)
  // the friendship survived: bob (a friend) sees where alice is; the place catalogue fills it
  const [asFriend] = await b.presences([123], bob)
  assert.equal(asFriend!.userPresenceType, 2)
  assert.equal(asFriend!.lastLocation, 'Crossroads')
  assert.equal(asFriend!.rootPlaceId, 1818)
  // visibility 'friends' survived: a stranger sees that she is in game, but not where
  const [asStranger] = await b.presences([123])
  assert.equal(asStranger!.userPresenceType, 2)
  assert.equal(asStranger!.placeId, null)
  assert.notEqual(asStranger!.lastLocation, 'Crossroads')
})
