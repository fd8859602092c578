import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserId } from '../../src/core/user-id.js'
import { ADMIN_KEY, startApp } from '../helpers/start-app.js'
import { json, send } from './wire.js'

/*
 * ro.py (roblox/presence.py) maps userPresenceType through `PresenceType(IntEnum)` with members
 * 0..3 only: a 4 (Invisible) raises ValueError and the whole get_user_presences call fails.
 * Self-views of an invisible user show 4 by default; PRESENCED_INVISIBLE_AS_OFFLINE=1 shows 0.
 */

const ALICE = '123' as UserId
const RO_PY_PRESENCE_TYPES = new Set([0, 1, 2, 3])

interface Record {
  userPresenceType: number
  lastLocation: string
  placeId: number | null
  userId: number
}

async function invisibleSelfView(invisibleAsOffline: boolean, t: Parameters<typeof startApp>[0]) {
  const { url, tokens } = await startApp(t, { listen: true, config: { invisibleAsOffline } })
  const settings = await send(url, {
    method: 'PUT',
    path: '/admin/v1/users/123/settings',
    headers: [
      ['x-api-key', ADMIN_KEY],
      ['Content-Type', 'application/json'],
    ],
    body: '{"invisible":true}',
  })
  assert.ok(settings.status < 300, settings.text)
  const bearer: [string, string] = ['Authorization', `Bearer ${await tokens.issue(ALICE)}`]
  const beat = await send(url, {
    method: 'POST',
    path: '/v1/presence/register-app-presence',
    headers: [bearer, ['Content-Type', 'application/json']],
    body: '{"location":"Game","placeId":1818,"disconnect":false}',
  })
  assert.equal(beat.status, 200, beat.text)
  const read = async (headers: [string, string][]) =>
    (
      json(
        await send(url, {
          method: 'POST',
          path: '/v1/presence/users',
          headers: [...headers, ['Content-Type', 'application/json']],
          body: '{"userIds": [123]}',
        }),
      ) as { userPresences: Record[] }
    ).userPresences[0]!
  return { self: await read([bearer]), anonymous: await read([]) }
}

test('by default an invisible user sees 4 for themself; everyone else sees 0', async (t) => {
  const { self, anonymous } = await invisibleSelfView(false, t)
  assert.equal(self.userPresenceType, 4)
  assert.equal(self.placeId, 1818)
  assert.equal(anonymous.userPresenceType, 0)
})

test('PRESENCED_INVISIBLE_AS_OFFLINE: the self-view says 0, which ro.py can parse', async (t) => {
  const { self, anonymous } = await invisibleSelfView(true, t)
  assert.ok(RO_PY_PRESENCE_TYPES.has(self.userPresenceType))
  assert.deepEqual(
    { type: self.userPresenceType, location: self.lastLocation, placeId: self.placeId },
    { type: 0, location: 'Offline', placeId: null },
  )
  assert.equal(anonymous.userPresenceType, 0)
})
